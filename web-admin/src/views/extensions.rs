//! The extensions: list with search and paging, create (a strong password generated and shown
//! once), edit, new password, delete with confirmation, and the devices registered now.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use pbx_store::{Binding, Extension, MEDIA_ENCRYPTION, StoreError};
use serde::Deserialize;

use super::{Layout, LoggedIn};
use crate::errors::PageError;
use crate::validate::{self, ChangeInput, NewInput, Problems};
use crate::{Shared, csrf, password};

pub const PER_PAGE: usize = 25;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/extensions", get(list).post(create))
        .route("/extensions/new", get(new_form))
        .route("/extensions/{number}", get(edit_form).post(save))
        .route(
            "/extensions/{number}/password",
            axum::routing::post(new_password),
        )
        .route(
            "/extensions/{number}/delete",
            get(confirm_delete).post(delete),
        )
}

/// The media encryption choices, with the current one marked.
fn policies(current: &str) -> Vec<(&'static str, bool)> {
    MEDIA_ENCRYPTION
        .iter()
        .map(|p| (*p, *p == current))
        .collect()
}

/// One row of the list.
pub struct Row {
    pub ext: Extension,
    pub devices: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "extensions.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    q: String,
    page: usize,
    pages: usize,
    total: usize,
    notice: String,
}

#[derive(Deserialize, Default)]
struct ListQuery {
    q: Option<String>,
    page: Option<String>,
    deleted: Option<String>,
    imported: Option<String>,
}

/// The number of pages for `total` rows (at least one).
pub fn page_count(total: usize, per_page: usize) -> usize {
    total.div_ceil(per_page.max(1)).max(1)
}

async fn list(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Query(q): Query<ListQuery>,
) -> Result<ListPage, PageError> {
    let search = q.q.unwrap_or_default().trim().to_string();
    // A page that is not a number or past the end shows the nearest one.
    let asked = q
        .page
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, usize::MAX / PER_PAGE);
    let fetch = |page: usize| {
        let offset = ((page - 1) * PER_PAGE) as u64;
        state
            .extensions
            .search_extensions(&search, offset, PER_PAGE as u32)
    };
    let (mut found, total) = fetch(asked).await?;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let pages = page_count(total, PER_PAGE);
    let page = asked.min(pages);
    if page != asked {
        found = fetch(page).await?.0;
    }
    let registered = state.live.registrations(state.now());
    let rows = found
        .into_iter()
        .map(|ext| Row {
            devices: registered.iter().filter(|b| b.aor == ext.number).count(),
            ext,
        })
        .collect();
    Ok(ListPage {
        layout: Layout::new(&session, "extensions"),
        rows,
        q: search,
        page,
        pages,
        total,
        notice: match (q.deleted, q.imported) {
            (Some(n), _) if n.bytes().all(|b| b.is_ascii_digit()) => {
                format!("Extension {n} deleted.")
            }
            (_, Some(n)) if n.parse::<usize>().is_ok() => format!("{n} extensions imported."),
            _ => String::new(),
        },
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "extension_new.html")]
struct NewPage {
    layout: Layout,
    form: NewForm,
    problems: Problems,
    policies: Vec<(&'static str, bool)>,
}

#[derive(Deserialize, Default, Clone)]
struct NewForm {
    csrf: Option<String>,
    #[serde(default)]
    number: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    media_encryption: String,
    #[serde(default)]
    allowed_networks: String,
    #[serde(default)]
    did: String,
}

async fn new_form(LoggedIn(session): LoggedIn) -> NewPage {
    NewPage {
        layout: Layout::new(&session, "extensions"),
        form: NewForm::default(),
        problems: Problems::default(),
        policies: policies("optional"),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "extension_password.html")]
struct PasswordPage {
    layout: Layout,
    number: String,
    password: String,
    created: bool,
}

async fn create(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Form(form): Form<NewForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let password = password::generate();
    let input = NewInput {
        number: form.number.clone(),
        password: password.clone(),
        name: form.name.clone(),
        email: form.email.clone(),
        pin: form.pin.clone(),
        media_encryption: form.media_encryption.clone(),
        allowed_networks: form.allowed_networks.clone(),
        did: form.did.clone(),
    };
    let refuse = |problems: Problems| {
        let page = NewPage {
            layout: Layout::new(&session, "extensions"),
            form: NewForm {
                pin: String::new(),
                ..form.clone()
            },
            problems,
            policies: policies(&form.media_encryption),
        };
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };
    let ext = match validate::new_extension(&input) {
        Ok(ext) => ext,
        Err(problems) => return Ok(refuse(problems)),
    };
    let number = ext.number.clone();
    match state
        .extensions
        .add_extension(&state.settings.domain, ext)
        .await
    {
        Ok(()) => {}
        Err(e @ StoreError::DidTaken { .. }) => {
            return Ok(refuse(Problems(vec![validate::FieldError {
                field: "did",
                message: e.to_string(),
            }])));
        }
        Err(e @ (StoreError::Duplicate(_) | StoreError::Invalid(_))) => {
            return Ok(refuse(Problems(vec![validate::FieldError {
                field: "number",
                message: e.to_string(),
            }])));
        }
        Err(e) => return Err(e.into()),
    }
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "extension.create", &number, "")
        .await;
    tracing::info!(user = %session.user, extension = %number, "extension created in the web admin");
    Ok((
        StatusCode::CREATED,
        PasswordPage {
            layout: Layout::new(&session, "extensions"),
            number,
            password,
            created: true,
        },
    )
        .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "extension_edit.html")]
