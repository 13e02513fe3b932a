//! A trunk's inbound call: an out-of-dialog INVITE that [`super::TrunkTable::identify`]
//! matched starts in the trunk's context as [`pbx_calls::Originator::Trunk`], without a
//! digest challenge (the trunk was identified by its source address).

use super::TrunkPeer;
use crate::caller::Caller;
use crate::io::{Now, Output, Security};
use crate::peer::Peer;
use crate::state::Engine;
use pbx_sip::message::Request;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::TransactionKey;
use std::sync::Arc;

pub(crate) fn start(
    engine: &mut Engine,
    now: Now,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    trunk: Arc<TrunkPeer>,
) {
    if engine.ctx.guard.is_banned(peer.remote.ip(), now.unix()) {
        // Banned while the request waited in the queue: dropped like everything else it sends.
        engine.push(Output::Security(Security::DroppedBanned));
        engine.abandon(&key);
        return;
    }
    let Some(channel) = engine.ctx.trunks.seize(&trunk) else {
        // RFC 3261 §21.5.4: the trunk's channels are all in use; it may try elsewhere.
        tracing::info!(trunk = %trunk.name, channels = trunk.channels, "trunk call refused: every channel in use");
        metrics::counter!("pbx_trunk_calls_refused_total", "trunk" => trunk.name.clone())
            .increment(1);
        let answer = engine.response_with_reason(
            &request,
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable (all channels in use)",
        );
        return engine.respond(now, &key, answer);
    };
    tracing::debug!(trunk = %trunk.name, source = %peer.remote, "INVITE from a trunk");
    metrics::counter!("pbx_trunk_calls_total", "trunk" => trunk.name.clone(), "direction" => "inbound")
        .increment(1);
    if let Some(conn) = peer.conn {
        // A trunk's connection is a known peer's flow, kept open like a phone's.
        engine.push(Output::Authenticated { conn });
    }
    crate::calls::start(
        engine,
        now,
        key,
        request,
        peer,
        Caller::Trunk(trunk, channel),
    );
}
