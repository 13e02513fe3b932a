//! What processing a REGISTER decided: the changes to store and the bindings to report.

use super::binding::Binding;

/// One change to the stored bindings of the address-of-record. Apply in order: removals
/// come before upserts.
#[derive(Clone, Debug, PartialEq)]
pub enum BindingChange {
    /// Insert, or replace the stored binding with the same contact text, instance and reg-id.
    Upsert(Binding),
    /// Remove this stored binding (as it was passed in).
    Remove(Binding),
    /// `Contact: *` with Expires 0: remove every binding of the AOR.
    RemoveAll,
}

/// The outcome of an accepted REGISTER: answer 200 with [`response_contacts`].
///
/// [`response_contacts`]: RegisterPlan::response_contacts
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterPlan {
    pub changes: Vec<BindingChange>,
    /// Every binding of the AOR once the changes are applied (lapsed ones left out).
    pub bindings: Vec<Binding>,
}

impl RegisterPlan {
    /// A query (no Contact): nothing changes.
    pub fn is_query(&self) -> bool {
        self.changes.is_empty()
    }

    /// One Contact header value per current binding, each with its `expires` (RFC 3261 §10.3
    /// step 8: the 200 SHOULD list all current bindings, each MUST have an expires parameter).
    pub fn response_contacts(&self, now_unix: u64) -> Vec<String> {
        self.bindings
            .iter()
            .map(|b| b.contact_value(now_unix))
            .collect()
    }
}
