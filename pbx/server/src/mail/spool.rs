//! The mail spool: one `ID.eml` (the message) and `ID.json` (its envelope) per mail, written
//! to a temporary name, synced and renamed, so a crash leaves a whole mail or none.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::MailError;
use super::compose::Envelope;

pub struct Spool {
    dir: PathBuf,
    next: AtomicU64,
}

impl Spool {
    pub fn open(dir: PathBuf) -> Result<Spool, MailError> {
        std::fs::create_dir_all(&dir).map_err(|source| error(&dir, source))?;
        Ok(Spool {
            dir,
            next: AtomicU64::new(0),
        })
    }

    /// Stores a mail; its id sorts after every earlier one.
    pub fn put(&self, envelope: &Envelope, bytes: &[u8]) -> Result<String, MailError> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{millis:015}-{}-{n:06}", std::process::id());
        let json = serde_json::to_vec(envelope).map_err(|e| MailError::Build(e.to_string()))?;
        // The envelope last: a mail is listed by its `.json`.
        self.write(&format!("{id}.eml"), bytes)?;
        self.write(&format!("{id}.json"), &json)?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(id)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), MailError> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(name);
        let mut file = std::fs::File::create(&tmp).map_err(|source| error(&tmp, source))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|source| error(&tmp, source))?;
        std::fs::rename(&tmp, &path).map_err(|source| error(&path, source))
    }

    /// The ids of the mails waiting, oldest first.
    pub fn list(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json")
                    .filter(|id| !id.starts_with('.'))
                    .map(str::to_owned)
            })
            .collect();
        ids.sort();
        ids
    }

    pub fn len(&self) -> usize {
        self.list().len()
    }

    pub fn get(&self, id: &str) -> Result<(Envelope, Vec<u8>), MailError> {
        let json_path = self.dir.join(format!("{id}.json"));
        let json = std::fs::read(&json_path).map_err(|source| error(&json_path, source))?;
        let envelope: Envelope = serde_json::from_slice(&json)
            .map_err(|e| MailError::Build(format!("{}: {e}", json_path.display())))?;
        let eml = self.dir.join(format!("{id}.eml"));
        let bytes = std::fs::read(&eml).map_err(|source| error(&eml, source))?;
        Ok((envelope, bytes))
    }

    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.json")));
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.eml")));
    }
}

fn error(path: &Path, source: std::io::Error) -> MailError {
    MailError::Spool {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mails_survive_reopening_in_order() {
        let dir = std::env::temp_dir().join(format!("pbx-mail-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let envelope = Envelope {
            from: "pbx@pbx.test".into(),
            to: vec!["a@example.com".into()],
        };
        let spool = Spool::open(dir.clone()).expect("open");
        let first = spool.put(&envelope, b"one").expect("put");
        let second = spool.put(&envelope, b"two").expect("put");
        let reopened = Spool::open(dir.clone()).expect("reopen");
        assert_eq!(reopened.list(), [first.clone(), second]);
        assert_eq!(
            reopened.get(&first).expect("get"),
            (envelope, b"one".to_vec())
        );
        reopened.remove(&first);
        assert_eq!(reopened.len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
