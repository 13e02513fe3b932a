//! The shard's calls: an authenticated INVITE becomes a [`pbx_calls::Call`] routed by its
//! plan (the dialplan, or the built-in one without it: `dialing.rs`); its messages,
//! transaction events, timers and media events are routed to it here, and what it asks for
//! (media plans, CDRs) becomes the engine's outputs.

pub(crate) mod follow_up;
pub(crate) mod ring;
pub(crate) mod table;

use super::application::app::App;
use super::caller::Caller;
use super::dialing::plan::PlanState;
use super::io::MediaEvent;
use super::io::{CallState, MediaPorts, Now, Output};
use super::location::BindingPeer;
use super::state::Engine;
use crate::peer::Peer;
use follow_up::FollowUp;
use pbx_calls::{
    Call, CallConfig, CallOutput, CallRecord, CallSetup, Device, Endpoint, MediaSetup, Route,
};
use pbx_dialplan::{Action, CallContext};
use pbx_media::sdp::{Encryption, LocalEndpoint};
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionEvent, TransactionKey, TransactionLayer};
use pbx_sip::uri::Uri;
use pbx_store_types::NewCdr;
use ring::{PendingRing, TrunkRing};
use std::cmp::Reverse;
use table::{Active, Incoming, Media};

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The plan calls out through a trunk: its leg, the trunk's other addresses, and its
/// channel (held by the call from now on).
pub(super) fn trunk_ring(
    engine: &mut Engine,
    no: u64,
    attempt: crate::trunk::outbound::Attempt,
) -> (TrunkRing, Vec<Peer>) {
    let crate::trunk::outbound::Attempt {
        trunk,
        number,
        peer,
        others,
        contact,
        from,
        to,
        headers,
        setup_timeout,
        channel,
    } = attempt;
    if let Some(active) = engine.calls.active.get_mut(&no) {
        active.out_channel = Some(channel);
    }
    let ring = TrunkRing {
        trunk,
        number,
        peer,
        contact,
        from,
        to,
        headers,
        setup_timeout,
    };
    (ring, others)
}

/// Rings the trunk leg `ring` for at most `timeout`.
pub(super) fn ring_trunk(
    engine: &mut Engine,
    now: Now,
    no: u64,
    ring: TrunkRing,
    timeout: Duration,
    caller_name: Option<String>,
) {
    let pending = PendingRing {
        devices: Vec::new(),
        timeout,
        caller_name,
        callee_policy: ring.trunk.media_encryption.clone(),
        trunk: Some(Box::new(ring)),
    };
    ring_pending(engine, now, no, pending);
}

/// An INVITE from `caller` (an authenticated extension or a recognised trunk): its plan
/// decides where it goes.
pub(super) fn start(
    engine: &mut Engine,
    now: Now,
    key: TransactionKey,
    request: Request,
    peer: Peer,
    caller: Caller,
) {
    // RFC 3261 §8.2.2.3: we implement no extension a caller may require (100rel included).
    if let Some(required) = request.headers.get_str(&HeaderName::REQUIRE) {
        let required = required.to_string();
        let mut answer =
            engine.response_with_reason(&request, StatusCode::BAD_EXTENSION, "Bad Extension");
        answer.headers.push(HeaderName::UNSUPPORTED, required);
        return engine.respond(now, &key, answer);
    }
    let called = caller.called(&request);
    let plan = match engine.ctx.plan.current() {
        Some(plan) => {
            let context = CallContext {
                caller: caller.number(&request),
                // The extension's configured name, else what its phone or the trunk
                // presented (see `Caller::originator`).
                caller_name: caller
                    .originator(&request)
                    .name()
                    .map(str::to_owned)
                    .unwrap_or_default(),
                // `pbx extension set --context`, or the trunk's, overrides `members`.
                caller_context: caller.context(),
                dialed: called,
                now: now.timestamp(),
            };
            PlanState::dialplan(plan.route(&context))
        }
        None => PlanState::builtin(called),
    };
    let incoming = Incoming {
        key,
        request,
        peer,
        caller,
        plan,
    };
    if !engine.knows_local(&incoming.peer) {
        // The caller's leg needs this host's address toward it: asked once, then cached.
        engine.calls.parked.push(incoming);
        return;
    }
    begin_call(engine, now, incoming);
}

