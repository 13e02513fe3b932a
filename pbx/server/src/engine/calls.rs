//! The shard's calls: an authenticated INVITE becomes a [`pbx_calls::Call`]; its messages,
//! transaction events, timers and media events are routed to it here, and what it asks for
//! (media plans, CDRs) is done here.

use super::ShardInput;
use super::location::BindingPeer;
use super::respond::response_with_reason;
use super::shard::Shard;
use crate::media::{MediaEvent, MediaSession};
use crate::transport::{Peer, TransportKind, now_unix};
use pbx_calls::{
    Call, CallConfig, CallOutput, CallRecord, CallSetup, Device, Disposition, Endpoint, MediaSetup,
    Route,
};
use pbx_dialplan::{CallContext, Execution};
use pbx_media::Side;
use pbx_media::sdp::{Encryption, LocalEndpoint};
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionEvent, TransactionKey, TransactionLayer};
use pbx_store::{Credentials, NewCdr};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The live calls of one shard and the indexes that find them.
#[derive(Default)]
pub(crate) struct Calls {
    next: u64,
    pub(super) active: HashMap<u64, Active>,
    by_call_id: HashMap<String, u64>,
    by_txn: HashMap<TransactionKey, u64>,
    by_invite: HashMap<TransactionKey, u64>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
}

pub(super) struct Active {
    pub(super) call: Call<Peer>,
    media: Option<MediaSession>,
    /// The dialplan of a call routed by one.
    pub(super) plan: Option<super::dialing::PlanState>,
    caller_peer: Peer,
    caller_policy: String,
}

/// A call waiting for the called extension's record from the store.
pub(crate) struct PendingRoute {
    key: TransactionKey,
    request: Request,
    peer: Peer,
    caller: Arc<Credentials>,
    called: String,
    callee: Result<Option<Arc<Credentials>>, String>,
}

impl Calls {
    /// The earliest timer of any call.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        // Lazy deletion: entries of finished calls or of moved deadlines are skipped.
        while let Some(Reverse((at, no))) = self.deadlines.peek().copied() {
            match self.active.get(&no).and_then(|a| a.call.poll_timeout()) {
                Some(current) if current == at => return Some(at),
                _ => {
                    self.deadlines.pop();
                }
            }
        }
        None
    }

    pub fn owner_of_call_id(&self, call_id: &str) -> Option<u64> {
        self.by_call_id.get(call_id).copied()
    }

    pub fn owner_of_invite(&self, key: &TransactionKey) -> Option<u64> {
        self.by_invite.get(key).copied()
    }

    pub fn owner_of_transaction(&self, key: &TransactionKey) -> Option<u64> {
        self.by_txn.get(key).copied()
    }
}

/// An authenticated INVITE from extension `caller`: find where it goes.
pub(super) fn start(
    shard: &mut Shard,
    now: Instant,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    caller: Arc<Credentials>,
) {
    // RFC 3261 §8.2.2.3: we implement no extension a caller may require (100rel included).
    if let Some(required) = request.headers.get_str(&HeaderName::REQUIRE) {
        let mut answer = response_with_reason(
            &request,
            StatusCode::BAD_EXTENSION,
            "Bad Extension",
            &shard.ctx.user_agent,
        );
        answer
            .headers
            .push(HeaderName::UNSUPPORTED, required.to_string());
        return shard.respond(now, &key, answer);
    }
    let called = request.uri.user().unwrap_or_default().to_string();
    if let Some(plan) = shard.ctx.plan.current() {
        let context = CallContext {
            caller: caller.number.clone(),
            caller_name: request
                .headers
                .from()
                .ok()
                .and_then(|from| from.display_name.clone())
                .unwrap_or_default(),
            // `pbx extension set --context` overrides the plan's `members`.
            caller_context: Some(caller.context.clone()).filter(|c| !c.is_empty()),
            dialed: called.clone(),
            now: pbx_dialplan::Timestamp::now(),
        };
        let execution = plan.route(&context);
        let incoming = Incoming {
            key,
            request,
            peer,
            caller,
            called,
        };
        // The call exists while its plan runs, so the caller may CANCEL an HTTP lookup.
        return begin_call(shard, now, incoming, Route::Wait, None, Some(execution));
    }
    match shard.ctx.credentials.cached(&called, now) {
        Some(callee) => route(shard, now, key, request, peer, caller, &called, callee),
        None => {
            let ctx = shard.ctx.clone();
            let own = shard.own.clone();
            tokio::spawn(async move {
                let callee = ctx
                    .credentials
                    .load(&called)
                    .await
                    .map_err(|e| e.to_string());
                let pending = PendingRoute {
                    key,
                    request,
                    peer,
                    caller,
                    called,
                    callee,
                };
                let _ = own.send(ShardInput::CallRoute(Box::new(pending))).await;
            });
        }
    }
}

