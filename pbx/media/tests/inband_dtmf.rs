//! In-band DTMF on synthetic G.711: every key, the twist, level and duration limits, pauses
//! and drop-outs; and what must never be a key: white noise, speech-like sound (harmonics
//! of a voice shaped by formants, some of them right on DTMF frequencies), and every
//! committed prompt and the music on hold. The signals go through G.711 µ-law or A-law and
//! back, as a phone's audio arrives, in 20 ms packets.

mod relay_support;
mod session_support;

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pbx_media::Side;
use pbx_media::endpoint::dtmf::DtmfSpec;
use pbx_media::endpoint::inband::{InbandDtmf, InbandEvent};
use pbx_media::g711::Law;
use pbx_media::session::{Command, Event, MediaSession};
use relay_support::{addr, base, feed, leg, plan, rtp};
use session_support::events;

const RATE: f64 = 8000.0;
/// The amplitude of a 0 dBm0 sine in 16-bit G.711.
const DBM0: f64 = 22_670.0;

fn key_freqs(key: char) -> (f64, f64) {
    let rows = [697.0, 770.0, 852.0, 941.0];
    let cols = [1209.0, 1336.0, 1477.0, 1633.0];
    let at = "123A456B789C*0#D"
        .find(key)
        .unwrap_or_else(|| panic!("no key {key}"));
    (rows[at / 4], cols[at % 4])
}

fn samples(ms: f64) -> usize {
    (ms * RATE / 1000.0).round() as usize
}

fn amplitude(dbm0: f64) -> f64 {
    DBM0 * 10f64.powf(dbm0 / 20.0)
}

/// A key's two tones: the low one at `low_db`, the high one at `high_db` dBm0.
fn tones(key: char, ms: f64, low_db: f64, high_db: f64) -> Vec<f64> {
    let (lo, hi) = key_freqs(key);
    tones_at(lo, hi, ms, low_db, high_db)
}

fn tones_at(lo: f64, hi: f64, ms: f64, low_db: f64, high_db: f64) -> Vec<f64> {
    let (a, b) = (amplitude(low_db), amplitude(high_db));
    (0..samples(ms))
        .map(|n| {
            let t = n as f64 / RATE;
            a * (TAU * lo * t).sin() + b * (TAU * hi * t).sin()
        })
        .collect()
}

fn key(k: char, ms: f64) -> Vec<f64> {
    tones(k, ms, -10.0, -8.0)
}

fn silence(ms: f64) -> Vec<f64> {
    vec![0.0; samples(ms)]
}

fn concat(parts: &[Vec<f64>]) -> Vec<f64> {
    parts.concat()
}