/// Every live device of these extensions: its Contact and the flow it registered from.
pub(super) fn devices_of(engine: &Engine, now: Now, numbers: &[String]) -> Vec<(Uri, Peer)> {
    numbers
        .iter()
        .flat_map(|number| engine.ctx.location.lookup(number, now.unix()))
        .map(|registration| (registration.binding.contact.clone(), registration.peer()))
        .collect()
}

/// Starts the call machine, waiting for its plan, then runs the plan (the call exists while
/// its plan runs, so the caller may CANCEL an HTTP lookup).
fn begin_call(engine: &mut Engine, now: Now, incoming: Incoming) {
    let Incoming {
        key,
        request,
        peer,
        caller,
        plan,
    } = incoming;
    let caller_endpoint = engine.endpoint(&peer);
    let no = engine.calls.next;
    engine.calls.next += 1;
    let prefix = engine.call_id_prefix();
    let callee_call_id = pbx_calls::ids::call_id(&prefix, &mut engine.rng);
    let caller_call_id = request.headers.call_id().unwrap_or_default().to_string();
    let originator = caller.originator(&request);
    let caller_number = originator.number().to_string();
    let called = caller.called(&request);
    let setup = CallSetup {
        invite_key: key.clone(),
        invite: request,
        caller: caller_endpoint,
        originator: originator.clone(),
        called_number: called.clone(),
        domain: engine.ctx.domain.clone(),
        callee_call_id: callee_call_id.clone(),
        route: Route::Wait,
        media: None,
        plan_continues: true,
        rng: engine.call_rng(),
    };
    let config = CallConfig {
        user_agent: engine.ctx.user_agent.clone(),
        ..CallConfig::default()
    };
    tracing::info!(
        call = %caller_call_id,
        caller = %caller_number,
        trunk = caller.trunk().map(tracing::field::display),
        callee = %called,
        source = %peer.remote,
        transport = %peer.kind,
        "call started"
    );
    engine.push(Output::CallState(CallState::Started {
        call: no,
        call_id: caller_call_id.clone(),
        caller: caller_number,
        called: called.clone(),
    }));
    let mut call = Call::start(now.at, &mut engine.layer, setup, config);
    if let Some(dtmf) = caller.dtmf() {
        call.set_dtmf_mode(pbx_media::Side::Caller, dtmf);
    }
    metrics::gauge!("pbx_calls_active").increment(1.0);
    let calls = &mut engine.calls;
    calls.by_call_id.insert(caller_call_id, no);
    calls.by_call_id.insert(callee_call_id, no);
    calls.by_invite.insert(key, no);
    calls.active.insert(
        no,
        Active {
            call,
            media: Media::None,
            plan,
            caller_peer: peer,
            originator,
            caller_did: caller.did(),
            caller_policy: caller.media_encryption(),
            ring: None,
            app: None,
            answer_then: None,
            answer_shown: false,
            _channel: caller.into_channel(),
            out_channel: None,
        },
    );
    after(engine, now, no);
    engine.calls.follow(FollowUp::Drive(no, None));
}

/// The plan rings these devices: once the call has relay ports and the local address
/// toward every device is known.
pub(super) fn ring(engine: &mut Engine, now: Now, no: u64, ring: PendingRing) {
    ring_pending(engine, now, no, ring);
}

fn ring_pending(engine: &mut Engine, now: Now, no: u64, ring: PendingRing) {
    for (_, peer) in &ring.devices {
        engine.knows_local(peer);
    }
    if let Some(trunk) = &ring.trunk {
        engine.knows_local(&trunk.peer);
    }
    let Some(active) = engine.calls.active.get_mut(&no) else {
        return;
    };
    active.ring = Some(ring);
    if active.media == Media::None && !active.call.has_media() {
        active.media = Media::Requested;
        engine.push(Output::AllocateMedia { call: no });
    }
    try_ring(engine, now, no);
}

