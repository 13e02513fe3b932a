//! Call records written behind, in batches: the shards hand finished calls over without
//! waiting, and one task writes what gathered in one transaction (like the location
//! writer), so a busy PBX does not queue one commit per call behind the database's lock.

use pbx_store::{CdrStore, NewCdr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the writer gathers records before writing them.
const COALESCE: Duration = Duration::from_millis(20);
/// The most records written in one transaction.
const MAX_BATCH: usize = 1024;

// Nearly every write is a record; boxing it to shrink the rare flush marker would cost an
// allocation per call.
#[allow(clippy::large_enum_variant)]
enum Write {
    Record(NewCdr),
    /// Everything queued before it is written: acknowledge.
    Flush(oneshot::Sender<()>),
}

/// The handle the shards write through.
pub struct CdrWriter {
    queue: mpsc::UnboundedSender<Write>,
}

impl CdrWriter {
    pub fn start(store: Arc<dyn CdrStore>) -> (CdrWriter, tokio::task::JoinHandle<()>) {
        let (queue, writes) = mpsc::unbounded_channel();
        (CdrWriter { queue }, tokio::spawn(run(store, writes)))
    }

    /// Queues a record; it reaches the database within [`COALESCE`] or so.
    pub fn write(&self, cdr: NewCdr) {
        if self.queue.send(Write::Record(cdr)).is_err() {
            tracing::error!("the CDR writer has stopped: a call record is lost");
        }
    }

    /// Waits until every record queued so far is written (shutdown).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Write::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(store: Arc<dyn CdrStore>, mut writes: mpsc::UnboundedReceiver<Write>) {
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    while let Some(first) = writes.recv().await {
        take(first, &mut batch, &mut flushes);
        if flushes.is_empty() {
            tokio::time::sleep(COALESCE).await;
        }
        while batch.len() < MAX_BATCH {
            match writes.try_recv() {
                Ok(next) => take(next, &mut batch, &mut flushes),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            match store.insert_cdrs(&batch).await {
                Ok(_) => {
                    metrics::counter!("pbx_cdrs_written_total").increment(batch.len() as u64);
                }
                Err(error) => {
                    tracing::error!(%error, records = batch.len(), "could not write call records");
                }
            }
            batch.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

fn take(write: Write, batch: &mut Vec<NewCdr>, flushes: &mut Vec<oneshot::Sender<()>>) {
    match write {
        Write::Record(cdr) => batch.push(cdr),
        Write::Flush(done) => flushes.push(done),
    }
}
