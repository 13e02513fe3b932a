//! The `pbx` command line (clap). `--config` may be given anywhere; it defaults to
//! `config/pbx.toml`.

mod admin;
mod ban;
mod cdr;
pub mod dialplan;
mod extension;
pub mod import;
mod mail;
mod registration;
pub mod table;
mod trace;
mod trunk;
mod voicemail;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ipnet::IpNet;

use crate::config::{self, Config, ConfigErrors};
use pbx_store::MailboxStore;
use pbx_store::{Store, StoreError};

#[derive(Debug, Parser)]
#[command(
    name = "pbx",
    version,
    about = "An IP-PBX: SIP registrar, calls with an RTP/SRTP relay, a TOML dialplan"
)]
pub struct Cli {
    /// The config file; paths inside it are relative to its folder.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "config/pbx.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the PBX (SIP, media relay, dialplan, GET /healthz and /metrics) until SIGTERM or
    /// SIGINT.
    Serve,
    /// Validate the config and the dialplan it names: one `path:line:col: message` per
    /// problem (exit 1), `path:line:col: warning: ...` for a risk (exit 0).
    Check,
    /// Manage extensions (SIP accounts).
    #[command(subcommand)]
    Extension(ExtensionCommand),
    /// Show registrations.
    #[command(subcommand)]
    Registration(RegistrationCommand),
    /// Show call detail records.
    #[command(subcommand)]
    Cdr(CdrCommand),
    /// Manage admin accounts and API tokens of the web admin.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Show and lift bans of source addresses.
    #[command(subcommand)]
    Ban(BanCommand),
    /// Work with the dialplan.
    #[command(subcommand)]
    Dialplan(DialplanCommand),
    /// Log the SIP messages of a source network or an extension, without a restart.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// E-mail through `[smtp]`.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Voicemail messages.
    #[command(subcommand)]
    Voicemail(VoicemailCommand),
    /// Manage trunks: a legacy PBX, a gateway or a SIP provider.
    #[command(subcommand)]
    Trunk(TrunkCommand),
}

#[derive(Debug, Subcommand)]
pub enum VoicemailCommand {
    /// The messages of a mailbox: id, folder, caller, time, length, file.
    List {
        /// The mailbox (its extension's number).
        #[arg(value_name = "MAILBOX")]
        mailbox: String,
    },
}

