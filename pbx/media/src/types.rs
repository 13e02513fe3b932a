//! The types SDP negotiation hands to the relay.

use std::net::SocketAddr;

/// One of the two legs of a bridged call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The leg of the party that placed the call (the PBX is its UAS).
    Caller,
    /// The leg of the party that was called (the PBX is its UAC).
    Callee,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }

    pub fn index(self) -> usize {
        match self {
            Side::Caller => 0,
            Side::Callee => 1,
        }
    }
}

/// The SDES crypto suites the PBX speaks (RFC 4568 §6.2, RFC 7714 §14.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CryptoSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
}

impl CryptoSuite {
    /// The name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    pub fn from_name(name: &str) -> Option<CryptoSuite> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(CryptoSuite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(CryptoSuite::AesCm128HmacSha1_32),
            "AEAD_AES_128_GCM" => Some(CryptoSuite::AeadAes128Gcm),
            _ => None,
        }
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes (RFC 3711 §8.2: 112 bits; RFC 7714 §12: 96 bits).
    pub fn salt_len(self) -> usize {
        match self {
            CryptoSuite::AeadAes128Gcm => 12,
            _ => 14,
        }
    }
}

/// An SRTP master key and salt for one direction of one leg.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKey {
    pub suite: CryptoSuite,
    /// Master key followed by master salt, as in the `inline:` base64 of `a=crypto`.
    pub key_salt: Vec<u8>,
}

// Never print key material (ARCHITECTURE.md rule 11).
impl std::fmt::Debug for SrtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKey")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// The keys of one SRTP leg: what the leg encrypts with, and what the PBX encrypts with
/// towards it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpPair {
    /// The key from the leg's own `a=crypto`: decrypts what the leg sends.
    pub inbound: SrtpKey,
    /// The PBX's key for this leg (its `a=crypto` to the leg): encrypts what the PBX sends.
    pub outbound: SrtpKey,
}

/// RFC 3264 §5.1 / RFC 4566 §6 media direction, as the leg declared it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// On hold: the leg will not send (or receive) media, so silence is not a dead call.
    pub fn is_hold(self) -> bool {
        !matches!(self, Direction::SendRecv)
    }
}

/// What the relay needs to know about one leg.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LegPlan {
    /// Where the leg said it receives RTP (its SDP `c=`/`m=`); `None` for port 0 or an
    /// unspecified address. Latching replaces it with where packets really come from.
    pub remote_rtp: Option<SocketAddr>,
    /// Where the leg receives RTCP (`a=rtcp` or RTP port + 1); equal to `remote_rtp` with
    /// rtcp-mux.
    pub remote_rtcp: Option<SocketAddr>,
    /// RFC 5761: RTP and RTCP share the RTP port on this leg.
    pub rtcp_mux: bool,
    /// SRTP keys when this leg is encrypted.
    pub srtp: Option<SrtpPair>,
    /// Payload types to rewrite on packets sent TO this leg: (the other leg's PT, this leg's
    /// PT). Types not listed pass unchanged.
    pub pt_map: Vec<(u8, u8)>,
    /// The direction this leg declared in its last SDP.
    pub direction: Direction,
    /// A WebRTC leg (`UDP/TLS/RTP/SAVPF`): ICE-lite and DTLS-SRTP on the RTP socket; its SRTP
    /// keys come from the DTLS handshake, not from `srtp`. Boxed: most legs have none.
    pub webrtc: Option<Box<WebRtcPlan>>,
    /// The PBX's own stream towards this leg: when set, everything the PBX sends the leg (the
    /// relayed other leg, a player, the echo) goes out as one stream, renumbered across
    /// changes of source (`relay/rewrite.rs`). `None` passes the sources' SSRC, sequence and
    /// timestamp through (plain phones: docs/decisions.md "One outgoing stream"). Boxed:
    /// most legs have none, and plans travel in the call's outputs.
    pub out_stream: Option<Box<OutStreamPlan>>,
    /// This leg speaks Opus and the other leg a voice codec it lacks: the relay transcodes
    /// between them (`crate::transcode`). Set on the Opus leg only.
    pub transcode: Option<crate::transcode::Transcoding>,
}

