//! Runs a call's plan: each action the plan returns is carried out on the call (ring
//! devices, refuse, look something up over HTTP) and its result fed back, until the call is
//! answered or ended. The call machine waits meanwhile, so the caller can still CANCEL.
//!
//! There is one path: without a dialplan, the built-in plan ([`Builtin`]) rings the dialed
//! extension and answers 404 for a number that is none.

pub(crate) mod plan;

use super::application::app::is_application;
use super::application::prompt::ringback;
use super::calls::follow_up::FollowUp;
use super::calls::ring::PendingRing;
use super::calls::{devices_of, with_call};
use super::credentials::Lookup;
use super::io::{Now, Output};
use super::state::{Engine, Waiting};
use pbx_calls::{DialEnd, Disposition};
use pbx_dialplan::{Action, DialOutcome, StepResult, Target};
use pbx_sip::status::StatusCode;
use plan::{Builtin, BuiltinStep, Steps, TrunkDial};

/// The most actions run in one go before the call rings or ends (the plan itself cuts `goto`
/// loops that never reach an action).
const MAX_ACTIONS: usize = 100;

impl Builtin {
    fn next(&mut self, engine: &Engine, now: Now) -> BuiltinStep {
        if self.dialed {
            // Whatever the dial's outcome, the caller gets its answer.
            return BuiltinStep::Act(Action::End);
        }
        let callee = self
            .callee
            .clone()
            .or_else(|| engine.ctx.credentials.cached(&self.called, now.at));
        match callee {
            None => BuiltinStep::LoadCallee,
            Some(None) => BuiltinStep::Act(Action::Hangup {
                status: StatusCode::NOT_FOUND.code(),
                reason: "Not Found (no such number)".into(),
            }),
            Some(Some(callee)) => {
                self.dialed = true;
                BuiltinStep::Act(Action::Dial {
                    targets: vec![Target::Extension(callee.number.clone())],
                    timeout: engine.ctx.ring_timeout,
                    caller_name: String::new(),
                })
            }
        }
    }
}

/// A round of ringing ended without an answer: the plan takes its branch.
pub(super) fn dial_ended(engine: &mut Engine, now: Now, no: u64, end: DialEnd) {
    let mut outcome = match end.outcome {
        pbx_calls::DialOutcome::Busy => DialOutcome::Busy,
        pbx_calls::DialOutcome::NoAnswer => DialOutcome::NoAnswer,
        pbx_calls::DialOutcome::Unavailable => DialOutcome::Unavailable,
    };
    match engine.calls.active.get_mut(&no) {
        Some(active) => {
            if let Some(mut dial) = active.plan.trunk_dial.take() {
                let trunk = dial.ring.trunk.name.clone();
                if crate::trunk::outbound::next_address(&end) && !dial.others.is_empty() {
                    // RFC 3263 §4.3: the same trunk at its next address, the channel kept.
                    let mut ring = dial.ring.clone();
                    ring.peer = dial.others.remove(0);
                    tracing::info!(
                        call = active.call.caller_call_id(),
                        %trunk,
                        status = end.status.code(),
                        next = %ring.peer.remote,
                        "the trunk's address failed: trying its next address"
                    );
                    let (timeout, caller_name) = (dial.timeout, dial.caller_name.clone());
                    dial.ring = ring.clone();
                    active.plan.trunk_dial = Some(dial);
                    return super::calls::ring_trunk(engine, now, no, ring, timeout, caller_name);
                }
                // The trunk's channel is free again; its answer decides about failover.
                active.out_channel = None;
                outcome = crate::trunk::outbound::outcome(&end);
                if outcome == DialOutcome::Unavailable {
                    metrics::counter!("pbx_trunk_failures_total", "trunk" => trunk.clone())
                        .increment(1);
                }
                tracing::info!(
                    call = active.call.caller_call_id(),
                    %trunk,
                    status = end.status.code(),
                    outcome = outcome.as_str(),
                    "call through the trunk failed"
                );
            }
            active.plan.last_end = Some(end);
        }
        None => return,
    }
    drive(engine, now, no, Some(StepResult::Dial(outcome)));
}