pub(super) fn resume(shard: &mut Shard, now: Instant, pending: Box<PendingRoute>) {
    let PendingRoute {
        key,
        request,
        peer,
        caller,
        called,
        callee,
    } = *pending;
    match callee {
        Ok(callee) => route(shard, now, key, request, peer, caller, &called, callee),
        Err(error) => {
            tracing::error!(%error, "extension lookup failed");
            let answer = response_with_reason(
                &request,
                StatusCode::SERVER_INTERNAL_ERROR,
                "Server Internal Error",
                &shard.ctx.user_agent,
            );
            shard.respond(now, &key, answer);
        }
    }
}

/// Without a dialplan: the dialed number is an extension, rung directly, or unknown (404).
#[allow(clippy::too_many_arguments)] // the request and everything learnt about it
fn route(
    shard: &mut Shard,
    now: Instant,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    caller: Arc<Credentials>,
    called: &str,
    callee: Option<Arc<Credentials>>,
) {
    let incoming = Incoming {
        key,
        request,
        peer,
        caller,
        called: called.to_string(),
    };
    match callee {
        None => {
            let route = Route::Reject {
                status: StatusCode::NOT_FOUND,
                reason: "Not Found (no such number)".into(),
                disposition: Disposition::Failed,
            };
            begin_call(shard, now, incoming, route, None, None);
        }
        Some(callee) => {
            let devices = devices_of(&shard.ctx, std::slice::from_ref(&callee.number));
            let route = Route::Ring {
                timeout: shard.ctx.ring_timeout,
                devices,
            };
            begin_call(shard, now, incoming, route, Some(callee), None);
        }
    }
}

/// Every live device of these extensions.
pub(super) fn devices_of(ctx: &super::EngineContext, numbers: &[String]) -> Vec<Device<Peer>> {
    let now = now_unix();
    numbers
        .iter()
        .flat_map(|number| ctx.location.lookup(number, now))
        .map(|registration| Device {
            contact: registration.binding.contact.clone(),
            endpoint: endpoint(&registration.peer()),
        })
        .collect()
}

/// An authenticated INVITE on its way to a call.
pub(crate) struct Incoming {
    key: TransactionKey,
    request: Request,
    peer: Peer,
    caller: Arc<Credentials>,
    called: String,
}

