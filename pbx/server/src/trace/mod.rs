//! The SIP trace: every message in and out, as the transports see it.
//!
//! The transports hand each message's bytes to [`Tracer::inbound`] (before parsing, so an
//! unparsable message is traced too) and [`Tracer::outbound`] (in `Sender::send` and the
//! stateless 400 answers). While no filter is set and no HEP server is configured, that is
//! one atomic load per message.
//!
//! - **Log and file**: only messages that match a [`Filters`] target (a source network or an
//!   extension), from `[trace]` in the config plus the `sip_traces` table that `pbx trace`
//!   writes and [`sync`] re-reads every 2 s; written as a readable block ([`format`]) with
//!   secrets taken out ([`redact`]), to the log (target `sip_trace`, level info) and/or a
//!   file.
//! - **HEP**: every message, unredacted, to the capture server in `[trace] hep`
//!   ([`hep`]); see docs/decisions.md for why.

pub mod export;
pub mod filter;
pub mod format;
pub mod hep;
pub mod redact;
pub mod sync;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub use export::ExportError;
use export::{HepExport, TraceFile};
pub use filter::{Filters, Target};
pub use format::Direction;
use pbx_engine::{Peer, TransportKind};

/// `[trace]`: the SIP trace (docs/admin-guide.md, "Seeing the SIP").
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// Default empty: `sources` (networks) and `extensions` traced from start-up on, besides
    /// what `pbx trace add` adds while running.
    pub targets: Vec<Target>,
    /// Default true: traced messages are logged (target `sip_trace`, level info).
    pub log: bool,
    /// Default none: traced messages are also appended to this file.
    pub file: Option<PathBuf>,
    /// Default none: every SIP message is sent as HEP3 over UDP to this capture server.
    pub hep: Option<SocketAddr>,
    /// Default 1: the capture agent id HEP packets carry.
    pub hep_id: u32,
    /// Default none: the capture server's password, sent in each HEP packet.
    pub hep_password: Option<String>,
}

/// The `tracing` target trace blocks are logged under (`RUST_LOG=sip_trace=info`).
pub const LOG_TARGET: &str = "sip_trace";

/// The trace switch the transports call. Cheap to share (`Arc`).
pub struct Tracer {
    /// Whether anything at all is traced: a filter is set or HEP export is on.
    on: AtomicBool,
    filters: RwLock<Arc<Filters>>,
    log: bool,
    file: Option<TraceFile>,
    hep: Option<HepExport>,
}

impl Tracer {
    /// A tracer that traces nothing (for a `Sender` made without one).
    pub fn off() -> Tracer {
        Tracer {
            on: AtomicBool::new(false),
            filters: RwLock::default(),
            log: false,
            file: None,
            hep: None,
        }
    }

    /// Opens the outputs `[trace]` names. Filters start empty: [`sync`] sets them.
    pub fn start(config: &TraceConfig) -> Result<Tracer, ExportError> {
        metrics::describe_counter!(
            "pbx_sip_trace_dropped_total",
            "traced SIP messages not written to the trace file or HEP server, by reason"
        );
        let file = config.file.as_deref().map(TraceFile::open).transpose()?;
        let hep = config
            .hep
            .map(|to| HepExport::open(to, config.hep_id, config.hep_password.clone()))
            .transpose()?;
        if let Some(to) = config.hep {
            tracing::info!(%to, capture_id = config.hep_id, "SIP messages exported to a HEP capture server");
        }
        Ok(Tracer {
            on: AtomicBool::new(hep.is_some()),
            filters: RwLock::default(),
            log: config.log,
            file,
            hep,
        })
    }

    /// A message received from `peer` (whole, as it arrived).
    #[inline]
    pub fn inbound(&self, peer: &Peer, data: &Bytes) {
        if self.on.load(Ordering::Relaxed) {
            self.record(Direction::In, peer, data);
        }
    }

    /// A message about to be sent to `peer`.
    #[inline]
    pub fn outbound(&self, peer: &Peer, data: &Bytes) {
        if self.on.load(Ordering::Relaxed) {
            self.record(Direction::Out, peer, data);
        }
    }

    /// Replaces the filters; says in the log what is traced when that changes.
    pub fn set_filters(&self, filters: Filters) {
        let Ok(mut current) = self.filters.write() else {
            return;
        };
        if **current == filters {
            return;
        }
        let targets = filters.targets();
        let any = !filters.is_empty();
        *current = Arc::new(filters);
        drop(current);
        self.on.store(any || self.hep.is_some(), Ordering::Relaxed);
        if any {
            let list: Vec<String> = targets.iter().map(Target::to_string).collect();
            tracing::info!(targets = %list.join(", "), "SIP trace on");
        } else {
            tracing::info!("SIP trace off");
        }
    }

