//! The TOML dialplan: parse, validate, evaluate and trace. Pure: no I/O, no clock.
//!
//! ```text
//! Plan::parse(path, text)            -> Result<Plan, Diagnostics>   (every problem, path:line:col)
//! Arc<Plan>::route(&CallContext)     -> Execution
//! Execution::next(&dyn Directory, Option<StepResult>) -> Action      (until Action::is_final)
//! Plan::trace(&CallContext, &dyn Directory, &TraceInputs) -> Vec<String>
//! ```
//!
//! The format is taught in `docs/dialplan.md`.

mod api;
mod eval;
mod model;
mod parse;
mod pattern;
mod template;
mod timecond;
mod trace;

pub use api::{
    Action, CallContext, DbOutcome, DbRequest, DialOutcome, DialStrategy, Directory, Greeting,
    HttpMethod, HttpOutcome, HttpRequest, SayKind, StepResult, Target,
};
pub use eval::Execution;
pub use jiff::Timestamp;
pub use model::Plan;
pub use pattern::DialPattern;
pub use pbx_diag::{Diagnostic, Diagnostics};
pub use trace::TraceInputs;

#[cfg(test)]
mod tests {
    /// The server shares plans across tasks and moves executions between threads.
    #[test]
    fn plans_and_executions_cross_threads() {
        fn shareable<T: Send + Sync>() {}
        fn movable<T: Send>() {}
        shareable::<crate::Plan>();
        movable::<crate::Execution>();
        movable::<crate::Action>();
    }
}
