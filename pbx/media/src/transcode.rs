//! Opus ↔ G.711/G.722 for a call between a browser or softphone that offered Opus and no
//! G.711 and a phone that speaks no Opus (docs/decisions.md "Opus transcoding").
//!
//! A stage of the relay, sans-IO: a packet from one leg goes in, the same packet comes out
//! in the other leg's codec, in place, at once. One packet in gives one packet out, so
//! nothing is buffered beyond a partial 20 ms frame and the stage adds no delay of its own.
//!
//! - **Opus → voice**: the Opus decoder (`opus-rs`, pure Rust) decodes straight to 8 kHz (an
//!   Opus decoder may output any of 8-48 kHz, RFC 6716 §2, which spares a resampler); the
//!   samples are encoded G.711 (or G.722 through [`VoiceEncoder`]'s own resampler). Lost
//!   packets (a gap of up to [`MAX_CONCEALED`] sequence numbers) are concealed by the
//!   decoder's PLC (RFC 6716 §4.4) and sent in front of the next packet's audio, so the
//!   phone hears no hole; a longer gap is a new talkspurt.
//! - **voice → Opus**: G.711/G.722 decoded to 8 kHz and encoded in 20 ms Opus frames, all
//!   the whole frames of a packet in one Opus packet (a 30 ms packet gives one frame and
//!   keeps 10 ms for the next, which then gives two). A lost phone packet is left to the
//!   browser's PLC.
//!
//! Timestamps map across clocks (RFC 7587 §4.1: Opus's RTP clock is 48 kHz whatever it
//! samples; G.711 and G.722 run at 8 kHz): the first packet fixes an anchor and every later
//! one keeps its distance from it, scaled, so silence gaps and DTMF timing stay as sent.
//! Sequence number, SSRC and marker pass through (the leg's own stream, if it has one,
//! renumbers afterwards: `relay/rewrite.rs`). RFC 4733 events between a leg's
//! `telephone-event/48000` and the other's `telephone-event/8000` cross on the same anchors
//! ([`events`]).

use opus_rs::{Application, OpusDecoder, OpusEncoder};

mod events;

pub use events::EventPts;
use events::Scale;

use crate::rtp::{self, RtpView};
use crate::voice::{Voice, VoiceDecoder, VoiceEncoder};

/// What the negotiator decided: the Opus leg's payload type and the other leg's voice codec
/// under the payload type it sends and receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transcoding {
    pub opus_pt: u8,
    pub voice: Voice,
    pub voice_pt: u8,
    /// RFC 4733 events converted between the clocks (the Opus leg offered only
    /// `telephone-event/48000`, the phone agreed `telephone-event/8000`); `None`: events
    /// pass untouched, as any format the stage does not take.
    pub events: Option<EventPts>,
}

/// The audio sampling rate inside the stage.
const RATE: u32 = 8000;
/// Opus's RTP clock over [`RATE`].
const OPUS_TICKS_PER_SAMPLE: u32 = 48_000 / RATE;
/// 20 ms at [`RATE`].
const FRAME: usize = 160;
/// At most this many lost 20 ms frames are concealed in front of the next packet.
pub const MAX_CONCEALED: u16 = 3;
/// The longest Opus packet (120 ms, RFC 6716 §3.2.5) plus the concealed frames, at 8 kHz.
const MAX_SAMPLES: usize = 960 + FRAME * MAX_CONCEALED as usize;
/// The voice → Opus encoder's bit rate: narrowband speech (RFC 7587 §3.1.1 suggests 8-12
/// kb/s for it; a little more keeps tones clean).
const OPUS_BITRATE: i32 = 16_000;
/// The encoder's complexity (0-10, RFC 6716 §2.1.5 leaves the trade to the encoder): 5
/// costs about half of 10 in opus-rs with no audible loss for narrowband speech
/// (docs/decisions.md "Opus transcoding" has the figures).
const OPUS_COMPLEXITY: i32 = 5;
/// At most this many 20 ms frames in one Opus packet (120 ms, RFC 6716 §3.2.5).
const MAX_FRAMES: usize = 6;
/// Room for one Opus frame (RFC 6716 §3.4: at most 1275 bytes; far less at 16 kb/s).
const OPUS_MAX_BYTES: usize = 1275;