/// Starts call `no`'s pending round of ringing if nothing is missing any more.
fn try_ring(engine: &mut Engine, now: Now, no: u64) {
    let Some(active) = engine.calls.active.get(&no) else {
        return;
    };
    let Some(ring) = &active.ring else {
        return;
    };
    let resolved = |peer: &Peer| {
        !peer.local.ip().is_unspecified()
            || matches!(engine.local_toward.get(&peer.remote.ip()), Some(Some(_)))
    };
    let ports = match active.media {
        Media::Ready(ports) => Some(ports),
        _ => None,
    };
    let ready = (ports.is_some() || active.call.has_media())
        && resolved(&active.caller_peer)
        && ring.devices.iter().all(|(_, peer)| resolved(peer))
        && ring.trunk.as_ref().is_none_or(|t| resolved(&t.peer));
    if !ready {
        return;
    }
    let Some(active) = engine.calls.active.get_mut(&no) else {
        return;
    };
    let Some(ring) = active.ring.take() else {
        return;
    };
    let caller_peer = active.caller_peer.clone();
    let caller_policy = active.caller_policy.clone();
    let mut devices: Vec<Device<Peer>> = ring
        .devices
        .iter()
        .map(|(contact, peer)| Device {
            contact: contact.clone(),
            endpoint: engine.endpoint(peer),
        })
        .collect();
    let callee_dtmf = ring
        .trunk
        .as_ref()
        .map(|t| t.trunk.dtmf)
        .unwrap_or_default();
    let trunk_leg = ring.trunk.map(|t| {
        let device = Device {
            contact: t.contact,
            endpoint: engine.endpoint(&t.peer),
        };
        // The trunk's leg decides the callee side's address in SDP.
        devices.push(device.clone());
        pbx_calls::TrunkLeg {
            device,
            trunk: t.trunk.name.clone(),
            number: t.number,
            from: t.from,
            to: t.to,
            headers: t.headers,
            credentials: Some(pbx_calls::TrunkCredentials {
                username: t.trunk.outbound.username.clone(),
                password: t.trunk.outbound.password.clone(),
            })
            .filter(|c| !c.username.is_empty()),
            setup_timeout: t.setup_timeout,
            codecs: t.trunk.outbound.codecs.clone(),
        }
    });
    if let Some(ports) = ports.filter(|_| !active_has_media(engine, no)) {
        let setup = media_setup(
            engine,
            &caller_peer,
            &devices,
            ports,
            &caller_policy,
            &ring.callee_policy,
        );
        if let Some(active) = engine.calls.active.get_mut(&no) {
            active.call.set_media(setup);
        }
    }
    with_call(engine, now, no, |call, layer| match trunk_leg {
        Some(leg) => {
            call.set_dtmf_mode(pbx_media::Side::Callee, callee_dtmf);
            call.ring_trunk(now.at, layer, leg, ring.timeout, ring.caller_name)
        }
        None => call.ring(now.at, layer, devices, ring.timeout, ring.caller_name),
    });
}

fn active_has_media(engine: &Engine, no: u64) -> bool {
    engine
        .calls
        .active
        .get(&no)
        .is_some_and(|a| a.call.has_media())
}

/// The shell's answer to [`Output::AllocateMedia`].
pub(super) fn media_allocated(
    engine: &mut Engine,
    now: Now,
    no: u64,
    ports: Result<MediaPorts, String>,
) {
    let Some(active) = engine.calls.active.get_mut(&no) else {
        // The call ended meanwhile.
        if ports.is_ok() {
            engine.push(Output::ReleaseMedia { call: no });
        }
        return;
    };
    match ports {
        Ok(ports) => {
            active.media = Media::Ready(ports);
            try_ring(engine, now, no);
            try_answer(engine, now, no);
        }
        Err(error) => {
            active.media = Media::None;
            active.ring = None;
            active.answer_then = None;
            tracing::warn!(%error, "no media ports for a call");
            engine.calls.follow(FollowUp::Refuse {
                call: no,
                status: 503,
                detail: "no media ports",
            });
        }
    }
}

/// The shell's answer to [`Output::ResolveLocalAddress`]: cached, then every call waiting
/// for it goes on.
pub(super) fn local_address(engine: &mut Engine, now: Now, toward: IpAddr, local: Option<IpAddr>) {
    // No route: the wildcard stays, as before (the domain stands in where it can).
    let unspecified = if toward.is_ipv4() {
        IpAddr::from([0, 0, 0, 0])
    } else {
        IpAddr::from([0u16; 8])
    };
    engine
        .local_toward
        .insert(toward, Some(local.unwrap_or(unspecified)));
    let parked = std::mem::take(&mut engine.calls.parked);
    for incoming in parked {
        if engine.knows_local(&incoming.peer) {
            begin_call(engine, now, incoming);
        } else {
            engine.calls.parked.push(incoming);
        }
    }
    let waiting: Vec<u64> = engine
        .calls
        .active
        .iter()
        .filter(|(_, a)| a.ring.is_some())
        .map(|(no, _)| *no)
        .collect();
    for no in waiting {
        try_ring(engine, now, no);
    }
}