/// The PBX's own outgoing stream towards a leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutStreamPlan {
    /// RFC 3550 §8: the PBX's SSRC, the same for the whole call.
    pub ssrc: u32,
    /// The RTP clock rate of each payload type the leg receives (its own numbers), for the
    /// timestamp step across a change of source; types not listed are taken as 8000 Hz.
    pub clock_rates: Vec<(u8, u32)>,
}

impl LegPlan {
    /// The leg's media is encrypted: SRTP with SDES keys, or DTLS-SRTP (a WebRTC leg).
    pub fn encrypted(&self) -> bool {
        self.srtp.is_some() || self.webrtc.is_some()
    }
}

/// `a=setup` (RFC 4145 §4, RFC 5763 §5): who opens the DTLS association.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
    HoldConn,
}

impl Setup {
    pub fn attribute(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }

    pub fn from_attribute(value: &str) -> Option<Setup> {
        let v = value.trim();
        [
            Setup::Active,
            Setup::Passive,
            Setup::ActPass,
            Setup::HoldConn,
        ]
        .into_iter()
        .find(|s| v.eq_ignore_ascii_case(s.attribute()))
    }
}

/// The PBX's DTLS role on a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// The PBX sends the ClientHello (the leg said `a=setup:passive`).
    Client,
    /// The PBX waits for the leg's ClientHello (the PBX said `passive`).
    Server,
}

/// `a=fingerprint:<hash> <hex:hex:...>` (RFC 8122 §5): the hash of the peer's certificate.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// The hash function's name as in the IANA registry, lower case (`sha-256`).
    pub algorithm: String,
    pub digest: Vec<u8>,
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.attribute())
    }
}

impl Fingerprint {
    /// The attribute value: `sha-256 AB:CD:...` (upper-case hex, RFC 8122 §5).
    pub fn attribute(&self) -> String {
        let hex: Vec<String> = self.digest.iter().map(|b| format!("{b:02X}")).collect();
        format!("{} {}", self.algorithm, hex.join(":"))
    }

    /// Reads an `a=fingerprint` value; `None` when it is not `<token> <hex pairs>`.
    pub fn parse(value: &str) -> Option<Fingerprint> {
        let (algorithm, hex) = value.trim().split_once(' ')?;
        let digest = hex
            .trim()
            .split(':')
            .map(|pair| match pair.len() {
                2 => u8::from_str_radix(pair, 16).ok(),
                _ => None,
            })
            .collect::<Option<Vec<u8>>>()?;
        if algorithm.is_empty() || digest.is_empty() {
            return None;
        }
        Some(Fingerprint {
            algorithm: algorithm.to_ascii_lowercase(),
            digest,
        })
    }
}

/// ICE credentials (RFC 8839 §5.4): `a=ice-ufrag` and `a=ice-pwd`. The password keys the
/// STUN MESSAGE-INTEGRITY of connectivity checks: never printed.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct IceCredentials {
    pub ufrag: String,
    pub pwd: String,
}

impl std::fmt::Debug for IceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceCredentials")
            .field("ufrag", &self.ufrag)
            .finish_non_exhaustive()
    }
}

/// What the media session needs to run a WebRTC leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebRtcPlan {
    pub role: DtlsRole,
    /// The leg's `a=fingerprint`s: its certificate must match one (RFC 8122 §5).
    pub remote_fingerprints: Vec<Fingerprint>,
    /// The PBX's credentials towards this leg: checks from the leg carry `local.ufrag` first
    /// in USERNAME and are keyed with `local.pwd` (RFC 8445 §7.2.2).
    pub local_ice: IceCredentials,
    pub remote_ice: IceCredentials,
}

/// The bridge of one call after an offer/answer exchange completed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MediaPlan {
    pub caller: LegPlan,
    pub callee: LegPlan,
    /// The codec both legs agreed on, e.g. `PCMU/8000`, for the CDR.
    pub codec: String,
}

impl MediaPlan {
    pub fn leg(&self, side: Side) -> &LegPlan {
        match side {
            Side::Caller => &self.caller,
            Side::Callee => &self.callee,
        }
    }

    /// Either leg on hold.
    pub fn on_hold(&self) -> bool {
        self.caller.direction.is_hold() || self.callee.direction.is_hold()
    }
}