// Parsed once per process: the size of the large variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum TrunkCommand {
    /// Add a trunk.
    Add {
        /// 1 to 32 letters, digits, `-` or `_` (the NAME of `trunk:NAME/NUMBER`).
        name: String,
        /// The far end: an IP address or DNS name, with an optional port (default 5060, 5061
        /// for TLS).
        #[arg(long, value_name = "HOST[:PORT]")]
        host: String,
        /// udp (default), tcp or tls.
        #[arg(long, default_value = "udp")]
        transport: String,
        /// The digest user name the trunk knows the PBX by.
        #[arg(long)]
        username: Option<String>,
        /// Its password (stored as given: the PBX is the client here; never listed or logged).
        #[arg(long)]
        password: Option<String>,
        /// Register to the trunk with the credentials (a SIP provider).
        #[arg(long)]
        register: bool,
        /// A network (CIDR) whose calls are this trunk's without digest; repeat for several.
        #[arg(long = "allow", value_name = "CIDR", value_parser = trunk::parse_network)]
        allow: Vec<IpNet>,
        /// The dialplan context of the trunk's inbound calls.
        #[arg(long, default_value = pbx_store::DEFAULT_TRUNK_CONTEXT)]
        context: String,
        /// Send every request to the trunk through this proxy.
        #[arg(long = "outbound-proxy", value_name = "HOST[:PORT]")]
        outbound_proxy: Option<String>,
        /// The caller ID of outbound calls: extension (default), trunk (--caller-id) or
        /// anonymous.
        #[arg(long = "caller-id-mode", default_value = "extension")]
        caller_id_mode: String,
        /// The trunk's default caller number.
        #[arg(long = "caller-id", value_name = "NUMBER")]
        caller_id: Option<String>,
        /// Calls at once through the trunk (0, the default: no limit).
        #[arg(long, default_value_t = 0)]
        channels: u32,
        /// SRTP on the trunk's calls: required, optional (default) or off.
        #[arg(long = "media-encryption", default_value = "optional")]
        media_encryption: String,
        /// A codec the trunk may use, in preference order; repeat for several (default: all).
        #[arg(long = "codec", value_name = "NAME")]
        codecs: Vec<String>,
        /// Seconds without any response to an INVITE before the next trunk is tried
        /// (default: `[calls] trunk_setup_timeout`).
        #[arg(long = "setup-timeout", value_name = "SECS")]
        setup_timeout: Option<u32>,
        /// TLS: a CA file (PEM) trusted for the trunk's certificate besides the system's
        /// roots (default: `[sip] tls_ca_file`).
        #[arg(long = "tls-ca-file", value_name = "FILE")]
        tls_ca_file: Option<std::path::PathBuf>,
        /// TLS: do NOT verify the trunk's certificate. Anyone on the path could then read and
        /// change its calls; for a lab only.
        #[arg(long = "tls-no-verify")]
        tls_no_verify: bool,
        /// How the trunk carries DTMF: rfc4733 (default), info (SIP INFO) or auto (RFC 4733
        /// when its SDP has telephone-event, INFO otherwise).
        #[arg(long, default_value = "rfc4733")]
        dtmf: String,
    },
    /// The trunks with their state (registered, up, down, unknown).
    List,
    /// Remove a trunk.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Send a test message now (not queued), to check the `[smtp]` settings; says what the
    /// mail server answered when it fails.
    Test {
        /// The recipient.
        #[arg(value_name = "ADDRESS")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Start tracing the messages from and to a source, or about an extension.
    #[command(group(clap::ArgGroup::new("target").required(true).args(["source", "extension"])))]
    Add {
        /// A network (CIDR) or single address: messages exchanged with it.
        #[arg(long, value_name = "CIDR", value_parser = crate::trace::filter::parse_source)]
        source: Option<IpNet>,
        /// An extension: messages whose Request-URI, From or To names it.
        #[arg(long, value_name = "NUMBER", value_parser = crate::trace::filter::parse_extension)]
        extension: Option<String>,
        /// Stop by itself after this long (such as 30m, 2h); default: until removed.
        #[arg(long = "for", value_name = "DURATION", value_parser = config::parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// The traces in force (those of `[trace]` in the config too).
    List,
    /// Stop a trace: its ID from `pbx trace list`, or `all`.
    Remove {
        #[arg(value_name = "ID|all")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DialplanCommand {
    /// Print, one per line, the rules and steps a call would run, without placing it.
    Trace {
        /// The calling extension.
        #[arg(long)]
        from: String,
        /// The number dialed.
        #[arg(long)]
        to: String,
        /// When the call happens (RFC 3339, such as 2026-03-30T08:30:00+02:00); default now.
        #[arg(long, value_parser = dialplan::parse_time)]
        at: Option<pbx_dialplan::Timestamp>,
        /// How each dial ends, in order: busy, no-answer, unavailable, rejected, answered (default
        /// no-answer).
        #[arg(long, value_parser = dialplan::parse_dial_outcome)]
        dial: Vec<pbx_dialplan::DialOutcome>,
        /// The digits entered at each menu, in order (default: none, a timeout).
        #[arg(long)]
        digits: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExtensionCommand {
    /// Create an extension.
    Add {
        /// 2 to 15 digits.
        number: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// The voicemail PIN, 4 to 12 digits, stored hashed.
        #[arg(long)]
        pin: Option<String>,
        /// A network (CIDR) the extension may register from; repeat for several. Default: any.
        #[arg(long = "allow", value_name = "CIDR")]
        allow: Vec<IpNet>,
        /// SRTP policy for this extension's calls: required, optional (default) or off.
        #[arg(long = "media-encryption", value_name = "POLICY")]
        media_encryption: Option<String>,
        /// Send its phones message-waiting NOTIFYs without a subscription (for phones set to
        /// "unsolicited MWI"; phones that SUBSCRIBE do not need it).
        #[arg(long = "mwi-unsolicited")]
        mwi_unsolicited: bool,
        /// Its own public number (digits, optional leading +), presented as its caller ID on
        /// trunks whose caller-ID mode is `extension`.
        #[arg(long, value_name = "NUMBER")]
        did: Option<String>,
    },
    /// Change an existing extension; its registrations stay. Only the options given change.
    Set {
        /// The extension to change.
        number: String,
        /// A new SIP password (a running PBX uses it within 5 s).
        #[arg(long)]
        password: Option<String>,
        /// The display name ("" clears it).
        #[arg(long)]
        name: Option<String>,
        /// The e-mail address ("" clears it).
        #[arg(long)]
        email: Option<String>,
        /// A new voicemail PIN of 4 to 12 digits, stored hashed.
        #[arg(long)]
        pin: Option<String>,
        /// SRTP policy for this extension's calls: required, optional or off.
        #[arg(long = "media-encryption", value_name = "POLICY")]
        media_encryption: Option<String>,
        /// The dialplan context it calls from, overriding the dialplan's `members` ("" goes
        /// back to them); must exist in the dialplan the config names.
        #[arg(long)]
        context: Option<String>,
        /// Delete each voicemail message once it is e-mailed (mail only): true or false.
        #[arg(long = "delete-after-email", value_name = "BOOL")]
        delete_after_email: Option<bool>,
        /// Message-waiting NOTIFYs without a subscription: yes or no.
        #[arg(long = "mwi-unsolicited", value_name = "yes|no", value_parser = yes_no)]
        mwi_unsolicited: Option<bool>,
        /// Its own public number, its caller ID on trunks ("" clears it).
        #[arg(long, value_name = "NUMBER")]
        did: Option<String>,
    },
    /// Create many from a CSV file with the header `number,password,name,email,pin[,did]`.
    Import { file: PathBuf },
    /// List the extensions, with their SRTP policy, dialplan context and DID.
    List,
    /// Remove an extension and its registrations.
    Remove { number: String },
}

/// `yes`/`no` (also `on`/`off`, `true`/`false`) for a switch given a value.
fn yes_no(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Ok(true),
        "no" | "off" | "false" => Ok(false),
        _ => Err(format!("`{text}`: expected yes or no")),
    }
}

#[derive(Debug, Subcommand)]
pub enum RegistrationCommand {
    /// The current bindings.
    List,
}

#[derive(Debug, Subcommand)]
pub enum CdrCommand {
    /// The most recent call records, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin account.
    Create {
        user: String,
        #[arg(long)]
        password: String,
    },
    /// Print a new API bearer token for an admin.
    Token { user: String },
}

#[derive(Debug, Subcommand)]
pub enum BanCommand {
    /// The addresses banned now, with reason and expiry.
    List,
    /// Lift the ban of an address.
    Remove { address: IpAddr },
}

/// Why a command failed; `main` prints it to stderr and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Config(ConfigErrors),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Already formatted, one problem per line.
    #[error("{}", .0.join("\n"))]
    Input(Vec<String>),
    /// `path:line:col: message` lines, printed as they are.
    #[error("{}", .0.join("\n"))]
    Problems(Vec<String>),
    #[error("{0}")]
    Failed(String),
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are not failures; every usage error exits 1 like other bad input.
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Config(errors)) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
        Err(CliError::Problems(lines)) => {
            eprintln!("{}", lines.join("\n"));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    // rtc-dtls warns at every browser's ClientHello about extensions it does not implement
    // (encrypt-then-MAC): nothing for an admin to act on.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rtc_dtls=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal, not in files and journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let config = load_config(&cli.config)?;
    if matches!(cli.command, Command::Check) {
        dialplan::check(&config)?;
        // Risks, not errors: printed like them, but the exit code stays 0.
        for warning in config::warnings(&cli.config, &config) {
            eprintln!("{warning}");
        }
        println!("{}: ok", cli.config.display());
        return Ok(());
    }
    if matches!(cli.command, Command::Serve) {
        for warning in config::warnings(&cli.config, &config) {
            tracing::warn!("{warning}");
        }
    }
    let threads = match config.sip.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1)),
        n => n,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(dispatch(cli.command, config))
}

