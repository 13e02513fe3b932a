//! Real-time scheduling for the relay workers (`[rtp] realtime`).
//!
//! A player's frame must leave every 20 ms whatever else the host is doing: measured here,
//! with the two cores busy compiling (load 12), 1,000 playing sessions had a timing error
//! of 20.7 ms at p99 under the normal scheduler and 1.25 ms with the workers at a
//! round-robin real-time priority (docs/performance.md). Asterisk (`-p`) and FreeSWITCH
//! (`-rp`) offer the same for the same reason. The kernel's real-time throttling
//! (`sched_rt_runtime_us`, 95 % by default) keeps a runaway worker from starving the host.

use std::sync::atomic::{AtomicBool, Ordering};
use thread_priority::{
    RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

/// Low among real-time priorities (1..=99): above every normal thread, below the kernel's
/// own real-time threads (IRQ threads run at 50).
const PRIORITY: u8 = 10;

/// Set by the first worker that could not be raised, so the warning is written once.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Puts the calling thread in `SCHED_RR` at [`PRIORITY`]. Without the right (root,
/// `CAP_SYS_NICE`, or an `RLIMIT_RTPRIO` such as systemd's `LimitRTPRIO=`) the thread
/// stays as it was and the admin is told once.
pub(crate) fn raise_current_thread(worker: &str) {
    let raised = ThreadPriorityValue::try_from(PRIORITY)
        .map_err(|e| e.to_string())
        .and_then(|value| {
            set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Crossplatform(value),
                ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::RoundRobin),
            )
            .map_err(|e| format!("{e:?}"))
        });
    match raised {
        Ok(()) => tracing::debug!(worker, "media worker at real-time priority"),
        Err(e) if !REFUSED.swap(true, Ordering::Relaxed) => tracing::warn!(
            error = %e,
            "[rtp] realtime: the media workers keep the normal scheduler (the process needs \
             CAP_SYS_NICE or an RLIMIT_RTPRIO of at least {PRIORITY}, e.g. systemd's \
             LimitRTPRIO={PRIORITY}); audio timing may suffer when the host is busy"
        ),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thread_priority::thread_schedule_policy;

    #[test]
    fn a_worker_thread_is_raised_or_the_refusal_is_noted() {
        let policy = std::thread::spawn(|| {
            raise_current_thread("test");
            thread_schedule_policy()
        })
        .join()
        .ok()
        .and_then(Result::ok);
        let raised = policy
            == Some(ThreadSchedulePolicy::Realtime(
                RealtimeThreadSchedulePolicy::RoundRobin,
            ));
        // Root or CAP_SYS_NICE raises it; anyone else keeps the normal scheduler and is warned.
        assert!(raised || REFUSED.load(Ordering::Relaxed), "{policy:?}");
    }
}
