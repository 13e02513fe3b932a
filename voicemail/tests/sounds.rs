//! Prompts by name: the committed sounds/ decode, the admin's folder overrides by name and
//! falls back for the rest, bad names and bad files are refused; and every prompt the
//! machines can ask for exists in sounds/en.

use std::path::{Path, PathBuf};

use pbx_voicemail::sounds::{SoundError, Sounds, read_wav};

fn builtin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sounds")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pbx-sounds-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("en/digits")).unwrap_or_else(|e| panic!("{e}"));
    d
}

fn write_pcm(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap_or_else(|e| panic!("{e}"));
    for &s in samples {
        w.write_sample(s).unwrap_or_else(|e| panic!("{e}"));
    }
    w.finalize().unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn committed_prompts_decode_from_mu_law() {
    let sounds = Sounds::new(builtin(), None, "en");
    let login = sounds.load("vm-login").unwrap_or_else(|e| panic!("{e}"));
    // 2.54 s at 8 kHz, one byte a sample in the file.
    let file = std::fs::metadata(builtin().join("en/vm-login.wav")).map(|m| m.len());
    assert!(file.is_ok_and(|len| len > login.len() as u64 && len < login.len() as u64 + 100));
    assert!(
        login.iter().any(|&s| s.unsigned_abs() > 5000),
        "speech, not silence"
    );
    assert!(sounds.load("digits/7").is_ok_and(|p| p.len() > 4000));
    assert!(
        sounds
            .load("moh/manolo_camp-morning_coffee")
            .is_ok_and(|p| p.len() > 8000 * 60)
    );
    // Loaded once: the same buffer again.
    let again = sounds.load("vm-login").unwrap_or_else(|e| panic!("{e}"));
    assert!(std::sync::Arc::ptr_eq(&login, &again));
}

#[test]
fn the_admins_folder_overrides_by_name() {
    let admin = dir("override");
    write_pcm(&admin.join("en/vm-intro.wav"), 8000, 1, &[1000; 800]);
    write_pcm(&admin.join("en/digits/5.wav"), 8000, 1, &[-7; 80]);
    let sounds = Sounds::new(builtin(), Some(admin.clone()), "en");
    assert_eq!(
        sounds.path("vm-intro").ok(),
        Some(admin.join("en/vm-intro.wav"))
    );
    assert_eq!(
        sounds.load("vm-intro").ok().as_deref(),
        Some(&[1000i16; 800][..])
    );
    assert_eq!(sounds.load("digits/5").ok().map(|p| p.len()), Some(80));
    // What the admin lacks comes from sounds/.
    assert_eq!(
        sounds.path("vm-login").ok(),
        Some(builtin().join("en/vm-login.wav"))
    );
    let _ = std::fs::remove_dir_all(&admin);
}

#[test]
fn bad_names_missing_prompts_and_bad_files_are_errors() {
    let admin = dir("bad");
    let sounds = Sounds::new(builtin(), Some(admin.clone()), "en");
    for name in ["../sounds/en/beep", "/etc/passwd", "digits//1", ""] {
        assert!(
            matches!(sounds.load(name), Err(SoundError::BadName(_))),
            "{name}"
        );
    }
    match sounds.load("no-such-prompt") {
        Err(SoundError::NotFound { searched, .. }) => assert_eq!(searched.len(), 4),
        other => panic!("{other:?}"),
    }
    write_pcm(&admin.join("en/stereo.wav"), 8000, 2, &[0; 100]);
    write_pcm(&admin.join("en/cd.wav"), 44_100, 1, &[0; 100]);
    std::fs::write(admin.join("en/text.wav"), "hello").unwrap_or_else(|e| panic!("{e}"));
    for name in ["stereo", "cd", "text"] {
        let err = sounds.load(name);
        assert!(
            matches!(err, Err(SoundError::Format { .. })),
            "{name}: {err:?}"
        );
    }
    let msg = sounds
        .load("cd")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(msg.contains("44100 Hz") && msg.contains("sox"), "{msg}");
    let _ = std::fs::remove_dir_all(&admin);
}

#[test]
fn a_recording_cut_short_plays_what_is_there() {
    let d = dir("cut");
    let path = d.join("msg.wav");
    write_pcm(&path, 8000, 1, &[300; 1000]);
    let bytes = std::fs::read(&path).unwrap_or_default();
    std::fs::write(&path, &bytes[..bytes.len() - 1001]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_wav(&path).ok().map(|p| p.len()), Some(499));
    let _ = std::fs::remove_dir_all(&d);
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
    let sounds = Sounds::new(builtin(), None, "en");
    let missing: Vec<&String> = names.iter().filter(|n| sounds.path(n).is_err()).collect();
    assert!(missing.is_empty(), "missing prompts: {missing:?}");
}
