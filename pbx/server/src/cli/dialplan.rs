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
        "answered" | "answer" => Ok(DialOutcome::Answered),
        _ => Err(format!(
            "`{text}`: expected busy, no-answer, unavailable or answered"
        )),
    }
}

/// Parses `--at` as an RFC 3339 time (`2026-03-30T08:30:00+02:00`).
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| {
        format!("`{text}` is not an RFC 3339 time such as 2026-03-30T08:30:00+02:00: {e}")
    })
}

/// The dialplan's problems for `pbx check`: one `path:line:col: message` each.
pub fn check(config: &Config) -> Result<(), CliError> {
    crate::plan::load(config)
        .map(|_| ())
        .map_err(CliError::Problems)
}

/// Prints the trace of a call from `--from` to `--to`, using the store to tell extensions.
pub(super) async fn trace(
    store: &dyn ExtensionStore,
    config: &Config,
    request: TraceRequest,
) -> Result<(), CliError> {
    let Some(plan) = crate::plan::load(config).map_err(CliError::Problems)? else {
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
