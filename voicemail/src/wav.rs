//! The durable WAV writer voicemail records with, and the repair of a file cut short.
//!
//! "Nothing is lost": a message must survive a crash or `kill -9` in the middle of the
//! recording up to the last second. So the writer
//!
//! - writes the 44-byte header (RIFF, `fmt ` for 16-bit PCM mono, `data`) when it creates the
//!   file and makes it and its folder entry durable (fsync of both) before any audio;
//! - keeps at most [`SYNC_EVERY`] of audio in memory: then it appends it, rewrites the two
//!   sizes in the header, and fsyncs the data (`fdatasync`), so that at every moment the file
//!   on disk is a valid WAV of everything up to the last sync;
//! - on [`WavWriter::finish`] writes the rest the same way.
//!
//! A crash between an append and the header update leaves audio past the size the header
//! gives (or a torn last sample); [`recover`] sets the sizes from the file's length, which
//! the shell runs on every recording it finds unfinished at start. 16-bit PCM rather than
//! G.711: every mail client and browser plays it (RFC 2361's `audio/wav` with format 1).
//!
//! This is the one module of the crate that does I/O, for the shell; the time that decides
//! when to sync is still passed in.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most this much audio is lost by a crash.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// The header this writer writes: RIFF (12) + `fmt ` (8 + 16) + `data` (8).
pub const HEADER_LEN: u64 = 44;

const BYTES_PER_SAMPLE: u16 = 2;

/// A WAV problem, by whose fault: the disk's ([`WavError::Io`]) or the file's.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a WAV file this writer can repair: {why}", path.display())]
    NotWav { path: PathBuf, why: &'static str },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WavError {
    let path = path.to_path_buf();
    move |source| WavError::Io { what, path, source }
}

/// The header of a 16-bit mono PCM file at `rate` holding `data_len` bytes of samples.
pub fn header(rate: u32, data_len: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let block = u32::from(BYTES_PER_SAMPLE);
    let fields: [(usize, &[u8]); 13] = [
        (0, b"RIFF"),
        (4, &(36u32.saturating_add(data_len)).to_le_bytes()),
        (8, b"WAVE"),
        (12, b"fmt "),
        (16, &16u32.to_le_bytes()),
        (20, &1u16.to_le_bytes()), // PCM
        (22, &1u16.to_le_bytes()), // mono
        (24, &rate.to_le_bytes()),
        (28, &(rate * block).to_le_bytes()),
        (32, &BYTES_PER_SAMPLE.to_le_bytes()),
        (34, &(BYTES_PER_SAMPLE * 8).to_le_bytes()),
        (36, b"data"),
        (40, &data_len.to_le_bytes()),
    ];
    for (at, bytes) in fields {
        h[at..at + bytes.len()].copy_from_slice(bytes);
    }
    h
}

/// Records 16-bit mono PCM into a WAV file, durable to the last [`SYNC_EVERY`].
#[derive(Debug)]
pub struct WavWriter {
    file: File,
    path: PathBuf,
    rate: u32,
    /// Bytes of samples on disk after the header.
    written: u64,
    pending: Vec<u8>,
    synced_at: Instant,
}

