//! Call records the database could not take, kept on disk until it takes them: a PBX whose
//! database is down (or restarting) loses no CDR, even when it is itself restarted meanwhile.
//!
//! The spool is a JSON-lines file holding every record not yet written, replaced as a whole
//! (written to a temporary file, then renamed) each time it changes, so a crash leaves either
//! the old or the new list, never half of one. It exists only during an outage.

use pbx_store::NewCdr;
use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

pub struct CdrSpool {
    path: PathBuf,
}

/// What [`CdrSpool::load`] found.
#[derive(Debug, Default)]
pub struct Spooled {
    pub records: Vec<NewCdr>,
    /// Lines that are not a record (a file edited by hand, a disk error): kept aside in
    /// `<spool>.bad`, never silently dropped.
    pub unreadable: usize,
}

impl CdrSpool {
    pub fn new(path: PathBuf) -> CdrSpool {
        CdrSpool { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records left by an earlier run (none when there is no spool file).
    pub fn load(&self) -> io::Result<Spooled> {
        let file = match fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Spooled::default()),
            Err(e) => return Err(e),
        };
        let mut spooled = Spooled::default();
        let mut bad = Vec::new();
        for line in io::BufReader::new(file).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<NewCdr>(&line) {
                Ok(record) => spooled.records.push(record),
                Err(_) => bad.push(line),
            }
        }
        if !bad.is_empty() {
            spooled.unreadable = bad.len();
            let mut aside = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path.with_extension("bad"))?;
            for line in bad {
                writeln!(aside, "{line}")?;
            }
        }
        Ok(spooled)
    }

    /// Makes the spool hold exactly `records` (removes it when there are none).
    pub fn replace(&self, records: &[NewCdr]) -> io::Result<()> {
        if records.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let temporary = self.path.with_extension("tmp");
        {
            let mut out = io::BufWriter::new(fs::File::create(&temporary)?);
            for record in records {
                serde_json::to_writer(&mut out, record).map_err(io::Error::other)?;
                out.write_all(b"\n")?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        fs::rename(&temporary, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> NewCdr {
        NewCdr {
            call_id: format!("call-{n}"),
            caller: "1001".into(),
            called: "1002".into(),
            started_at: 1_700_000_000 + n,
            answered_at: Some(1_700_000_001 + n),
            ended_at: 1_700_000_010 + n,
            duration_secs: 9,
            disposition: "answered".into(),
            hangup_cause: "BYE".into(),
            hangup_side: "caller".into(),
            codec: Some("PCMU".into()),
            caller_encrypted: true,
            callee_encrypted: false,
            trunk: String::new(),
        }
    }

    fn spool() -> (tempdir::Dir, CdrSpool) {
        let dir = tempdir::Dir::new();
        let spool = CdrSpool::new(dir.0.join("spool").join("cdr-spool.jsonl"));
        (dir, spool)
    }

    #[test]
    fn records_survive_a_round_trip_and_an_empty_list_removes_the_file() {
        let (_dir, spool) = spool();
        assert!(spool.load().expect("load").records.is_empty());
        let records = vec![record(1), record(2)];
        spool.replace(&records).expect("replace");
        assert_eq!(spool.load().expect("load").records, records);
        spool.replace(&records[1..]).expect("replace");
        assert_eq!(spool.load().expect("load").records, vec![record(2)]);
        spool.replace(&[]).expect("clear");
        assert!(!spool.path().exists());
    }

    #[test]
    fn unreadable_lines_are_kept_aside_not_lost() {
        let (_dir, spool) = spool();
        spool.replace(&[record(1)]).expect("replace");
        let mut text = fs::read_to_string(spool.path()).expect("read");
        text.push_str("{not a record\n");
        fs::write(spool.path(), text).expect("write");
        let loaded = spool.load().expect("load");
        assert_eq!(loaded.records, vec![record(1)]);
        assert_eq!(loaded.unreadable, 1);
        let aside = fs::read_to_string(spool.path().with_extension("bad")).expect("bad file");
        assert_eq!(aside, "{not a record\n");
    }

    /// A temporary folder removed at the end of the test.
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);

        impl Dir {
            pub fn new() -> Dir {
                let name = format!(
                    "pbx-cdr-spool-{}-{:?}",
                    std::process::id(),
                    std::thread::current().id()
                );
                let path = std::env::temp_dir().join(name.replace(['(', ')'], ""));
                let _ = std::fs::remove_dir_all(&path);
                Dir(path)
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
