//! What a call's handlers leave for the dispatcher (`shard.rs`) to carry out next because it
//! belongs to a handler above them: the plan (`dialing.rs`) or the PBX's own application
//! (`application.rs`). The dispatcher runs each as soon as the handler that queued it
//! returns, in the order a direct call would have run it (`Calls::follow` queues, the
//! dispatcher's `follow_ups` runs).

use pbx_calls::DialEnd;
use pbx_dialplan::{Action, StepResult};
use pbx_media::sdp::LocalMedia;

pub(crate) enum FollowUp {
    /// Run call `no`'s plan from where it stands, with the result of its last action.
    Drive(u64, Option<StepResult>),
    /// The plan refuses the call (the engine could not go on with it).
    Refuse {
        call: u64,
        status: u16,
        detail: &'static str,
    },
    /// The PBX answered the call: the application step `then` starts.
    Answered(u64, LocalMedia, Action),
    /// A round of ringing ended without an answer: the plan takes its branch.
    DialEnded(u64, DialEnd),
    /// A device rung from an answered call took it over.
    Connected(u64),
    /// The caller pressed a key.
    Key(u64, char),
    /// The plan asks the PBX to carry out an application step.
    Run(u64, Action),
    /// The plan ended a call the PBX answered: BYE.
    HangUp(u64),
}
