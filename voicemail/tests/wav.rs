//! The durable WAV writer: a file is a valid WAV of everything up to the last second at any
//! moment; a file cut anywhere (a crash during an append, a torn sample, a header never
//! updated) is repaired from its length; the results read back with hound.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pbx_voicemail::wav::{HEADER_LEN, Recovered, WavError, WavWriter, header, recover};

fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pbx-wav-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

/// A recognisable signal: sample n is n mod 32768 with a sign pattern.
fn signal(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| ((i * 37) % 30_000) as i16 - 15_000)
        .collect()
}

fn read(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let samples = r
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{e}"));
    (spec, samples)
}

/// Writes `secs` of 20 ms packets from `t0`, without finishing (as a crash leaves it).
fn record_without_finishing(path: &Path, packets: usize, sig: &[i16]) -> Instant {
    let start = t0();
    let mut w = WavWriter::create(path, 8000, start).unwrap_or_else(|e| panic!("{e}"));
    for (i, chunk) in sig.chunks(160).take(packets).enumerate() {
        let now = start + Duration::from_millis(20 * i as u64 + 20);
        w.write(now, chunk).unwrap_or_else(|e| panic!("{e}"));
    }
    // kill -9: nothing else runs (the descriptor closes, nothing is flushed).
    drop(w);
    start
}

#[test]
fn a_finished_file_reads_back_whole() {
    let d = dir("finished");
    let path = d.join("msg.wav");
    let sig = signal(8000 * 3 + 80);
    let start = t0();
    let mut w = WavWriter::create(&path, 8000, start).unwrap_or_else(|e| panic!("{e}"));
    for (i, chunk) in sig.chunks(160).enumerate() {
        w.write(start + Duration::from_millis(20 * i as u64), chunk)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(w.duration(), Duration::from_millis(3010));
    let n = w
        .finish(start + Duration::from_secs(4))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, sig.len() as u64);
    let (spec, got) = read(&path);
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 8000, 16)
    );
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    assert_eq!(got, sig);
    // Nothing to repair in a finished file.
    assert_eq!(
        recover(&path).ok(),
        Some(Recovered {
            samples: n,
            rate: 8000,
            repaired: false
        })
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_recording_never_overwrites() {
    let d = dir("exists");
    let path = d.join("msg.wav");
    std::fs::write(&path, b"earlier").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        WavWriter::create(&path, 8000, t0()),
        Err(WavError::Io { .. })
    ));
    assert_eq!(std::fs::read(&path).ok(), Some(b"earlier".to_vec()));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_crash_keeps_everything_up_to_the_last_second_as_a_valid_wav() {
    let d = dir("crash");
    let path = d.join("msg.wav");
    let sig = signal(8000 * 3);
    // 2.5 s written in 20 ms packets: synced at 1 s and 2 s, the last half second in memory.
    record_without_finishing(&path, 125, &sig);
    let (_, got) = read(&path);
    assert!(
        got.len() >= 2 * 8000 - 160,
        "{} samples survived",
        got.len()
    );
    assert!(got.len() <= 125 * 160);
    assert_eq!(got[..], sig[..got.len()], "the same audio, in order");
    // The header already matches: the file needs no repair.
    assert!(recover(&path).is_ok_and(|r| !r.repaired));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn truncated_anywhere_the_header_is_repaired_from_the_length() {
    let d = dir("truncate");
    let sig = signal(8000 * 3);
    let full = d.join("full.wav");
    record_without_finishing(&full, 150, &sig);
    let bytes = std::fs::read(&full).unwrap_or_else(|e| panic!("{e}"));
    let data = bytes.len() - HEADER_LEN as usize;
    // A crash between an append and the header update: more data than the header says,
    // cut at every kind of place (mid-sample too).
    for cut in [0, 1, 2, 3, 1001, data / 2, data - 1] {
        let path = d.join(format!("cut-{cut}.wav"));
        let mut b = bytes[..HEADER_LEN as usize + cut].to_vec();
        // The header as of an earlier sync (claims less), or as of none (claims 0).
        let claimed = u32::try_from(cut / 4).unwrap_or(0) & !1;
        b[..HEADER_LEN as usize].copy_from_slice(&header(8000, claimed));
        std::fs::write(&path, &b).unwrap_or_else(|e| panic!("{e}"));
        let r = recover(&path).unwrap_or_else(|e| panic!("{cut}: {e}"));
        assert_eq!(r.samples, (cut / 2) as u64, "cut at {cut}");
        assert_eq!(r.rate, 8000);
        assert_eq!(r.repaired, cut > 0, "cut at {cut}");
        let (_, got) = read(&path);
        assert_eq!(got[..], sig[..cut / 2], "cut at {cut}");
        // Idempotent.
        assert!(recover(&path).is_ok_and(|r| !r.repaired && r.samples == (cut / 2) as u64));
    }
    // A header claiming more than is there (the data cut after the header was written).
    let path = d.join("short.wav");
    let mut b = bytes[..HEADER_LEN as usize + 3000].to_vec();
    b[..HEADER_LEN as usize].copy_from_slice(&header(8000, 40_000));
    std::fs::write(&path, &b).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recover(&path).ok().map(|r| r.samples), Some(1500));
    assert_eq!(read(&path).1[..], sig[..1500]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn what_cannot_be_repaired_is_an_error() {
    let d = dir("bad");
    let short = d.join("short.wav");
    std::fs::write(&short, &header(8000, 0)[..20]).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(recover(&short), Err(WavError::NotWav { .. })));
    let text = d.join("text.wav");
    std::fs::write(&text, [b'x'; 100]).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(recover(&text), Err(WavError::NotWav { .. })));
    // A µ-law prompt is a WAV, but not one this writer wrote.
    let prompt = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sounds/en/beep.wav");
    let copy = d.join("beep.wav");
    std::fs::copy(&prompt, &copy).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(recover(&copy), Err(WavError::NotWav { .. })));
    assert!(matches!(
        recover(&d.join("missing.wav")),
        Err(WavError::Io { .. })
    ));
    // Nothing was changed by a failed repair.
    let len = OpenOptions::new()
        .read(true)
        .open(&copy)
        .and_then(|f| f.metadata())
        .map(|m| m.len());
    assert_eq!(len.ok(), std::fs::metadata(&prompt).ok().map(|m| m.len()));
    let _ = std::fs::remove_dir_all(&d);
}
