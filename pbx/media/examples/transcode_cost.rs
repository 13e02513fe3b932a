//! CPU cost of the Opus ↔ G.711 stage per call (a measurement, not a test): one call is 50
//! packets a second each way; this runs `SECONDS` of one call through both directions and
//! prints the CPU time per second of call, i.e. the share of one core a call takes.
//!
//! `cargo run --release -p pbx-media --example transcode_cost [seconds]`

use std::time::Instant;

use opus_rs::{Application, OpusEncoder};
use pbx_media::g711::Law;
use pbx_media::transcode::{OpusToVoice, Transcoding, VoiceToOpus};
use pbx_media::voice::Voice;

fn main() {
    let seconds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let spec = Transcoding {
        opus_pt: 111,
        voice: Voice::G711(Law::Mu),
        voice_pt: 0,
        events: None,
    };
    // A browser's Opus (48 kHz, speech-like: a tone with a slow sweep) and a phone's µ-law.
    let mut enc = OpusEncoder::new(48_000, 1, Application::Voip).expect("encoder");
    enc.bitrate_bps = 32_000;
    let packet = |pt: u8, seq: u16, ts: u32, payload: &[u8]| {
        let mut p = vec![0u8; 2048];
        p[0] = 0x80;
        p[1] = pt;
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&ts.to_be_bytes());
        p[8..12].copy_from_slice(&1u32.to_be_bytes());
        p[12..12 + payload.len()].copy_from_slice(payload);
        (p, 12 + payload.len())
    };
    let frames = seconds * 50;
    let mut opus_in = Vec::with_capacity(frames);
    let mut g711_in = Vec::with_capacity(frames);
    for i in 0..frames {
        let f = 300.0 + (i % 100) as f64 * 20.0;
        let pcm48: Vec<i16> = (0..960)
            .map(|n| {
                let t = (i * 960 + n) as f64 / 48_000.0;
                (6000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16
            })
            .collect();
        let mut out = [0u8; 1500];
        let n = enc.encode_i16(&pcm48, 960, &mut out).expect("encode");
        opus_in.push(packet(111, i as u16, (i * 960) as u32, &out[..n]));
        let ulaw: Vec<u8> = pcm48
            .iter()
            .step_by(6)
            .map(|&s| Law::Mu.encode(s))
            .collect();
        g711_in.push(packet(0, i as u16, (i * 160) as u32, &ulaw));
    }
    let mut to_voice = OpusToVoice::new(spec).expect("stage");
    let mut to_opus = VoiceToOpus::new(spec).expect("stage");
    let cpu_before = cpu_seconds();
    // A measurement reads the clock; the stage itself never does.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut bytes = 0usize;
    for (o, olen) in opus_in.iter_mut() {
        bytes += to_voice.transcode(o, *olen).expect("opus to voice");
    }
    #[allow(clippy::disallowed_methods)]
    let middle = Instant::now();
    for (g, glen) in g711_in.iter_mut() {
        bytes += to_opus
            .transcode(g, *glen)
            .expect("voice to opus")
            .unwrap_or(0);
    }
    let decode = middle - start;
    let encode = middle.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let share = |d: std::time::Duration| d.as_secs_f64() / seconds as f64 * 100.0;
    println!(
        "{seconds} s of one call: Opus->G.711 {:.2} %, G.711->Opus {:.2} %, both {:.2} % of a core ({bytes} bytes out)",
        share(decode),
        share(encode),
        share(decode + encode)
    );
    // Wall time counts what other processes took on a busy machine; the process's own CPU
    // time (10 ms ticks) does not.
    println!(
        "process CPU time for both directions: {cpu:.2} s, {:.2} % of a core per call",
        cpu / seconds as f64 * 100.0
    );
}

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`, 100 Hz ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 3 of the man page, utime 14, stime 15.
    (ticks(11) + ticks(12)) / 100.0
}