/// Why a packet could not be transcoded (it is dropped like a malformed one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TranscodeError {
    #[error("not an RTP packet of the expected payload type")]
    NotMedia,
    #[error("codec: {0}")]
    Codec(&'static str),
    #[error("no room in the buffer for the transcoded packet")]
    NoRoom,
}

/// Where a stream's timestamps are anchored: the first input timestamp and what it became.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    input: u32,
    output: u32,
}

impl Anchor {
    /// The first Opus packet's timestamp `ts` anchors the 8 kHz output at `ts / 6`.
    fn from_opus(ts: u32) -> Anchor {
        Anchor {
            input: ts,
            output: ts / OPUS_TICKS_PER_SAMPLE,
        }
    }

    /// The first voice packet's timestamp `ts` anchors the Opus output at `ts * 6`.
    fn from_voice(ts: u32) -> Anchor {
        Anchor {
            input: ts,
            output: ts.wrapping_mul(OPUS_TICKS_PER_SAMPLE),
        }
    }

    /// An Opus timestamp (48 kHz) on the 8 kHz output timeline.
    fn down(self, ts: u32) -> u32 {
        self.output
            .wrapping_add(ts.wrapping_sub(self.input) / OPUS_TICKS_PER_SAMPLE)
    }

    /// An 8 kHz timestamp on the Opus output timeline.
    fn up(self, ts: u32) -> u32 {
        self.output.wrapping_add(
            ts.wrapping_sub(self.input)
                .wrapping_mul(OPUS_TICKS_PER_SAMPLE),
        )
    }
}

/// Opus from the browser to G.711/G.722 for the phone.
pub struct OpusToVoice {
    opus_pt: u8,
    voice_pt: u8,
    /// The Opus leg's event payload type and the one written for the phone.
    events: Option<(u8, u8)>,
    decoder: OpusDecoder,
    encoder: VoiceEncoder,
    anchor: Option<Anchor>,
    next_seq: Option<u16>,
    pcm: Box<[f32; MAX_SAMPLES]>,
    samples: Box<[i16; MAX_SAMPLES]>,
}

impl OpusToVoice {
    pub fn new(t: Transcoding) -> Result<OpusToVoice, TranscodeError> {
        Ok(OpusToVoice {
            opus_pt: t.opus_pt,
            voice_pt: t.voice_pt,
            events: t.events.map(EventPts::opus_to_voice),
            decoder: OpusDecoder::new(RATE as i32, 1).map_err(TranscodeError::Codec)?,
            encoder: VoiceEncoder::new(t.voice),
            anchor: None,
            next_seq: None,
            pcm: Box::new([0.0; MAX_SAMPLES]),
            samples: Box::new([0; MAX_SAMPLES]),
        })
    }

    /// Whether this packet is this stage's to transcode: Opus, and the events it converts
    /// (other formats pass).
    pub fn takes(&self, pkt: &[u8]) -> bool {
        pkt.get(1).is_some_and(|b| {
            b & 0x7f == self.opus_pt || self.events.is_some_and(|(pt, _)| b & 0x7f == pt)
        })
    }

    /// The next sequence number expected after `seq`, unless `seq` is from the past.
    fn advance_seq(&mut self, seq: u16) {
        if (seq.wrapping_sub(self.next_seq.unwrap_or(seq)) as i16) >= 0 {
            self.next_seq = Some(seq.wrapping_add(1));
        }
    }

