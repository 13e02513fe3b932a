//! Calls the PBX answers itself: the dialplan's `answer`, `playback`, `menu`, `echo`,
//! `voicemail` and `voicemail_menu` steps run on the call's media session (the application seam of `pbx_calls::Call`).
//!
//! The engine decides and the shell plays: each step becomes an [`AppMedia`] command for the
//! call's media session (play these prompts, report the caller's keys, echo), and what the
//! session reports (a key, a prompt finished) comes back as [`Input::Session`] and moves the
//! step on. Keys sent as SIP INFO arrive from the call machine and count the same.
//!
//! [`Input::Session`]: super::io::Input::Session

pub(crate) mod app;
pub(crate) mod prompt;

use super::calls::{self, with_call};
use super::io::{AppMedia, Now, Output, Security, VoicemailRequest};
use super::state::Engine;
use super::voicemail::{Act, Caller, PinVerdict, Voicemail};
use crate::security::Admission;
use app::{App, Menu, Step};
use pbx_dialplan::{Action, StepResult};
use pbx_media::sdp::LocalMedia;
use pbx_media::session::Event;
use pbx_voicemail::{Sound, StoreAnswer};
pub use prompt::RINGBACK;
use prompt::{play, set_step};
use std::time::Duration;

/// Runs an application step of call `no`'s plan. A call not answered yet is answered first
/// (as Asterisk's `Playback` does), which may wait for the call's media ports.
pub(super) fn run(engine: &mut Engine, now: Now, no: u64, action: Action) {
    if calls::app_of(engine, no).is_none() {
        return calls::answer(engine, now, no, action);
    }
    start(engine, now, no, action);
}

/// The call was just answered: `then` is the step that asked for it.
pub(super) fn answered(engine: &mut Engine, now: Now, no: u64, local: LocalMedia, then: Action) {
    let ssrc = rand::RngCore::next_u32(&mut engine.rng);
    if let Some(active) = calls::active_mut(engine, no) {
        active.app = Some(App::new(local, ssrc));
    }
    tracing::info!(call = no, codec = local.voice.name(), "answered by the PBX");
    metrics::counter!("pbx_ivr_sessions_total").increment(1);
    start(engine, now, no, then);
}

/// Starts `action` on the answered call `no`.
fn start(engine: &mut Engine, now: Now, no: u64, action: Action) {
    match action {
        Action::Answer => super::dialing::drive(engine, now, no, Some(StepResult::Done)),
        Action::Playback { prompt } => {
            play(engine, no, vec![Sound::Prompt(prompt)]);
            set_step(engine, no, Step::Playing);
        }
        Action::Menu {
            prompt,
            max_digits,
            timeout,
        } => {
            detect(engine, no);
            play(engine, no, vec![Sound::Prompt(prompt)]);
            set_step(
                engine,
                no,
                Step::Menu(Menu {
                    digits: String::new(),
                    max_digits: max_digits.max(1),
                    timeout,
                    prompting: true,
                    deadline: None,
                }),
            );
        }
        Action::Echo => {
            let Some(app) = calls::app_of(engine, no) else {
                return;
            };
            let ssrc = app.ssrc;
            engine.push(Output::AppMedia {
                call: no,
                media: AppMedia::Echo { ssrc },
            });
            set_step(engine, no, Step::Echo);
        }
        Action::Say { kind, value } => {
            match super::say::sounds(kind, &value, &engine.ctx.voicemail.time_zone) {
                Some(sounds) => {
                    play(engine, no, sounds);
                    set_step(engine, no, Step::Playing);
                }
                None => {
                    tracing::info!(call = no, kind = kind.as_str(), %value, "say: not a value of that kind, skipped");
                    return super::dialing::drive(engine, now, no, Some(StepResult::Done));
                }
            }
        }
        Action::Voicemail { mailbox, greeting } => {
            let tag = tag(engine, now);
            let vm = match engine.calls.active.get(&no) {
                Some(active) => {
                    let caller = Caller {
                        number: active.originator.number(),
                        name: active.originator.name().unwrap_or_default(),
                    };
                    let settings = &engine.ctx.voicemail;
                    Voicemail::leave(settings, now, &mailbox, greeting, caller, &tag)
                }
                None => return,
            };
            tracing::info!(call = no, %mailbox, "voicemail: leaving a message");
            metrics::counter!("pbx_voicemail_sessions_total", "kind" => "leave").increment(1);
            return begin_voicemail(engine, now, no, vm);
        }
        Action::VoicemailMenu { mailbox } => {
            let tag = tag(engine, now);
            let vm = Voicemail::menu(&engine.ctx.voicemail, now, mailbox, &tag);
            metrics::counter!("pbx_voicemail_sessions_total", "kind" => "menu").increment(1);
            return begin_voicemail(engine, now, no, vm);
        }
        other => {
            // Not an application step: the plan's driver carries it out.
            tracing::debug!(call = no, action = ?other, "not an application step");
        }
    }
    calls::arm_app(engine, no);
}

