//! The registrar's binding rules (RFC 3261 §10.3, RFC 5626 §6), sans-IO.
//!
//! The shell authenticates the REGISTER, loads the AOR's bindings, calls
//! [`process_register`], stores the plan's changes and answers 200 with
//! [`RegisterPlan::response_contacts`], or answers [`RegisterError::status`].

mod binding;
mod error;
mod plan;
mod rules;

pub use binding::{Binding, prune_expired};
pub use error::RegisterError;
pub use plan::{BindingChange, RegisterPlan};
pub use rules::{RegistrarPolicy, process_register};
