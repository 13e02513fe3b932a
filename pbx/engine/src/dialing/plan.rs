//! A call's place in its plan (data only: `dialing.rs` runs the plan).

use crate::calls::ring::TrunkRing;
use crate::credentials::Lookup;
use pbx_calls::DialEnd;
use pbx_dialplan::{Action, Execution};

/// A call's place in its plan.
pub(crate) struct PlanState {
    /// `None` while the plan waits for an answer (an HTTP lookup, the store).
    pub(crate) steps: Option<Steps>,
    /// How the last dial ended: what the caller gets if the plan ends without another word.
    pub(crate) last_end: Option<DialEnd>,
    /// The trunk the ringing dial goes out by: its answer is read as a trunk's.
    pub(crate) trunk_dial: Option<TrunkDial>,
}

/// A dial out through a trunk, kept to try the trunk's next address.
pub(crate) struct TrunkDial {
    pub(crate) ring: TrunkRing,
    pub(crate) others: Vec<crate::peer::Peer>,
    pub(crate) timeout: std::time::Duration,
    pub(crate) caller_name: Option<String>,
}

// With a dialplan (the larger variant) a call carries its execution inline, as before.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Steps {
    Dialplan(Execution),
    Builtin(Builtin),
}

/// The plan of a PBX without a dialplan: the dialed number is an extension, rung for
/// `[calls] ring_timeout`, or the caller hears 404.
pub(crate) struct Builtin {
    pub(crate) called: String,
    /// The store's answer about `called`, once asked.
    pub(crate) callee: Option<Lookup>,
    pub(crate) dialed: bool,
}

/// What the built-in plan needs next.
pub(crate) enum BuiltinStep {
    Act(Action),
    /// The called extension's record from the store.
    LoadCallee,
}

impl PlanState {
    pub fn dialplan(execution: Execution) -> PlanState {
        PlanState {
            steps: Some(Steps::Dialplan(execution)),
            last_end: None,
            trunk_dial: None,
        }
    }

    pub fn builtin(called: String) -> PlanState {
        PlanState {
            steps: Some(Steps::Builtin(Builtin {
                called,
                callee: None,
                dialed: false,
            })),
            last_end: None,
            trunk_dial: None,
        }
    }
}