/// The store's answer about the number a call routed by the built-in plan dialed.
pub(super) fn callee_loaded(
    engine: &mut Engine,
    now: Now,
    no: u64,
    lookup: Result<Lookup, String>,
) {
    let lookup = match lookup {
        Ok(lookup) => lookup,
        Err(error) => {
            tracing::error!(%error, "extension lookup failed");
            return finish(engine, now, no, 500, "Server Internal Error");
        }
    };
    if let Some(Steps::Builtin(builtin)) = engine
        .calls
        .active
        .get_mut(&no)
        .and_then(|a| a.plan.steps.as_mut())
    {
        builtin.callee = Some(lookup);
    }
    drive(engine, now, no, None);
}

/// Runs call `no`'s plan from where it stands, `input` being the result of its last action.
pub(super) fn drive(engine: &mut Engine, now: Now, no: u64, mut input: Option<StepResult>) {
    let Some(active) = engine.calls.active.get_mut(&no) else {
        return;
    };
    let answered = active.app.is_some();
    let live = active.call.is_pending() || (answered && active.call.is_established());
    if !live {
        return; // cancelled or ended while the plan was busy
    }
    let Some(mut steps) = active.plan.steps.take() else {
        return;
    };
    let ctx = engine.ctx.clone();
    let directory = |number: &str| ctx.credentials.knows(number);
    for _ in 0..MAX_ACTIONS {
        let action = match &mut steps {
            Steps::Dialplan(execution) => execution.next(&directory, input.take()),
            Steps::Builtin(builtin) => match builtin.next(engine, now) {
                BuiltinStep::Act(action) => action,
                BuiltinStep::LoadCallee => {
                    let user = builtin.called.clone();
                    put_back(engine, no, steps);
                    let id = engine.request_id();
                    engine.waiting.insert(id, Waiting::Callee(no));
                    engine.push(Output::LoadCredentials { id, user });
                    return;
                }
            },
        };
        match action {
            Action::Answer if answered => input = Some(StepResult::Done),
            action if is_application(&action) => {
                put_back(engine, no, steps);
                return engine.calls.follow(FollowUp::Run(no, action));
            }
            Action::Dial {
                targets,
                timeout,
                caller_name,
            } if targets.iter().any(|t| matches!(t, Target::Trunk { .. })) => {
                match trunk_attempt(engine, no, &targets) {
                    Ok(attempt) => {
                        put_back(engine, no, steps);
                        let caller_name = Some(caller_name).filter(|n| !n.is_empty());
                        let (ring, others) = super::calls::trunk_ring(engine, no, attempt);
                        if let Some(active) = engine.calls.active.get_mut(&no) {
                            active.plan.trunk_dial = Some(TrunkDial {
                                ring: ring.clone(),
                                others,
                                timeout,
                                caller_name: caller_name.clone(),
                            });
                        }
                        if answered {
                            ringback(engine, no);
                        }
                        return super::calls::ring_trunk(
                            engine,
                            now,
                            no,
                            ring,
                            timeout,
                            caller_name,
                        );
                    }
                    Err((end, outcome)) => {
                        if let Some(active) = engine.calls.active.get_mut(&no) {
                            active.plan.last_end = Some(end);
                        }
                        input = Some(StepResult::Dial(outcome));
                        continue;
                    }
                }
            }
            Action::Dial {
                targets,
                timeout,
                caller_name,
            } => {
                // Extensions are rung; an external number without a trunk cannot be.
                let numbers: Vec<String> = targets
                    .iter()
                    .filter_map(|t| match t {
                        Target::Extension(n) => Some(n.clone()),
                        Target::External(_) | Target::Trunk { .. } => None,
                    })
                    .collect();
                let devices = devices_of(engine, now, &numbers);
                let builtin = matches!(steps, Steps::Builtin(_));
                if devices.is_empty() && !builtin {
                    input = Some(StepResult::Dial(DialOutcome::Unavailable));
                    continue;
                }
                put_back(engine, no, steps);
                let caller_name = Some(caller_name).filter(|n| !n.is_empty());
                if devices.is_empty() {
                    // The call says why ("no device registered") and reports the round.
                    return with_call(engine, now, no, |call, layer| {
                        call.ring(now.at, layer, Vec::new(), timeout, caller_name);
                    });
                }
                // An extension rung by a dialplan that is not in the credentials table yet
                // (added a moment ago) gets the default policy.
                let callee_policy = numbers
                    .first()
                    .and_then(|n| ctx.credentials.cached(n, now.at).flatten())
                    .map_or_else(|| "optional".to_string(), |c| c.media_encryption.clone());
                let ring = PendingRing {
                    devices,
                    timeout,
                    caller_name,
                    callee_policy,
                    trunk: None,
                };
                if answered {
                    // The caller, answered by the PBX (an IVR choice), hears ringing until a
                    // device takes the call over.
                    ringback(engine, no);
                }
                return super::calls::ring(engine, now, no, ring);
            }
            Action::HttpLookup(request) => {
                // Kept for when the answer comes back (`Input::Http`).
                put_back(engine, no, steps);
                engine.push(Output::HttpLookup { call: no, request });
                return;
            }
            Action::DbLookup(request) => {
                put_back(engine, no, steps);
                engine.push(Output::DbLookup { call: no, request });
                return;
            }
            // Context and rule names stay in the log and the CDR: the caller gets the
            // plain phrase (docs/admin-guide.md, "What callers are told").
            Action::Refused { status, reason } => {
                tracing::info!(call = %call_id(engine, no), %reason, "call refused by the dialplan");
                return refuse(engine, now, no, status, &reason);
            }
            Action::NoRoute { status, reason } => {
                tracing::info!(call = %call_id(engine, no), %reason, "no dialplan rule for the call");
                return refuse(engine, now, no, status, &reason);
            }
            Action::Failed { status, reason } => {
                tracing::warn!(call = %call_id(engine, no), %reason, "the dialplan failed");
                return refuse(engine, now, no, status, &reason);
            }
            // The admin wrote this phrase for the caller.
            Action::Hangup { status, reason } => {
                return finish(engine, now, no, status, &reason);
            }
            Action::End => return end_after_dial(engine, now, no, None),
            // Handled above.
            Action::Answer
            | Action::Playback { .. }
            | Action::Menu { .. }
            | Action::Echo
            | Action::Voicemail { .. }
            | Action::VoicemailMenu { .. }
            | Action::Say { .. } => {}
        }
    }
    tracing::warn!(call = %call_id(engine, no), "the dialplan did not decide");
    refuse(engine, now, no, 500, "the dialplan did not decide");
}

