//! Audio codecs of an `m=` line, their identity across legs, and each leg's payload type space.

use super::parse::MediaDescription;

/// One audio format as a leg declared it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Codec {
    /// The payload type in the SDP it came from.
    pub pt: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`).
    pub name: String,
    pub clock: u32,
    pub channels: u8,
    pub fmtp: Option<String>,
}

/// RFC 3551 §6 Table 4: the static audio payload types, usable without `a=rtpmap`.
fn static_codec(pt: u8) -> Option<(&'static str, u32, u8)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        // RFC 3551 §4.5.2: G.722's RTP clock is 8000 although it samples at 16 kHz.
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        14 => ("MPA", 90000, 1),
        15 => ("G728", 8000, 1),
        16 => ("DVI4", 11025, 1),
        17 => ("DVI4", 22050, 1),
        18 => ("G729", 8000, 1),
        _ => return None,
    })
}

impl Codec {
    /// Same format: encoding name (case-insensitive, RFC 4855 §3), clock rate and channels.
    /// Format parameters are not compared.
    pub fn same_format(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock == other.clock
            && self.channels == other.channels
    }

    /// RFC 4733 DTMF events and RFC 3389 comfort noise ride along with a voice codec but are
    /// not one: a call needs at least one other codec in common.
    pub fn is_auxiliary(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event") || self.name.eq_ignore_ascii_case("CN")
    }

    /// RFC 4733 §7.1.1: `telephone-event` on this clock (an event's clock is its audio's,
    /// §2.1: 8000 beside G.711 and G.722, 48000 beside Opus).
    pub fn is_event_at(&self, clock: u32) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event") && self.clock == clock
    }

    /// `PCMU/8000`, `opus/48000/2`: the `a=rtpmap` encoding, also the plan's codec label.
    pub fn encoding(&self) -> String {
        if self.channels > 1 {
            format!("{}/{}/{}", self.name, self.clock, self.channels)
        } else {
            format!("{}/{}", self.name, self.clock)
        }
    }

    /// The payload type has the static assignment of RFC 3551 for this very format.
    fn is_static(&self) -> bool {
        static_codec(self.pt).is_some_and(|(name, clock, channels)| {
            name.eq_ignore_ascii_case(&self.name)
                && clock == self.clock
                && channels == self.channels
        })
    }
}

/// The audio codecs of an `m=` line in its order of preference (RFC 3264 §5.1). A dynamic
/// payload type without `a=rtpmap` means nothing and is dropped, as is a repeated one.
pub(crate) fn audio_codecs(m: &MediaDescription) -> Vec<Codec> {
    let mut codecs: Vec<Codec> = Vec::new();
    for format in &m.formats {
        let Ok(pt) = format.parse::<u8>() else {
            continue;
        };
        if pt > 127 || codecs.iter().any(|c| c.pt == pt) {
            continue;
        }
        let (name, clock, channels) = match m.rtpmaps.iter().find(|r| r.pt == pt) {
            Some(r) => (r.name.clone(), r.clock, r.channels.unwrap_or(1)),
            None => match static_codec(pt) {
                Some((name, clock, channels)) => (name.to_owned(), clock, channels),
                None => continue,
            },
        };
        codecs.push(Codec {
            pt,
            name,
            clock,
            channels,
            fmtp: m.fmtp(pt).map(str::to_owned),
        });
    }
    codecs
}

/// The formats both legs agreed on (RFC 3264 §6.1): the answer's, in its order, restricted
/// to those offered. `offered` holds the offerer's codecs with the payload type each was
/// offered under to the answerer; each result is (offerer's codec, that payload type, the
/// answerer's codec). A format matches by name, clock rate and channels, preferring the
/// offered payload type, so two offered `telephone-event` rates each find their own.
pub(crate) fn intersect<'a>(
    offered: &'a [(Codec, u8)],
    answered: &'a [Codec],
) -> Vec<(&'a Codec, u8, &'a Codec)> {
    let mut used = vec![false; offered.len()];
    let mut agreed = Vec::new();
    for a in answered {
        let candidates: Vec<_> = offered
            .iter()
            .zip(used.iter_mut())
            .filter(|((c, _), u)| !**u && c.same_format(a))
            .collect();
        let hit = match candidates.iter().position(|((_, pt), _)| *pt == a.pt) {
            Some(i) => candidates.into_iter().nth(i),
            None => candidates.into_iter().next(),
        };
        if let Some(((c, pt), u)) = hit {
            *u = true;
            agreed.push((c, *pt, a));
        }
    }
    agreed
}

/// The payload type numbers one leg has used for each format in this session. RFC 3264
/// §8.3.2: a payload type number must not be re-bound to another format within a session, so
/// the PBX keeps offering a leg the number it already knows for a format.
#[derive(Clone, Debug, Default)]
pub(crate) struct PtSpace {
    bound: Vec<Codec>,
}

impl PtSpace {
    /// Records the formats of an SDP sent by or to the leg.
    pub fn learn(&mut self, codecs: &[Codec]) {
        for c in codecs {
            self.bound.retain(|b| b.pt != c.pt && !b.same_format(c));
            self.bound.push(c.clone());
        }
    }

    /// The payload type to offer this leg for a format, not one of `taken`; `None` when the
    /// dynamic range (RFC 3551 §3: 96–127) is exhausted.
    pub fn choose(&self, codec: &Codec, taken: &[u8]) -> Option<u8> {
        let free = |pt: u8| !taken.contains(&pt);
        if codec.is_static() && free(codec.pt) {
            return Some(codec.pt);
        }
        if let Some(b) = self.bound.iter().find(|b| b.same_format(codec))
            && free(b.pt)
        {
            return Some(b.pt);
        }
        let unbound = |pt: u8| free(pt) && !self.bound.iter().any(|b| b.pt == pt);
        let usable = |pt: u8| unbound(pt) && static_codec(pt).is_none();
        if usable(codec.pt) && !(72..=76).contains(&codec.pt) {
            return Some(codec.pt);
        }
        (96..=127).find(|pt| unbound(*pt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::parse;

    fn codecs(sdp: &str) -> Vec<Codec> {
        audio_codecs(&parse(sdp.as_bytes()).unwrap().media[0])
    }

    #[test]
    fn static_and_dynamic_types() {
        let c = codecs(
            "v=0\nm=audio 1 RTP/AVP 8 0 96 101 99 8 x\na=rtpmap:96 opus/48000/2\n\
             a=rtpmap:101 TELEPHONE-EVENT/8000\na=fmtp:101 0-15\n",
        );
        let names: Vec<_> = c.iter().map(Codec::encoding).collect();
        assert_eq!(
            names,
            [
                "PCMA/8000",
                "PCMU/8000",
                "opus/48000/2",
                "TELEPHONE-EVENT/8000"
            ]
        );
        assert!(c[3].is_auxiliary());
        assert_eq!(c[3].fmtp.as_deref(), Some("0-15"));
    }

    #[test]
    fn intersection_follows_the_answer() {
        let offer = codecs(
            "v=0\nm=audio 1 RTP/AVP 0 8 101 100\na=rtpmap:101 telephone-event/48000\n\
             a=rtpmap:100 telephone-event/8000\n",
        );
        let offered: Vec<_> = offer.into_iter().map(|c| (c.clone(), c.pt)).collect();
        let answer =
            codecs("v=0\nm=audio 1 RTP/AVP 120 8 3 0 8\na=rtpmap:120 telephone-event/8000\n");
        let agreed = intersect(&offered, &answer);
        let pts: Vec<_> = agreed
            .iter()
            .map(|(c, sent, a)| (c.pt, *sent, a.pt))
            .collect();
        assert_eq!(pts, [(100, 100, 120), (8, 8, 8), (0, 0, 0)]);
    }

    #[test]
    fn a_leg_keeps_its_numbers() {
        let mut space = PtSpace::default();
        let te = |pt| Codec {
            pt,
            name: "telephone-event".into(),
            clock: 8000,
            channels: 1,
            fmtp: None,
        };
        assert_eq!(space.choose(&te(101), &[]), Some(101));
        space.learn(&[te(96)]);
        assert_eq!(space.choose(&te(101), &[]), Some(96));
        assert_eq!(space.choose(&te(101), &[96]), Some(101));
        let opus = Codec {
            name: "opus".into(),
            clock: 48000,
            channels: 2,
            ..te(96)
        };
        // 96 is bound to telephone-event on this leg: opus gets another number.
        assert_eq!(space.choose(&opus, &[]), Some(97));
        let pcmu = codecs("v=0\nm=audio 1 RTP/AVP 0\n").remove(0);
        assert_eq!(space.choose(&pcmu, &[]), Some(0));
    }
}
