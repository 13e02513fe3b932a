//! The trunks: list with their state (what the running PBX last reported: registered, up,
//! down, or unknown once that is out of date), create, edit, delete with confirmation. The
//! password is never shown back; a change reaches the running PBX at once
//! ([`crate::live::Live::trunks_changed`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use pbx_store::{CALLER_ID_MODES, MEDIA_ENCRYPTION, StoreError, TRUNK_TRANSPORTS, Trunk};
use serde::Deserialize;

use super::{Layout, LoggedIn};
use crate::errors::PageError;
use crate::trunk_form::{self, TrunkInput};
use crate::validate::{FieldError, Problems};
use crate::{Shared, csrf};

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/trunks", get(list).post(create))
        .route("/trunks/new", get(new_form))
        .route("/trunks/{name}", get(edit_form).post(save))
        .route("/trunks/{name}/delete", get(confirm_delete).post(delete))
}

/// One row of the list.
pub struct Row {
    pub trunk: Trunk,
    pub state: String,
    pub detail: String,
}

/// The trunks with the state the PBX last reported for each, as of `now`.
pub async fn rows(state: &Shared, now: u64) -> Result<Vec<Row>, StoreError> {
    let statuses = state.trunks.trunk_statuses().await?;
    Ok(state
        .trunks
        .list_trunks()
        .await?
        .into_iter()
        .map(|trunk| {
            let status = statuses.iter().find(|s| s.name == trunk.name);
            Row {
                state: status.map_or("unknown", |s| s.state_at(now)).to_string(),
                detail: status
                    .filter(|s| s.valid_until > now)
                    .map(|s| s.detail.clone())
                    .unwrap_or_default(),
                trunk,
            }
        })
        .collect())
}

#[derive(Template, WebTemplate)]
#[template(path = "trunks.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    notice: String,
}

