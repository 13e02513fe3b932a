//! The `pbx.toml` configuration: the model, its loader, and `path:line:col` errors.

mod duration;
mod errors;
mod load;
mod model;
mod read;
mod sections;
mod values;
mod warnings;

pub use duration::{format_duration, parse_duration};
pub use errors::{ConfigError, ConfigErrors};
pub use load::{load, load_str};
pub use model::{
    CallsConfig, Config, DatabaseConfig, DialplanConfig, DigestAlgorithm, DnsConfig, Listen,
    LookupConfig, RtpConfig, SecurityConfig, SipConfig, SmtpConfig, TlsConfig, TraceConfig,
    Transport, VoicemailConfig, WebConfig,
};
pub use values::{parse_network, parse_socket_addr};
pub use warnings::{LINUX_EPHEMERAL, warnings};