/// The first trunk target of a dial that can be tried now (it exists, is not down, has a
/// free channel); else how the dial ended, as a trunk failure. A dial rings one trunk at a
/// time: list trunks with `strategy = "in_order"` for failover, extensions in a dial of their
/// own.
fn trunk_attempt(
    engine: &Engine,
    no: u64,
    targets: &[Target],
) -> Result<crate::trunk::outbound::Attempt, (DialEnd, DialOutcome)> {
    use crate::trunk::outbound::Skipped;
    let failed = DialOutcome::Unavailable;
    let Some(active) = engine.calls.active.get(&no) else {
        return Err((skipped_end(StatusCode::SERVICE_UNAVAILABLE), failed));
    };
    let call = active.call.caller_call_id().to_string();
    if targets.iter().any(|t| !matches!(t, Target::Trunk { .. })) {
        tracing::warn!(%call, "a dial with trunks rings only its first usable trunk: the other targets are left out");
    }
    let mut last = None;
    for target in targets {
        let Target::Trunk { trunk, number } = target else {
            continue;
        };
        let did = active.caller_did.as_deref();
        match crate::trunk::outbound::prepare(
            &engine.ctx.trunks,
            trunk,
            number,
            &active.originator,
            did,
        ) {
            Ok(attempt) => {
                metrics::counter!("pbx_trunk_calls_total", "trunk" => trunk.clone(), "direction" => "outbound")
                    .increment(1);
                tracing::info!(%call, %trunk, %number, "calling out through the trunk");
                return Ok(attempt);
            }
            Err(why @ Skipped::BadNumber(_)) => {
                // The number, not the trunk: no other trunk is tried.
                tracing::info!(%call, %trunk, %why, "trunk not called");
                let end = skipped_end(why.status());
                return Err((end, DialOutcome::Rejected));
            }
            Err(why) => {
                metrics::counter!("pbx_trunk_failures_total", "trunk" => trunk.clone())
                    .increment(1);
                tracing::info!(%call, %trunk, %why, "trunk skipped");
                last = Some(skipped_end(why.status()));
            }
        }
    }
    let end = last.unwrap_or_else(|| skipped_end(StatusCode::SERVICE_UNAVAILABLE));
    Err((end, failed))
}