    /// Transcodes the plain Opus RTP packet `buf[..len]` in place; returns the new length.
    pub fn transcode(&mut self, buf: &mut [u8], len: usize) -> Result<usize, TranscodeError> {
        let pkt = buf.get(..len).ok_or(TranscodeError::NotMedia)?;
        if let Some(out_pt) = event_out(self.events, pkt) {
            let (_, seq, ts, _) = header(pkt);
            // The event's sequence number is no lost Opus packet to conceal.
            self.advance_seq(seq);
            let a = *self.anchor.get_or_insert(Anchor::from_opus(ts));
            let out = buf.get_mut(..len).ok_or(TranscodeError::NotMedia)?;
            events::rewrite(out, out_pt, a.down(ts), Scale::Down(OPUS_TICKS_PER_SAMPLE))?;
            return Ok(len);
        }
        let view = RtpView::parse(pkt).ok_or(TranscodeError::NotMedia)?;
        let (marker, seq, ts, ssrc) = header(pkt);
        // RFC 3550 §A.1 style: a gap of a few packets is loss to conceal; a packet from the
        // past (reordered) or a long jump is taken as it is.
        let lost = self
            .next_seq
            .map(|next| seq.wrapping_sub(next))
            .filter(|&gap| gap <= MAX_CONCEALED)
            .unwrap_or(0);
        let concealed = usize::from(lost) * FRAME;
        let mut n = 0;
        for _ in 0..lost {
            let got = self
                .decoder
                .decode(&[], FRAME, &mut self.pcm[n..n + FRAME])
                .map_err(TranscodeError::Codec)?;
            n += got.min(FRAME);
        }
        let got = self
            .decoder
            .decode(view.payload, MAX_SAMPLES - concealed, &mut self.pcm[n..])
            .map_err(TranscodeError::Codec)?;
        n += got;
        self.advance_seq(seq);
        for (o, &s) in self.samples[..n].iter_mut().zip(self.pcm[..n].iter()) {
            *o = (s * 32768.0).clamp(-32768.0, 32767.0) as i16;
        }
        // The concealed frames start where the lost packets would have.
        let out_ts = {
            let a = *self.anchor.get_or_insert(Anchor::from_opus(ts));
            a.down(ts).wrapping_sub(concealed as u32)
        };
        let out = buf
            .get_mut(..rtp::HEADER + n)
            .ok_or(TranscodeError::NoRoom)?;
        rtp::write_header(out, marker, self.voice_pt, seq, out_ts, ssrc);
        let _ = self
            .encoder
            .encode(&self.samples[..n], &mut out[rtp::HEADER..]);
        Ok(rtp::HEADER + n)
    }
}

/// G.711/G.722 from the phone to Opus for the browser.
pub struct VoiceToOpus {
    opus_pt: u8,
    voice_pt: u8,
    /// The phone's event payload type and the Opus leg's.
    events: Option<(u8, u8)>,
    voice: Voice,
    decoder: VoiceDecoder,
    encoder: OpusEncoder,
    anchor: Option<Anchor>,
    /// Samples of the last packet not yet encoded (a 30 ms packet's last 10 ms), and the
    /// input timestamp of the first of them.
    pending: Vec<i16>,
    pending_ts: u32,
    scratch: Vec<i16>,
    /// One encoded frame, the frames of a packet without their TOC bytes, and the packet.
    opus: Box<[u8; OPUS_MAX_BYTES]>,
    frames: Box<[u8; OPUS_MAX_BYTES * MAX_FRAMES]>,
    packet: Box<[u8; OPUS_MAX_BYTES * MAX_FRAMES + 2 * MAX_FRAMES]>,
}

impl VoiceToOpus {
    pub fn new(t: Transcoding) -> Result<VoiceToOpus, TranscodeError> {
        let mut encoder =
            OpusEncoder::new(RATE as i32, 1, Application::Voip).map_err(TranscodeError::Codec)?;
        encoder.bitrate_bps = OPUS_BITRATE;
        encoder.complexity = OPUS_COMPLEXITY;
        Ok(VoiceToOpus {
            opus_pt: t.opus_pt,
            voice_pt: t.voice_pt,
            events: t.events.map(EventPts::voice_to_opus),
            voice: t.voice,
            decoder: VoiceDecoder::default(),
            encoder,
            anchor: None,
            pending: Vec::with_capacity(MAX_SAMPLES),
            pending_ts: 0,
            scratch: Vec::with_capacity(MAX_SAMPLES),
            opus: Box::new([0; OPUS_MAX_BYTES]),
            frames: Box::new([0; OPUS_MAX_BYTES * MAX_FRAMES]),
            packet: Box::new([0; OPUS_MAX_BYTES * MAX_FRAMES + 2 * MAX_FRAMES]),
        })
    }

