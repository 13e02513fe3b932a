//! The UI's static files, compiled into the binary: htmx (vendored from npm `htmx.org`, with
//! its licence), the style sheet and the icon, and the browser phone's files (SIP.js, vendored
//! from npm `sip.js` with its licence). Each URL holds a hash of the content, so a
//! file can be cached forever (`immutable`) and a new build is fetched at once.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::Shared;

pub struct Asset {
    name: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
    url: OnceLock<String>,
}

impl Asset {
    const fn new(name: &'static str, bytes: &'static [u8], content_type: &'static str) -> Asset {
        Asset {
            name,
            bytes,
            content_type,
            url: OnceLock::new(),
        }
    }

    /// `/assets/HASH/NAME`, HASH the first 12 hex digits of the content's SHA-256.
    pub fn url(&'static self) -> &'static str {
        self.url.get_or_init(|| {
            let hash = hex::encode(Sha256::digest(self.bytes));
            format!("/assets/{}/{}", &hash[..12], self.name)
        })
    }
}

pub static CSS: Asset = Asset::new(
    "app.css",
    include_bytes!("../assets/app.css"),
    "text/css; charset=utf-8",
);
pub static HTMX: Asset = Asset::new(
    "htmx.min.js",
    include_bytes!("../assets/htmx-2.0.11.min.js"),
    "text/javascript; charset=utf-8",
);
pub static HTMX_LICENSE: Asset = Asset::new(
    "htmx-LICENSE.txt",
    include_bytes!("../assets/htmx-LICENSE.txt"),
    "text/plain; charset=utf-8",
);
pub static ICON: Asset = Asset::new(
    "icon.svg",
    include_bytes!("../assets/icon.svg"),
    "image/svg+xml",
);

/// The browser phone (`/phone`): its own sheet on top of [`CSS`], its page script, and
/// SIP.js 0.21.2 bundled once by `scripts/vendor-sip-js.sh` (docs/decisions.md).
pub static PHONE_CSS: Asset = Asset::new(
    "phone.css",
    include_bytes!("../assets/phone.css"),
    "text/css; charset=utf-8",
);
pub static PHONE_JS: Asset = Asset::new(
    "phone.js",
    include_bytes!("../assets/phone.js"),
    "text/javascript; charset=utf-8",
);
pub static SIP_JS: Asset = Asset::new(
    "sip.min.js",
    include_bytes!("../assets/sip-0.21.2.min.js"),
    "text/javascript; charset=utf-8",
);
pub static SIP_JS_LICENSE: Asset = Asset::new(
    "sip.js-LICENSE.md",
    include_bytes!("../assets/sip.js-LICENSE.md"),
    "text/plain; charset=utf-8",
);

static ALL: [&Asset; 8] = [
    &CSS,
    &HTMX,
    &HTMX_LICENSE,
    &ICON,
    &PHONE_CSS,
    &PHONE_JS,
    &SIP_JS,
    &SIP_JS_LICENSE,
];

pub fn router() -> Router<Shared> {
    Router::new().route("/assets/{hash}/{name}", get(serve))
}

async fn serve(Path((hash, name)): Path<(String, String)>) -> Response {
    let Some(asset) = ALL.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // A page from an older build may ask for an older hash: it gets today's file, not cached.
    let cache = if asset.url().ends_with(&format!("/{hash}/{name}")) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response()
}
