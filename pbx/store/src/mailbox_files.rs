//! A mailbox's files on disk: every message, greeting and recorded name of mailbox `N` is in
//! `{[voicemail] storage}/N/`. Removing an extension removes its rows (the store) and these
//! files (the CLI and the web admin call [`remove_mailbox_files`] after the rows are gone).

use std::io;
use std::path::Path;

/// Removes the files in `storage/mailbox/`, then the folder if that leaves it empty; how many
/// files were removed (0 when there is no folder). Only a plain folder named by digits is
/// touched: a symbolic link or anything in a subfolder is left alone.
pub fn remove_mailbox_files(storage: &Path, mailbox: &str) -> io::Result<usize> {
    if mailbox.is_empty() || !mailbox.bytes().all(|b| b.is_ascii_digit()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{mailbox}` is not a mailbox number"),
        ));
    }
    let dir = storage.join(mailbox);
    let meta = match std::fs::symlink_metadata(&dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a folder", dir.display()),
        ));
    }
    let mut removed = 0;
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    // Not empty (a subfolder someone put there): it stays.
    let _ = std::fs::remove_dir(&dir);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_mailboxs_own_files_go() {
        let root = std::env::temp_dir().join(format!("pbx-mailbox-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mine = root.join("1000");
        let other = root.join("1001");
        for dir in [&mine, &other] {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
        }
        for f in [
            "msg-1.wav",
            "msg-1.json",
            "greeting-unavailable-1-2.wav",
            "greeting-name-3-4.wav",
        ] {
            std::fs::write(mine.join(f), b"x").unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(other.join("msg-2.wav"), b"x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(remove_mailbox_files(&root, "1000").ok(), Some(4));
        assert!(!mine.exists());
        assert!(other.join("msg-2.wav").exists());
        // Nothing there: nothing to do.
        assert_eq!(remove_mailbox_files(&root, "1000").ok(), Some(0));
        // Never a path out of the storage folder.
        for bad in ["", "..", "../1001", "1001/.."] {
            assert!(remove_mailbox_files(&mine, bad).is_err(), "{bad}");
        }
        assert!(other.join("msg-2.wav").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
