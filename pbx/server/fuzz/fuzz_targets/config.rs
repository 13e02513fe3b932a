//! Any text as `pbx.toml`: the loader never panics, and every problem it reports carries the
//! file's path with a line and a column (`path:line:col: message`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent-fuzz/pbx.toml");
    match pbx::config::load_str(text, path, Path::new("/nonexistent-fuzz")) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(errors) => {
            let shown = errors.to_string();
            assert!(!shown.is_empty(), "an error without a message");
            for line in shown.lines() {
                let rest = line
                    .strip_prefix("/nonexistent-fuzz/pbx.toml:")
                    .unwrap_or_else(|| panic!("no path in `{line}`"));
                let mut parts = rest.splitn(3, ':');
                let line_no = parts.next().and_then(|l| l.parse::<u32>().ok());
                let col_no = parts.next().and_then(|c| c.parse::<u32>().ok());
                assert!(
                    line_no.is_some_and(|l| l >= 1) && col_no.is_some_and(|c| c >= 1),
                    "no line:col in `{line}`"
                );
            }
        }
    }
});
