//! Keeps the running PBX's trace filters in step with the config and the `sip_traces` table,
//! so `pbx trace add|remove` takes effect without a restart (as `pbx ban remove` does).

use std::sync::Arc;
use std::time::Duration;

use super::{Filters, Target, Tracer};
use pbx_store::{StoreError, TraceStore, now_unix};

/// How often the table is re-read.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(2);
/// Expired rows are deleted this many syncs apart (about once a minute).
const PRUNE_EVERY: u32 = 30;

/// The config's targets plus the table's, in force now. A stored row that no longer reads
/// (edited by hand) is skipped with a warning.
pub async fn filters(store: &dyn TraceStore, configured: &[Target]) -> Result<Filters, StoreError> {
    let stored = store.active_traces(now_unix()).await?;
    let from_store = stored.into_iter().filter_map(|row| {
        Target::from_parts(&row.kind, &row.value)
            .map_err(|error| tracing::warn!(id = row.id, %error, "SIP trace filter skipped"))
            .ok()
    });
    Ok(Filters::new(configured.iter().cloned().chain(from_store)))
}

/// Sets the filters once, now (at start-up, before the listeners open).
pub async fn once(
    store: &dyn TraceStore,
    tracer: &Tracer,
    configured: &[Target],
) -> Result<(), StoreError> {
    tracer.set_filters(filters(store, configured).await?);
    Ok(())
}

/// Re-reads the filters every [`SYNC_INTERVAL`], forever.
pub async fn run(store: Arc<dyn TraceStore>, tracer: Arc<Tracer>, configured: Vec<Target>) {
    let mut ticker = tokio::time::interval(SYNC_INTERVAL);
    let mut ticks: u32 = 0;
    loop {
        ticker.tick().await;
        match filters(store.as_ref(), &configured).await {
            Ok(filters) => tracer.set_filters(filters),
            Err(error) => tracing::warn!(%error, "could not read SIP trace filters"),
        }
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(PRUNE_EVERY)
            && let Err(error) = store.prune_traces(now_unix()).await
        {
            tracing::warn!(%error, "could not delete expired SIP trace filters");
        }
    }
}
