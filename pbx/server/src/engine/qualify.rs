//! The shell of OPTIONS qualify (`pbx_engine::qualify`): every `[sip] qualify_interval`,
//! each registered device is sent an OPTIONS over the flow it registered from (which also
//! keeps its NAT binding open); a device that never answers is marked unreachable.

use super::location::Location;
use super::{Dispatcher, Input, ShardInput, driver};
use pbx_engine::qualify::Schedule;
pub use pbx_engine::qualify::Target;
use std::sync::Arc;

/// Sleeps until the engine's qualify [`Schedule`] has a round due, and hands each device to
/// the shard its Call-ID routes to. Which devices and when is the schedule's decision.
pub async fn run(dispatcher: Arc<Dispatcher>, location: Arc<Location>, mut schedule: Schedule) {
    while let Some(at) = schedule.poll_timeout() {
        tokio::time::sleep_until(at.into()).await;
        for target in schedule.due(driver::now(), &location) {
            dispatcher.send_to_shard_of(
                target.call_id.clone().as_bytes(),
                ShardInput::Input(Input::Qualify(target)),
            );
        }
        metrics::gauge!("pbx_registrations_unreachable").set(location.unreachable() as f64);
    }
}