/// What each leg's SDP carries: the relay ports, the address the leg's signalling uses (or
/// `[rtp] public_ip`), and the encryption policies.
fn media_setup(
    engine: &mut Engine,
    caller_peer: &Peer,
    devices: &[Device<Peer>],
    ports: MediaPorts,
    caller_policy: &str,
    callee_policy: &str,
) -> MediaSetup {
    let caller_local = engine.endpoint(caller_peer).local.ip();
    let callee_local = devices
        .first()
        .map_or(caller_peer.local.ip(), |d| d.endpoint.local.ip());
    let public_ip = engine.ctx.public_ip;
    let media_bind = engine.ctx.media_bind;
    MediaSetup {
        caller: LocalEndpoint {
            ip: advertised(public_ip, media_bind, caller_local),
            rtp_port: ports.caller,
        },
        callee: LocalEndpoint {
            ip: advertised(public_ip, media_bind, callee_local),
            rtp_port: ports.callee,
        },
        caller_encryption: encryption(caller_policy),
        callee_encryption: encryption(callee_policy),
        allow_keys_in_clear: engine.ctx.sdes_over_insecure,
        session_id: rand::RngCore::next_u32(&mut engine.rng).into(),
        dtls_fingerprint: engine.ctx.dtls_fingerprint.clone(),
    }
}

/// The address written into SDP: `[rtp] public_ip`, else the one address media is bound to
/// (`[rtp] bind`), else the address the leg's signalling uses (already resolved from a
/// wildcard listener by [`Engine::endpoint`]).
fn advertised(public_ip: Option<IpAddr>, media_bind: Option<IpAddr>, local: IpAddr) -> IpAddr {
    public_ip.or(media_bind).unwrap_or(local)
}

fn encryption(policy: &str) -> Encryption {
    match policy {
        "required" => Encryption::Required,
        "off" => Encryption::Off,
        _ => Encryption::Optional,
    }
}

impl Engine {
    /// Whether the local address toward `peer` is known; asks the shell once when not.
    pub(super) fn knows_local(&mut self, peer: &Peer) -> bool {
        if !peer.local.ip().is_unspecified() {
            return true;
        }
        let toward = peer.remote.ip();
        match self.local_toward.get(&toward) {
            Some(Some(_)) => true,
            Some(None) => false,
            None => {
                self.local_toward.insert(toward, None);
                self.push(Output::ResolveLocalAddress { toward });
                false
            }
        }
    }

    /// A leg's endpoint: for a listener on `0.0.0.0` or `::`, Via, Contact and SDP must
    /// name a real address, the one the shell said routes toward the peer.
    pub(super) fn endpoint(&self, peer: &Peer) -> Endpoint<Peer> {
        let mut local = peer.local;
        if local.ip().is_unspecified()
            && let Some(Some(ip)) = self.local_toward.get(&peer.remote.ip())
        {
            local.set_ip(*ip);
        }
        Endpoint {
            peer: peer.clone(),
            reliable: peer.kind.is_reliable(),
            transport: peer.kind.via_token(),
            local,
            secure: peer.kind.is_secure(),
        }
    }
}

/// Runs `f` on call `no` with the shard's transaction layer, then carries out what the call
/// asked for.
pub(super) fn with_call(
    engine: &mut Engine,
    now: Now,
    no: u64,
    f: impl FnOnce(&mut Call<Peer>, &mut TransactionLayer<Peer>),
) {
    if let Some(active) = engine.calls.active.get_mut(&no) {
        f(&mut active.call, &mut engine.layer);
    }
    after(engine, now, no);
}

/// An in-dialog request (not ACK or CANCEL) for call `no`.
pub(super) fn request(
    engine: &mut Engine,
    now: Now,
    no: u64,
    key: TransactionKey,
    request: Request,
) {
    with_call(engine, now, no, |call, layer| {
        call.handle_request(now.at, layer, key, request)
    });
}