impl WavWriter {
    /// Creates `path` (it must not exist: a recording never overwrites) with its header,
    /// durable with its folder entry.
    pub fn create(path: &Path, rate: u32, now: Instant) -> Result<WavWriter, WavError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_err("cannot create", path))?;
        file.write_all(&header(rate, 0))
            .map_err(io_err("cannot write", path))?;
        file.sync_all().map_err(io_err("cannot sync", path))?;
        // The new name must survive too: fsync the folder (Linux needs it for new files).
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("cannot sync folder", dir))?;
        Ok(WavWriter {
            file,
            path: path.to_path_buf(),
            rate,
            written: 0,
            pending: Vec::with_capacity(usize::try_from(rate).unwrap_or(8000) * 2),
            synced_at: now,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples written so far, on disk or waiting.
    pub fn samples(&self) -> u64 {
        (self.written + self.pending.len() as u64) / u64::from(BYTES_PER_SAMPLE)
    }

    /// The length recorded so far.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples() * 1_000_000 / u64::from(self.rate.max(1)))
    }

    /// Takes samples heard at `now`; syncs when the last sync is [`SYNC_EVERY`] old.
    pub fn write(&mut self, now: Instant, samples: &[i16]) -> Result<(), WavError> {
        for s in samples {
            self.pending.extend_from_slice(&s.to_le_bytes());
        }
        if now.saturating_duration_since(self.synced_at) >= SYNC_EVERY {
            self.sync(now)?;
        }
        Ok(())
    }

    /// Appends what waits, updates the header's sizes, and makes both durable.
    pub fn sync(&mut self, now: Instant) -> Result<(), WavError> {
        self.synced_at = now;
        if self.pending.is_empty() {
            return Ok(());
        }
        // A WAV holds at most 4 GiB of data; past that (75 hours at 8 kHz) nothing is added.
        let room = u64::from(u32::MAX) - HEADER_LEN - self.written;
        let take = self
            .pending
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        self.file
            .write_all_at(&self.pending[..take], HEADER_LEN + self.written)
            .map_err(io_err("cannot write", &self.path))?;
        self.written += take as u64;
        self.pending.clear();
        let data_len = u32::try_from(self.written).unwrap_or(u32::MAX);
        self.file
            .write_all_at(&header(self.rate, data_len)[..], 0)
            .map_err(io_err("cannot write", &self.path))?;
        self.file
            .sync_data()
            .map_err(io_err("cannot sync", &self.path))
    }

    /// Writes the rest and closes the file; returns the samples recorded.
    pub fn finish(mut self, now: Instant) -> Result<u64, WavError> {
        self.sync(now)?;
        Ok(self.samples())
    }
}

/// What [`recover`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Samples in the repaired file.
    pub samples: u64,
    pub rate: u32,
    /// Whether the header had to be changed.
    pub repaired: bool,
}

/// Repairs the header of a 16-bit mono PCM WAV cut short by a crash: the RIFF and `data`
/// sizes are set from the file's length (a torn last sample is cut off). A file too short
/// to hold its header, or not such a WAV, is an error (the shell then discards it).
pub fn recover(path: &Path) -> Result<Recovered, WavError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("cannot open", path))?;
    let mut h = [0u8; 44];
    let not_wav = |why| WavError::NotWav {
        path: path.to_path_buf(),
        why,
    };
    file.read_exact(&mut h)
        .map_err(|_| not_wav("shorter than its header"))?;
    let u16_at = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    if &h[0..4] != b"RIFF" || &h[8..12] != b"WAVE" {
        return Err(not_wav("no RIFF/WAVE header"));
    }
    if &h[12..16] != b"fmt " || u32_at(16) != 16 || &h[36..40] != b"data" {
        return Err(not_wav("not the layout this writer writes"));
    }
    if u16_at(20) != 1 || u16_at(22) != 1 || u16_at(34) != BYTES_PER_SAMPLE * 8 {
        return Err(not_wav("not 16-bit mono PCM"));
    }
    let rate = u32_at(24);
    let len = file
        .metadata()
        .map_err(io_err("cannot read the length of", path))?
        .len();
    let block = u64::from(BYTES_PER_SAMPLE);
    let data = (len - HEADER_LEN) / block * block;
    let data_len = u32::try_from(data).unwrap_or(u32::MAX / 2 * 2);
    let fixed = header(rate, data_len);
    let repaired = fixed != h || HEADER_LEN + u64::from(data_len) != len;
    if repaired {
        file.set_len(HEADER_LEN + u64::from(data_len))
            .map_err(io_err("cannot truncate", path))?;
        file.write_all_at(&fixed, 0)
            .map_err(io_err("cannot write", path))?;
        file.sync_all().map_err(io_err("cannot sync", path))?;
    }
    Ok(Recovered {
        samples: u64::from(data_len) / block,
        rate,
        repaired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_of_a_second_at_8_khz() {
        let h = header(8000, 16_000);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([h[4], h[5], h[6], h[7]]), 16_036);
        assert_eq!(&h[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes([h[28], h[29], h[30], h[31]]), 16_000);
        assert_eq!(u32::from_le_bytes([h[40], h[41], h[42], h[43]]), 16_000);
    }
}