/// Starts the call: media for a call that rings, then the call machine, then its dialplan
/// (when `plan` is given, the route is `Wait` and the plan decides what rings).
fn begin_call(
    shard: &mut Shard,
    now: Instant,
    incoming: Incoming,
    route: Route<Peer>,
    callee: Option<Arc<Credentials>>,
    plan: Option<Execution>,
) {
    let Incoming {
        key,
        request,
        peer,
        caller,
        called,
    } = incoming;
    let called = called.as_str();
    let ctx = shard.ctx.clone();
    let caller_endpoint = endpoint(&peer);
    // An extension rung by a dialplan that is not in the credentials table yet (added a
    // moment ago) gets the default policy.
    let callee_policy =
        callee.map_or_else(|| "optional".to_string(), |c| c.media_encryption.clone());
    let no = shard.calls.next;
    shard.calls.next += 1;
    let session = match &route {
        Route::Ring { devices, .. } if !devices.is_empty() => {
            match allocate_media(
                shard,
                no,
                &peer,
                devices,
                &caller.media_encryption,
                &callee_policy,
            ) {
                Ok(session) => Some(session),
                Err(error) => {
                    tracing::warn!(%error, "no media ports for a call");
                    // The cause is the PBX's business (logged above), not the caller's.
                    let mut answer = super::respond::response(
                        &request,
                        StatusCode::SERVICE_UNAVAILABLE,
                        &ctx.user_agent,
                    );
                    answer.headers.push(HeaderName::RETRY_AFTER, "5");
                    return shard.respond(now, &key, answer);
                }
            }
        }
        _ => None,
    };
    let media_setup = session.as_ref().map(|(_, setup)| setup.clone());
    let callee_call_id = pbx_calls::ids::call_id(&shard.call_id_prefix());
    let caller_call_id = request.headers.call_id().unwrap_or_default().to_string();
    let caller_name = request
        .headers
        .from()
        .ok()
        .and_then(|from| from.display_name.clone());
    let setup = CallSetup {
        invite_key: key.clone(),
        invite: request,
        caller: caller_endpoint,
        caller_number: caller.number.clone(),
        caller_name,
        called_number: called.to_string(),
        domain: ctx.domain.clone(),
        callee_call_id: callee_call_id.clone(),
        route,
        media: media_setup,
        plan_continues: plan.is_some(),
    };
    let config = CallConfig {
        user_agent: ctx.user_agent.clone(),
        ..CallConfig::default()
    };
    tracing::info!(
        call = %caller_call_id,
        caller = %caller.number,
        callee = %called,
        source = %peer.remote,
        transport = %peer.kind,
        "call started"
    );
    let call = Call::start(now, &mut shard.layer, setup, config);
    metrics::gauge!("pbx_calls_active").increment(1.0);
    let calls = &mut shard.calls;
    calls.by_call_id.insert(caller_call_id, no);
    calls.by_call_id.insert(callee_call_id, no);
    calls.by_invite.insert(key, no);
    calls.active.insert(
        no,
        Active {
            call,
            media: session.map(|(session, _)| session),
            plan: plan.map(super::dialing::PlanState::new),
            caller_peer: peer,
            caller_policy: caller.media_encryption.clone(),
        },
    );
    after(shard, no);
    if shard
        .calls
        .active
        .get(&no)
        .is_some_and(|a| a.plan.is_some())
    {
        super::dialing::drive(shard, now, no, None);
    }
}

/// Binds relay ports for call `no` if it has none yet (a dialplan call, at its first ring).
pub(super) fn ensure_media(
    shard: &mut Shard,
    no: u64,
    devices: &[Device<Peer>],
    callee_policy: &str,
) -> Result<(), crate::media::MediaError> {
    let Some(active) = shard.calls.active.get(&no) else {
        return Ok(());
    };
    if active.media.is_some() || active.call.has_media() {
        return Ok(());
    }
    let (peer, caller_policy) = (active.caller_peer.clone(), active.caller_policy.clone());
    let (session, setup) =
        allocate_media(shard, no, &peer, devices, &caller_policy, callee_policy)?;
    if let Some(active) = shard.calls.active.get_mut(&no) {
        active.call.set_media(setup);
        active.media = Some(session);
    }
    Ok(())
}