pub(super) fn ack(engine: &mut Engine, now: Now, no: u64, request: &Request) {
    with_call(engine, now, no, |call, layer| {
        call.handle_ack(now.at, layer, request)
    });
}

pub(super) fn cancel(
    engine: &mut Engine,
    now: Now,
    no: u64,
    key: TransactionKey,
    request: Request,
) {
    with_call(engine, now, no, |call, layer| {
        call.handle_cancel(now.at, layer, key, request)
    });
}

pub(super) fn event(
    engine: &mut Engine,
    now: Now,
    no: u64,
    key: &TransactionKey,
    event: TransactionEvent,
) {
    if matches!(event, TransactionEvent::Terminated) {
        engine.calls.by_txn.remove(key);
    }
    with_call(engine, now, no, |call, layer| {
        call.handle_event(now.at, layer, key, event)
    });
}

pub(super) fn media(engine: &mut Engine, now: Now, no: u64, event: MediaEvent) {
    match event {
        MediaEvent::Timeout | MediaEvent::Failed => with_call(engine, now, no, |call, layer| {
            tracing::info!(
                call = call.caller_call_id(),
                ?event,
                "no media: ending the call"
            );
            call.media_timeout(now.at, layer);
        }),
    }
}

/// The plan wants call `no` answered by the PBX, then `then` run: once the call has relay
/// ports.
pub(super) fn answer(engine: &mut Engine, now: Now, no: u64, then: Action) {
    let Some(active) = engine.calls.active.get_mut(&no) else {
        return;
    };
    active.answer_then = Some(then);
    if active.media == Media::None && !active.call.has_media() {
        active.media = Media::Requested;
        engine.push(Output::AllocateMedia { call: no });
    }
    try_answer(engine, now, no);
}

/// Answers call `no` if the plan asked for it and its ports are there.
fn try_answer(engine: &mut Engine, now: Now, no: u64) {
    let Some(active) = engine.calls.active.get_mut(&no) else {
        return;
    };
    let Media::Ready(ports) = active.media else {
        return;
    };
    let Some(then) = active.answer_then.take() else {
        return;
    };
    if !active.call.has_media() {
        let (peer, policy) = (active.caller_peer.clone(), active.caller_policy.clone());
        let setup = media_setup(engine, &peer, &[], ports, &policy, "optional");
        if let Some(active) = engine.calls.active.get_mut(&no) {
            active.call.set_media(setup);
        }
    }
    let mut answered = None;
    with_call(engine, now, no, |call, layer| {
        answered = Some(call.answer(now.at, layer));
    });
    match answered {
        Some(Ok(local)) => engine.calls.follow(FollowUp::Answered(no, local, then)),
        // The caller has its final answer (488...) and the CDR the reason.
        Some(Err(error)) => tracing::info!(call = no, %error, "the PBX could not answer"),
        None => {}
    }
}

/// The application state of call `no`, when the PBX answered it.
pub(super) fn app_of(engine: &Engine, no: u64) -> Option<&App> {
    engine.calls.active.get(&no)?.app.as_ref()
}

pub(super) fn app_mut(engine: &mut Engine, no: u64) -> Option<&mut App> {
    engine.calls.active.get_mut(&no)?.app.as_mut()
}

/// The source address call `no`'s caller sends from (for the credential gate).
pub(super) fn caller_ip(engine: &Engine, no: u64) -> Option<IpAddr> {
    Some(engine.calls.active.get(&no)?.caller_peer.remote.ip())
}

pub(super) fn active_mut(engine: &mut Engine, no: u64) -> Option<&mut Active> {
    engine.calls.active.get_mut(&no)
}

/// Puts call `no`'s application timer in the heap.
pub(super) fn arm_app(engine: &mut Engine, no: u64) {
    if let Some(at) = app_of(engine, no).and_then(App::deadline) {
        engine.calls.app_deadlines.push(Reverse((at, no)));
    }
}

/// Call `no`'s machine timer came due ([`table::Calls::pop_due_call`]): it runs if the
/// call still wants it now.
pub(super) fn timeout(engine: &mut Engine, now: Now, no: u64) {
    let due = engine
        .calls
        .active
        .get(&no)
        .is_some_and(|a| a.call.poll_timeout().is_some_and(|t| t <= now.at));
    if due {
        with_call(engine, now, no, |call, layer| {
            call.handle_timeout(now.at, layer)
        });
    }
}

