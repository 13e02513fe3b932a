//! The REST API under `/api/v1`: JSON, bearer tokens (`pbx admin token USER`), errors as
//! `{"error": message, "field": name}`, and its OpenAPI document generated from the handlers
//! (`GET /api/v1/openapi.json`). Every path, the document and unknown ones included, refuses
//! a request without a valid token with 401.

pub mod audit;
pub mod calls;
pub mod dialplan;
pub mod extension_csv;
pub mod extensions;
pub mod status;
pub mod tokens;
pub mod trunks;
pub mod voicemail;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::Shared;
use crate::errors::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pbx admin API",
        description = "Manage the PBX: extensions, trunks, registrations, bans, calls, call \
                       records and voicemail. \
                       Authenticate with \
                       `Authorization: Bearer TOKEN` (`pbx admin token USER`)."
    ),
    paths(
        extensions::list,
        extensions::create,
        extensions::get_one,
        extensions::update,
        extensions::remove,
        extension_csv::export,
        extension_csv::import,
        status::registrations,
        status::bans,
        status::lift_ban,
        status::security_events,
        calls::list,
        calls::hang_up,
        calls::cdrs,
        dialplan::get_text,
        dialplan::put_text,
        dialplan::validate,
        dialplan::trace,
        voicemail::mailboxes,
        voicemail::messages,
        voicemail::audio,
        voicemail::patch,
        voicemail::remove,
        tokens::list,
        tokens::create,
        tokens::revoke,
        trunks::list,
        trunks::create,
        trunks::get_one,
        trunks::update,
        trunks::remove,
        audit::list,
        openapi_json,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "extensions", description = "SIP accounts and voicemail boxes"),
        (name = "status", description = "What is live now: registrations, bans, security events"),
        (name = "calls", description = "Calls in progress and call records"),
        (name = "dialplan", description = "The dialplan file: read, replace, check, trace"),
        (name = "voicemail", description = "Mailboxes, their messages and the messages' audio"),
        (name = "admins", description = "API tokens and the audit log of admin changes"),
        (name = "trunks", description = "Providers, gateways and other PBXs, with their state"),
        (name = "meta", description = "This document")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The admin a request's token belongs to.
#[derive(Clone, Debug)]
pub struct ApiUser(pub String);

pub fn router(state: Shared) -> Router<Shared> {
    Router::new()
        .route(
            "/extensions",
            get(extensions::list).post(extensions::create),
        )
        .route(
            "/extensions/{number}",
            get(extensions::get_one)
                .patch(extensions::update)
                .delete(extensions::remove),
        )
        .route("/extensions/export", get(extension_csv::export))
        .route("/extensions/import", post(extension_csv::import))
        .route("/registrations", get(status::registrations))
        .route("/bans", get(status::bans))
        .route("/bans/{address}", delete(status::lift_ban))
        .route("/security/events", get(status::security_events))
        .route("/calls", get(calls::list))
        .route("/calls/{id}", delete(calls::hang_up))
        .route("/cdrs", get(calls::cdrs))
        .route("/dialplan", get(dialplan::get_text).put(dialplan::put_text))
        .route("/dialplan/validate", post(dialplan::validate))
        .route("/dialplan/trace", post(dialplan::trace))
        .route("/mailboxes", get(voicemail::mailboxes))
        .route("/mailboxes/{number}/messages", get(voicemail::messages))
        .route(
            "/mailboxes/{number}/messages/{id}",
            patch(voicemail::patch).delete(voicemail::remove),
        )
        .route(
            "/mailboxes/{number}/messages/{id}/audio",
            get(voicemail::audio),
        )
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", delete(tokens::revoke))
        .route("/trunks", get(trunks::list).post(trunks::create))
        .route(
            "/trunks/{name}",
            get(trunks::get_one)
                .patch(trunks::update)
                .delete(trunks::remove),
        )
        .route("/audit", get(audit::list))
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state, require_token))
}

/// The bearer token of a request, if it sent one.
fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn require_token(State(state): State<Shared>, mut request: Request, next: Next) -> Response {
    let Some(token) = bearer(&request) else {
        return ApiError::unauthorized().into_response();
    };
    match state.admins.verify_token(token).await {
        Ok(Some(user)) => {
            let source = request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| {
                    c.0.ip()
                });
            request
                .extensions_mut()
                .insert(crate::audit::Actor::api(&user, source));
            request.extensions_mut().insert(ApiUser(user));
            next.run(request).await
        }
        Ok(None) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid or revoked token").into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such API path")
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API"),
        (status = 401, description = "No valid token", body = crate::errors::ErrorBody)
    )
)]
pub async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// A JSON body, or the API's JSON error naming the field serde complained about.
pub fn json_error(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
    let text = rejection.body_text();
    let field = text
        .split_once("field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(f, _)| f.to_string());
    let status = match rejection.status() {
        // Syntax and type errors alike are the client's: 400 or 422 as axum says, never more.
        s if s.is_client_error() => s,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError {
        status,
        body: crate::errors::ErrorBody { error: text, field },
    }
}

/// A query string that does not parse.
pub fn query_error(rejection: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text())
}

/// A page asked of a list: 1-based, at most 500 items (default 50). Returns the page, the
/// page size and the offset of its first item, or the error naming the wrong field.
pub fn paging(page: Option<u32>, per_page: Option<u32>) -> Result<(u32, u32, u64), ApiError> {
    let page = page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "page",
            "page counts from 1",
        ));
    }
    let per_page = per_page_of(per_page)?;
    Ok((page, per_page, u64::from(page - 1) * u64::from(per_page)))
}

/// The page size of a list (1 to 500, default 50) for lists that page by cursor.
pub fn per_page_of(per_page: Option<u32>) -> Result<u32, ApiError> {
    let per_page = per_page.unwrap_or(50);
    if !(1..=500).contains(&per_page) {
        return Err(ApiError::field(
            StatusCode::UNPROCESSABLE_ENTITY,
            "per_page",
            "per_page must be 1 to 500",
        ));
    }
    Ok(per_page)
}
