//! What a leg's SDP says about its WebRTC transport, and what the PBX writes back: ICE-lite
//! credentials and its one host candidate (RFC 8839), the DTLS role (RFC 5763 §5) and its
//! certificate's fingerprint (RFC 8122), BUNDLE with one audio `m=` line (RFC 9143).

use super::parse::{MediaDescription, SessionDescription};
use crate::{DtlsRole, Fingerprint, IceCredentials, Setup, WebRtcPlan};

/// A leg's WebRTC attributes, media level over session level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteWebRtc {
    pub ice: IceCredentials,
    pub fingerprints: Vec<Fingerprint>,
    /// `None` when absent: RFC 4145 §4 makes that `active`.
    pub setup: Option<Setup>,
    pub mid: Option<String>,
    /// The stream's mid is in the session's BUNDLE group.
    pub bundled: bool,
}

/// The WebRTC attributes of `m`, when it is a DTLS-SRTP stream with ICE credentials and at
/// least one fingerprint (RFC 8122 §5, RFC 8839 §5.4: without them it cannot be set up).
pub(crate) fn remote(sdp: &SessionDescription, m: &MediaDescription) -> Option<RemoteWebRtc> {
    if !m.is_dtls() {
        return None;
    }
    let (mw, sw) = (&m.webrtc, &sdp.webrtc);
    let fingerprints = match mw.fingerprints.is_empty() {
        true => sw.fingerprints.clone(),
        false => mw.fingerprints.clone(),
    };
    if fingerprints.is_empty() {
        return None;
    }
    let ice = IceCredentials {
        ufrag: mw.ice_ufrag.clone().or_else(|| sw.ice_ufrag.clone())?,
        pwd: mw.ice_pwd.clone().or_else(|| sw.ice_pwd.clone())?,
    };
    let mid = mw.mid.clone();
    Some(RemoteWebRtc {
        bundled: mid.as_ref().is_some_and(|mid| sdp.bundle.contains(mid)),
        ice,
        fingerprints,
        setup: mw.setup.or(sw.setup),
        mid,
    })
}

impl RemoteWebRtc {
    /// Answering this leg's offer (RFC 5763 §5): `actpass` or `active` makes the PBX
    /// `passive` (the DTLS server), `passive` makes it `active`.
    pub fn answer_setup(&self) -> (Setup, DtlsRole) {
        match self.setup {
            Some(Setup::Passive) => (Setup::Active, DtlsRole::Client),
            _ => (Setup::Passive, DtlsRole::Server),
        }
    }

    /// The PBX offered `actpass`; this is the leg's answer (RFC 5763 §5: `active` or
    /// `passive`; anything else is taken as the default, `active`).
    pub fn role_after_answer(&self) -> DtlsRole {
        match self.setup {
            Some(Setup::Passive) => DtlsRole::Client,
            _ => DtlsRole::Server,
        }
    }

    pub fn plan(&self, role: DtlsRole, local: &IceCredentials) -> Box<WebRtcPlan> {
        Box::new(WebRtcPlan {
            role,
            remote_fingerprints: self.fingerprints.clone(),
            local_ice: local.clone(),
            remote_ice: self.ice.clone(),
        })
    }
}

/// The PBX's ICE credentials for a leg (RFC 8839 §5.4: ufrag at least 24 bits and pwd at
/// least 128 bits of randomness, ice-chars only).
pub(crate) fn credentials(rng: &mut impl rand::RngCore) -> IceCredentials {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(CHARS[(rng.next_u32() % 64) as usize]))
            .collect()
    };
    IceCredentials {
        ufrag: text(8),
        pwd: text(24),
    }
}

/// The WebRTC lines of the PBX's audio section.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Section<'a> {
    pub ice: &'a IceCredentials,
    pub fingerprint: &'a Fingerprint,
    pub setup: Setup,
    pub mid: &'a str,
}

/// The mid the PBX uses when it offers, or when the offer had none.
pub(crate) const DEFAULT_MID: &str = "0";

/// The profile the PBX writes for a WebRTC leg (RFC 8829 §5.1.2).
pub(crate) const PROTO: &str = "UDP/TLS/RTP/SAVPF";