    pub fn takes(&self, pkt: &[u8]) -> bool {
        pkt.get(1).is_some_and(|b| {
            b & 0x7f == self.voice_pt || self.events.is_some_and(|(pt, _)| b & 0x7f == pt)
        })
    }

    /// Transcodes the plain voice RTP packet `buf[..len]` in place; returns the new length,
    /// or `None` when the packet held less than one Opus frame (its audio waits for the next).
    pub fn transcode(
        &mut self,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Option<usize>, TranscodeError> {
        let pkt = buf.get(..len).ok_or(TranscodeError::NotMedia)?;
        if let Some(out_pt) = event_out(self.events, pkt) {
            let (_, _, ts, _) = header(pkt);
            let a = *self.anchor.get_or_insert(Anchor::from_voice(ts));
            let out = buf.get_mut(..len).ok_or(TranscodeError::NotMedia)?;
            events::rewrite(out, out_pt, a.up(ts), Scale::Up(OPUS_TICKS_PER_SAMPLE))?;
            return Ok(Some(len));
        }
        let view = RtpView::parse(pkt).ok_or(TranscodeError::NotMedia)?;
        let (marker, seq, ts, ssrc) = header(pkt);
        // Samples left from the last packet belong in front only when this one follows on.
        let follows = ts == self.pending_ts.wrapping_add(self.pending.len() as u32);
        if !follows {
            self.pending.clear();
        }
        if self.pending.is_empty() {
            self.pending_ts = ts;
        }
        self.scratch.clear();
        if !self
            .decoder
            .decode(static_pt(self.voice), view.payload, &mut self.scratch)
        {
            return Err(TranscodeError::NotMedia);
        }
        let room = MAX_SAMPLES.saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&self.scratch[..self.scratch.len().min(room)]);
        // Whole 20 ms frames, packed into one packet (RFC 6716 §3.2.5); the rest waits.
        let frames = (self.pending.len() / FRAME).min(MAX_FRAMES);
        if frames == 0 {
            return Ok(None);
        }
        let n = self.encode_frames(frames)?;
        let frame = frames * FRAME;
        let in_ts = self.pending_ts;
        let a = *self.anchor.get_or_insert(Anchor::from_voice(in_ts));
        let out_ts = a.up(in_ts);
        self.pending.drain(..frame);
        self.pending_ts = in_ts.wrapping_add(frame as u32);
        let out = buf
            .get_mut(..rtp::HEADER + n)
            .ok_or(TranscodeError::NoRoom)?;
        rtp::write_header(out, marker, self.opus_pt, seq, out_ts, ssrc);
        out[rtp::HEADER..].copy_from_slice(&self.packet[..n]);
        Ok(Some(rtp::HEADER + n))
    }

