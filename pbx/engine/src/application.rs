//! Calls the PBX answers itself: the dialplan's `answer`, `playback`, `menu` and `echo`
//! steps run on the call's media session (the application seam of `pbx_calls::Call`).
//!
//! The engine decides and the shell plays: each step becomes an [`AppMedia`] command for the
//! call's media session (play these prompts, report the caller's keys, echo), and what the
//! session reports (a key, a prompt finished) comes back as [`Input::Session`] and moves the
//! step on. Keys sent as SIP INFO arrive from the call machine and count the same.
//!
//! [`Input::Session`]: super::io::Input::Session

use super::calls::{self, with_call};
use super::io::{AppMedia, Now, Output};
use super::shard::Engine;
use pbx_dialplan::{Action, StepResult};
use pbx_media::sdp::LocalMedia;
use pbx_media::session::Event;
use std::time::{Duration, Instant};

/// A call the PBX answered: what its endpoints speak and the step in progress.
pub(crate) struct App {
    pub(crate) local: LocalMedia,
    /// The SSRC of everything the PBX sends the caller (RFC 3550 §8: one per source).
    ssrc: u32,
    /// Whether the session reports the caller's keys already.
    detecting: bool,
    /// Players started and not reported finished yet. Each player reports once (at its end,
    /// or stopped, or replaced by the next), in order: only the last one's report ends the
    /// step (a prompt stopped by a key must not end the prompt played after it).
    players: u32,
    step: Step,
}

/// What the application waits for.
enum Step {
    /// Nothing: the plan runs.
    Idle,
    /// A prompt plays; the plan goes on when it ends.
    Playing,
    /// A menu collects digits while (and after) its prompt plays.
    Menu(Menu),
    /// The caller hears itself until it hangs up.
    Echo,
}

struct Menu {
    digits: String,
    max_digits: usize,
    timeout: Duration,
    /// The prompt still plays: no timeout runs yet.
    prompting: bool,
    /// When the silence after the prompt (or the last key) counts as the end of input.
    deadline: Option<Instant>,
}

impl App {
    fn new(local: LocalMedia, ssrc: u32) -> App {
        App {
            local,
            ssrc,
            detecting: false,
            players: 0,
            step: Step::Idle,
        }
    }

    /// When the application next wants [`timeouts`].
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.step {
            Step::Menu(menu) => menu.deadline,
            _ => None,
        }
    }
}

/// Whether `action` is one the PBX carries out on an answered call.
pub(super) fn is_application(action: &Action) -> bool {
    matches!(
        action,
        Action::Answer | Action::Playback { .. } | Action::Menu { .. } | Action::Echo
    )
}

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
    tracing::info!(call = no, codec = ?local.law, "answered by the PBX");
    start(engine, now, no, then);
}

/// Starts `action` on the answered call `no`.
fn start(engine: &mut Engine, now: Now, no: u64, action: Action) {
    match action {
        Action::Answer => super::dialing::drive(engine, now, no, Some(StepResult::Done)),
        Action::Playback { prompt } => {
            play(engine, no, vec![prompt]);
            set_step(engine, no, Step::Playing);
        }
        Action::Menu {
            prompt,
            max_digits,
            timeout,
        } => {
            detect(engine, no);
            play(engine, no, vec![prompt]);
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
        other => {
            // Not an application step: the plan's driver carries it out.
            tracing::debug!(call = no, action = ?other, "not an application step");
        }
    }
    calls::arm_app(engine, no);
}

fn set_step(engine: &mut Engine, no: u64, step: Step) {
    if let Some(app) = calls::app_mut(engine, no) {
        app.step = step;
    }
}

/// Plays `prompts` one after the other to the caller.
fn play(engine: &mut Engine, no: u64, prompts: Vec<String>) {
    let first_sequence = rand::Rng::random(&mut engine.rng);
    let first_timestamp = rand::Rng::random(&mut engine.rng);
    let Some(app) = calls::app_mut(engine, no) else {
        return;
    };
    app.players += 1;
    let media = AppMedia::Play {
        prompts,
        local: app.local,
        ssrc: app.ssrc,
        first_sequence,
        first_timestamp,
    };
    engine.push(Output::AppMedia { call: no, media });
}

/// The ringing tone, while devices ring for a call the PBX answered.
pub(super) fn ringback(engine: &mut Engine, no: u64) {
    play(engine, no, vec![RINGBACK.to_string()]);
    set_step(engine, no, Step::Idle);
}

/// The prompt library's ringing tone (made by the shell, not a recording).
pub const RINGBACK: &str = "tone/ringback";

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
