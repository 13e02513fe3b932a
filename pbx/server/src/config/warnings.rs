//! Risks in a valid config that `pbx check` points out without refusing it (exit 0), as
//! `path:line:col: warning: ...`, and `pbx serve` logs at start.

use std::ops::RangeInclusive;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::errors::{ConfigError, Positions};
use super::model::Config;

/// Where Linux's default `net.ipv4.ip_local_port_range` puts outgoing connections' ports.
pub const LINUX_EPHEMERAL: RangeInclusive<u16> = 32768..=60999;
const EPHEMERAL_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// The warnings for the config read from `path` (its text is read again for positions).
pub fn warnings(path: &Path, config: &Config) -> Vec<ConfigError> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let ephemeral = read_ephemeral().unwrap_or(LINUX_EPHEMERAL);
    warnings_in(path, &text, config, &ephemeral)
}

/// The warnings for config `text`, given the kernel's ephemeral port range.
pub fn warnings_in(
    path: &Path,
    text: &str,
    config: &Config,
    ephemeral: &RangeInclusive<u16>,
) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let (low, high) = (config.rtp.port_min, config.rtp.port_max);
    if low <= *ephemeral.end() && *ephemeral.start() <= high {
        let (line, col) = rtp_ports_position(text);
        out.push(ConfigError {
            path: path.display().to_string(),
            line,
            col,
            message: format!(
                "warning: the RTP port range {low}-{high} overlaps the kernel's ephemeral \
                 ports {}-{} ({EPHEMERAL_FILE}): an outgoing connection (database, HTTP \
                 lookup) may take a port the relay needs; choose a range below {} such as \
                 10000-20000",
                ephemeral.start(),
                ephemeral.end(),
                ephemeral.start()
            ),
        });
    }
    out
}

/// The kernel's range (`32768\t60999`), when this system has the file.
fn read_ephemeral() -> Option<RangeInclusive<u16>> {
    parse_ephemeral(&std::fs::read_to_string(EPHEMERAL_FILE).ok()?)
}

fn parse_ephemeral(text: &str) -> Option<RangeInclusive<u16>> {
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    let (low, high) = (parts.next()?.ok()?, parts.next()?.ok()?);
    (low <= high).then_some(low..=high)
}

/// Line and column of the `[rtp] ports` value; 1:1 when the file does not set it (the
/// default range then applies).
fn rtp_ports_position(text: &str) -> (usize, usize) {
    let (root, _) = DeTable::parse_recoverable(text);
    let span = root
        .get_ref()
        .get("rtp")
        .and_then(|rtp| match rtp.get_ref() {
            DeValue::Table(table) => table.get("ports").map(|v| v.span()),
            _ => None,
        });
    span.map_or((1, 1), |s| Positions::new(text).line_col(s.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The warnings for `[sip]` with a domain (required), then `body`.
    fn check(body: &str, ephemeral: RangeInclusive<u16>) -> Vec<String> {
        let text = &format!("[sip]\ndomain = \"x\"\n{body}");
        let path = Path::new("pbx.toml");
        let config =
            super::super::load_str(text, path, Path::new("/tmp")).unwrap_or_else(|e| panic!("{e}"));
        warnings_in(path, text, &config, &ephemeral)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_range_inside_the_ephemeral_ports_is_pointed_at() {
        let found = check("\n[rtp]\nports = \"40000-41000\"\n", LINUX_EPHEMERAL);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("pbx.toml:5:9: warning: the RTP port range 40000-41000 overlaps"),
            "{found:?}"
        );
        assert!(found[0].contains("32768-60999"), "{found:?}");
    }

    #[test]
    fn the_range_read_from_the_kernel_decides() {
        let text = "[rtp]\nports = \"30000-32000\"\n";
        assert!(check(text, LINUX_EPHEMERAL).is_empty());
        let found = check(text, 31000..=40000);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("31000-40000"), "{found:?}");
        // Touching at one end is an overlap.
        assert_eq!(
            check("[rtp]\nports = \"20000-32768\"\n", LINUX_EPHEMERAL).len(),
            1
        );
    }

    #[test]
    fn the_default_range_is_clear() {
        assert!(check("", LINUX_EPHEMERAL).is_empty());
        assert!(check("[rtp]\nports = \"10000-20000\"\n", LINUX_EPHEMERAL).is_empty());
    }

    #[test]
    fn the_kernel_file_is_parsed() {
        assert_eq!(parse_ephemeral("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_ephemeral("1024 65535"), Some(1024..=65535));
        assert_eq!(parse_ephemeral("garbage"), None);
        assert_eq!(parse_ephemeral("5000 4000"), None);
    }
}
