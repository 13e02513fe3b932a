//! Prompts by name, from the admin's folder first and the committed `sounds/` after: a file
//! in the admin's folder overrides the one of the same name (`en/vm-intro.wav`), any name it
//! lacks falls back. Loaded as 8 kHz linear PCM, which the media player encodes to the leg's
//! codec, and kept in memory once loaded (prompts are small: all of them are 3 MB of
//! µ-law, 6 MB as PCM).
//!
//! WAV files of 16-bit PCM, µ-law or A-law, mono, 8000 Hz are taken (sounds/README.md tells
//! admins how to convert theirs). Like [`crate::wav`], this module does I/O, for the shell.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pbx_media::g711::Law;

/// The sample rate every prompt must have.
pub const RATE: u32 = 8000;

#[derive(Debug, thiserror::Error)]
pub enum SoundError {
    #[error("bad prompt name `{0}`: letters, digits, `-`, `_`, `.` and `/` between names only")]
    BadName(String),
    #[error("no prompt `{name}` in {}", .searched.join(", "))]
    NotFound { name: String, searched: Vec<String> },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {why}", path.display())]
    Format { path: PathBuf, why: String },
}

/// The prompt folders of one language.
#[derive(Debug)]
pub struct Sounds {
    /// Searched in order: the admin's folder, then the committed one.
    dirs: Vec<PathBuf>,
    language: String,
    cache: Mutex<HashMap<String, Arc<[i16]>>>,
}

/// Whether `name` is a relative path of plain components (no `..`, no root, nothing empty):
/// names come from the dialplan and must not reach outside the sound folders.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

impl Sounds {
    /// `builtin` is the committed `sounds/`; `overrides` the admin's folder, if any; both
    /// laid out alike (`en/...`, `moh/...`).
    pub fn new(builtin: PathBuf, overrides: Option<PathBuf>, language: &str) -> Sounds {
        Sounds {
            dirs: overrides.into_iter().chain([builtin]).collect(),
            language: language.to_string(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The file that plays for `name`: `{dir}/{language}/{name}.wav`, or `{dir}/{name}.wav`
    /// for what is not spoken (`moh/...`), the admin's folder first.
    pub fn path(&self, name: &str) -> Result<PathBuf, SoundError> {
        if !name_ok(name) {
            return Err(SoundError::BadName(name.to_string()));
        }
        let file = format!("{name}.wav");
        let mut searched = Vec::new();
        for dir in &self.dirs {
            for candidate in [dir.join(&self.language).join(&file), dir.join(&file)] {
                if candidate.is_file() {
                    return Ok(candidate);
                }
                searched.push(candidate.display().to_string());
            }
        }
        Err(SoundError::NotFound {
            name: name.to_string(),
            searched,
        })
    }

    /// The prompt's audio, 8 kHz PCM; read once, then from memory.
    pub fn load(&self, name: &str) -> Result<Arc<[i16]>, SoundError> {
        if let Some(pcm) = self.cached(name) {
            return Ok(pcm);
        }
        let pcm: Arc<[i16]> = read_wav(&self.path(name)?)?.into();
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(name.to_string(), pcm.clone());
        }
        Ok(pcm)
    }

    fn cached(&self, name: &str) -> Option<Arc<[i16]>> {
        self.cache.lock().ok()?.get(name).cloned()
    }

    /// Forgets what was loaded (after the admin changed files).
    pub fn clear(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }
}

/// An 8 kHz mono WAV (16-bit PCM, µ-law or A-law) as linear PCM: prompts, greetings,
/// messages.
pub fn read_wav(path: &Path) -> Result<Vec<i16>, SoundError> {
    let bytes = std::fs::read(path).map_err(|source| SoundError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |why: &str| SoundError::Format {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("not a WAV file"));
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let body = &bytes[at + 8..bytes.len().min(at + 8 + size)];
        if id == b"fmt " {
            let [t0, t1, c0, c1, r0, r1, r2, r3, _, _, _, _, _, _, b0, b1, ..] = *body else {
                return Err(bad("its fmt chunk is too short"));
            };
            format = Some((
                u16::from_le_bytes([t0, t1]),
                u16::from_le_bytes([c0, c1]),
                u32::from_le_bytes([r0, r1, r2, r3]),
                u16::from_le_bytes([b0, b1]),
            ));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or_else(|| bad("data before fmt"))?;
            if channels != 1 || rate != RATE {
                return Err(bad(&format!(
                    "{channels} channel(s) at {rate} Hz; prompts must be mono at 8000 Hz \
                     (sox in.wav -r 8000 -c 1 -b 16 out.wav)"
                )));
            }
            // A file cut short (its size says more than is there) plays what is there.
            return match (tag, bits) {
                (1, 16) => Ok(body
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect()),
                (6, 8) => Ok(body.iter().map(|&c| Law::A.decode(c)).collect()),
                (7, 8) => Ok(body.iter().map(|&c| Law::Mu.decode(c)).collect()),
                _ => Err(bad(&format!(
                    "WAV format {tag} with {bits}-bit samples; 16-bit PCM, µ-law or A-law \
                     are taken"
                ))),
            };
        }
        at = at
            .saturating_add(8)
            .saturating_add(size)
            .saturating_add(size & 1);
    }
    Err(bad("no data chunk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_folders() {
        for ok in [
            "vm-login",
            "digits/7",
            "moh/manolo_camp-morning_coffee",
            "a.b",
        ] {
            assert!(name_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "digits/../../x",
            "/etc/passwd",
            "a//b",
            "a/",
            ".",
            "a b",
            "a\\b",
            "vm-login\0",
        ] {
            assert!(!name_ok(bad), "{bad:?}");
        }
    }
}
