//! OPTIONS qualify (the "qualify" of Asterisk, the "nathelper ping" of Kamailio): every
//! `[sip] qualify_interval`, each registered device is sent an OPTIONS over the flow it
//! registered from (which also keeps its NAT binding open); a device that never answers is
//! marked unreachable.

use super::location::{BindingPeer, Location};
use super::{Dispatcher, Input, ShardInput};
use crate::transport::now_unix;
pub use pbx_engine::qualify::Target;
use std::sync::Arc;
use std::time::Duration;

/// Sends every live binding an OPTIONS each `interval`.
pub async fn run(
    dispatcher: Arc<Dispatcher>,
    location: Arc<Location>,
    interval: Duration,
    domain: String,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        for (aor, registration) in location.snapshot(now_unix()) {
            // One Call-ID per device: its OPTIONS always land on the same shard, which skips
            // a device whose previous OPTIONS is still unanswered.
            let call_id = format!(
                "qualify-{:016x}@{domain}",
                device_hash(&aor, &registration.binding.contact.to_string())
            );
            let target = Target {
                aor,
                contact: registration.binding.contact.to_string(),
                call_id,
                peer: registration.peer(),
            };
            dispatcher.send_to_shard_of(
                target.call_id.clone().as_bytes(),
                ShardInput::Input(Input::Qualify(target)),
            );
        }
        metrics::gauge!("pbx_registrations_unreachable").set(location.unreachable() as f64);
    }
}

fn device_hash(aor: &str, contact: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (aor, contact).hash(&mut hasher);
    hasher.finish()
}