    /// Encodes the first `frames` 20 ms frames of `pending` into `packet`; returns its
    /// length. One frame is the encoder's own packet (code 0); more are packed as code 3
    /// with their lengths (RFC 6716 §3.2.5), since switching the encoder between frame sizes
    /// (20 then 40 ms for 30 ms packets) garbled the tone in opus-rs 0.1.40 (tried).
    fn encode_frames(&mut self, frames: usize) -> Result<usize, TranscodeError> {
        let mut toc = None;
        let mut lens = [0usize; MAX_FRAMES];
        let mut at = 0;
        for (i, len) in lens.iter_mut().enumerate().take(frames) {
            let pcm = &self.pending[i * FRAME..(i + 1) * FRAME];
            let n = self
                .encoder
                .encode_i16(pcm, FRAME, &mut self.opus[..])
                .map_err(TranscodeError::Codec)?;
            if n == 0 {
                return Err(TranscodeError::Codec("empty Opus packet"));
            }
            if frames == 1 {
                self.packet[..n].copy_from_slice(&self.opus[..n]);
                return Ok(n);
            }
            // All frames of a packet share the TOC's configuration (RFC 6716 §3.1); the
            // encoder keeps one for one input rate and bit rate.
            if *toc.get_or_insert(self.opus[0]) != self.opus[0] {
                return Err(TranscodeError::Codec("frames of different configurations"));
            }
            self.frames[at..at + n - 1].copy_from_slice(&self.opus[1..n]);
            *len = n - 1;
            at += n - 1;
        }
        let toc = toc.ok_or(TranscodeError::NoRoom)?;
        let mut p = 0;
        self.packet[p] = (toc & 0xfc) | 3;
        // VBR, no padding, M frames.
        self.packet[p + 1] = 0x80 | frames as u8;
        p += 2;
        for &len in &lens[..frames - 1] {
            // RFC 6716 §3.2.1: one byte below 252, else two.
            if len < 252 {
                self.packet[p] = len as u8;
                p += 1;
            } else {
                let first = 252 + (len & 3);
                self.packet[p] = first as u8;
                self.packet[p + 1] = ((len - first) / 4) as u8;
                p += 2;
            }
        }
        let body = self
            .packet
            .get_mut(p..p + at)
            .ok_or(TranscodeError::NoRoom)?;
        body.copy_from_slice(&self.frames[..at]);
        Ok(p + at)
    }
}

/// The static payload type of a voice codec, which [`VoiceDecoder`] knows it by (the
/// phone's own number may differ only for a dynamic mapping, which these never need).
fn static_pt(voice: Voice) -> u8 {
    match voice {
        Voice::G711(law) => law.payload_type(),
        Voice::G722 => crate::voice::G722_PAYLOAD_TYPE,
        // Never the phone's side of a transcoded call (the negotiator transcodes Opus to a
        // codec the phone has); no RTP payload type is 128, so nothing is taken for it.
        Voice::Opus => 128,
    }
}

/// The payload type to write for `pkt` when it is a whole RTP header of the event payload
/// type `events` converts (`(in, out)`).
fn event_out(events: Option<(u8, u8)>, pkt: &[u8]) -> Option<u8> {
    let (event_pt, out_pt) = events?;
    (pkt.len() >= rtp::HEADER && pkt[1] & 0x7f == event_pt).then_some(out_pt)
}

/// Marker, sequence number, timestamp and SSRC of a parsed RTP packet.
fn header(pkt: &[u8]) -> (bool, u16, u32, u32) {
    (
        pkt[1] & 0x80 != 0,
        u16::from_be_bytes([pkt[2], pkt[3]]),
        u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]),
        u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]),
    )
}

/// Both directions of one browser ↔ phone call.
pub struct Transcoder {
    pub spec: Transcoding,
    pub to_voice: OpusToVoice,
    pub to_opus: VoiceToOpus,
}

impl Transcoder {
    pub fn new(spec: Transcoding) -> Result<Transcoder, TranscodeError> {
        Ok(Transcoder {
            spec,
            to_voice: OpusToVoice::new(spec)?,
            to_opus: VoiceToOpus::new(spec)?,
        })
    }

    /// Takes a new plan's payload types when it transcodes between the same codecs, keeping
    /// the codecs' state, the timestamp anchors and a partial frame, so a re-offer (hold,
    /// resume, the phone answered under its own numbers) costs the audio nothing. `false`,
    /// with nothing changed, when the voice codec differs: that needs a new stage.
    pub fn renumber(&mut self, spec: Transcoding) -> bool {
        if spec.voice != self.spec.voice {
            return false;
        }
        self.to_voice.opus_pt = spec.opus_pt;
        self.to_voice.voice_pt = spec.voice_pt;
        self.to_voice.events = spec.events.map(EventPts::opus_to_voice);
        self.to_opus.opus_pt = spec.opus_pt;
        self.to_opus.voice_pt = spec.voice_pt;
        self.to_opus.events = spec.events.map(EventPts::voice_to_opus);
        self.spec = spec;
        true
    }
}

#[cfg(test)]
mod tests;