/// A deterministic noise source (xorshift), roughly Gaussian (sum of uniforms).
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn gaussian(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

/// White noise of `dbm0` power (RMS).
fn noise(ms: f64, dbm0: f64, seed: u64) -> Vec<f64> {
    let mut n = Noise(seed);
    let rms = amplitude(dbm0) / 2f64.sqrt();
    (0..samples(ms)).map(|_| rms * n.gaussian()).collect()
}

fn mix(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// Through a G.711 codec and back, as the detector gets it.
fn g711(law: Law, signal: &[f64]) -> Vec<i16> {
    signal
        .iter()
        .map(|&x| law.decode(law.encode(x.round().clamp(-32768.0, 32767.0) as i16)))
        .collect()
}

/// Feeds `pcm` in 20 ms packets from `t0`; every event, in order.
fn detect(t0: Instant, pcm: &[i16]) -> Vec<InbandEvent> {
    let mut d = InbandDtmf::new();
    let mut got = Vec::new();
    for (i, packet) in pcm.chunks(160).enumerate() {
        let at = t0 + Duration::from_millis(20 * i as u64);
        d.push(at, packet, |e| got.push(e));
    }
    got
}

/// The keys that ended, in order.
fn keys(events: &[InbandEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            InbandEvent::End { digit, .. } => Some(*digit),
            InbandEvent::Start { .. } => None,
        })
        .collect()
}

/// The keys in `signal`, followed by 100 ms of silence (a key ends after a pause).
fn heard(signal: &[f64]) -> String {
    let signal = concat(&[signal.to_vec(), silence(100.0)]);
    keys(&detect(base(), &g711(Law::Mu, &signal)))
}

#[test]
fn all_sixteen_keys_in_order_with_start_and_duration() {
    let all = "123A456B789C*0#D";
    let mut parts = vec![silence(100.0)];
    for k in all.chars() {
        parts.push(key(k, 100.0));
        parts.push(silence(100.0));
    }
    for law in [Law::Mu, Law::A] {
        let t0 = base();
        let got = detect(t0, &g711(law, &concat(&parts)));
        assert_eq!(keys(&got), all, "{law:?}");
        assert_eq!(got.len(), 32, "a start and an end per key: {got:?}");
        for (i, pair) in got.chunks(2).enumerate() {
            let k = all.chars().nth(i).unwrap_or('?');
            let expect_start = t0 + Duration::from_millis(100 + 200 * i as u64);
            let (
                InbandEvent::Start { digit: d1, at },
                InbandEvent::End {
                    digit: d2,
                    duration,
                    ..
                },
            ) = (pair[0], pair[1])
            else {
                panic!("start then end: {pair:?}");
            };
            assert_eq!((d1, d2), (k, k));
            // Block-aligned: within one block (12.75 ms) of the truth.
            let off = if at > expect_start {
                at - expect_start
            } else {
                expect_start - at
            };
            assert!(
                off <= Duration::from_micros(12_750),
                "{k}: start off by {off:?}"
            );
            assert!(
                (Duration::from_millis(87)..=Duration::from_millis(113)).contains(&duration),
                "{k}: {duration:?}"
            );
        }
    }
}

#[test]
fn twist_within_limits_is_taken_beyond_them_is_not() {
    for k in ['1', '5', '9', 'D', '0'] {
        // Normal twist (high group louder) up to 8 dB.
        assert_eq!(
            heard(&tones(k, 80.0, -12.0, -5.0)),
            k.to_string(),
            "{k} +7 dB"
        );
        assert_eq!(heard(&tones(k, 80.0, -16.0, -7.0)), "", "{k} +9 dB");
        // Reverse twist (low group louder) up to 4 dB.
        assert_eq!(
            heard(&tones(k, 80.0, -7.0, -10.5)),
            k.to_string(),
            "{k} -3.5 dB"
        );
        assert_eq!(heard(&tones(k, 80.0, -5.0, -10.0)), "", "{k} -5 dB");
    }
}

#[test]
fn quiet_keys_down_to_minus_30_dbm0_are_taken() {
    assert_eq!(heard(&tones('7', 80.0, -30.0, -30.0)), "7");
    assert_eq!(heard(&tones('7', 80.0, -25.0, -25.0)), "7");
    assert_eq!(
        heard(&tones('7', 80.0, -40.0, -40.0)),
        "",
        "under the threshold"
    );
}

#[test]
fn one_tone_alone_is_no_key() {
    for f in [697.0, 941.0, 1209.0, 1633.0, 1000.0] {
        let t: Vec<f64> = (0..samples(200.0))
            .map(|n| amplitude(-6.0) * (TAU * f * n as f64 / RATE).sin())
            .collect();
        assert_eq!(heard(&t), "", "{f} Hz");
    }
}

#[test]
fn frequencies_off_by_1_5_percent_are_taken() {
    let (lo, hi) = key_freqs('8');
    for dev in [0.985, 1.015] {
        let t = tones_at(lo * dev, hi * dev, 80.0, -10.0, -10.0);
        assert_eq!(heard(&t), "8", "x{dev}");
    }
}

#[test]
fn forty_milliseconds_are_enough_at_any_alignment_twenty_never() {
    for offset in (0..102).step_by(3) {
        let lead = vec![0.0; offset];
        for k in ['3', '#'] {
            let long = concat(&[lead.clone(), key(k, 40.0), silence(100.0)]);
            assert_eq!(heard(&long), k.to_string(), "40 ms {k} at offset {offset}");
            for short_ms in [15.0, 20.0] {
                let short = concat(&[lead.clone(), key(k, short_ms), silence(100.0)]);
                assert_eq!(heard(&short), "", "{short_ms} ms {k} at offset {offset}");
            }
        }
    }
}

#[test]
fn a_pause_of_40_ms_parts_keys_a_10_ms_drop_out_does_not() {
    let twice = concat(&[key('5', 60.0), silence(40.0), key('5', 60.0), silence(60.0)]);
    assert_eq!(heard(&twice), "55");
    let broken = concat(&[key('5', 60.0), silence(10.0), key('5', 60.0), silence(60.0)]);
    let got = detect(base(), &g711(Law::Mu, &broken));
    assert_eq!(keys(&got), "5");
    let Some(InbandEvent::End { duration, .. }) = got.last() else {
        panic!("{got:?}")
    };
    assert!(*duration >= Duration::from_millis(115), "{duration:?}");
    // Another key straight after, without a pause: both.
    let run = concat(&[key('1', 60.0), key('2', 60.0), silence(60.0)]);
    assert_eq!(heard(&run), "12");
}

#[test]
fn keys_in_noise_are_taken_noise_alone_never() {
    let k = concat(&[silence(40.0), key('6', 100.0), silence(100.0)]);
    let n = noise(240.0, -32.0, 7);
    assert_eq!(heard(&mix(&k, &n)), "6", "about 20 dB over the noise");
    for (level, seed) in [(-40.0, 1), (-20.0, 2), (-10.0, 3), (-3.0, 4)] {
        assert_eq!(
            heard(&noise(10_000.0, level, seed)),
            "",
            "noise at {level} dBm0"
        );
    }
}

/// A vowel: the harmonics of a voice at `f0` Hz (which glides by `glide` Hz over the
/// vowel), each weighted by three formant resonances, with a syllable's rise and fall.
fn vowel(f0: f64, glide: f64, formants: [f64; 3], ms: f64, dbm0: f64) -> Vec<f64> {
    let n = samples(ms);
    let gain = |f: f64| {
        formants
            .iter()
            .map(|&fm| {
                let bw = 60.0 + fm * 0.05;
                1.0 / (1.0 + ((f - fm) / bw).powi(2))
            })
            .sum::<f64>()
            / (f / 100.0).max(1.0) // the glottal source falls with frequency
    };
    let mut phase = vec![0.0; 40];
    let mut out = Vec::with_capacity(n);
    let peak = amplitude(dbm0);
    for i in 0..n {
        let frac = i as f64 / n as f64;
        let f = f0 + glide * frac;
        let envelope = (std::f64::consts::PI * frac).sin();
        let mut s = 0.0;
        for (h, ph) in phase.iter_mut().enumerate() {
            let fh = f * (h + 1) as f64;
            if fh > 3800.0 {
                break;
            }
            *ph += TAU * fh / RATE;
            s += gain(fh) * ph.sin();
        }
        out.push(peak * envelope * s / 3.0);
    }
    out
}

#[test]
fn speech_like_sound_is_never_a_key() {
    // Formants of English vowels (Peterson & Barney, men and women), and the worst cases:
    // formants right on a row and a column tone, with harmonics landing on them.
    let vowels = [
        [730.0, 1090.0, 2440.0], // a (father)
        [270.0, 2290.0, 3010.0], // i (beet)
        [530.0, 1840.0, 2480.0], // e (bet)
        [660.0, 1720.0, 2410.0], // ae (bat)
        [300.0, 870.0, 2240.0],  // u (boot)
        [570.0, 840.0, 2410.0],  // o (bought)
        [697.0, 1209.0, 2500.0], // on the key '1'
        [852.0, 1477.0, 2600.0], // on the key '9'
        [941.0, 1336.0, 2500.0], // on the key '0'
    ];
    let voices = [
        (100.0, 20.0),
        (120.0, -15.0),
        (174.25, 0.0),
        (210.0, 30.0),
        (232.5, 0.0),
    ];
    let mut all = Vec::new();
    for (i, v) in vowels.iter().enumerate() {
        for &(f0, glide) in &voices {
            for ms in [120.0, 300.0] {
                let level = -6.0 - (i % 3) as f64 * 6.0;
                all.extend(vowel(f0, glide, *v, ms, level));
                all.extend(silence(30.0));
            }
        }
    }
    assert!(all.len() > samples(20_000.0), "20 s of it");
    assert_eq!(heard(&all), "");
    // With noise under it, as from a phone's microphone.
    let n = noise(all.len() as f64 / 8.0, -35.0, 99);
    assert_eq!(heard(&mix(&all, &n)), "");
}

/// 8 kHz PCM of a WAV file: 16-bit PCM, µ-law or A-law, mono.
fn read_wav(path: &Path) -> Vec<i16> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(data.get(..4), Some(&b"RIFF"[..]), "{}", path.display());
    let (mut at, mut format, mut pcm) = (12, 0u16, Vec::new());
    while at + 8 <= data.len() {
        let id = &data[at..at + 4];
        let size =
            u32::from_le_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]) as usize;
        let body = &data[at + 8..(at + 8 + size).min(data.len())];
        match id {
            b"fmt " => format = u16::from_le_bytes([body[0], body[1]]),
            b"data" => {
                pcm = match format {
                    1 => body
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect(),
                    6 => body.iter().map(|&c| Law::A.decode(c)).collect(),
                    7 => body.iter().map(|&c| Law::Mu.decode(c)).collect(),
                    other => panic!("{}: WAV format {other}", path.display()),
                }
            }
            _ => {}
        }
        at += 8 + size + (size & 1);
    }
    pcm
}

