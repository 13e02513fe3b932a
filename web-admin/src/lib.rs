//! The PBX's browser admin UI and REST API, as one axum [`Router`] the server mounts beside
//! `/healthz` and `/metrics`.
//!
//! This crate sees the PBX only through ports: the store's traits (`pbx-store`) for what is
//! persisted, [`live::Live`] for the running engine's state (registrations now, dialplan
//! contexts, reload, lifting a ban) and [`live::LoginGuard`] for the ban rules shared with SIP.
//! It never depends on the server crate, so its handlers are tested against a real SQLite
//! store with fakes for the rest.
//!
//! Layout (after kanidm's views): one module per page area under [`views`], the REST API under
//! [`api`], and the cross-cutting pieces apart: [`sessions`], [`cookies`], [`csrf`],
//! [`errors`], [`assets`].

pub mod api;
pub mod assets;
pub mod audio;
pub mod audit;
pub mod cdr_filter;
pub mod chart;
pub mod clock;
pub mod cookies;
pub mod csrf;
pub mod dialplan_file;
pub mod errors;
pub mod live;
pub mod messages;
pub mod password;
pub mod phone;
pub mod provisioning;
pub mod sessions;
pub mod trunk_form;
pub mod validate;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use pbx_store::{
    AdminStore, AuditStore, BanStore, CdrStore, CredentialStore, ExtensionStore, MailboxStore,
    Transport, TrunkStore,
};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::clock::{Clock, SystemClock};
use crate::live::{Live, LoginGuard};
use crate::provisioning::ProvisionLinks;
use crate::sessions::Sessions;

/// What the server tells the admin about itself.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[sip] domain`: the SIP domain and digest realm (HA1s depend on it).
    pub domain: String,
    /// The SIP listeners, written into provisioning documents.
    pub sip_listeners: Vec<(Transport, SocketAddr)>,
    /// Whether the page is served over HTTPS: the session cookie is then `Secure`.
    pub secure_cookies: bool,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after login, used or not.
    pub session_absolute: Duration,
    /// How long a provisioning link (QR code) can be used.
    pub provision_ttl: Duration,
    /// `[voicemail] storage`: the only folder message audio is served from or deleted in.
    /// `None`: audio is refused.
    pub voicemail_storage: Option<PathBuf>,
}

impl Settings {
    /// The defaults for `domain`: 30 min idle, 12 h absolute, provisioning links for 24 h.
    pub fn new(domain: impl Into<String>, sip_listeners: Vec<(Transport, SocketAddr)>) -> Self {
        Settings {
            domain: domain.into(),
            sip_listeners,
            secure_cookies: false,
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            provision_ttl: Duration::from_secs(24 * 3600),
            voicemail_storage: None,
        }
    }
}

/// Everything a handler needs; shared by every request.
pub struct AdminState {
    pub admins: Arc<dyn AdminStore>,
    pub extensions: Arc<dyn ExtensionStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub bans: Arc<dyn BanStore>,
    pub cdrs: Arc<dyn CdrStore>,
    pub mailboxes: Arc<dyn MailboxStore>,
    pub trunks: Arc<dyn TrunkStore>,
    pub audit: Arc<dyn AuditStore>,
    pub live: Arc<dyn Live>,
    pub guard: Arc<dyn LoginGuard>,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub sessions: Sessions,
    /// The browser phone's logins (extensions, not admins): a table of their own.
    pub phone_sessions: Sessions,
    pub links: ProvisionLinks,
}

impl AdminState {
    /// The state over one store that implements every port (the server's `Store`).
    pub fn new<S>(
        store: Arc<S>,
        live: Arc<dyn Live>,
        guard: Arc<dyn LoginGuard>,
        settings: Settings,
    ) -> AdminState
    where
        S: AdminStore
            + ExtensionStore
            + CredentialStore
            + BanStore
            + CdrStore
            + MailboxStore
            + TrunkStore
            + AuditStore
            + 'static,
    {
        AdminState {
            admins: store.clone(),
            extensions: store.clone(),
            credentials: store.clone(),
            bans: store.clone(),
            cdrs: store.clone(),
            trunks: store.clone(),
            audit: store.clone(),
            mailboxes: store,
            live,
            guard,
            clock: Arc::new(SystemClock),
            sessions: Sessions::new(settings.session_idle, settings.session_absolute),
            phone_sessions: Sessions::new(settings.session_idle, settings.session_absolute),
            links: ProvisionLinks::default(),
            settings,
        }
    }

    /// The same with another clock (tests move time by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> AdminState {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> u64 {
        self.clock.now_unix()
    }
}

pub type Shared = Arc<AdminState>;

/// The admin UI (`/`, `/extensions`, ...), the assets, the provisioning links and the REST API
/// (`/api/v1`), with the security headers every page gets.
pub fn router(state: Shared) -> Router {
    let pages = views::router().merge(assets::router()).layer(
        SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        ),
    );
    Router::new()
        .merge(pages)
        .merge(phone::router())
        .nest("/api/v1", api::router(state.clone()))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        // The provisioning token is in the URL: never hand it on.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}
