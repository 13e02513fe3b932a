//! Who changed what: every admin change through the pages or the API is written to the
//! store's audit log ([`pbx_store::AuditStore`]) with the admin, the client's address and
//! whether it came by the web or by a token (an API call is recorded under the token's
//! admin). Never a password, PIN or token.

use std::net::IpAddr;

use pbx_store::NewAudit;

use crate::Shared;
use crate::sessions::Session;

/// The admin behind a request, and where it came from.
#[derive(Debug, Clone)]
pub struct Actor {
    pub admin: String,
    pub source: IpAddr,
    /// `web` or `api`.
    pub via: &'static str,
}

impl Actor {
    /// A logged-in page's admin.
    pub fn web(session: &Session, source: IpAddr) -> Actor {
        Actor {
            admin: session.user.clone(),
            source,
            via: "web",
        }
    }

    /// A token's admin.
    pub fn api(admin: &str, source: IpAddr) -> Actor {
        Actor {
            admin: admin.to_string(),
            source,
            via: "api",
        }
    }

    /// Records `action` (`thing.verb`) on `target`. The change is made already: a failure to
    /// record it is logged, not turned into a failed request.
    pub async fn record(&self, state: &Shared, action: &str, target: &str, detail: &str) {
        let entry = NewAudit {
            at: state.now(),
            admin: self.admin.clone(),
            source: self.source.to_string(),
            via: self.via.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail: detail.to_string(),
        };
        if let Err(error) = state.audit.record_audit(&entry).await {
            tracing::error!(%error, admin = %self.admin, action, target, "audit log not written");
        }
    }
}

/// How the store names a token (`GET /api/v1/tokens`): the start of its SHA-256, never the
/// token itself.
pub fn token_id(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
        .chars()
        .take(12)
        .collect()
}