/// A name for this call's recordings, unique on this host: the time and a random part.
fn tag(engine: &mut Engine, now: Now) -> String {
    let random: u32 = rand::Rng::random(&mut engine.rng);
    format!("{}-{random:08x}", now.unix())
}

/// Hands call `no` to a voicemail machine: it hears keys from now on.
fn begin_voicemail(engine: &mut Engine, now: Now, no: u64, vm: Voicemail) {
    detect(engine, no);
    set_step(engine, no, Step::Voicemail(Box::new(vm)));
    pump(engine, now, no);
}

/// The voicemail machine of call `no`, if one has the call.
fn voicemail_mut(engine: &mut Engine, no: u64) -> Option<&mut Voicemail> {
    match &mut calls::app_mut(engine, no)?.step {
        Step::Voicemail(vm) => Some(vm),
        _ => None,
    }
}

/// Carries out what call `no`'s voicemail machine asks, then re-arms its timer.
fn pump(engine: &mut Engine, now: Now, no: u64) {
    while let Some(act) = voicemail_mut(engine, no).and_then(Voicemail::next) {
        match act {
            Act::Play(sounds) => play(engine, no, sounds),
            Act::StopPlay => engine.push(Output::AppMedia {
                call: no,
                media: AppMedia::StopPlayer,
            }),
            Act::Record {
                path,
                limits,
                message,
            } => {
                let Some(local) = calls::app_of(engine, no).map(|app| app.local) else {
                    continue; // answered by nobody: no session to record on
                };
                engine.push(Output::AppMedia {
                    call: no,
                    media: AppMedia::Record {
                        path,
                        limits,
                        message,
                        local,
                    },
                })
            }
            Act::StopRecord => engine.push(Output::AppMedia {
                call: no,
                media: AppMedia::StopRecorder,
            }),
            Act::Shell(id, request) => engine.push(Output::Voicemail {
                call: no,
                id,
                request,
            }),
            Act::CheckPin(id, request) => {
                let Some(ip) = calls::caller_ip(engine, no) else {
                    return;
                };
                match super::voicemail::admit(&engine.ctx.guard, ip, now) {
                    Admission::Granted(ticket) => {
                        if let Some(vm) = voicemail_mut(engine, no) {
                            vm.hold_ticket(id, ticket);
                        }
                        let request = VoicemailRequest::Store(request);
                        engine.push(Output::Voicemail {
                            call: no,
                            id,
                            request,
                        });
                    }
                    // Too many checks on their way from this source: this one is not made
                    // and counts as wrong, as a digest answered 503 would.
                    Admission::Busy => {
                        if let Some(vm) = voicemail_mut(engine, no) {
                            vm.input(
                                now.at,
                                pbx_voicemail::Input::Store {
                                    id,
                                    answer: StoreAnswer::Pin(false),
                                },
                            );
                        }
                    }
                    Admission::Banned => return hang_up(engine, now, no),
                }
            }
            Act::Transfer(to) => {
                // The operator: the call leaves voicemail and rings `to` as a dial would.
                set_step(engine, no, Step::Idle);
                if let Some(active) = calls::active_mut(engine, no) {
                    active.plan = super::dialing::plan::PlanState::builtin(to);
                }
                return super::dialing::drive(engine, now, no, None);
            }
            Act::Hangup => {
                set_step(engine, no, Step::Idle);
                return hang_up(engine, now, no);
            }
        }
    }
    calls::arm_app(engine, no);
}

/// Call `no`'s recording is on disk.
pub(super) fn recorded(
    engine: &mut Engine,
    now: Now,
    no: u64,
    duration: Duration,
    end: pbx_voicemail::RecordEnd,
) {
    if let Some(vm) = voicemail_mut(engine, no) {
        vm.recorded(now.at, duration, end);
        pump(engine, now, no);
    }
}

/// The store answered call `no`'s voicemail machine.
pub(super) fn voicemail_answer(
    engine: &mut Engine,
    now: Now,
    no: u64,
    id: u64,
    answer: StoreAnswer,
) {
    let guard = engine.ctx.guard.clone();
    let Some(vm) = voicemail_mut(engine, no) else {
        return;
    };
    match vm.store_answer(&guard, now, id, answer) {
        PinVerdict::Answered => pump(engine, now, no),
        PinVerdict::Refused => hang_up(engine, now, no),
        PinVerdict::Banned(ban) => {
            engine.push(Output::Security(Security::Banned {
                address: ban.address,
                until: ban.until,
            }));
            engine.push(Output::SaveBan(ban));
            hang_up(engine, now, no);
        }
    }
}

