//! The SRTP contexts of one leg (RFC 3711, SDES keys per RFC 4568), on top of webrtc-rs's
//! `rtc-srtp`.
//!
//! `rtc-srtp` only offers `&[u8] -> BytesMut`, so the SRTP path allocates one buffer per
//! packet and copies it back into the caller's buffer; the plain RTP path does not allocate.

use rtc_shared::error::Error as SrtpLibError;
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

use super::RelayError;
use super::packet::{self, Kind};
use crate::{CryptoSuite, Side, SrtpKey, SrtpPair};

/// RFC 3711 §3.3.2 leaves the replay window size to the implementation (at least 64);
/// libsrtp uses 128, which tolerates the reordering seen on real networks.
const REPLAY_WINDOW: usize = 128;

/// At most this many SSRCs per context. `rtc-srtp` creates its per-SSRC state (ROC, replay
/// window) *before* checking the authentication tag, and cannot forget it, so without a cap
/// anyone who can reach the port could grow the context without bound by spraying random
/// SSRCs. A call has one or two streams per direction; re-INVITEs and transfers add a few.
/// When an inbound context is full and nothing in it ever authenticated, it is rebuilt from
/// the keys (nothing of value is lost), so forged SSRCs before the phone's first packet cannot
/// lock the phone out.
const MAX_SSRCS: usize = 16;

/// SRTCP trailer (RFC 3711 §3.4): E flag + 31-bit index.
const SRTCP_INDEX_LEN: usize = 4;

/// Why an SRTP transform failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SrtpFailure {
    /// The authentication tag did not verify (RFC 3711 §3.3 step 5).
    Auth,
    /// Already seen or too old for the replay window (RFC 3711 §3.3.2).
    Replay,
    /// Anything else: malformed, too many SSRCs, no room for the tag.
    Other,
}

/// SSRCs already handed to one `rtc-srtp` context (see [`MAX_SSRCS`]); a fixed array so the
/// check does not allocate.
#[derive(Default)]
struct SsrcGuard {
    seen: [u32; MAX_SSRCS],
    len: usize,
}

impl SsrcGuard {
    fn admit(&mut self, ssrc: u32) -> bool {
        if self.seen[..self.len].contains(&ssrc) {
            return true;
        }
        if self.len == MAX_SSRCS {
            return false;
        }
        self.seen[self.len] = ssrc;
        self.len += 1;
        true
    }
}

/// One direction: an `rtc-srtp` context and the SSRC guards of its RTP and RTCP halves.
struct Direction {
    ctx: Context,
    rtp_ssrcs: SsrcGuard,
    rtcp_ssrcs: SsrcGuard,
    /// Whether any packet ever authenticated with this context (inbound only).
    authenticated: bool,
}

/// The SRTP state of one leg: decrypts what the leg sends, encrypts what the PBX sends it.
pub(crate) struct LegSrtp {
    side: Side,
    keys: SrtpPair,
    inbound: Direction,
    outbound: Direction,
}

impl LegSrtp {
    pub(crate) fn new(side: Side, keys: &SrtpPair) -> Result<LegSrtp, RelayError> {
        Ok(LegSrtp {
            inbound: Direction::new(side, &keys.inbound, true)?,
            outbound: Direction::new(side, &keys.outbound, false)?,
            keys: keys.clone(),
            side,
        })
    }

    /// The keys these contexts were made from; a new plan with the same keys keeps the
    /// contexts, and with them the rollover counters (RFC 3711 §3.3.1).
    pub(crate) fn keys(&self) -> &SrtpPair {
        &self.keys
    }