fn wav_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            wav_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "wav") {
            out.push(p);
        }
    }
}

#[test]
fn no_committed_prompt_nor_the_music_on_hold_is_a_key() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sounds");
    let mut files = Vec::new();
    wav_files(&root, &mut files);
    files.sort();
    assert!(
        files.len() > 150,
        "the prompts are in sounds/: {}",
        files.len()
    );
    let mut seconds = 0.0;
    for f in &files {
        let pcm = read_wav(f);
        seconds += pcm.len() as f64 / RATE;
        let got = detect(base(), &pcm);
        assert!(got.is_empty(), "{}: {got:?}", f.display());
    }
    assert!(seconds > 300.0, "{seconds} s of audio");
}

#[test]
fn a_prompt_with_a_key_pressed_over_it_gives_the_key() {
    // The caller presses a key while a prompt plays and its echo comes back: the key wins.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sounds/en");
    let prompt: Vec<f64> = read_wav(&root.join("vm-intro.wav"))
        .iter()
        .map(|&s| f64::from(s) * 0.1) // echo 20 dB down
        .collect();
    let mut k = concat(&[silence(1000.0), key('#', 120.0)]);
    k.resize(prompt.len(), 0.0);
    assert_eq!(heard(&mix(&prompt, &k)), "#");
}