/// Binds the call's relay ports and says which address each leg's SDP carries.
fn allocate_media(
    shard: &Shard,
    no: u64,
    caller_peer: &Peer,
    devices: &[Device<Peer>],
    caller_policy: &str,
    callee_policy: &str,
) -> Result<(MediaSession, MediaSetup), crate::media::MediaError> {
    let ctx = &shard.ctx;
    let own = shard.own.clone();
    let on_event = Box::new(move |event: MediaEvent| {
        let _ = own.try_send(ShardInput::Media(no, event));
    });
    let session = ctx.media.allocate(format!("call {no}"), on_event)?;
    let callee_local = devices
        .first()
        .map_or(caller_peer.local.ip(), |d| d.endpoint.local.ip());
    let setup = MediaSetup {
        caller: LocalEndpoint {
            ip: advertised(
                ctx.public_ip,
                ctx.media.bound_ip(),
                endpoint(caller_peer).local.ip(),
            ),
            rtp_port: session.port(Side::Caller),
        },
        callee: LocalEndpoint {
            ip: advertised(ctx.public_ip, ctx.media.bound_ip(), callee_local),
            rtp_port: session.port(Side::Callee),
        },
        caller_encryption: encryption(caller_policy),
        callee_encryption: encryption(callee_policy),
        allow_keys_in_clear: ctx.sdes_over_insecure,
        session_id: rand::random::<u32>().into(),
    };
    Ok((session, setup))
}

/// The address written into SDP: `[rtp] public_ip`, else the one address media is bound to
/// (`[rtp] bind`), else the address the leg's signalling uses (already resolved from a
/// wildcard listener by [`endpoint`]).
fn advertised(public_ip: Option<IpAddr>, media_bind: Option<IpAddr>, local: IpAddr) -> IpAddr {
    public_ip.or(media_bind).unwrap_or(local)
}

/// The address of this host that the kernel would use to reach `remote`: for a listener on
/// `0.0.0.0` or `::`, Via, Contact and SDP must name a real address. No packet is sent (a
/// connected UDP socket only picks a route).
fn local_ip_towards(remote: std::net::SocketAddr) -> Option<IpAddr> {
    let any: std::net::SocketAddr = if remote.is_ipv4() {
        (IpAddr::from([0, 0, 0, 0]), 0).into()
    } else {
        (IpAddr::from([0u16; 8]), 0).into()
    };
    let probe = std::net::UdpSocket::bind(any).ok()?;
    probe.connect(remote).ok()?;
    probe.local_addr().ok().map(|a| a.ip())
}

fn encryption(policy: &str) -> Encryption {
    match policy {
        "required" => Encryption::Required,
        "off" => Encryption::Off,
        _ => Encryption::Optional,
    }
}

fn endpoint(peer: &Peer) -> Endpoint<Peer> {
    let mut local = peer.local;
    if local.ip().is_unspecified()
        && let Some(ip) = local_ip_towards(peer.remote)
    {
        local.set_ip(ip);
    }
    Endpoint {
        peer: peer.clone(),
        reliable: peer.kind.is_reliable(),
        transport: peer.kind.via_token(),
        local,
        secure: peer.kind == TransportKind::Tls,
    }
}

/// Runs `f` on call `no` with the shard's transaction layer, then carries out what the call
/// asked for.
pub(super) fn with_call(
    shard: &mut Shard,
    no: u64,
    f: impl FnOnce(&mut Call<Peer>, &mut TransactionLayer<Peer>),
) {
    if let Some(active) = shard.calls.active.get_mut(&no) {
        f(&mut active.call, &mut shard.layer);
    }
    after(shard, no);
}

/// An in-dialog request (not ACK or CANCEL) for call `no`.
pub(super) fn request(
    shard: &mut Shard,
    now: Instant,
    no: u64,
    key: TransactionKey,
    request: Request,
) {
    with_call(shard, no, |call, layer| {
        call.handle_request(now, layer, key, request)
    });
}

pub(super) fn ack(shard: &mut Shard, now: Instant, no: u64, request: &Request) {
    with_call(shard, no, |call, layer| {
        call.handle_ack(now, layer, request)
    });
}

pub(super) fn cancel(
    shard: &mut Shard,
    now: Instant,
    no: u64,
    key: TransactionKey,
    request: Request,
) {
    with_call(shard, no, |call, layer| {
        call.handle_cancel(now, layer, key, request)
    });
}

