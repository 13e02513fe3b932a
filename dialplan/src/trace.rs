//! A dry run: the rules and steps a call would go through, one line each, with assumed results
//! for what only a real call can tell (dial outcomes, digits, HTTP answers).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::api::{Action, CallContext, DialOutcome, Directory, HttpOutcome, StepResult};
use crate::model::Plan;

/// Trace lines stop after this many actions (a plan may loop through a menu forever).
const MAX_ACTIONS: usize = 100;

/// What to assume when the trace reaches a dial, a menu or an HTTP lookup; each list is used
/// in order, and when it runs out: no answer, no digits, a failed request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceInputs {
    pub dial: Vec<DialOutcome>,
    pub digits: Vec<String>,
    pub http: Vec<HttpOutcome>,
}

impl Plan {
    /// The trace of a call, one line per rule matched, step run and action, with variables.
    /// The same text `pbx dialplan trace` prints and the web UI shows.
    pub fn trace(
        self: &Arc<Self>,
        call: &CallContext,
        directory: &dyn Directory,
        inputs: &TraceInputs,
    ) -> Vec<String> {
        let mut dials: VecDeque<DialOutcome> = inputs.dial.iter().copied().collect();
        let mut digits: VecDeque<String> = inputs.digits.iter().cloned().collect();
        let mut http: VecDeque<HttpOutcome> = inputs.http.iter().cloned().collect();
        let mut execution = self.route(call);
        execution.log = Some(vec![format!(
            "call from {} ({}) to {} at {}",
            call.caller,
            if call.caller_name.is_empty() {
                "no name"
            } else {
                &call.caller_name
            },
            call.dialed,
            call.now
        )]);
        let mut input = None;
        for _ in 0..MAX_ACTIONS {
            let action = execution.next(directory, input.take());
            let (line, result) = describe(&action, &mut dials, &mut digits, &mut http);
            if let Some(log) = &mut execution.log {
                log.push(line);
            }
            if action.is_final() {
                return execution.log.take().unwrap_or_default();
            }
            input = Some(result);
        }
        let mut log = execution.log.take().unwrap_or_default();
        log.push(format!("trace stopped after {MAX_ACTIONS} actions"));
        log
    }
}

/// One line for an action, and the result assumed for it.
fn describe(
    action: &Action,
    dials: &mut VecDeque<DialOutcome>,
    digits: &mut VecDeque<String>,
    http: &mut VecDeque<HttpOutcome>,
) -> (String, StepResult) {
    let done = StepResult::Done;
    match action {
        Action::Answer => ("  answer".into(), done),
        Action::Echo => ("  echo".into(), done),
        Action::Playback { prompt } => (format!("  playback {prompt}"), done),
        Action::Voicemail { mailbox, greeting } => {
            let greeting = match greeting {
                crate::Greeting::Busy => "busy",
                crate::Greeting::Unavailable => "unavailable",
            };
            (
                format!("  voicemail mailbox={mailbox} greeting={greeting}"),
                done,
            )
        }
        Action::VoicemailMenu { mailbox } => match mailbox {
            Some(m) => (format!("  voicemail_menu mailbox={m}"), done),
            None => ("  voicemail_menu (asks for the mailbox)".into(), done),
        },
        Action::Dial {
            targets,
            timeout,
            caller_name,
        } => {
            let outcome = dials.pop_front().unwrap_or(DialOutcome::NoAnswer);
            let who: Vec<String> = targets
                .iter()
                .map(|t| match t {
                    crate::Target::Extension(n) => format!("extension {n}"),
                    crate::Target::External(n) => format!("external {n}"),
                    crate::Target::Trunk { trunk, number } => {
                        format!("trunk {trunk} number {number}")
                    }
                })
                .collect();
            let line = format!(
                "  dial {} for {}s as {caller_name:?} -> assume {}",
                who.join(", "),
                timeout.as_secs(),
                outcome.as_str()
            );
            (line, StepResult::Dial(outcome))
        }
        Action::Menu {
            prompt,
            max_digits,
            timeout,
        } => {
            let entered = digits.pop_front().unwrap_or_default();
            let line = format!(
                "  menu prompt={prompt} digits={max_digits} timeout={}s -> assume {entered:?}",
                timeout.as_secs()
            );
            (line, StepResult::Digits(entered))
        }
        Action::HttpLookup(request) => {
            let outcome = http
                .pop_front()
                .unwrap_or_else(|| HttpOutcome::Failed("not requested in a trace".into()));
            let body = request
                .body
                .as_deref()
                .map(|b| format!(" body={b}"))
                .unwrap_or_default();
            let line = format!(
                "  http_lookup {} {}{body} -> assume {}",
                request.method.as_str(),
                request.url,
                match &outcome {
                    HttpOutcome::Response { status, body } => format!("{status} {body}"),
                    HttpOutcome::Failed(why) => format!("failure ({why})"),
                }
            );
            (line, StepResult::Http(outcome))
        }
        Action::Say { kind, value } => (format!("  say {} {value:?}", kind.as_str()), done),
        Action::DbLookup(request) => {
            let line = format!(
                "  db_lookup {} {:?} with {} parameter(s) -> assume no row (not run in a trace)",
                request.database,
                request.query,
                request.params.len()
            );
            (line, StepResult::Db(crate::DbOutcome::NoRow))
        }
        Action::Hangup { status, reason } => (format!("hangup {status} {reason}"), done),
        Action::Refused { status, reason } => (format!("refused {status} {reason}"), done),
        Action::NoRoute { status, reason } => (format!("no route {status} {reason}"), done),
        Action::Failed { status, reason } => (format!("failed {status} {reason}"), done),
        Action::End => ("end".into(), done),
    }
}
