//! Provisioning: an extension's QR code page, its printable welcome sheet, and the one-time
//! link the QR code encodes (`/provision/TOKEN`, no login: the token is the credential).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pbx_store::{Extension, Transport};
use serde::Deserialize;

use super::{Layout, LoggedIn};
use crate::Shared;
use crate::errors::PageError;
use crate::provisioning::{self, Account, Redeemed};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/extensions/{number}/qr", get(qr_page))
        .route("/extensions/{number}/welcome", get(welcome_sheet))
        .route("/provision/{token}", get(provision))
}

#[derive(Deserialize)]
struct TransportQuery {
    transport: Option<String>,
}

/// The listeners a provisioned softphone can use: WebSocket ones are for browsers (RFC 7118),
/// which the phone page serves itself, not for the SIP accounts written here.
fn phone_listeners(state: &Shared) -> impl Iterator<Item = (Transport, std::net::SocketAddr)> + '_ {
    state
        .settings
        .sip_listeners
        .iter()
        .copied()
        .filter(|(t, _)| matches!(t, Transport::Udp | Transport::Tcp | Transport::Tls))
}

/// What a phone is told to use: the transport asked for when the PBX listens on it, else TLS
/// when it can, else the first listener a phone can use.
fn pick_listener(state: &Shared, asked: Option<&str>) -> Option<(Transport, std::net::SocketAddr)> {
    let by = |t: Transport| phone_listeners(state).find(|(lt, _)| *lt == t);
    let asked = asked.and_then(|a| match a {
        "udp" => by(Transport::Udp),
        "tcp" => by(Transport::Tcp),
        "tls" => by(Transport::Tls),
        _ => None,
    });
    asked
        .or_else(|| by(Transport::Tls))
        .or_else(|| phone_listeners(state).next())
}

/// Everything the QR page and the welcome sheet show.
pub struct Sheet {
    pub ext: Extension,
    pub domain: String,
    pub transport: String,
    pub host: String,
    pub port: u16,
    pub srtp: &'static str,
    pub url: String,
    pub qr: String,
    pub expires: String,
    /// The transports to choose from, with whether each is the one shown.
    pub transports: Vec<(String, bool)>,
}

fn sheet(
    state: &Shared,
    headers: &HeaderMap,
    ext: Extension,
    asked: Option<&str>,
) -> Result<Sheet, PageError> {
    let (transport, addr) = pick_listener(state, asked).ok_or_else(|| {
        PageError::BadRequest("The PBX has no SIP listener to provision phones for.".into())
    })?;
    let web_host = super::request_host(headers).unwrap_or_else(|| "localhost".into());
    // A listener on every address: the phone reaches the PBX where the admin's browser did.
    let sip_host = if addr.ip().is_unspecified() {
        super::host_only(&web_host).to_string()
    } else {
        addr.ip().to_string()
    };
    let now = state.now();
    let ttl = state.settings.provision_ttl.as_secs();
    let token = state
        .links
        .create(&ext.number, transport, &sip_host, addr.port(), now, ttl);
    let scheme = if state.settings.secure_cookies {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{web_host}/provision/{token}");
    let qr = provisioning::qr_svg(&url).map_err(PageError::BadRequest)?;
    let account = Account {
        display_name: &ext.name,
        number: &ext.number,
        domain: &state.settings.domain,
        transport,
        host: &sip_host,
        port: addr.port(),
        ha1_md5: "",
        media_encryption: &ext.media_encryption,
    };
    let srtp = match provisioning::srtp(&account) {
        (true, true) => "SRTP (mandatory)",
        (true, false) => "SRTP",
        _ => "none",
    };
    let transports = phone_listeners(state).map(|(t, _)| t.to_string()).fold(
        Vec::new(),
        |mut v: Vec<(String, bool)>, t| {
            if !v.iter().any(|(x, _)| *x == t) {
                let current = t == transport.to_string();
                v.push((t, current));
            }
            v
        },
    );
    Ok(Sheet {
        domain: state.settings.domain.clone(),
        transport: transport.to_string().to_uppercase(),
        host: sip_host,
        port: addr.port(),
        srtp,
        url,
        qr,
        expires: super::when(now.saturating_add(ttl)),
        transports,
        ext,
    })
}

async fn find(state: &Shared, number: &str) -> Result<Extension, PageError> {
    state
        .extensions
        .list_extensions()
        .await?
        .into_iter()
        .find(|e| e.number == number)
        .ok_or_else(|| PageError::NotFound(format!("There is no extension {number}.")))
}

#[derive(Template, WebTemplate)]
#[template(path = "provision.html")]
struct QrPage {
    layout: Layout,
    sheet: Sheet,
}

async fn qr_page(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Path(number): Path<String>,
    Query(q): Query<TransportQuery>,
    headers: HeaderMap,
) -> Result<QrPage, PageError> {
    let ext = find(&state, &number).await?;
    Ok(QrPage {
        layout: Layout::new(&session, "extensions"),
        sheet: sheet(&state, &headers, ext, q.transport.as_deref())?,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "welcome.html")]
struct WelcomeSheet {
    css: &'static str,
    sheet: Sheet,
}

async fn welcome_sheet(
    State(state): State<Shared>,
    LoggedIn(_): LoggedIn,
    Path(number): Path<String>,
    Query(q): Query<TransportQuery>,
    headers: HeaderMap,
) -> Result<WelcomeSheet, PageError> {
    let ext = find(&state, &number).await?;
    Ok(WelcomeSheet {
        css: crate::assets::CSS.url(),
        sheet: sheet(&state, &headers, ext, q.transport.as_deref())?,
    })
}

fn gone(message: &str) -> Response {
    (
        StatusCode::GONE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

async fn provision(State(state): State<Shared>, Path(token): Path<String>) -> Response {
    let link = match state.links.redeem(&token, state.now()) {
        Redeemed::Valid(link) => link,
        Redeemed::Used => {
            return gone(
                "This provisioning link has been used already: each link works once. Ask your \
                 administrator for a new QR code.",
            );
        }
        Redeemed::Expired => {
            return gone(
                "This provisioning link has expired. Ask your administrator for a new QR code.",
            );
        }
        Redeemed::Unknown => {
            return (
                StatusCode::NOT_FOUND,
                "There is no such provisioning link (or the PBX restarted since it was made).\n",
            )
                .into_response();
        }
    };
    let ext = match state.extensions.list_extensions().await {
        Ok(all) => all.into_iter().find(|e| e.number == link.number),
        Err(e) => return PageError::from(e).into_response(),
    };
    let creds = match state.credentials.credentials(&link.number).await {
        Ok(c) => c,
        Err(e) => return PageError::from(e).into_response(),
    };
    let (Some(ext), Some(creds)) = (ext, creds) else {
        return gone("The extension of this provisioning link has been deleted.");
    };
    let xml = provisioning::linphone_xml(&Account {
        display_name: &ext.name,
        number: &ext.number,
        domain: &state.settings.domain,
        transport: link.transport,
        host: &link.host,
        port: link.port,
        ha1_md5: &creds.ha1_md5,
        media_encryption: &ext.media_encryption,
    });
    tracing::info!(extension = %ext.number, "provisioning link used");
    (
        [
            (header::CONTENT_TYPE, "application/xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        xml,
    )
        .into_response()
}
