//! Runs a call's dialplan: each action the plan returns is carried out on the call (ring
//! devices, refuse, look something up over HTTP) and its result fed back, until the call is
//! answered or ended. The call machine waits meanwhile, so the caller can still CANCEL.

use super::ShardInput;
use super::calls::{devices_of, ensure_media, with_call};
use super::shard::Shard;
use pbx_calls::{DialEnd, Disposition};
use pbx_dialplan::{Action, DialOutcome, Execution, StepResult, Target};
use pbx_sip::status::StatusCode;
use std::time::Instant;

/// The most actions run in one go before the call rings or ends (the plan itself cuts `goto`
/// loops that never reach an action).
const MAX_ACTIONS: usize = 100;

/// A call's place in its dialplan.
pub(crate) struct PlanState {
    /// `None` while an HTTP lookup is out.
    execution: Option<Execution>,
    /// How the last dial ended: what the caller gets if the plan ends without another word.
    last_end: Option<DialEnd>,
}

impl PlanState {
    pub fn new(execution: Execution) -> PlanState {
        PlanState {
            execution: Some(execution),
            last_end: None,
        }
    }
}

/// A round of ringing ended without an answer: the plan takes its branch.
pub(super) fn dial_ended(shard: &mut Shard, now: Instant, no: u64, end: DialEnd) {
    let outcome = match end.outcome {
        pbx_calls::DialOutcome::Busy => DialOutcome::Busy,
        pbx_calls::DialOutcome::NoAnswer => DialOutcome::NoAnswer,
        pbx_calls::DialOutcome::Unavailable => DialOutcome::Unavailable,
    };
    match shard
        .calls
        .active
        .get_mut(&no)
        .and_then(|a| a.plan.as_mut())
    {
        Some(plan) => plan.last_end = Some(end),
        None => {
            return with_call(shard, no, |call, layer| call.finish_dial(now, layer, &end));
        }
    }
    drive(shard, now, no, Some(StepResult::Dial(outcome)));
}

/// Runs call `no`'s plan from where it stands, `input` being the result of its last action.
pub(super) fn drive(shard: &mut Shard, now: Instant, no: u64, mut input: Option<StepResult>) {
    let Some(active) = shard.calls.active.get_mut(&no) else {
        return;
    };
    if !active.call.is_pending() {
        return; // cancelled or ended while the plan was busy
    }
    let Some(plan) = active.plan.as_mut() else {
        return;
    };
    let Some(mut execution) = plan.execution.take() else {
        return;
    };
    let ctx = shard.ctx.clone();
    let directory = |number: &str| ctx.credentials.knows(number);
    for _ in 0..MAX_ACTIONS {
        let action = execution.next(&directory, input.take());
        match action {
            Action::Answer => input = Some(StepResult::Done),
            Action::Dial {
                targets,
                timeout,
                caller_name,
            } => {
                // No trunks yet: only extensions can be rung.
                let numbers: Vec<String> = targets
                    .iter()
                    .filter_map(|t| match t {
                        Target::Extension(n) => Some(n.clone()),
                        Target::External(_) => None,
                    })
                    .collect();
                let devices = devices_of(&ctx, &numbers);
                if devices.is_empty() {
                    input = Some(StepResult::Dial(DialOutcome::Unavailable));
                    continue;
                }
                let policy = numbers
                    .first()
                    .and_then(|n| ctx.credentials.cached(n, now).flatten())
                    .map_or_else(|| "optional".to_string(), |c| c.media_encryption.clone());
                put_back(shard, no, execution);
                if let Err(error) = ensure_media(shard, no, &devices, &policy) {
                    tracing::warn!(%error, "no media ports for a call");
                    return refuse(shard, now, no, 503, "no media ports");
                }
                let name = Some(caller_name).filter(|n| !n.is_empty());
                return with_call(shard, no, |call, layer| {
                    call.ring(now, layer, devices, timeout, name);
                });
            }
            Action::HttpLookup(request) => {
                let own = shard.own.clone();
                // Kept for when the answer comes back (`ShardInput::PlanStep`).
                put_back(shard, no, execution);
                tokio::spawn(async move {
                    let outcome = super::lookup::fetch(&request).await;
                    if let pbx_dialplan::HttpOutcome::Failed(why) = &outcome {
                        tracing::info!(url = %request.url, %why, "http_lookup failed");
                    }
                    let _ = own
                        .send(ShardInput::PlanStep(no, StepResult::Http(outcome)))
                        .await;
                });
                return;
            }
            // Context and rule names stay in the log and the CDR: the caller gets the
            // plain phrase (docs/admin-guide.md, "What callers are told").
            Action::Refused { status, reason } => {
                tracing::info!(call = %call_id(shard, no), %reason, "call refused by the dialplan");
                return refuse(shard, now, no, status, &reason);
            }
            Action::NoRoute { status, reason } => {
                tracing::info!(call = %call_id(shard, no), %reason, "no dialplan rule for the call");
                return refuse(shard, now, no, status, &reason);
            }
            Action::Failed { status, reason } => {
                tracing::warn!(call = %call_id(shard, no), %reason, "the dialplan failed");
                return refuse(shard, now, no, status, &reason);
            }
            // The admin wrote this phrase for the caller.
            Action::Hangup { status, reason } => {
                return finish(shard, now, no, status, &reason);
            }
            Action::End => return end_after_dial(shard, now, no, None),
            Action::Voicemail { .. } => {
                return end_after_dial(shard, now, no, Some("voicemail is not available yet"));
            }
            Action::VoicemailMenu { .. } => {
                return end_after_dial(
                    shard,
                    now,
                    no,
                    Some("the voicemail menu is not available yet"),
                );
            }
            Action::Playback { .. } | Action::Menu { .. } => {
                return end_after_dial(
                    shard,
                    now,
                    no,
                    Some("prompts and menus are not available yet"),
                );
            }
            Action::Echo => {
                return end_after_dial(shard, now, no, Some("the echo test is not available yet"));
            }
        }
    }
    tracing::warn!(call = %call_id(shard, no), "the dialplan did not decide");
    refuse(shard, now, no, 500, "the dialplan did not decide");
}