    #[cold]
    fn record(&self, direction: Direction, peer: &Peer, data: &Bytes) {
        let at = SystemTime::now();
        let route = format::Route {
            direction,
            transport: peer.kind.name(),
            local: peer.local,
            remote: peer.remote,
        };
        if let Some(hep) = &self.hep {
            let (src, dst) = route.ends();
            hep.send(&capture(hep, peer.kind, src, dst, at, data));
        }
        let filters = match self.filters.read() {
            Ok(filters) => filters.clone(),
            Err(_) => return,
        };
        if (!self.log && self.file.is_none()) || !filters.matches(peer.remote.ip(), data) {
            return;
        }
        let block = format::block(&route, at, data.len(), &redact::redact(data));
        if self.log {
            tracing::info!(target: LOG_TARGET, "{block}");
        }
        if let Some(file) = &self.file {
            file.write(block);
        }
    }
}

fn capture<'a>(
    hep: &'a HepExport,
    kind: TransportKind,
    src: SocketAddr,
    dst: SocketAddr,
    at: SystemTime,
    payload: &'a [u8],
) -> hep::Capture<'a> {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    hep::Capture {
        src,
        dst,
        // Every reliable transport (TCP, TLS, WebSocket) runs over TCP.
        protocol: if kind.is_reliable() {
            hep::IpProtocol::Tcp
        } else {
            hep::IpProtocol::Udp
        },
        seconds: u32::try_from(since_epoch.as_secs()).unwrap_or(u32::MAX),
        micros: since_epoch.subsec_micros(),
        capture_id: hep.capture_id,
        auth_key: hep.password.as_deref(),
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::Path;

    fn load(trace: &str) -> Result<crate::config::Config, Vec<String>> {
        let text = format!("[sip]\ndomain = \"pbx.test\"\n\n[trace]\n{trace}");
        load_str(&text, Path::new("pbx.toml"), Path::new("/etc/pbx"))
            .map_err(|e| e.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn trace_section_keys_and_defaults() {
        let config = load("").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            config.trace,
            TraceConfig {
                targets: Vec::new(),
                log: true,
                file: None,
                hep: None,
                hep_id: 1,
                hep_password: None,
            }
        );
        let config = load(
            "sources = [\"10.0.0.0/8\", \"192.0.2.1\"]\nextensions = [\"1001\"]\nlog = false\n\
             file = \"trace/sip.log\"\nhep = \"udp:127.0.0.1:9060\"\nhep_id = 2001\n\
             hep_password = \"pw\"\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let t = config.trace;
        let targets: Vec<String> = t.targets.iter().map(Target::to_string).collect();
        assert_eq!(
            targets,
            ["source 10.0.0.0/8", "source 192.0.2.1/32", "extension 1001"]
        );
        assert!(!t.log);
        assert_eq!(t.file.as_deref(), Some(Path::new("/etc/pbx/trace/sip.log")));
        assert_eq!(
            t.hep.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:9060")
        );
        assert_eq!((t.hep_id, t.hep_password.as_deref()), (2001, Some("pw")));
    }

    #[test]
    fn bad_trace_values_are_reported_where_they_are() {
        let errors = load(
            "sources = [\"ten\"]\nextensions = [\"10 01\"]\nhep = \"tcp:127.0.0.1:9060\"\n\
             hep_id = -1\nfile = \"\"\nhepp = 1\n",
        )
        .err()
        .unwrap_or_default();
        let want = [
            "pbx.toml:5:12: bad network `ten`",
            "pbx.toml:6:15: bad extension `10 01`",
            "pbx.toml:7:7: bad HEP address `tcp:127.0.0.1:9060`",
            "pbx.toml:8:10: `hep_id` in [trace] must be between 0 and 4294967295",
            "pbx.toml:9:8: `file` in [trace] must not be empty",
            "pbx.toml:10:1: unknown key `hepp` in [trace]",
        ];
        assert_eq!(errors.len(), want.len(), "{errors:#?}");
        for (got, want) in errors.iter().zip(want) {
            assert!(got.starts_with(want), "{got} does not start with {want}");
        }
    }

    #[test]
    fn an_idle_tracer_is_off_and_filters_switch_it() {
        let tracer = Tracer::off();
        assert!(!tracer.on.load(Ordering::Relaxed));
        let net = filter::parse_source("127.0.0.5").unwrap_or_else(|e| panic!("{e}"));
        tracer.set_filters(Filters::new([Target::Source(net)]));
        assert!(tracer.on.load(Ordering::Relaxed));
        tracer.set_filters(Filters::default());
        assert!(!tracer.on.load(Ordering::Relaxed));
    }
}