    /// Authenticates and decrypts `buf[..len]` in place; returns the plain length.
    pub(crate) fn decrypt(
        &mut self,
        kind: Kind,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, SrtpFailure> {
        let key = &self.keys.inbound;
        let dir = &mut self.inbound;
        let ssrc = packet::ssrc(kind, &buf[..len]);
        if kind == Kind::Rtcp && !srtcp_claims_encryption(key.suite, &buf[..len]) {
            // RFC 3711 §3.4 allows E=0 (authenticated, not encrypted), but rtc-srtp 0.21
            // returns such packets *without checking their tag*, which would let anyone
            // inject RTCP. Real SDES endpoints always encrypt SRTCP; refuse.
            return Err(SrtpFailure::Other);
        }
        if kind == Kind::Rtp && !packet::extensions_well_formed(&buf[..len]) {
            return Err(SrtpFailure::Other);
        }
        if !dir.admit(kind, ssrc) {
            if dir.authenticated {
                return Err(SrtpFailure::Other);
            }
            // Only forged SSRCs so far: start over (see MAX_SSRCS).
            *dir = Direction::new(self.side, key, true).map_err(|_| SrtpFailure::Other)?;
            if !dir.admit(kind, ssrc) {
                return Err(SrtpFailure::Other);
            }
        }
        let pkt = &buf[..len];
        let out = match kind {
            Kind::Rtp => dir.ctx.decrypt_rtp(pkt),
            Kind::Rtcp => dir.ctx.decrypt_rtcp(pkt),
        }
        .map_err(classify)?;
        dir.authenticated = true;
        copy_back(out.as_ref(), buf)
    }

    /// Encrypts `buf[..len]` in place, appending the tag (and for SRTCP the index); returns
    /// the protected length.
    pub(crate) fn encrypt(
        &mut self,
        kind: Kind,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, SrtpFailure> {
        let dir = &mut self.outbound;
        let pkt = &buf[..len];
        if kind == Kind::Rtp && !packet::extensions_well_formed(pkt) {
            return Err(SrtpFailure::Other);
        }
        if !dir.admit(kind, packet::ssrc(kind, pkt)) {
            return Err(SrtpFailure::Other);
        }
        let out = match kind {
            Kind::Rtp => dir.ctx.encrypt_rtp(pkt),
            Kind::Rtcp => dir.ctx.encrypt_rtcp(pkt),
        }
        .map_err(classify)?;
        copy_back(out.as_ref(), buf)
    }
}

impl Direction {
    fn new(side: Side, key: &SrtpKey, inbound: bool) -> Result<Direction, RelayError> {
        let (key_len, salt_len) = (key.suite.key_len(), key.suite.salt_len());
        if key.key_salt.len() != key_len + salt_len {
            return Err(RelayError::KeyLength {
                side,
                suite: key.suite.name(),
                expected: key_len + salt_len,
                got: key.key_salt.len(),
            });
        }
        let (master_key, master_salt) = key.key_salt.split_at(key_len);
        let provider = rtc_srtp::crypto::default_provider().map_err(|e| RelayError::Srtp {
            side,
            reason: e.to_string(),
        })?;
        // RFC 3711 §3.3.2: replay protection on what we receive; what we send is ours.
        let (rtp_opt, rtcp_opt) = if inbound {
            (
                Some(srtp_replay_protection(REPLAY_WINDOW)),
                Some(srtcp_replay_protection(REPLAY_WINDOW)),
            )
        } else {
            (None, None)
        };
        let ctx = Context::new(
            master_key,
            master_salt,
            profile(key.suite),
            rtp_opt,
            rtcp_opt,
            provider.crypto(),
        )
        // The library's error names lengths and profiles, never key bytes.
        .map_err(|e| RelayError::Srtp {
            side,
            reason: e.to_string(),
        })?;
        Ok(Direction {
            ctx,
            rtp_ssrcs: SsrcGuard::default(),
            rtcp_ssrcs: SsrcGuard::default(),
            authenticated: false,
        })
    }

    fn admit(&mut self, kind: Kind, ssrc: u32) -> bool {
        match kind {
            Kind::Rtp => self.rtp_ssrcs.admit(ssrc),
            Kind::Rtcp => self.rtcp_ssrcs.admit(ssrc),
        }
    }
}

fn profile(suite: CryptoSuite) -> ProtectionProfile {
    match suite {
        CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        CryptoSuite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    }
}

/// For the HMAC-SHA1 suites: the E flag of the SRTCP index word (RFC 3711 §3.4), which sits
/// before the 80-bit tag. AEAD (RFC 7714 §9.1) authenticates the flag itself, so a cleared
/// flag fails there anyway.
fn srtcp_claims_encryption(suite: CryptoSuite, pkt: &[u8]) -> bool {
    match suite {
        CryptoSuite::AeadAes128Gcm => true,
        CryptoSuite::AesCm128HmacSha1_80 | CryptoSuite::AesCm128HmacSha1_32 => {
            // RFC 4568 §6.2.1: SRTCP keeps the 80-bit tag even with the _32 suite.
            const SRTCP_TAG: usize = 10;
            pkt.len()
                .checked_sub(SRTCP_TAG + SRTCP_INDEX_LEN)
                .and_then(|at| pkt.get(at))
                .is_some_and(|b| b & 0x80 != 0)
        }
    }
}

fn classify(e: SrtpLibError) -> SrtpFailure {
    match e {
        SrtpLibError::RtpFailedToVerifyAuthTag
        | SrtpLibError::RtcpFailedToVerifyAuthTag
        | SrtpLibError::ErrFailedToVerifyAuthTag => SrtpFailure::Auth,
        SrtpLibError::SrtpSsrcDuplicated(..) | SrtpLibError::SrtcpSsrcDuplicated(..) => {
            SrtpFailure::Replay
        }
        _ => SrtpFailure::Other,
    }
}

fn copy_back(out: &[u8], buf: &mut [u8]) -> Result<usize, SrtpFailure> {
    let dst = buf.get_mut(..out.len()).ok_or(SrtpFailure::Other)?;
    dst.copy_from_slice(out);
    Ok(out.len())
}