/// Plays `prompts` (and recorded files) one after the other to the caller.
/// A device rung from the call took it over: the PBX's endpoints stop, the relay carries the
/// call.
pub(super) fn connected(engine: &mut Engine, no: u64) {
    if let Some(active) = calls::active_mut(engine, no) {
        active.app = None;
    }
    engine.push(Output::AppMedia {
        call: no,
        media: AppMedia::Bridge,
    });
}

/// Asks the session for the caller's keys, once per call.
fn detect(engine: &mut Engine, no: u64) {
    let Some(app) = calls::app_mut(engine, no) else {
        return;
    };
    if app.detecting {
        return;
    }
    app.detecting = true;
    let local = app.local;
    engine.push(Output::AppMedia {
        call: no,
        media: AppMedia::DetectDtmf { local },
    });
}

/// What the media session of call `no` reports.
pub(super) fn session_event(engine: &mut Engine, now: Now, no: u64, event: Event) {
    match event {
        // A bridged call's key read from one leg's RFC 4733 events: an INFO to the other.
        Event::Dtmf {
            side,
            digit,
            duration,
        } if calls::app_mut(engine, no).is_none() => {
            calls::with_call(engine, now, no, |call, layer| {
                call.handle_dtmf(now.at, layer, side, digit, duration)
            });
        }
        Event::Dtmf { digit, .. } => key(engine, now, no, digit),
        Event::PlayerFinished { .. } => prompt_finished(engine, now, no),
        // Recorders belong to voicemail; the media timeout comes as a `MediaEvent`.
        _ => {}
    }
}

/// The caller pressed `digit` (RFC 4733 event, or SIP INFO).
pub(super) fn key(engine: &mut Engine, now: Now, no: u64, digit: char) {
    metrics::counter!("pbx_dtmf_received_total").increment(1);
    let Some(app) = calls::app_mut(engine, no) else {
        return;
    };
    if let Step::Voicemail(vm) = &mut app.step {
        vm.input(now.at, pbx_voicemail::Input::Digit(digit));
        return pump(engine, now, no);
    }
    let Step::Menu(menu) = &mut app.step else {
        // Keys outside a menu are not typed ahead (Asterisk's Background() does; a later
        // step may).
        return;
    };
    let barge_in = menu.prompting;
    let done = if digit == '#' {
        true
    } else {
        menu.digits.push(digit);
        menu.digits.len() >= menu.max_digits
    };
    // Between keys the menu's timeout runs again.
    menu.prompting = false;
    menu.deadline = Some(now.at + menu.timeout);
    if barge_in {
        engine.push(Output::AppMedia {
            call: no,
            media: AppMedia::StopPlayer,
        });
    }
    if done {
        return menu_done(engine, now, no);
    }
    calls::arm_app(engine, no);
}

fn prompt_finished(engine: &mut Engine, now: Now, no: u64) {
    let Some(app) = calls::app_mut(engine, no) else {
        return;
    };
    app.players = app.players.saturating_sub(1);
    if let Step::Voicemail(vm) = &mut app.step {
        vm.player_finished(now.at);
        return pump(engine, now, no);
    }
    if app.players > 0 {
        return; // a prompt stopped or replaced before the current one
    }
    match &mut app.step {
        Step::Playing => {
            app.step = Step::Idle;
            super::dialing::drive(engine, now, no, Some(StepResult::Done));
        }
        Step::Menu(menu) if menu.prompting => {
            menu.prompting = false;
            menu.deadline = Some(now.at + menu.timeout);
            calls::arm_app(engine, no);
        }
        _ => {}
    }
}

/// The menu has its input: the digits entered (empty when none came in time).
fn menu_done(engine: &mut Engine, now: Now, no: u64) {
    let Some(app) = calls::app_mut(engine, no) else {
        return;
    };
    let Step::Menu(menu) = std::mem::replace(&mut app.step, Step::Idle) else {
        return;
    };
    super::dialing::drive(engine, now, no, Some(StepResult::Digits(menu.digits)));
}

/// The application timer of call `no` is due.
pub(super) fn timeout(engine: &mut Engine, now: Now, no: u64) {
    if let Some(vm) = voicemail_mut(engine, no) {
        vm.timeout(now.at);
        return pump(engine, now, no);
    }
    let due = calls::app_of(engine, no)
        .and_then(App::deadline)
        .is_some_and(|at| at <= now.at);
    if due {
        menu_done(engine, now, no);
    }
}

/// The plan ended the answered call `no`: BYE.
pub(super) fn hang_up(engine: &mut Engine, now: Now, no: u64) {
    with_call(engine, now, no, |call, layer| call.hang_up(now.at, layer));
}
