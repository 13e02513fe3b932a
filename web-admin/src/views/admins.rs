//! Admins and API tokens: the accounts (create, delete another), your own password (the
//! current one is checked through the same guard as the login, so a left-open browser does
//! not give unlimited guesses), and the API tokens (made for yourself and shown once;
//! listed by id, revoked by anyone).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{ClientIp, Layout, LoggedIn};
use crate::errors::PageError;
use crate::live::{LoginRefusal, LoginSettled};
use crate::sessions::Session;
use crate::validate::{FieldError, Problems};
use crate::{Shared, csrf};

/// The shortest admin password the page accepts.
pub const MIN_PASSWORD: usize = 10;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/admins", get(page).post(create))
        .route("/admins/{user}/delete", post(delete))
        .route("/admins/password", post(change_password))
        .route("/tokens", post(new_token))
        .route("/tokens/{id}/revoke", post(revoke))
}

pub struct TokenRow {
    pub id: String,
    pub user: String,
    pub created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admins.html")]
struct AdminsPage {
    layout: Layout,
    admins: Vec<String>,
    tokens: Vec<TokenRow>,
    notice: String,
    /// The new account form as sent, and its problems.
    new_user: String,
    problems: Problems,
}

#[derive(Deserialize)]
struct PageQuery {
    done: Option<String>,
}

async fn render(
    state: &Shared,
    session: &Session,
    notice: String,
    new_user: String,
    problems: Problems,
) -> Result<AdminsPage, PageError> {
    Ok(AdminsPage {
        layout: Layout::new(session, "admins"),
        admins: state.admins.list_admins().await?,
        tokens: state
            .admins
            .list_tokens()
            .await?
            .into_iter()
            .map(|t| TokenRow {
                id: t.id,
                user: t.user,
                created: super::when(t.created_at),
            })
            .collect(),
        notice,
        new_user,
        problems,
    })
}

async fn page(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(q): Query<PageQuery>,
) -> Result<AdminsPage, PageError> {
    let notice = match q.done.as_deref() {
        Some("created") => "The admin account is created.",
        Some("deleted") => "The admin account is deleted.",
        Some("password") => "Your password is changed.",
        Some("revoked") => "The token is revoked.",
        _ => "",
    };
    render(
        &state,
        &session,
        notice.into(),
        String::new(),
        Problems::default(),
    )
    .await
}

fn problem(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// What is wrong with a new password and its repetition.
fn password_problems(
    field: &'static str,
    again_field: &'static str,
    password: &str,
    again: &str,
) -> Vec<FieldError> {
    if password.chars().count() < MIN_PASSWORD {
        vec![problem(
            field,
            format!("At least {MIN_PASSWORD} characters: a passphrase is best."),
        )]
    } else if password != again {
        vec![problem(again_field, "The two passwords differ.")]
    } else {
        Vec::new()
    }
}

#[derive(Deserialize)]
struct NewAdminForm {
    csrf: Option<String>,
    user: Option<String>,
    password: Option<String>,
    confirm: Option<String>,
}

async fn create(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Form(form): Form<NewAdminForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let user = form.user.unwrap_or_default().trim().to_string();
    let password = form.password.unwrap_or_default();
    let mut problems = password_problems(
        "password",
        "confirm",
        &password,
        form.confirm.as_deref().unwrap_or_default(),
    );
    if user.is_empty() {
        problems.insert(0, problem("user", "A user name is needed."));
    }
    if problems.is_empty() {
        match state.admins.create_admin(&user, &password).await {
            Ok(()) => {
                crate::audit::Actor::web(&session, audit_ip)
                    .record(&state, "admin.create", &user, "")
                    .await;
                tracing::info!(user = %session.user, created = %user, "admin account created in the web admin");
                return Ok(Redirect::to("/admins?done=created").into_response());
            }
            Err(pbx_store::StoreError::Duplicate(_)) => {
                problems.push(problem(
                    "user",
                    format!("There is already an admin {user}."),
                ));
            }
            Err(pbx_store::StoreError::Invalid(m)) => problems.push(problem("user", m)),
            Err(e) => return Err(e.into()),
        }
    }
    let mut response = render(&state, &session, String::new(), user, Problems(problems))
        .await?
        .into_response();
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn delete(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path(user): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    if user == session.user {
        return Err(PageError::BadRequest(
            "You cannot delete your own account while logged in with it; another admin can.".into(),
        ));
    }
    if !state.admins.delete_admin(&user).await? {
        return Err(PageError::NotFound(format!("There is no admin {user}.")));
    }
    state.sessions.end_user(&user);
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "admin.delete", &user, "")
        .await;
    tracing::info!(user = %session.user, deleted = %user, "admin account deleted in the web admin");
    Ok(Redirect::to("/admins?done=deleted").into_response())
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: Option<String>,
    current: Option<String>,
    password: Option<String>,
    new_confirm: Option<String>,
}

async fn change_password(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    ClientIp(ip): ClientIp,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let password = form.password.unwrap_or_default();
    let mut problems = password_problems(
        "new_password",
        "new_confirm",
        &password,
        form.new_confirm.as_deref().unwrap_or_default(),
    );
    if problems.is_empty() {
        let ticket = match state.guard.admit(ip) {
            Ok(ticket) => ticket,
            Err(LoginRefusal::Banned) => return Err(PageError::Banned),
            Err(LoginRefusal::Busy) => {
                return Err(PageError::BadRequest(
                    "Too many password checks from your address are under way: wait a minute."
                        .into(),
                ));
            }
        };
        let ok = state
            .admins
            .verify_admin(&session.user, form.current.as_deref().unwrap_or_default())
            .await?;
        match ticket.settle(ok).await {
            LoginSettled::Accepted => {
                if !state
                    .admins
                    .set_admin_password(&session.user, &password)
                    .await?
                {
                    return Err(PageError::NotFound("Your account is gone.".into()));
                }
                crate::audit::Actor::web(&session, ip)
                    .record(&state, "admin.password", &session.user, "")
                    .await;
                tracing::info!(user = %session.user, "admin password changed in the web admin");
                return Ok(Redirect::to("/admins?done=password").into_response());
            }
            LoginSettled::Rejected => {
                tracing::warn!(user = %session.user, source = %ip, "admin password change: wrong current password");
                problems.push(problem("current", "That is not your current password."));
            }
            LoginSettled::RejectedAndBanned | LoginSettled::Banned => {
                return Err(PageError::Banned);
            }
        }
    }
    let mut response = render(
        &state,
        &session,
        String::new(),
        String::new(),
        Problems(problems),
    )
    .await?
    .into_response();
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

#[derive(Template, WebTemplate)]
#[template(path = "token_created.html")]
struct TokenPage {
    layout: Layout,
    token: String,
}

async fn new_token(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Form(form): Form<CsrfForm>,
) -> Result<TokenPage, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let token = state.admins.create_token(&session.user).await?;
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "token.create", &crate::audit::token_id(&token), "")
        .await;
    tracing::info!(user = %session.user, "API token created in the web admin");
    Ok(TokenPage {
        layout: Layout::new(&session, "admins"),
        token,
    })
}

async fn revoke(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    if !state.admins.revoke_token(&id).await? {
        return Err(PageError::NotFound(format!("There is no token {id}.")));
    }
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "token.revoke", &id, "")
        .await;
    tracing::info!(user = %session.user, token = %id, "API token revoked in the web admin");
    Ok(Redirect::to("/admins?done=revoked").into_response())
}
