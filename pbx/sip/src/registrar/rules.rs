//! RFC 3261 §10.3 steps 6-8 over the bindings the caller already has for the AOR. Steps 1-5
//! (domain, Require, authentication, To → AOR) are the shell's.

use super::binding::Binding;
use super::error::RegisterError;
use super::plan::{BindingChange, RegisterPlan};
use crate::header::{Contacts, HeaderError, NameAddr};
use crate::message::{HeaderName, Request};

/// RFC 3261 §10.3 step 7: only intervals under an hour may be refused as too brief.
const BRIEF_LIMIT: u32 = 3600;
/// RFC 3261 §20.19: a malformed expiration is taken as 3600.
const MALFORMED_EXPIRES: u32 = 3600;

/// The registrar's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrarPolicy {
    /// Below this (and under an hour), a non-zero request gets 423.
    pub min_expires: u32,
    /// Longer requests are shortened to this.
    pub max_expires: u32,
    /// Used when neither the contact nor the request gives an expiration.
    pub default_expires: u32,
    /// A request that would leave more bindings than this for one AOR gets 403.
    pub max_bindings_per_aor: usize,
}

impl Default for RegistrarPolicy {
    fn default() -> RegistrarPolicy {
        RegistrarPolicy {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_bindings_per_aor: 10,
        }
    }
}

/// A binding in the working set: where it came from, and whether this request set it.
struct Slot {
    binding: Binding,
    origin: Option<usize>,
    touched: bool,
}

/// Applies a REGISTER to `existing` (the AOR's stored bindings; lapsed ones are ignored).
/// Nothing is half-applied: either every contact is accepted or the request fails
/// (RFC 3261 §10.3 step 8: commit all binding updates or none).
pub fn process_register(
    now_unix: u64,
    req: &Request,
    existing: &[Binding],
    policy: &RegistrarPolicy,
) -> Result<RegisterPlan, RegisterError> {
    let live: Vec<&Binding> = existing
        .iter()
        .filter(|b| !b.is_expired(now_unix))
        .collect();
    let contacts = req.headers.contacts()?;
    if let Contacts::List(list) = &contacts
        && list.is_empty()
    {
        // RFC 3261 §10.3 step 8 (query): no Contact, no change; list the current bindings.
        let bindings = live.into_iter().cloned().collect();
        return Ok(RegisterPlan {
            changes: Vec::new(),
            bindings,
        });
    }
    let call_id = req
        .headers
        .call_id()
        .ok_or(HeaderError::Missing("Call-ID"))?;
    let cseq = req.headers.cseq()?.seq;
    let header_expires = header_expires(req);

    let list = match contacts {
        Contacts::Star => return remove_all(&live, call_id, cseq, header_expires),
        Contacts::List(list) => list,
    };

    let mut slots: Vec<Slot> = live
        .iter()
        .enumerate()
        .map(|(i, b)| Slot {
            binding: (*b).clone(),
            origin: Some(i),
            touched: false,
        })
        .collect();
    for contact in &list {
        let expires = contact_expires(contact, header_expires, policy)?;
        let wanted = Binding::from_contact(
            contact,
            now_unix.saturating_add(u64::from(expires)),
            call_id,
            cseq,
        );
        let found = slots.iter().position(|s| s.binding.same_binding(&wanted));
        if let Some(i) = found
            && let Some(slot) = slots.get(i)
            && !slot.touched
        {
            // RFC 3261 §10.3 step 8: same Call-ID needs a higher CSeq, else the request fails.
            check_order(&slot.binding, call_id, cseq)?;
        }
        match (found, expires) {
            (Some(i), 0) => {
                slots.remove(i);
            }
            (None, 0) => {} // Removing what is not there changes nothing.
            (Some(i), _) => {
                if let Some(slot) = slots.get_mut(i) {
                    slot.binding = wanted;
                    slot.touched = true;
                }
            }
            (None, _) => slots.push(Slot {
                binding: wanted,
                origin: None,
                touched: true,
            }),
        }
    }
    if slots.len() > policy.max_bindings_per_aor && slots.len() > live.len() {
        return Err(RegisterError::TooManyBindings {
            max: policy.max_bindings_per_aor,
        });
    }
    Ok(RegisterPlan {
        changes: diff(&live, &slots),
        bindings: slots.into_iter().map(|s| s.binding).collect(),
    })
}

/// The Expires header, if present; a malformed one counts as 3600 (RFC 3261 §20.19).
fn header_expires(req: &Request) -> Option<u32> {
    match req.headers.expires() {
        Some(v) => Some(v),
        None if req.headers.contains(&HeaderName::EXPIRES) => Some(MALFORMED_EXPIRES),
        None => None,
    }
}

/// RFC 3261 §10.3 step 7: the contact's expires parameter, else the Expires header, else the
/// default; refused when non-zero, under an hour and under the minimum; capped at the maximum.
fn contact_expires(
    contact: &NameAddr,
    header: Option<u32>,
    policy: &RegistrarPolicy,
) -> Result<u32, RegisterError> {
    let requested = match (contact.expires(), contact.params.contains("expires")) {
        (Some(v), _) => v,
        (None, true) => MALFORMED_EXPIRES,
        (None, false) => header.unwrap_or(policy.default_expires),
    };
    if requested > 0 && requested < BRIEF_LIMIT && requested < policy.min_expires {
        // RFC 3261 §10.3 step 7: 423, which MUST carry Min-Expires.
        return Err(RegisterError::IntervalTooBrief {
            min_expires: policy.min_expires,
        });
    }
    Ok(requested.min(policy.max_expires))
}

fn check_order(stored: &Binding, call_id: &str, cseq: u32) -> Result<(), RegisterError> {
    if stored.call_id == call_id && cseq <= stored.cseq {
        return Err(RegisterError::OutOfOrder {
            cseq,
            stored: stored.cseq,
        });
    }
    Ok(())
}

/// RFC 3261 §10.3 step 6: `*` only with Expires 0 (the parser already refused `*` beside other
/// contacts); each binding with the same Call-ID needs a higher CSeq, or the request fails.
fn remove_all(
    live: &[&Binding],
    call_id: &str,
    cseq: u32,
    header_expires: Option<u32>,
) -> Result<RegisterPlan, RegisterError> {
    if header_expires != Some(0) {
        return Err(RegisterError::StarWithExpires);
    }
    for binding in live {
        check_order(binding, call_id, cseq)?;
    }
    Ok(RegisterPlan {
        changes: vec![BindingChange::RemoveAll],
        bindings: Vec::new(),
    })
}

/// Removals (gone, or replaced under a different URI text) first, then the upserts.
fn diff(live: &[&Binding], slots: &[Slot]) -> Vec<BindingChange> {
    let mut changes = Vec::new();
    for (i, old) in live.iter().enumerate() {
        let kept = slots.iter().find(|s| s.origin == Some(i));
        if !kept.is_some_and(|s| s.binding.same_key(old)) {
            changes.push(BindingChange::Remove((*old).clone()));
        }
    }
    for slot in slots.iter().filter(|s| s.touched) {
        changes.push(BindingChange::Upsert(slot.binding.clone()));
    }
    changes
}
