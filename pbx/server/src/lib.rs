//! The PBX server: the async shell around the sans-IO cores.
//!
//! - [`config`]: `pbx.toml`, loaded with `path:line:col` errors.
//! - [`plan`]: the dialplan, validated and reloaded atomically.
//! - the database is the `pbx-store` crate (its ports and their SQLite/PostgreSQL
//!   implementation); the server opens it in [`serve`] and [`cli`].
//! - [`cli`]: the `pbx` command line.
//! - [`serve`]: `pbx serve`, the running PBX.
//! - [`transport`]: UDP, TCP and TLS listeners; [`engine`]: the sharded SIP engine.
//! - [`security`]: bans, ACLs, rate limits; [`web`]: health and metrics.
//! - [`trace`]: the SIP trace (log, file, HEP export).
//! - [`mail`]: e-mail through `[smtp]`, spooled and retried.

pub mod cli;
pub mod config;
pub mod engine;
pub mod mail;
pub mod media;
pub mod plan;
pub mod security;
pub mod serve;
pub mod trace;
pub mod transport;
pub mod voicemail;
pub mod web;
