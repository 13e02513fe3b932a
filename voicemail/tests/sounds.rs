//! Every prompt the machines can ask for exists in sounds/en (the server's prompt library
//! builds them into the binary and plays them by these names).

use std::path::{Path, PathBuf};

fn builtin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sounds")
}

/// Every prompt name written in the machines' source exists in sounds/en, and every word the
/// say helpers can use exists in sounds/en/digits: a missing file would be silence in a call.
#[test]
fn every_prompt_the_machines_use_is_committed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names = Vec::new();
    for file in ["leave.rs", "menu.rs", "io.rs", "say.rs"] {
        let text = std::fs::read_to_string(src.join(file)).unwrap_or_default();
        for quoted in text.split('"').skip(1).step_by(2) {
            let known = ["vm-", "beep", "im-sorry", "auth-"];
            if known.iter().any(|p| quoted.starts_with(p))
                && quoted
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                names.push(quoted.to_string());
            }
        }
    }
    assert!(names.len() > 50, "{names:?}");
    let mut words: Vec<String> = (0..=20)
        .chain((30..=90).step_by(10))
        .map(|n| n.to_string())
        .collect();
    words.extend((0..7).map(|d| format!("day-{d}")));
    words.extend((0..12).map(|m| format!("mon-{m}")));
    words.extend((1..=20).chain([30]).map(|d| format!("h-{d}")));
    for w in [
        "hundred",
        "thousand",
        "million",
        "billion",
        "star",
        "pound",
        "oh",
        "oclock",
        "a-m",
        "p-m",
        "at",
        "yesterday",
    ] {
        words.push(w.to_string());
    }
    names.extend(words.iter().map(|w| format!("digits/{w}")));
    let committed = |name: &str| builtin().join("en").join(format!("{name}.wav")).is_file();
    let missing: Vec<&String> = names.iter().filter(|n| !committed(n)).collect();
    assert!(missing.is_empty(), "missing prompts: {missing:?}");
}
