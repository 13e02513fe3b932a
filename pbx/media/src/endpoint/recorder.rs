//! The recorder: collects what a leg sends as 8 kHz linear PCM (decoded), until a
//! maximum length, a silence, or a stop. Packets of other payload types (telephone-event,
//! comfort noise) are not audio and are skipped.

use std::time::{Duration, Instant};

use crate::rtp::RtpView;
use crate::voice::VoiceDecoder;

/// Samples per second of G.711 (RFC 3551 §4.5.14).
const RATE: u64 = 8000;

/// The recorder hands its audio out in chunks of this many samples (half a second), so the
/// whole recording never sits in memory and a crash loses little of it.
pub const RECORDER_CHUNK: usize = 4000;

/// How long to record, and what counts as silence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecorderSpec {
    /// Stop after this much audio, or this much time, whichever comes first.
    pub max_length: Duration,
    /// Stop after this long without a sample louder than `silence_level` (counted from the
    /// start, so a caller who says nothing is not recorded for `max_length`). `None`: never.
    pub silence: Option<Duration>,
    /// The largest absolute sample value still taken for silence (G.711 idle-channel noise
    /// sits well under 100 of 32767).
    pub silence_level: u16,
    /// The leg's payload type for Opus, when it speaks Opus (dynamic: RFC 7587 §7).
    pub opus_payload_type: Option<u8>,
}

/// Why a recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingEnd {
    MaxLength,
    Silence,
    /// Stopped by a command, or the leg went away.
    Stopped,
}

pub(crate) struct Recorder {
    spec: RecorderSpec,
    decoder: VoiceDecoder,
    /// Audio not handed out yet (less than a chunk, after [`Recorder::take_chunk`]).
    pcm: Vec<i16>,
    /// Samples taken in all, handed out or not.
    taken: usize,
    max_samples: usize,
    until: Instant,
    last_voice: Instant,
}

impl Recorder {
    pub(crate) fn new(now: Instant, spec: RecorderSpec) -> Recorder {
        let max_samples = spec.max_length.as_millis() as u64 * RATE / 1000;
        Recorder {
            spec,
            decoder: spec
                .opus_payload_type
                .map_or_else(VoiceDecoder::default, VoiceDecoder::with_opus),
            pcm: Vec::new(),
            taken: 0,
            max_samples: usize::try_from(max_samples).unwrap_or(usize::MAX),
            until: now + spec.max_length,
            last_voice: now,
        }
    }

    /// Takes the audio of one packet; says when the recording is complete.
    pub(crate) fn on_rtp(&mut self, now: Instant, pkt: &RtpView<'_>) -> Option<RecordingEnd> {
        let room = self.max_samples.saturating_sub(self.taken);
        let at = self.pcm.len();
        if !self
            .decoder
            .decode(pkt.payload_type, pkt.payload, &mut self.pcm)
        {
            return None;
        }
        self.pcm.truncate(at + room.min(self.pcm.len() - at));
        let level = i32::from(self.spec.silence_level);
        let voiced = self.pcm[at..].iter().any(|&s| i32::from(s).abs() > level);
        self.taken += self.pcm.len() - at;
        if voiced {
            self.last_voice = now;
        }
        (self.taken >= self.max_samples).then_some(RecordingEnd::MaxLength)
    }

    pub(crate) fn poll_timeout(&self) -> Instant {
        match self.spec.silence {
            Some(quiet) => self.until.min(self.last_voice + quiet),
            None => self.until,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<RecordingEnd> {
        if now >= self.until {
            return Some(RecordingEnd::MaxLength);
        }
        let quiet = self.spec.silence?;
        (now >= self.last_voice + quiet).then_some(RecordingEnd::Silence)
    }

    /// A chunk of audio, once [`RECORDER_CHUNK`] samples are waiting.
    pub(crate) fn take_chunk(&mut self) -> Option<Vec<i16>> {
        (self.pcm.len() >= RECORDER_CHUNK).then(|| std::mem::take(&mut self.pcm))
    }

    /// The audio not handed out in chunks yet, 8 kHz mono.
    pub(crate) fn finish(self) -> Vec<i16> {
        self.pcm
    }
}