struct EditPage {
    layout: Layout,
    ext: Extension,
    form: EditForm,
    problems: Problems,
    policies: Vec<(&'static str, bool)>,
    /// `None`: no dialplan configured.
    contexts: Option<Vec<String>>,
    devices: Vec<Device>,
    notice: String,
}

/// A registered device as shown.
pub struct Device {
    pub contact: String,
    pub transport: String,
    pub source: String,
    pub expires: String,
    pub user_agent: String,
    pub status: &'static str,
}

impl Device {
    pub fn from(b: &Binding, now: u64) -> Device {
        Device {
            contact: b.contact(),
            transport: b.transport.to_string(),
            source: b.source.to_string(),
            expires: super::remaining(b.expires_at(), now),
            user_agent: b.user_agent.clone(),
            status: match b.reachable {
                Some(true) => "reachable",
                Some(false) => "unreachable",
                None => "",
            },
        }
    }
}

#[derive(Deserialize, Default, Clone)]
struct EditForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    media_encryption: String,
    #[serde(default)]
    context: String,
    #[serde(default)]
    did: String,
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

fn edit_page(
    state: &Shared,
    session: &crate::sessions::Session,
    ext: Extension,
    form: EditForm,
    problems: Problems,
    notice: String,
) -> EditPage {
    let now = state.now();
    let devices = state
        .live
        .registrations(now)
        .iter()
        .filter(|b| b.aor == ext.number)
        .map(|b| Device::from(b, now))
        .collect();
    EditPage {
        layout: Layout::new(session, "extensions"),
        ext,
        policies: policies(&form.media_encryption),
        form,
        problems,
        contexts: state.live.contexts(),
        devices,
        notice,
    }
}

#[derive(Deserialize)]
struct EditQuery {
    saved: Option<String>,
}

async fn edit_form(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Path(number): Path<String>,
    Query(q): Query<EditQuery>,
) -> Result<EditPage, PageError> {
    let ext = find(&state, &number).await?;
    let form = EditForm {
        csrf: None,
        name: ext.name.clone(),
        email: ext.email.clone(),
        pin: String::new(),
        media_encryption: ext.media_encryption.clone(),
        context: ext.context.clone(),
        did: ext.did.clone(),
    };
    let notice = if q.saved.is_some() {
        "Saved.".to_string()
    } else {
        String::new()
    };
    Ok(edit_page(
        &state,
        &session,
        ext,
        form,
        Problems::default(),
        notice,
    ))
}

async fn save(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path(number): Path<String>,
    Form(form): Form<EditForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let ext = find(&state, &number).await?;
    let input = ChangeInput {
        password: None,
        name: Some(form.name.clone()),
        email: Some(form.email.clone()),
        pin: Some(form.pin.clone()),
        media_encryption: Some(form.media_encryption.clone()),
        context: Some(form.context.clone()),
        did: Some(form.did.clone()),
    };
    let contexts = state.live.contexts();
    let changes = match validate::changes(&input, contexts.as_deref()) {
        Ok(changes) => changes,
        Err(problems) => {
            let form = EditForm {
                pin: String::new(),
                ..form
            };
            let page = edit_page(&state, &session, ext, form, problems, String::new());
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let updated = match state
        .extensions
        .update_extension(&state.settings.domain, &number, &changes)
        .await
    {
        Ok(updated) => updated,
        // Another extension has the DID: said next to the field, nothing changed.
        Err(e @ StoreError::DidTaken { .. }) => {
            let problems = Problems(vec![validate::FieldError {
                field: "did",
                message: e.to_string(),
            }]);
            let form = EditForm {
                pin: String::new(),
                ..form
            };
            let page = edit_page(&state, &session, ext, form, problems, String::new());
            return Ok((StatusCode::CONFLICT, page).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    if !updated {
        return Err(PageError::NotFound(format!(
            "There is no extension {number}."
        )));
    }
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "extension.update", &number, "")
        .await;
    tracing::info!(user = %session.user, extension = %number, "extension changed in the web admin");
    Ok(Redirect::to(&format!("/extensions/{number}?saved=1")).into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn new_password(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path(number): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<PasswordPage, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    let password = password::generate();
    let changes = pbx_store::ExtensionChanges {
        password: Some(password.clone()),
        ..Default::default()
    };
    if !state
        .extensions
        .update_extension(&state.settings.domain, &number, &changes)
        .await?
    {
        return Err(PageError::NotFound(format!(
            "There is no extension {number}."
        )));
    }
    crate::audit::Actor::web(&session, audit_ip)
        .record(
            &state,
            "extension.password",
            &number,
            "new password generated",
        )
        .await;
    tracing::info!(user = %session.user, extension = %number, "extension password replaced in the web admin");
    Ok(PasswordPage {
        layout: Layout::new(&session, "extensions"),
        number,
        password,
        created: false,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "extension_delete.html")]
struct DeletePage {
    layout: Layout,
    ext: Extension,
    devices: usize,
}

async fn confirm_delete(
    State(state): State<Shared>,
    LoggedIn(session): LoggedIn,
    Path(number): Path<String>,
) -> Result<DeletePage, PageError> {
    let ext = find(&state, &number).await?;
    let devices = state
        .live
        .registrations(state.now())
        .iter()
        .filter(|b| b.aor == number)
        .count();
    Ok(DeletePage {
        layout: Layout::new(&session, "extensions"),
        ext,
        devices,
    })
}

async fn delete(
    State(state): State<Shared>,
    super::ClientIp(audit_ip): super::ClientIp,
    LoggedIn(session): LoggedIn,
    Path(number): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    csrf::check(&session.csrf, form.csrf.as_deref())?;
    if !state.extensions.remove_extension(&number).await? {
        return Err(PageError::NotFound(format!(
            "There is no extension {number}."
        )));
    }
    crate::messages::remove_mailbox_files(&state, &number).await;
    crate::audit::Actor::web(&session, audit_ip)
        .record(&state, "extension.delete", &number, "")
        .await;
    tracing::info!(user = %session.user, extension = %number, "extension deleted in the web admin");
    Ok(Redirect::to(&format!("/extensions?deleted={number}")).into_response())
}
