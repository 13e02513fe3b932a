//! What the PBX plays to a call it answered, and the step it then waits on: below the plan
//! (`dialing.rs` starts the ringing tone) and the applications that use it.

use super::app::Step;
use crate::calls::app_mut;
use crate::io::{AppMedia, Output};
use crate::state::Engine;
use pbx_voicemail::Sound;

pub(crate) fn set_step(engine: &mut Engine, no: u64, step: Step) {
    if let Some(app) = app_mut(engine, no) {
        app.step = step;
    }
}

pub(crate) fn play(engine: &mut Engine, no: u64, prompts: Vec<Sound>) {
    let first_sequence = rand::Rng::random(&mut engine.rng);
    let first_timestamp = rand::Rng::random(&mut engine.rng);
    let Some(app) = app_mut(engine, no) else {
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
pub(crate) fn ringback(engine: &mut Engine, no: u64) {
    play(engine, no, vec![Sound::prompt(RINGBACK)]);
    set_step(engine, no, Step::Idle);
}

/// The prompt library's ringing tone (made by the shell, not a recording).
pub const RINGBACK: &str = "tone/ringback";