/// The plan ends the call with `status` and the phrase the admin wrote.
fn finish(shard: &mut Shard, now: Instant, no: u64, status: u16, reason: &str) {
    with_call(shard, no, |call, layer| {
        call.finish(now, layer, StatusCode(status), reason, Disposition::Failed);
    });
}

/// The call ends with `status`'s plain phrase; `detail` goes to the CDR only.
fn refuse(shard: &mut Shard, now: Instant, no: u64, status: u16, detail: &str) {
    with_call(shard, no, |call, layer| {
        call.refuse(now, layer, StatusCode(status), detail, Disposition::Failed);
    });
}

/// The caller's Call-ID of call `no`, for log lines.
fn call_id(shard: &Shard, no: u64) -> String {
    shard
        .calls
        .active
        .get(&no)
        .map(|a| a.call.caller_call_id().to_string())
        .unwrap_or_default()
}

/// The plan has nothing more the PBX can do: after a failed dial the caller gets that dial's
/// answer (486 busy, 480...) and the CDR its disposition; otherwise 480, saying `why` when
/// a step could not run.
fn end_after_dial(shard: &mut Shard, now: Instant, no: u64, why: Option<&str>) {
    let last = shard
        .calls
        .active
        .get(&no)
        .and_then(|a| a.plan.as_ref())
        .and_then(|p| p.last_end.clone());
    with_call(shard, no, |call, layer| match last {
        Some(end) => call.finish_dial(now, layer, &end),
        None => {
            let reason = match why {
                None => "Temporarily Unavailable".to_string(),
                Some(why) => format!("Temporarily Unavailable ({why})"),
            };
            call.finish(
                now,
                layer,
                StatusCode::TEMPORARILY_UNAVAILABLE,
                &reason,
                Disposition::Failed,
            );
        }
    });
}

fn put_back(shard: &mut Shard, no: u64, execution: Execution) {
    if let Some(plan) = shard
        .calls
        .active
        .get_mut(&no)
        .and_then(|a| a.plan.as_mut())
    {
        plan.execution = Some(execution);
    }
}
