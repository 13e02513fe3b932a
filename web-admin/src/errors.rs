//! Refusals and failures, as an HTML page ([`PageError`]) or as the API's JSON
//! ([`ApiError`]: `{"error": message, "field": name}`). What the client sent gets a 4xx with
//! a message; a fault of the server (the database) a 500 whose details go to the log only.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use pbx_store::StoreError;
use serde::Serialize;

/// A page-level refusal or failure.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(
        "This form was not sent from this site or has expired (its security token is missing or \
         wrong). Go back, reload the page and try again."
    )]
    Csrf,
    #[error(
        "banned: too many failed logins or SIP authentications from your address; try again later"
    )]
    Banned,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the database failed; the details are in the server's log")]
    Store(#[from] StoreError),
}

impl PageError {
    pub fn status(&self) -> StatusCode {
        match self {
            PageError::Csrf | PageError::Banned => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            PageError::Store(StoreError::Duplicate(_) | StoreError::DidTaken { .. }) => {
                StatusCode::CONFLICT
            }
            PageError::Store(StoreError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            PageError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            PageError::Csrf => "Form refused",
            PageError::Banned => "Banned",
            PageError::NotFound(_) => "Not found",
            PageError::BadRequest(_) => "Bad request",
            PageError::Store(_) => "Something went wrong",
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
    css: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            PageError::Store(e) if status.is_server_error() => {
                tracing::error!(error = %e, "web admin: store failure");
                self.to_string()
            }
            PageError::Store(e) => e.to_string(),
            other => other.to_string(),
        };
        let page = ErrorPage {
            title: self.title(),
            message,
            css: crate::assets::CSS.url(),
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}

/// The API's error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An API refusal or failure.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                field: None,
            },
        }
    }

    pub fn field(status: StatusCode, field: &str, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                field: Some(field.to_string()),
            },
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication required: send Authorization: Bearer TOKEN (pbx admin token USER)",
        )
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("{} not found", what.into()))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Duplicate(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            StoreError::DidTaken { .. } => {
                ApiError::field(StatusCode::CONFLICT, "did", e.to_string())
            }
            StoreError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::Invalid(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            other => {
                tracing::error!(error = %other, "web API: store failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the database failed; the details are in the server's log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"pbx\""),
            );
        }
        response
    }
}