pub(super) fn event(
    shard: &mut Shard,
    now: Instant,
    no: u64,
    key: &TransactionKey,
    event: TransactionEvent,
) {
    if matches!(event, TransactionEvent::Terminated) {
        shard.calls.by_txn.remove(key);
    }
    with_call(shard, no, |call, layer| {
        call.handle_event(now, layer, key, event)
    });
}

pub(super) fn media(shard: &mut Shard, now: Instant, no: u64, event: MediaEvent) {
    match event {
        MediaEvent::Timeout | MediaEvent::Failed => with_call(shard, no, |call, layer| {
            tracing::info!(
                call = call.caller_call_id(),
                ?event,
                "no media: ending the call"
            );
            call.media_timeout(now, layer);
        }),
    }
}

/// Runs the calls whose timers are due.
pub(super) fn timeouts(shard: &mut Shard, now: Instant) {
    while let Some(Reverse((at, no))) = shard.calls.deadlines.peek().copied() {
        if at > now {
            break;
        }
        shard.calls.deadlines.pop();
        let due = shard
            .calls
            .active
            .get(&no)
            .is_some_and(|a| a.call.poll_timeout().is_some_and(|t| t <= now));
        if due {
            with_call(shard, no, |call, layer| call.handle_timeout(now, layer));
        }
    }
}

/// Ends every call (shutdown).
pub(super) fn hang_up_all(shard: &mut Shard, now: Instant) {
    let all: Vec<u64> = shard.calls.active.keys().copied().collect();
    for no in all {
        with_call(shard, no, |call, layer| call.hang_up(now, layer));
    }
}

/// Carries out what call `no` asked for, re-arms its timer, and forgets it when finished.
fn after(shard: &mut Shard, no: u64) {
    let Some(active) = shard.calls.active.get_mut(&no) else {
        return;
    };
    let mut dial_ended = None;
    while let Some(output) = active.call.poll_output() {
        match output {
            CallOutput::Track(key) => {
                shard.calls.by_txn.insert(key, no);
            }
            CallOutput::Media(plan) => {
                if let Some(media) = &active.media {
                    media.apply(plan);
                }
            }
            CallOutput::Record(record) => write_cdr(&shard.ctx.cdrs, record),
            CallOutput::DialEnded(end) => dial_ended = Some(end),
        }
    }

    if active.call.is_finished() {
        if let Some(active) = shard.calls.active.remove(&no) {
            let call = &active.call;
            shard.calls.by_call_id.remove(call.caller_call_id());
            shard.calls.by_call_id.remove(call.callee_call_id());
            shard.calls.by_invite.remove(call.invite_key());
            metrics::gauge!("pbx_calls_active").decrement(1.0);
            // Dropping the media session stops its relay and frees its ports.
        }
        return;
    }
    if let Some(at) = active.call.poll_timeout() {
        shard.calls.deadlines.push(Reverse((at, no)));
    }
    if let Some(end) = dial_ended {
        // The dialplan goes on with the dial's outcome (its on_busy, on_no_answer...).
        super::dialing::dial_ended(shard, Instant::now(), no, end);
    }
}

fn write_cdr(writer: &super::cdr_writer::CdrWriter, record: CallRecord) {
    metrics::counter!("pbx_calls_total", "disposition" => record.disposition.as_str()).increment(1);
    let (now_i, now_u) = (Instant::now(), unix_secs_now());
    let unix = |at: Instant| now_u.saturating_sub(now_i.saturating_duration_since(at).as_secs());
    let cdr = NewCdr {
        call_id: record.call_id.clone(),
        caller: record.caller.clone(),
        called: record.called.clone(),
        started_at: unix(record.started),
        answered_at: record.answered.map(unix),
        ended_at: unix(record.ended),
        duration_secs: record.duration_secs(),
        disposition: record.disposition.as_str().to_string(),
        hangup_cause: record.hangup_cause.clone(),
        hangup_side: record.hangup_side.as_str().to_string(),
        codec: record.codec.clone(),
        caller_encrypted: record.caller_encrypted,
        callee_encrypted: record.callee_encrypted,
    };
    writer.write(cdr);
}

fn unix_secs_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
