//! The prompts the PBX plays, by name (`demo-menu`, `digits/3`, `vm-youhave`,
//! `moh/manolo_camp-morning_coffee`): the admin's folder (`[voicemail] sounds`, laid out like
//! `sounds/`: `en/vm-intro.wav`) first, so a recording of their own replaces one by name, then
//! the English set built into the binary from `sounds/` (see `sounds/README.md`).
//! Each is decoded to 8 kHz PCM once and kept.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pbx_engine::RINGBACK;
use pbx_media::wav::{self, WavError};

include!(concat!(env!("OUT_DIR"), "/prompts.rs"));

/// The language folder of the built-in set.
const LANGUAGE: &str = "en";

/// Why a prompt cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("bad prompt name `{0}`: letters, digits, `-`, `_`, `.` and `/` between names")]
    Name(String),
    #[error("no prompt `{0}`")]
    Missing(String),
    #[error("prompt `{name}` ({path}): {source}")]
    Unplayable {
        name: String,
        path: String,
        source: WavError,
    },
}

/// The prompt library.
pub struct Prompts {
    /// The admin's folder, if any.
    dir: Option<PathBuf>,
    cache: Mutex<HashMap<String, Arc<[i16]>>>,
}

impl Prompts {
    pub fn new(dir: Option<PathBuf>) -> Prompts {
        Prompts {
            dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The prompt `name` as 8 kHz linear PCM.
    pub fn get(&self, name: &str) -> Result<Arc<[i16]>, PromptError> {
        if !valid_name(name) {
            return Err(PromptError::Name(name.to_string()));
        }
        if let Some(pcm) = self.cached(name) {
            return Ok(pcm);
        }
        let pcm: Arc<[i16]> = self.load(name)?.into();
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(name.to_string(), pcm.clone());
        }
        Ok(pcm)
    }

    fn cached(&self, name: &str) -> Option<Arc<[i16]>> {
        self.cache.lock().ok()?.get(name).cloned()
    }

    fn load(&self, name: &str) -> Result<Vec<i16>, PromptError> {
        let unplayable = |path: String, source| PromptError::Unplayable {
            name: name.to_string(),
            path,
            source,
        };
        let built_in = |key: &str| BUILT_IN.iter().find(|(n, _)| *n == key).map(|(_, b)| *b);
        // Spoken prompts live in the language's folder (`en/vm-intro`); music on hold and the
        // like beside it (`moh/...`). The admin's folder is laid out like `sounds/`.
        let language_key = format!("{LANGUAGE}/{name}");
        let key = if built_in(&language_key).is_some() || !name.contains('/') {
            language_key
        } else {
            name.to_string()
        };
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{key}.wav"));
            if let Ok(bytes) = std::fs::read(&path) {
                return wav::decode(&bytes).map_err(|e| unplayable(path.display().to_string(), e));
            }
        }
        if name == RINGBACK {
            return Ok(ringback());
        }
        let bytes = built_in(&key).ok_or_else(|| PromptError::Missing(name.to_string()))?;
        wav::decode(bytes).map_err(|e| unplayable(format!("built-in {key}"), e))
    }
}

/// The ringing tone a caller hears while devices ring (ITU-T E.180: 425 Hz, 1 s on, 4 s
/// off, as most of Europe), for a minute; an admin's `tone/ringback.wav` replaces it.
fn ringback() -> Vec<i16> {
    const RATE: f64 = 8000.0;
    // About -16 dBm0: clearly audible, well below the prompts' speech peaks.
    const AMPLITUDE: f64 = 4000.0;
    let period = 5 * 8000;
    (0..60 * 8000)
        .map(|n: usize| {
            if n % period < 8000 {
                let t = n as f64 / RATE;
                (AMPLITUDE * (2.0 * std::f64::consts::PI * 425.0 * t).sin()) as i16
            } else {
                0
            }
        })
        .collect()
}

/// Names below the folder: no absolute path, no `..`, nothing a shell or a path could abuse.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_prompts_are_found_by_name() {
        let prompts = Prompts::new(None);
        let menu = prompts.get("demo-menu").expect("demo-menu");
        assert!(menu.len() > 8000, "several seconds of speech");
        assert!(prompts.get("digits/7").is_ok());
        let ring = prompts.get(RINGBACK).expect("ringback");
        assert_eq!(ring.len(), 60 * 8000);
        assert!(
            ring[..8000].iter().any(|&s| s > 3000) && ring[8000..40000].iter().all(|&s| s == 0)
        );
        assert!(matches!(
            prompts.get("no-such"),
            Err(PromptError::Missing(_))
        ));
        for bad in ["../etc/passwd", "/etc/passwd", "a//b", "a b", ""] {
            assert!(
                matches!(prompts.get(bad), Err(PromptError::Name(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_admins_folder_overrides_by_name() {
        let dir = std::env::temp_dir().join(format!("pbx-prompts-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("en/digits")).expect("dir");
        std::fs::write(dir.join("en/beep.wav"), wav::encode_pcm(&[7; 80])).expect("write");
        std::fs::write(dir.join("en/digits/5.wav"), wav::encode_pcm(&[-7; 40])).expect("write");
        std::fs::write(dir.join("en/broken.wav"), b"not a wav").expect("write");
        let prompts = Prompts::new(Some(dir.clone()));
        assert_eq!(&*prompts.get("beep").expect("beep"), &[7i16; 80][..]);
        assert_eq!(&*prompts.get("digits/5").expect("5"), &[-7i16; 40][..]);
        assert!(prompts.get("digits/6").expect("built in").len() > 800);
        assert!(
            prompts
                .get("moh/manolo_camp-morning_coffee")
                .expect("moh")
                .len()
                > 8000 * 60
        );
        assert!(prompts.get("vm-youhave").expect("built in").len() > 800);
        assert!(matches!(
            prompts.get("broken"),
            Err(PromptError::Unplayable { .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