async fn dispatch(command: Command, config: Config) -> Result<(), CliError> {
    if let Command::Serve = command {
        return crate::serve::run(config)
            .await
            .map_err(|e| CliError::Failed(e.to_string()));
    }
    if let Command::Mail(MailCommand::Test { to }) = command {
        return mail::test(&config, &to).await;
    }
    let store = Store::open(&config.database.url).await?;
    let result = match command {
        Command::Serve | Command::Check | Command::Mail(_) => Ok(()),
        Command::Extension(cmd) => {
            // A mailbox setting, beside the extension's own (`extension::run` does those).
            if let ExtensionCommand::Set {
                number,
                delete_after_email: Some(on),
                ..
            } = &cmd
                && !store.set_delete_after_email(number, *on).await?
            {
                return Err(CliError::Failed(format!("no extension {number}")));
            }
            extension::run(&store, &config, cmd).await
        }
        Command::Registration(RegistrationCommand::List) => registration::list(&store).await,
        Command::Cdr(CdrCommand::List { limit }) => cdr::list(&store, limit).await,
        Command::Voicemail(VoicemailCommand::List { mailbox }) => {
            voicemail::list(&store, &mailbox).await
        }
        Command::Admin(cmd) => admin::run(&store, cmd).await,
        Command::Ban(cmd) => ban::run(&store, cmd).await,
        Command::Trace(cmd) => trace::run(&store, &config, cmd).await,
        Command::Trunk(cmd) => trunk::run(&store, &config, cmd).await,
        Command::Dialplan(DialplanCommand::Trace {
            from,
            to,
            at,
            dial,
            digits,
        }) => {
            let request = dialplan::TraceRequest {
                from,
                to,
                at,
                dial,
                digits,
            };
            dialplan::trace(&store, &config, request).await
        }
    };
    store.close().await;
    result
}

fn load_config(path: &Path) -> Result<Config, CliError> {
    config::load(path).map_err(CliError::Config)
}