/// A trunk that was not tried, as a dial's end (what the caller hears if nothing follows).
fn skipped_end(status: StatusCode) -> DialEnd {
    DialEnd {
        outcome: pbx_calls::DialOutcome::Unavailable,
        status,
        // The caller hears the plain phrase; the log says which trunk and why.
        reason: status.canonical_reason().to_string(),
        disposition: Disposition::Failed,
        side: pbx_calls::HangupSide::Pbx,
    }
}

/// Whether the PBX answered call `no` itself: the plan's last word is then a BYE.
fn answered(engine: &Engine, no: u64) -> bool {
    engine
        .calls
        .active
        .get(&no)
        .is_some_and(|a| a.app.is_some())
}

/// The plan ends the call with `status` and the phrase the admin wrote.
fn finish(engine: &mut Engine, now: Now, no: u64, status: u16, reason: &str) {
    if answered(engine, no) {
        return engine.calls.follow(FollowUp::HangUp(no));
    }
    with_call(engine, now, no, |call, layer| {
        call.finish(
            now.at,
            layer,
            StatusCode(status),
            reason,
            Disposition::Failed,
        );
    });
}

/// The call ends with `status`'s plain phrase; `detail` goes to the CDR only.
pub(super) fn refuse(engine: &mut Engine, now: Now, no: u64, status: u16, detail: &str) {
    if answered(engine, no) {
        return engine.calls.follow(FollowUp::HangUp(no));
    }
    with_call(engine, now, no, |call, layer| {
        call.refuse(
            now.at,
            layer,
            StatusCode(status),
            detail,
            Disposition::Failed,
        );
    });
}

/// The caller's Call-ID of call `no`, for log lines.
fn call_id(engine: &Engine, no: u64) -> String {
    engine
        .calls
        .active
        .get(&no)
        .map(|a| a.call.caller_call_id().to_string())
        .unwrap_or_default()
}

/// The plan has nothing more the PBX can do: after a failed dial the caller gets that dial's
/// answer (486 busy, 480...) and the CDR its disposition; otherwise 480, saying `why` when
/// a step could not run.
fn end_after_dial(engine: &mut Engine, now: Now, no: u64, why: Option<&str>) {
    if answered(engine, no) {
        if let Some(why) = why {
            tracing::info!(call = %call_id(engine, no), why, "hanging up");
        }
        return engine.calls.follow(FollowUp::HangUp(no));
    }
    let last = engine
        .calls
        .active
        .get(&no)
        .and_then(|a| a.plan.last_end.clone());
    with_call(engine, now, no, |call, layer| match last {
        Some(end) => call.finish_dial(now.at, layer, &end),
        None => {
            let reason = match why {
                None => "Temporarily Unavailable".to_string(),
                Some(why) => format!("Temporarily Unavailable ({why})"),
            };
            call.finish(
                now.at,
                layer,
                StatusCode::TEMPORARILY_UNAVAILABLE,
                &reason,
                Disposition::Failed,
            );
        }
    });
}

fn put_back(engine: &mut Engine, no: u64, steps: Steps) {
    if let Some(active) = engine.calls.active.get_mut(&no) {
        active.plan.steps = Some(steps);
    }
}
