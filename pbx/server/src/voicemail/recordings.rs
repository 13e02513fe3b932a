//! The recorder's disk side: one thread writes every recording in progress as its audio
//! arrives from the media workers (half a second at a time), durable to the last second
//! (`pbx_voicemail::wav::WavWriter`), so a slow disk never stalls a media worker and a
//! crash keeps what was said.
//!
//! A voicemail message also gets a *sidecar* (`msg-TAG.json`, written and synced before the
//! audio): who called whom and when. A recording with a sidecar is a message to file, whoever
//! ends it: the caller's `#`, silence, the caller hanging up, or a crash (filed at the next
//! start). Filing removes the sidecar.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pbx_voicemail::wav::WavWriter;
use pbx_voicemail::{NewMessageInfo, RecordEnd, RecordLimits};
use serde::{Deserialize, Serialize};

/// The sample rate of every recording (G.711 decoded).
const RATE: u32 = 8000;

/// What the PBX knows of a message while it is recorded: the sidecar's content.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sidecar {
    pub mailbox: String,
    pub caller_number: String,
    pub caller_name: String,
    /// Unix seconds.
    pub received_at: u64,
    /// Shorter messages are discarded.
    pub min_ms: u64,
    /// The silence that ends a recording (not counted toward the minimum).
    pub silence_ms: Option<u64>,
}

impl Sidecar {
    pub fn new(message: &NewMessageInfo, limits: RecordLimits) -> Sidecar {
        Sidecar {
            mailbox: message.mailbox.clone(),
            caller_number: message.caller_number.clone(),
            caller_name: message.caller_name.clone(),
            received_at: message.received_at,
            min_ms: millis(limits.min),
            silence_ms: limits.silence.map(millis),
        }
    }

    /// Where the sidecar of recording `wav` lives.
    pub fn path_of(wav: &Path) -> PathBuf {
        wav.with_extension("json")
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A recording that ended, for whoever waits for it.
#[derive(Debug)]
pub struct Finished {
    pub path: PathBuf,
    pub duration: Duration,
    pub end: RecordEnd,
    /// A message to file (its sidecar is on disk).
    pub message: bool,
}

/// Where a recording's end is reported: the engine's shard (to its machine) and, for a
/// message, the filing.
pub type OnFinished = Box<dyn FnOnce(Finished) + Send>;

/// A recording of call `call` of shard `shard`.
pub type Key = (usize, u64);

enum Job {
    Start {
        key: Key,
        path: PathBuf,
        sidecar: Option<Sidecar>,
        on_finished: OnFinished,
    },
    Audio {
        key: Key,
        pcm: Vec<i16>,
    },
    Finish {
        key: Key,
        end: RecordEnd,
        pcm: Vec<i16>,
    },
}

/// The handle the drivers (start) and the media workers (audio, end) send through.
#[derive(Clone)]
pub struct Recordings {
    jobs: mpsc::Sender<Job>,
}

impl Recordings {
    /// Starts the writer thread.
    pub fn start() -> std::io::Result<Recordings> {
        let (jobs, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("pbx-recordings".into())
            .spawn(move || run(rx))?;
        Ok(Recordings { jobs })
    }

    /// A recording begins: its file (and a message's sidecar) are created before the first
    /// audio is written.
    pub fn begin(&self, key: Key, path: PathBuf, sidecar: Option<Sidecar>, on: OnFinished) {
        let _ = self.jobs.send(Job::Start {
            key,
            path,
            sidecar,
            on_finished: on,
        });
    }

    pub fn audio(&self, key: Key, pcm: Vec<i16>) {
        let _ = self.jobs.send(Job::Audio { key, pcm });
    }

    pub fn finish(&self, key: Key, end: RecordEnd, pcm: Vec<i16>) {
        let _ = self.jobs.send(Job::Finish { key, end, pcm });
    }
}

struct Open {
    writer: Option<WavWriter>,
    message: bool,
    on_finished: OnFinished,
}

fn run(rx: mpsc::Receiver<Job>) {
    let mut open: HashMap<Key, Open> = HashMap::new();
    while let Ok(job) = rx.recv() {
        let now = Instant::now();
        match job {
            Job::Start {
                key,
                path,
                sidecar,
                on_finished,
            } => {
                // A recording of the same call still open was replaced: it ended.
                if let Some(old) = open.remove(&key) {
                    close(old, now, RecordEnd::Stopped);
                }
                let writer = create(&path, sidecar.as_ref(), now);
                let message = sidecar.is_some() && writer.is_some();
                open.insert(
                    key,
                    Open {
                        writer,
                        message,
                        on_finished,
                    },
                );
            }
            Job::Audio { key, pcm } => {
                if let Some(Open {
                    writer: Some(w), ..
                }) = open.get_mut(&key)
                    && let Err(error) = w.write(now, &pcm)
                {
                    tracing::error!(%error, "recording: audio lost");
                }
            }
            Job::Finish { key, end, pcm } => {
                if let Some(mut rec) = open.remove(&key) {
                    if let Some(w) = rec.writer.as_mut()
                        && let Err(error) = w.write(now, &pcm)
                    {
                        tracing::error!(%error, "recording: audio lost");
                    }
                    close(rec, now, end);
                }
            }
        }
    }
}

/// The folder, the sidecar (synced), then the WAV (synced with its folder entry).
fn create(path: &Path, sidecar: Option<&Sidecar>, now: Instant) -> Option<WavWriter> {
    if let Some(dir) = path.parent()
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        tracing::error!(folder = %dir.display(), %error, "recording: no folder");
        return None;
    }
    if let Some(sidecar) = sidecar
        && let Err(error) = write_sidecar(path, sidecar)
    {
        tracing::error!(file = %path.display(), %error, "recording: sidecar not written");
        return None;
    }
    match WavWriter::create(path, RATE, now) {
        Ok(w) => Some(w),
        Err(error) => {
            tracing::error!(%error, "recording not started");
            None
        }
    }
}

fn write_sidecar(wav: &Path, sidecar: &Sidecar) -> std::io::Result<()> {
    use std::io::Write;
    let bytes = serde_json::to_vec(sidecar).map_err(std::io::Error::other)?;
    let mut file = std::fs::File::create(Sidecar::path_of(wav))?;
    file.write_all(&bytes)?;
    file.sync_all()
}

fn close(rec: Open, now: Instant, end: RecordEnd) {
    let (path, duration) = match rec.writer {
        Some(w) => {
            let path = w.path().to_path_buf();
            let duration = w.duration();
            if let Err(error) = w.finish(now) {
                tracing::error!(%error, "recording: the end was not written");
            }
            (path, duration)
        }
        None => (PathBuf::new(), Duration::ZERO),
    };
    (rec.on_finished)(Finished {
        path,
        duration,
        end,
        message: rec.message,
    });
}
