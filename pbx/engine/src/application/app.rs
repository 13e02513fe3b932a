//! The state of a call the PBX answered itself: its media, its players and the step it
//! waits on (data only: `application.rs` runs the steps).

use crate::voicemail::Voicemail;
use pbx_dialplan::Action;
use pbx_media::sdp::LocalMedia;
use std::time::{Duration, Instant};

/// A call the PBX answered: what its endpoints speak and the step in progress.
pub(crate) struct App {
    pub(crate) local: LocalMedia,
    /// The SSRC of everything the PBX sends the caller (RFC 3550 §8: one per source).
    pub(crate) ssrc: u32,
    /// Whether the session reports the caller's keys already.
    pub(crate) detecting: bool,
    /// Players started and not reported finished yet. Each player reports once (at its end,
    /// or stopped, or replaced by the next), in order: only the last one's report ends the
    /// step (a prompt stopped by a key must not end the prompt played after it).
    pub(crate) players: u32,
    pub(crate) step: Step,
}

/// What the application waits for.
pub(crate) enum Step {
    /// Nothing: the plan runs.
    Idle,
    /// A prompt plays; the plan goes on when it ends.
    Playing,
    /// A menu collects digits while (and after) its prompt plays.
    Menu(Menu),
    /// The caller hears itself until it hangs up.
    Echo,
    /// A voicemail machine has the call.
    Voicemail(Box<Voicemail>),
}

pub(crate) struct Menu {
    pub(crate) digits: String,
    pub(crate) max_digits: usize,
    pub(crate) timeout: Duration,
    /// The prompt still plays: no timeout runs yet.
    pub(crate) prompting: bool,
    /// When the silence after the prompt (or the last key) counts as the end of input.
    pub(crate) deadline: Option<Instant>,
}

impl App {
    pub(crate) fn new(local: LocalMedia, ssrc: u32) -> App {
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
            Step::Voicemail(vm) => vm.deadline(),
            _ => None,
        }
    }
}

/// Whether `action` is one the PBX carries out on an answered call.
pub(crate) fn is_application(action: &Action) -> bool {
    matches!(
        action,
        Action::Answer
            | Action::Playback { .. }
            | Action::Menu { .. }
            | Action::Echo
            | Action::Voicemail { .. }
            | Action::VoicemailMenu { .. }
            | Action::Say { .. }
    )
}