/// Ends call `no` because an admin asked (the web admin's hang-up button).
pub(super) fn hang_up(engine: &mut Engine, now: Now, no: u64) {
    if engine.calls.active.contains_key(&no) {
        tracing::info!(call = no, "call ended by an admin");
        with_call(engine, now, no, |call, layer| call.hang_up(now.at, layer));
    }
}

/// Ends every call (shutdown).
pub(super) fn hang_up_all(engine: &mut Engine, now: Now) {
    let all: Vec<u64> = engine.calls.active.keys().copied().collect();
    for no in all {
        with_call(engine, now, no, |call, layer| call.hang_up(now.at, layer));
    }
}

/// Ends every call of a failed shard: the CDRs say the PBX ended them on an internal error.
pub(super) fn abandon_all(engine: &mut Engine, now: Now) {
    let all: Vec<u64> = engine.calls.active.keys().copied().collect();
    for no in all {
        with_call(engine, now, no, |call, layer| {
            call.abort(now.at, layer, "internal error")
        });
    }
}

/// Carries out what call `no` asked for, re-arms its timer, and forgets it when finished.
fn after(engine: &mut Engine, now: Now, no: u64) {
    let Some(active) = engine.calls.active.get_mut(&no) else {
        return;
    };
    let mut dial_ended = None;
    let mut keys = Vec::new();
    let mut connected = false;
    while let Some(output) = active.call.poll_output() {
        match output {
            CallOutput::Track(key) => {
                engine.calls.by_txn.insert(key, no);
            }
            CallOutput::Media(plan) => {
                if matches!(active.media, Media::Ready(_)) {
                    engine
                        .outputs
                        .push_back(Output::ApplyMedia { call: no, plan });
                }
            }
            CallOutput::Record(record) => {
                let cdr = cdr(now, record);
                engine.outputs.push_back(Output::WriteCdr(cdr));
                let ended = CallState::Ended { call: no };
                engine.outputs.push_back(Output::CallState(ended));
            }
            CallOutput::DialEnded(end) => dial_ended = Some(end),
            CallOutput::Dtmf(digit) => keys.push(digit),
            CallOutput::DtmfMedia(media) => {
                if matches!(active.media, Media::Ready(_)) {
                    engine
                        .outputs
                        .push_back(Output::DtmfMedia { call: no, media });
                }
            }
            CallOutput::Connected => connected = true,
        }
    }

    if active.call.is_established() && !active.answer_shown {
        active.answer_shown = true;
        let answered = CallState::Answered { call: no };
        engine.outputs.push_back(Output::CallState(answered));
    }
    if active.call.is_finished() {
        if let Some(active) = engine.calls.active.remove(&no) {
            engine.push(Output::CallState(CallState::Ended { call: no }));
            let call = &active.call;
            engine.calls.by_call_id.remove(call.caller_call_id());
            engine.calls.by_call_id.remove(call.callee_call_id());
            engine.calls.by_invite.remove(call.invite_key());
            metrics::gauge!("pbx_calls_active").decrement(1.0);
            if active.media != Media::None {
                // Its relay stops and its ports go back to the pool.
                engine.push(Output::ReleaseMedia { call: no });
            }
        }
        return;
    }
    if let Some(at) = active.call.poll_timeout() {
        engine.calls.deadlines.push(Reverse((at, no)));
    }
    if let Some(end) = dial_ended {
        // The plan goes on with the dial's outcome (its on_busy, on_no_answer...).
        engine.calls.follow(FollowUp::DialEnded(no, end));
    }
    if connected {
        engine.calls.follow(FollowUp::Connected(no));
    }
    for digit in keys {
        engine.calls.follow(FollowUp::Key(no, digit));
    }
}

/// The record of a finished call, its instants turned into Unix seconds by `now`.
fn cdr(now: Now, record: CallRecord) -> NewCdr {
    metrics::counter!("pbx_calls_total", "disposition" => record.disposition.as_str()).increment(1);
    let unix = |at: Instant| {
        now.unix()
            .saturating_sub(now.at.saturating_duration_since(at).as_secs())
    };
    NewCdr {
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
        trunk: record.trunk.clone().unwrap_or_default(),
    }
}
