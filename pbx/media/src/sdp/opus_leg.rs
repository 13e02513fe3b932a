//! Re-offers to the Opus leg of a transcoded call. The phone's re-INVITE (hold, resume, a
//! session refresh, a codec change) carries G.711 or G.722, which the leg that offered only
//! Opus cannot take: RFC 3264 §8 has a re-offer keep the session's formats, so the PBX
//! offers that leg its own Opus (and its `telephone-event/48000`) in place of the phone's
//! voice codecs, with the phone's direction (§8.4), and answers the phone in its own codec.

use super::codec::Codec;
use super::pending::Pending;
use crate::Side;
use crate::voice::Voice;

/// The leg that speaks only Opus on a transcoded call, with its formats under its own
/// payload types, as it offered them.
#[derive(Clone, Debug)]
pub(crate) struct OpusLeg {
    pub side: Side,
    pub opus: Codec,
    /// Its `telephone-event/48000`, when it had one and no 8 kHz one.
    pub event: Option<Codec>,
}

/// A phone's offer turned towards the Opus leg: what the PBX answers the phone with (its own
/// numbers) and transcodes to.
#[derive(Clone, Debug)]
pub(crate) struct TowardOpus {
    pub voice: Codec,
    pub kind: Voice,
    /// The phone's `telephone-event/8000`, offered to the Opus leg as its 48 kHz one.
    pub event: Option<Codec>,
}

/// The voice codec the transcoder speaks for this format: a static G.711 or G.722 type.
fn transcodable(c: &Codec) -> Option<Voice> {
    Voice::from_payload_type(c.pt)
        .filter(|v| v.name().eq_ignore_ascii_case(&c.name) && c.clock == 8000)
}

impl Pending {
    /// The offer is a phone's, to `leg`: its voice codecs give way to the leg's Opus, and its
    /// 8 kHz events to the leg's 48 kHz ones when the leg had only those (both marked
    /// `synthetic`, as [`Pending::add_transcoded`]'s). Other auxiliary formats pass on. An
    /// offer with Opus of its own, or with nothing the transcoder speaks, is left as it is.
    pub fn offer_opus_leg(&mut self, leg: &OpusLeg) {
        let opus = |c: &Codec| c.same_format(&leg.opus);
        if self.codecs.iter().any(|(c, _)| opus(c)) {
            return;
        }
        let Some((voice, kind)) = self
            .codecs
            .iter()
            .find_map(|(c, _)| transcodable(c).map(|v| (c.clone(), v)))
        else {
            return;
        };
        let event = match leg.event {
            Some(_) => self
                .codecs
                .iter()
                .find(|(c, _)| c.is_event_at(8000))
                .map(|(c, _)| c.clone()),
            None => None,
        };
        let kept: Vec<(Codec, u8)> = self
            .codecs
            .iter()
            .filter(|(c, _)| c.is_auxiliary() && !(event.is_some() && c.is_event_at(8000)))
            .cloned()
            .collect();
        // Numbers of the leg's own where the phone's kept formats leave them free, so the
        // synthetic entries stay apart from those.
        let free = |want: u8, taken: Option<u8>| {
            std::iter::once(want)
                .chain(96..=127)
                .find(|&pt| Some(pt) != taken && !kept.iter().any(|(c, _)| c.pt == pt))
        };
        let Some(opus_pt) = free(leg.opus.pt, None) else {
            return;
        };
        let leg_event = match (&event, &leg.event) {
            (Some(_), Some(e)) => match free(e.pt, Some(opus_pt)) {
                Some(pt) => Some(Codec { pt, ..e.clone() }),
                None => return,
            },
            _ => None,
        };
        self.codecs = kept;
        self.codecs.insert(
            0,
            (
                Codec {
                    pt: opus_pt,
                    ..leg.opus.clone()
                },
                0,
            ),
        );
        self.synthetic.push(opus_pt);
        if let Some(e) = leg_event {
            self.synthetic.push(e.pt);
            self.codecs.push((e, 0));
        }
        self.toward_opus = Some(TowardOpus { voice, kind, event });
    }
}