#[derive(Deserialize)]
struct ListQuery {
    deleted: Option<String>,
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn list(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(q): Query<ListQuery>,
) -> Result<ListPage, PageError> {
    Ok(ListPage {
        layout: Layout::new(&session, "trunks"),
        rows: rows(&state, state.now()).await?,
        notice: q
            .deleted
            .filter(|n| name_ok(n))
            .map(|n| format!("Trunk {n} deleted."))
            .unwrap_or_default(),
    })
}

/// The choices of a `<select>`, the current one marked.
fn choices(all: &[&'static str], current: &str) -> Vec<(&'static str, bool)> {
    all.iter().map(|c| (*c, *c == current)).collect()
}

#[derive(Template, WebTemplate)]
#[template(path = "trunk_form.html")]
struct FormPage {
    layout: Layout,
    /// `None`: a new trunk.
    editing: Option<String>,
    /// Whether the stored trunk has a password (shown as "set", never its value).
    has_password: bool,
    form: TrunkInput,
    problems: Problems,
    transports: Vec<(&'static str, bool)>,
    caller_id_modes: Vec<(&'static str, bool)>,
    policies: Vec<(&'static str, bool)>,
    notice: String,
}

impl FormPage {
    fn new(
        session: &crate::sessions::Session,
        stored: Option<&Trunk>,
        form: TrunkInput,
        problems: Problems,
        notice: String,
    ) -> FormPage {
        let pick = |v: &str, d: &'static str| {
            if v.is_empty() {
                d.to_string()
            } else {
                v.to_string()
            }
        };
        FormPage {
            layout: Layout::new(session, "trunks"),
            editing: stored.map(|t| t.name.clone()),
            has_password: stored.is_some_and(|t| !t.password.is_empty()),
            transports: choices(&TRUNK_TRANSPORTS, &pick(&form.transport, "udp")),
            caller_id_modes: choices(&CALLER_ID_MODES, &pick(&form.caller_id_mode, "extension")),
            policies: choices(&MEDIA_ENCRYPTION, &pick(&form.media_encryption, "optional")),
            form,
            problems,
            notice,
        }
    }
}

/// The form as posted (a checkbox is absent when unticked).
#[derive(Deserialize, Default)]
struct TrunkForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    transport: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    register: Option<String>,
    #[serde(default)]
    allowed_networks: String,
    #[serde(default)]
    context: String,
    #[serde(default)]
    outbound_proxy: String,
    #[serde(default)]
    caller_id_mode: String,
    #[serde(default)]
    caller_id: String,
    #[serde(default)]
    channels: String,
    #[serde(default)]
    media_encryption: String,
    #[serde(default)]
    codecs: String,
    #[serde(default)]
    setup_timeout: String,
}

impl TrunkForm {
    fn input(self) -> (Option<String>, TrunkInput) {
        (
            self.csrf,
            TrunkInput {
                name: self.name,
                host: self.host,
                transport: self.transport,
                username: self.username,
                password: self.password,
                register: self.register.is_some(),
                allowed_networks: self.allowed_networks,
                context: self.context,
                outbound_proxy: self.outbound_proxy,
                caller_id_mode: self.caller_id_mode,
                caller_id: self.caller_id,
                channels: self.channels,
                media_encryption: self.media_encryption,
                codecs: self.codecs,
                setup_timeout: self.setup_timeout,
            },
        )
    }
}

async fn new_form(LoggedIn(session): LoggedIn) -> FormPage {
    FormPage::new(
        &session,
        None,
        TrunkInput::default(),
        Problems::default(),
        String::new(),
    )
}

async fn create(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Form(form): Form<TrunkForm>,
) -> Result<Response, PageError> {
    let (token, input) = form.input();
    csrf::check(&session.csrf, token.as_deref())?;
    let refuse = |problems: Problems, input: TrunkInput| {
        let form = TrunkInput {
            password: String::new(),
            ..input
        };
        let page = FormPage::new(&session, None, form, problems, String::new());
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    let trunk = match trunk_form::trunk(&input, None) {
        Ok(t) => t,
        Err(problems) => return Ok(refuse(problems, input)),
    };
    match state.trunks.add_trunk(&trunk).await {
        Ok(()) => {}
        Err(e @ (StoreError::Duplicate(_) | StoreError::Invalid(_))) => {
            let problems = Problems(vec![FieldError {
                field: "name",
                message: e.to_string(),
            }]);
            return Ok(refuse(problems, input));
        }
        Err(e) => return Err(e.into()),
    }
    state.live.trunks_changed();
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "trunk.create", &trunk.name, &trunk.address())
        .await;
    tracing::info!(user = %session.user, trunk = %trunk.name, "trunk created in the web admin");
    Ok(Redirect::to(&format!("/trunks/{}?saved=1", trunk.name)).into_response())
}

async fn find(state: &Shared, name: &str) -> Result<Trunk, PageError> {
    state
        .trunks
        .list_trunks()
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| PageError::NotFound(format!("There is no trunk {name}.")))
}

#[derive(Deserialize)]
struct EditQuery {
    saved: Option<String>,
}

async fn edit_form(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Path(name): Path<String>,
    Query(q): Query<EditQuery>,
) -> Result<FormPage, PageError> {
    let trunk = find(&state, &name).await?;
    let notice = if q.saved.is_some() {
        "Saved. The PBX uses it now.".to_string()
    } else {
        String::new()
    };
    Ok(FormPage::new(
        &session,
        Some(&trunk),
        TrunkInput::from_trunk(&trunk),
        Problems::default(),
        notice,
    ))
}

async fn save(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path(name): Path<String>,
    Form(form): Form<TrunkForm>,
) -> Result<Response, PageError> {
    let (token, input) = form.input();
    csrf::check(&session.csrf, token.as_deref())?;
    let stored = find(&state, &name).await?;
    let trunk = match trunk_form::trunk(&input, Some(&stored)) {
        Ok(t) => t,
        Err(problems) => {
            let form = TrunkInput {
                password: String::new(),
                name: stored.name.clone(),
                ..input
            };
            let page = FormPage::new(&session, Some(&stored), form, problems, String::new());
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    if !state.trunks.update_trunk(&trunk).await? {
        return Err(PageError::NotFound(format!("There is no trunk {name}.")));
    }
    state.live.trunks_changed();
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "trunk.update", &name, &trunk.address())
        .await;
    tracing::info!(user = %session.user, trunk = %name, "trunk changed in the web admin");
    Ok(Redirect::to(&format!("/trunks/{name}?saved=1")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "trunk_delete.html")]
struct DeletePage {
    layout: Layout,
    trunk: Trunk,
}

async fn confirm_delete(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Path(name): Path<String>,
) -> Result<DeletePage, PageError> {
    Ok(DeletePage {
        layout: Layout::new(&session, "trunks"),
        trunk: find(&state, &name).await?,
    })
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn delete(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    if !state.trunks.remove_trunk(&name).await? {
        return Err(PageError::NotFound(format!("There is no trunk {name}.")));
    }
    state.live.trunks_changed();
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "trunk.delete", &name, "")
        .await;
    tracing::info!(user = %session.user, trunk = %name, "trunk deleted in the web admin");
    Ok(Redirect::to(&format!("/trunks?deleted={name}")).into_response())
}
