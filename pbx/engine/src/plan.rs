//! The dialplan of the running PBX, swapped atomically on reload. A call takes
//! [`PlanHandle::current`] once and keeps that `Arc` for its whole life, so a reload never
//! changes a call in progress. Reading the file is the shell's.

use pbx_dialplan::Plan;
use std::sync::{Arc, RwLock};

/// The current plan, replaced whole on reload.
#[derive(Debug)]
pub struct PlanHandle {
    current: RwLock<Option<Arc<Plan>>>,
}

impl PlanHandle {
    pub fn new(plan: Option<Arc<Plan>>) -> PlanHandle {
        PlanHandle {
            current: RwLock::new(plan),
        }
    }

    /// The plan for a new call; `None` when the config names no dialplan.
    pub fn current(&self) -> Option<Arc<Plan>> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            // A writer never panics while holding the lock; recover the value anyway.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps in a plan the shell loaded and validated.
    pub fn replace(&self, plan: Option<Arc<Plan>>) {
        match self.current.write() {
            Ok(mut guard) => *guard = plan,
            Err(poisoned) => *poisoned.into_inner() = plan,
        }
    }
}
