//! The HTTP listener: health and Prometheus metrics (unauthenticated), and the admin UI and
//! REST API of the web-admin crate mounted beside them ([`with_admin`]).

pub mod admin;
pub mod tls;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use pbx_store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct WebState {
    pub store: Store,
    pub metrics: PrometheusHandle,
    /// Set once every SIP listener is bound.
    pub sip_up: AtomicBool,
}

pub fn router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

/// 200 when SIP, the database and the web listener are up (the contract's definition).
/// [`router`] with the web admin's pages and API; served with the peer's address
/// (`into_make_service_with_connect_info`), which the login's ban rules need.
pub fn with_admin(state: Arc<WebState>, admin: Arc<pbx_web_admin::AdminState>) -> Router {
    router(state).merge(pbx_web_admin::router(admin))
}

async fn healthz(State(state): State<Arc<WebState>>) -> impl IntoResponse {
    let sip = state.sip_up.load(Ordering::Relaxed);
    let database = state.store.ping().await;
    let body = format!(
        "sip: {}\ndatabase: {}\nweb: up\n",
        if sip { "up" } else { "down" },
        if database { "up" } else { "down" }
    );
    let status = if sip && database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

async fn metrics_text(State(state): State<Arc<WebState>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
