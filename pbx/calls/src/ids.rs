//! Fresh identifiers: tags (RFC 3261 §19.3), branches (§8.1.1.7) and Call-IDs (§8.1.1.4),
//! drawn from the random source the caller owns (the engine's, seeded by its shell), so a
//! test with a fixed seed is deterministic.

use rand::RngCore;

/// Every branch the PBX makes starts with this (the RFC 3261 magic cookie `z9hG4bK`, then
/// `pbx`), so a request that comes back to the PBX
/// carrying one of its own branches is a loop (RFC 3261 §16.3 item 4, §8.2.2.2).
pub const OWN_BRANCH_PREFIX: &str = "z9hG4bKpbx";

/// A To or From tag: 64 random bits (§19.3 asks for at least 32).
pub fn tag(rng: &mut impl RngCore) -> String {
    format!("{:016x}", rng.next_u64())
}

/// A branch with the RFC 3261 magic cookie, unique in space and time.
pub fn branch(rng: &mut impl RngCore) -> String {
    format!(
        "{OWN_BRANCH_PREFIX}{:016x}{:08x}",
        rng.next_u64(),
        rng.next_u32()
    )
}

/// A Call-ID for a leg the PBX opens; `prefix` lets the shell route messages of that leg
/// back to the shard that owns the call.
pub fn call_id(prefix: &str, rng: &mut impl RngCore) -> String {
    format!("{prefix}{:016x}{:016x}", rng.next_u64(), rng.next_u64())
}
