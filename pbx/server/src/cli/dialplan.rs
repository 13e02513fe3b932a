//! `pbx dialplan trace` and the dialplan part of `pbx check`.

use std::collections::{HashMap, HashSet};

use pbx_dialplan::{CallContext, DialOutcome, Timestamp, TraceInputs};

use super::CliError;
use crate::config::Config;
use pbx_store::ExtensionStore;

/// What `pbx dialplan trace` was asked.
#[derive(Debug, Clone)]
pub struct TraceRequest {
    pub from: String,
    pub to: String,
    pub at: Option<Timestamp>,
    pub dial: Vec<DialOutcome>,
    pub digits: Vec<String>,
}

/// Parses `--dial` values: busy, no-answer, unavailable, answered.
pub fn parse_dial_outcome(text: &str) -> Result<DialOutcome, String> {
    match text.to_ascii_lowercase().replace('_', "-").as_str() {
        "busy" => Ok(DialOutcome::Busy),
        "no-answer" | "noanswer" => Ok(DialOutcome::NoAnswer),
        "unavailable" => Ok(DialOutcome::Unavailable),
        "rejected" => Ok(DialOutcome::Rejected),
        "answered" | "answer" => Ok(DialOutcome::Answered),
        _ => Err(format!(
            "`{text}`: expected busy, no-answer, unavailable, rejected or answered"
        )),
    }
}

/// Parses `--at` as an RFC 3339 time (`2026-03-30T08:30:00+02:00`).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| {
        format!("`{text}` is not an RFC 3339 time such as 2026-03-30T08:30:00+02:00: {e}")
    })
}

/// The dialplan's problems for `pbx check`: one `path:line:col: message` each. The store
/// says which trunks exist (a `trunk:NAME/...` target must name one) and which contexts its
/// trunks and extensions are given (those need no `members` or `may_call`).
pub fn check(config: &Config) -> Result<(), CliError> {
    if config.dialplan.file.is_none() {
        return Ok(());
    }
    let (trunks, assigned) = store_names(config)?;
    let Some(plan) = crate::plan::load_assigned(config, &assigned).map_err(CliError::Problems)?
    else {
        return Ok(());
    };
    let unknown = crate::plan::unknown_trunks(&plan, &trunks);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(CliError::Problems(unknown))
    }
}

/// The trunks' names and the assigned contexts in the store; none when the SQLite file does
/// not exist yet (`pbx check` creates no database).
fn store_names(config: &Config) -> Result<(Vec<String>, Vec<String>), CliError> {
    let url = &config.database.url;
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path.starts_with(":memory:") || !std::path::Path::new(path).exists() {
            return Ok((Vec::new(), Vec::new()));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        use pbx_store::TrunkStore;
        let store = pbx_store::Store::open(url).await?;
        let trunks = store.list_trunks().await?;
        let assigned = crate::plan::assigned_contexts(&store)
            .await
            .map_err(CliError::Failed)?;
        Ok((trunks.into_iter().map(|t| t.name).collect(), assigned))
    })
}

/// Prints the trace of a call from `--from` to `--to`, using the store to tell extensions.
pub(super) async fn trace(
    store: &pbx_store::Store,
    config: &Config,
    request: TraceRequest,
) -> Result<(), CliError> {
    let assigned = crate::plan::assigned_contexts(store)
        .await
        .map_err(CliError::Failed)?;
    let plan = crate::plan::load_assigned(config, &assigned).map_err(CliError::Problems)?;
    let Some(plan) = plan else {
        return Err(CliError::Failed(
            "the config names no dialplan: set [dialplan] file".into(),
        ));
    };
    let extensions = store.list_extensions().await?;
    let names: HashMap<String, String> = extensions
        .iter()
        .map(|e| (e.number.clone(), e.name.clone()))
        .collect();
    // The context set with `pbx extension set --context`, as a call would have it.
    let caller_context = extensions
        .iter()
        .find(|e| e.number == request.from && !e.context.is_empty())
        .map(|e| e.context.clone());
    let numbers: HashSet<String> = extensions.into_iter().map(|e| e.number).collect();
    let directory = |n: &str| numbers.contains(n);
    let call = CallContext {
        caller_name: names.get(&request.from).cloned().unwrap_or_default(),
        caller: request.from,
        caller_context,
        dialed: request.to,
        now: request.at.unwrap_or_else(Timestamp::now),
    };
    let inputs = TraceInputs {
        dial: request.dial,
        digits: request.digits,
        http: Vec::new(),
    };
    for line in plan.trace(&call, &directory, &inputs) {
        println!("{line}");
    }
    Ok(())
}
