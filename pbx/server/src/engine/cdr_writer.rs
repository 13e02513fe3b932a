//! Call records written behind, in batches: the shards hand finished calls over without
//! waiting, and one task writes what gathered in one transaction (like the location
//! writer), so a busy PBX does not queue one commit per call behind the database's lock.
//!
//! The "call ended" log line is written here, once the database has given the record its
//! id, so the line names the CDR `pbx cdr list` shows (a few milliseconds after the call
//! ended, rather than an id of our own beside the database's).

use super::cdr_spool::CdrSpool;
use pbx_store::{CdrStore, NewCdr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the writer gathers records before writing them.
const COALESCE: Duration = Duration::from_millis(20);
/// The most records written in one transaction.
const MAX_BATCH: usize = 1024;
/// Retries while the database is down: the first after this, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// A write that takes longer counts as failed and its records go to the spool: with the
/// database gone, the pool would wait 30 s for a connection, and a shutdown with it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(3);

// Nearly every write is a record; boxing it to shrink the rare flush marker would cost an
// allocation per call.
#[allow(clippy::large_enum_variant)]
enum Write {
    Record(NewCdr),
    /// Everything queued before it is written (or, with the database down, spooled):
    /// acknowledge.
    Flush(oneshot::Sender<()>),
}

/// The handle the shards write through.
pub struct CdrWriter {
    queue: mpsc::UnboundedSender<Write>,
}

impl CdrWriter {
    /// Starts the writer; records left in `spool` by an earlier run are written first.
    pub fn start(
        store: Arc<dyn CdrStore>,
        spool: CdrSpool,
    ) -> (CdrWriter, tokio::task::JoinHandle<()>) {
        let (queue, writes) = mpsc::unbounded_channel();
        (CdrWriter { queue }, tokio::spawn(run(store, spool, writes)))
    }

    /// Queues a record; it reaches the database within [`COALESCE`] or so.
    pub fn write(&self, cdr: NewCdr) {
        if self.queue.send(Write::Record(cdr)).is_err() {
            tracing::error!("the CDR writer has stopped: a call record is lost");
        }
    }

    /// Waits until every record queued so far is written, or kept in the spool (shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Write::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// The records not in the database yet, and what the writer knows about the outage.
struct Pending {
    records: Vec<NewCdr>,
    spool: CdrSpool,
    /// Whether the spool file holds `records` (it is only written during an outage).
    spooled: bool,
    retry_in: Option<Duration>,
}

async fn run(
    store: Arc<dyn CdrStore>,
    spool: CdrSpool,
    mut writes: mpsc::UnboundedReceiver<Write>,
) {
    let mut pending = Pending {
        records: Vec::new(),
        spool,
        spooled: false,
        retry_in: None,
    };
    match pending.spool.load() {
        Ok(left) => {
            if left.unreadable > 0 {
                tracing::error!(
                    lines = left.unreadable,
                    path = %pending.spool.path().with_extension("bad").display(),
                    "unreadable lines in the CDR spool were set aside"
                );
            }
            if !left.records.is_empty() {
                tracing::warn!(
                    records = left.records.len(),
                    "call records from the spool are written now"
                );
                pending.records = left.records;
                pending.spooled = true;
            }
        }
        Err(error) => {
            tracing::error!(%error, path = %pending.spool.path().display(), "cannot read the CDR spool")
        }
    }
    if !pending.records.is_empty() {
        write_pending(store.as_ref(), &mut pending).await;
    }
    let mut flushes = Vec::new();
    loop {
        let first = match pending.retry_in {
            None => writes.recv().await,
            Some(wait) => match tokio::time::timeout(wait, writes.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    write_pending(store.as_ref(), &mut pending).await;
                    continue;
                }
            },
        };
        let Some(first) = first else { break };
        take(first, &mut pending.records, &mut flushes);
        if flushes.is_empty() {
            tokio::time::sleep(COALESCE).await;
        }
        while let Ok(next) = writes.try_recv() {
            take(next, &mut pending.records, &mut flushes);
        }
        write_pending(store.as_ref(), &mut pending).await;
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
    if !pending.records.is_empty() {
        tracing::warn!(records = pending.records.len(), path = %pending.spool.path().display(), "call records kept in the spool until the database takes them");
    }
}

/// Writes every pending record, [`MAX_BATCH`] per transaction. On failure the rest stays
/// pending and in the spool, and a retry is scheduled.
async fn write_pending(store: &dyn CdrStore, pending: &mut Pending) {
    while !pending.records.is_empty() {
        let count = pending.records.len().min(MAX_BATCH);
        let batch = pending.records.get(..count).unwrap_or_default();
        let written = match tokio::time::timeout(WRITE_TIMEOUT, store.insert_cdrs(batch)).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!(
                "no answer from the database within {WRITE_TIMEOUT:?}"
            )),
        };
        match written {
            Ok(ids) => {
                metrics::counter!("pbx_cdrs_written_total").increment(count as u64);
                for (cdr, id) in batch.iter().zip(ids) {
                    log_end(cdr, id);
                }
                pending.records.drain(..count);
                if pending.retry_in.take().is_some() {
                    tracing::info!("the database takes call records again");
                }
            }
            Err(error) => {
                let first_failure = pending.retry_in.is_none();
                let wait = pending
                    .retry_in
                    .map_or(RETRY_FIRST, |w| (w * 2).min(RETRY_MAX));
                pending.retry_in = Some(wait);
                if first_failure {
                    tracing::error!(%error, records = pending.records.len(), "could not write call records; they are kept in the spool and retried");
                }
                metrics::counter!("pbx_cdr_write_failures_total").increment(1);
                save_spool(pending);
                return;
            }
        }
    }
    if pending.spooled {
        save_spool(pending);
    }
}

/// Makes the spool file hold the pending records (none: the file goes).
fn save_spool(pending: &mut Pending) {
    match pending.spool.replace(&pending.records) {
        Ok(()) => pending.spooled = !pending.records.is_empty(),
        Err(error) => {
            tracing::error!(%error, path = %pending.spool.path().display(), "cannot write the CDR spool; call records are held in memory only")
        }
    }
    metrics::gauge!("pbx_cdrs_spooled").set(pending.records.len() as f64);
}

/// One info line per finished call; `id` is the CDR's. While the database is down the line
/// waits with the record, so it always names the row `pbx cdr list` shows.
fn log_end(cdr: &NewCdr, id: i64) {
    tracing::info!(
        cdr = id,
        call = %cdr.call_id,
        caller = %cdr.caller,
        callee = %cdr.called,
        disposition = %cdr.disposition,
        duration = %format!("{}s", cdr.duration_secs),
        hangup = %format!("{} {}", cdr.hangup_side, cdr.hangup_cause).trim(),
        "call ended"
    );
}

fn take(write: Write, batch: &mut Vec<NewCdr>, flushes: &mut Vec<oneshot::Sender<()>>) {
    match write {
        Write::Record(cdr) => batch.push(cdr),
        Write::Flush(done) => flushes.push(done),
    }
}
