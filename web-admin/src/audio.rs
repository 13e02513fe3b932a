//! Voicemail audio on disk: the WAV file a message row names, served only when it lies under
//! the `[voicemail] storage` folder (a tampered row must not read `/etc/shadow`), whole or
//! as one byte range (browsers seek with `Range`), and deleted with its message.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("the PBX has no voicemail storage folder configured")]
    NoStorage,
    /// The row names a file outside the storage folder (or one that is not a file).
    #[error("the message's audio is not in the voicemail storage folder")]
    Outside,
    #[error("the message's audio file is missing")]
    Missing,
    #[error("reading the message's audio failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The row's `path` as a file that exists under `storage`, symlinks resolved.
pub fn resolve(storage: Option<&Path>, path: &str) -> Result<PathBuf, AudioError> {
    let storage = storage.ok_or(AudioError::NoStorage)?;
    let root = storage.canonicalize().map_err(|_| AudioError::NoStorage)?;
    let file = Path::new(path).canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => AudioError::Missing,
        _ => AudioError::Io(e),
    })?;
    // After canonicalize neither has `..` left: a prefix test is a containment test.
    if file.starts_with(&root) && file != root && file.is_file() {
        Ok(file)
    } else {
        Err(AudioError::Outside)
    }
}

/// Deletes the message's file when it lies under `storage`; a file already gone is fine.
/// Anything else (outside the folder, no storage) is reported and the file left alone.
pub async fn remove(storage: Option<&Path>, path: &str) -> Result<(), AudioError> {
    match resolve(storage, path) {
        Ok(file) => Ok(tokio::fs::remove_file(file).await?),
        Err(AudioError::Missing) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One satisfiable range of a `len`-byte file, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

/// What a `Range` header asks of a `len`-byte file (RFC 9110 §14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No header, another unit, several ranges or a malformed one: the whole file (a server
    /// may ignore `Range`, RFC 9110 §14.2).
    Whole,
    Part(ByteRange),
    /// 416: the range starts past the end.
    Unsatisfiable,
}

pub fn parse_range(header: Option<&str>, len: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let number = |t: &str| t.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), number(a), number(b)) {
        // `bytes=-N`: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(ByteRange {
                    first: len.saturating_sub(n),
                    last: len - 1,
                })
            }
        }
        (false, Some(first), last) if b.trim().is_empty() || last.is_some() => {
            if first >= len {
                return RangeAsk::Unsatisfiable;
            }
            let last = last.map_or(len - 1, |l| l.min(len - 1));
            if last < first {
                return RangeAsk::Whole;
            }
            RangeAsk::Part(ByteRange { first, last })
        }
        _ => RangeAsk::Whole,
    }
}

/// The WAV as a response: 200 whole, 206 with `Content-Range`, or 416. `download` names it
/// as an attachment (`filename`), else it plays inline.
pub fn response(bytes: Vec<u8>, range: Option<&str>, filename: &str, download: bool) -> Response {
    let len = bytes.len() as u64;
    let disposition = format!(
        "{}; filename=\"{filename}\"",
        if download { "attachment" } else { "inline" }
    );
    let mut response = match parse_range(range, len) {
        RangeAsk::Whole => (StatusCode::OK, Body::from(bytes)).into_response(),
        RangeAsk::Part(ByteRange { first, last }) => {
            // Both ends are within `len`, which is `bytes.len()`.
            let part = bytes
                .get(first as usize..=last as usize)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let mut r = (StatusCode::PARTIAL_CONTENT, Body::from(part)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        RangeAsk::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let part = |first, last| RangeAsk::Part(ByteRange { first, last });
        assert_eq!(parse_range(None, 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-"), 100), part(0, 99));
        assert_eq!(parse_range(Some("bytes=10-19"), 100), part(10, 19));
        assert_eq!(parse_range(Some("bytes=90-500"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), part(90, 99));
        assert_eq!(parse_range(Some("bytes=-500"), 100), part(0, 99));
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            RangeAsk::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=-0"), 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=5-1"), 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=x-1"), 100), RangeAsk::Whole);
    }

    #[test]
    fn only_files_under_the_storage() {
        let dir = std::env::temp_dir().join(format!("pbx-web-audio-{}", std::process::id()));
        let storage = dir.join("vm");
        let _ = std::fs::create_dir_all(storage.join("1001"));
        let inside = storage.join("1001/a.wav");
        let outside = dir.join("secret.txt");
        std::fs::write(&inside, b"RIFF").ok();
        std::fs::write(&outside, b"secret").ok();
        let s = Some(storage.as_path());
        assert!(resolve(s, &inside.to_string_lossy()).is_ok());
        let sneaky = storage.join("1001/../../secret.txt");
        assert!(matches!(
            resolve(s, &sneaky.to_string_lossy()),
            Err(AudioError::Outside)
        ));
        assert!(matches!(
            resolve(s, &outside.to_string_lossy()),
            Err(AudioError::Outside)
        ));
        assert!(matches!(
            resolve(s, &storage.to_string_lossy()),
            Err(AudioError::Outside)
        ));
        assert!(matches!(
            resolve(s, &storage.join("1001/gone.wav").to_string_lossy()),
            Err(AudioError::Missing)
        ));
        assert!(matches!(
            resolve(None, &inside.to_string_lossy()),
            Err(AudioError::NoStorage)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