#[test]
fn the_session_reports_inband_keys_as_digits() {
    let t0 = base();
    let caller = "192.0.2.10:4000";
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &plan(leg(caller), leg("198.51.100.20:6000")))
        .expect("plan");
    s.handle_command(
        t0,
        Command::DetectDtmf {
            side: Side::Caller,
            spec: DtmfSpec {
                payload_type: Some(101),
                clock_rate: 8000,
                inband: Some(Box::new(InbandDtmf::new())),
            },
        },
    )
    .expect("detect");
    let audio = concat(&[
        silence(60.0),
        key('4', 100.0),
        silence(100.0),
        key('2', 80.0),
    ]);
    let audio = concat(&[audio, silence(100.0)]);
    let mut got = Vec::new();
    for (i, frame) in g711(Law::Mu, &audio).chunks(160).enumerate() {
        let payload: Vec<u8> = frame.iter().map(|&x| Law::Mu.encode(x)).collect();
        let n = i as u16;
        let pkt = rtp(0, i == 0, 1 + n, 160 * u32::from(n), 0x1234, &payload);
        let now = t0 + Duration::from_millis(20 * u64::from(n));
        let _ = feed(
            &mut s,
            now,
            Side::Caller,
            pbx_media::relay::Component::Rtp,
            addr(caller),
            &pkt,
        );
        got.extend(events(&mut s));
    }
    let digits: Vec<char> = got
        .iter()
        .filter_map(|e| match e {
            Event::Dtmf {
                digit, duration, ..
            } => {
                assert!(*duration >= Duration::from_millis(50), "{duration:?}");
                Some(*digit)
            }
            _ => None,
        })
        .collect();
    assert_eq!(digits, ['4', '2']);
}
