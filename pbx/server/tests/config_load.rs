//! Loading `pbx.toml`: every problem reported at once with its exact line:col, defaults, and
//! paths resolved against the config file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pbx::config::{self, ConfigErrors, DigestAlgorithm, Transport};

/// A fresh folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pbx-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
    path
}

fn errors_of(path: &Path) -> ConfigErrors {
    match config::load(path) {
        Ok(_) => panic!("{} loaded, expected errors", path.display()),
        Err(e) => e,
    }
}

/// (line, col, text the message must contain)
fn assert_errors(errors: &ConfigErrors, expected: &[(usize, usize, &str)]) {
    let got: Vec<(usize, usize, String)> = errors
        .iter()
        .map(|e| (e.line, e.col, e.message.clone()))
        .collect();
    assert_eq!(got.len(), expected.len(), "errors: {errors}");
    for ((line, col, msg), (el, ec, ed)) in got.iter().zip(expected) {
        assert_eq!((line, col), (el, ec), "position of `{msg}`");
        assert!(msg.contains(ed), "`{msg}` lacks `{ed}`");
    }
}

#[test]
fn bad_fixture_reports_every_error_at_its_position() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config_bad.toml");
    let errors = errors_of(&fixture);
    assert_errors(
        &errors,
        &[
            (
                3,
                1,
                "unknown key `lisen` in [sip], expected one of `listen`, `domain`",
            ),
            (4, 33, "unknown transport `sctp`"),
            (4, 56, "port 70000 out of range 1-65535"),
            (4, 79, "`localhost` is not an IP address"),
            (
                6,
                15,
                "wrong type for `min_expires` in [sip]: expected a duration string",
            ),
            (9, 9, "bad port range `20000-10000`"),
            (12, 18, "bad duration `60 seconds`"),
            (13, 11, "bad duration `1w`"),
            (14, 10, "bad network `10.0.0.0/33`"),
            (
                15,
                21,
                "wrong type for `max_auth_failures` in [security]: expected an integer, found a string",
            ),
            (18, 10, "`127.0.0.1` has no port"),
            (21, 8, "dialplan file not found"),
            (23, 2, "unknown section [extras]"),
        ],
    );
    // Display: one `path:line:col: message` per line.
    let text = errors.to_string();
    assert_eq!(text.lines().count(), 13);
    let prefix = format!("{}:3:1: unknown key `lisen`", fixture.display());
    assert!(text.starts_with(&prefix), "{text}");
}

#[test]
fn defaults_fill_everything_optional() {
    let dir = temp_dir("defaults");
    let path = write(&dir, "pbx.toml", "[sip]\ndomain = \"example.org\"\n");
    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sip.domain, "example.org");
    let listen: Vec<String> = c.sip.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"]);
    assert_eq!(c.sip.min_expires, Duration::from_secs(60));
    assert_eq!(c.sip.max_expires, Duration::from_secs(3600));
    assert_eq!(c.sip.default_expires, Duration::from_secs(3600));
    assert_eq!(c.sip.max_message_size, 65535);
    assert_eq!(c.sip.qualify_interval, Duration::ZERO);
    assert_eq!(c.sip.user_agent, "pbx");
    assert_eq!(
        (c.rtp.port_min, c.rtp.port_max, c.rtp.public_ip),
        (10000, 20000, None)
    );
    assert_eq!(
        c.database.url,
        format!("sqlite://{}/data/pbx.db", dir.display())
    );
    assert_eq!(c.tls.cert, dir.join("tls/cert.pem"));
    assert_eq!(c.tls.key, dir.join("tls/key.pem"));
    let s = &c.security;
    assert_eq!(s.max_auth_failures, 5);
    assert_eq!(s.failure_window, Duration::from_secs(60));
    assert_eq!(s.ban_for, Duration::from_secs(3600));
    let allow: Vec<String> = s.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["0.0.0.0/0", "::/0"]);
    assert!(s.deny.is_empty());
    assert_eq!((s.rate_limit, s.rate_burst), (200, 400));
    assert_eq!(s.nonce_lifetime, Duration::from_secs(300));
    assert_eq!(
        s.digest_algorithms,
        [DigestAlgorithm::Sha256, DigestAlgorithm::Md5]
    );
    assert_eq!(
        c.web.listen,
        "127.0.0.1:8080"
            .parse::<SocketAddr>()
            .ok()
            .unwrap_or_else(|| panic!())
    );
    assert_eq!(c.voicemail.storage, dir.join("data/voicemail"));
    assert_eq!(c.smtp, None);
    assert_eq!(c.dialplan.file, None);
    assert_eq!(c.base_dir, dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_key_is_read_and_paths_resolve_against_the_config_folder() {
    let dir = temp_dir("full");
    std::fs::create_dir_all(dir.join("etc/plans")).unwrap_or_else(|e| panic!("{e}"));
    write(&dir, "etc/plans/dp.toml", "# empty\n");
    let path = write(
        &dir,
        "etc/pbx.toml",
        r#"
[sip]
listen = ["udp:[::1]:5070", "tls:127.0.0.1:5061", "wss:0.0.0.0:8443"]
domain = "pbx.test"
min_expires = "30s"
max_expires = "2h"
default_expires = "10m"
max_message_size = 4096
qualify_interval = "500ms"
user_agent = "test-pbx"

[rtp]
ports = "30000-30100"
public_ip = "203.0.113.7"

[database]
url = "postgres://pbx@db.example/pbx"

[tls]
cert = "/abs/cert.pem"
key = "keys/key.pem"

[security]
max_auth_failures = 3
failure_window = "5m"
ban_for = "7d"
allow = ["10.0.0.0/8", "192.168.1.10"]
deny = ["10.9.0.0/16"]
rate_limit = 50
rate_burst = 100
nonce_lifetime = "60s"
digest_algorithms = ["md5"]

[web]
listen = "[::]:9090"

[voicemail]
storage = "../vm"

[smtp]
url = "smtps://mail.example:465"

[dialplan]
file = "plans/dp.toml"
"#,
    );
    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let etc = dir.join("etc");
    assert_eq!(c.sip.listen.len(), 3);
    assert_eq!(
        c.sip.listen.first().map(|l| l.to_string()),
        Some("udp:[::1]:5070".into())
    );
    assert_eq!(
        c.sip.listen.get(2).map(|l| l.transport),
        Some(Transport::Wss)
    );
    assert_eq!(c.sip.max_expires, Duration::from_secs(7200));
    assert_eq!(c.sip.default_expires, Duration::from_secs(600));
    assert_eq!(c.sip.qualify_interval, Duration::from_millis(500));
    assert_eq!(c.sip.max_message_size, 4096);
    assert_eq!(c.sip.user_agent, "test-pbx");
    assert_eq!((c.rtp.port_min, c.rtp.port_max), (30000, 30100));
    assert_eq!(
        c.rtp.public_ip.map(|i| i.to_string()),
        Some("203.0.113.7".into())
    );
    assert_eq!(c.database.url, "postgres://pbx@db.example/pbx");
    assert_eq!(c.tls.cert, PathBuf::from("/abs/cert.pem"));
    assert_eq!(c.tls.key, etc.join("keys/key.pem"));
    assert_eq!(c.security.ban_for, Duration::from_secs(7 * 86400));
    let allow: Vec<String> = c.security.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, ["10.0.0.0/8", "192.168.1.10/32"]);
    assert_eq!(c.security.digest_algorithms, [DigestAlgorithm::Md5]);
    assert_eq!(c.web.listen.port(), 9090);
    assert_eq!(c.voicemail.storage, etc.join("../vm"));
    let smtp = c.smtp.unwrap_or_else(|| panic!("smtp missing"));
    assert_eq!(smtp.url, "smtps://mail.example:465");
    assert_eq!(smtp.from, "PBX <pbx@pbx.test>");
    assert_eq!(c.dialplan.file, Some(etc.join("plans/dp.toml")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_demo_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/pbx.toml");
    let c = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sip.domain, "pbx.test");
    let listen: Vec<String> = c.sip.listen.iter().map(ToString::to_string).collect();
    assert_eq!(
        listen,
        [
            "udp:127.0.0.1:5060",
            "tcp:127.0.0.1:5060",
            "tls:127.0.0.1:5061"
        ]
    );
    assert!(c.database.url.starts_with("sqlite:///"));
    assert!(c.database.url.ends_with("/config/data/pbx.db"));
    assert!(c.dialplan.file.is_some_and(|f| f.is_file()));
}

#[test]
fn syntax_errors_are_positioned() {
    let dir = temp_dir("syntax");
    let path = write(
        &dir,
        "pbx.toml",
        "[sip]\ndomain = \"x\"\nlisten = [\"udp:127.0.0.1:5060\"\n\n[web\n",
    );
    let errors = errors_of(&path);
    let first = errors.iter().next().map(|e| (e.line, e.col));
    assert_eq!(first, Some((5, 1)), "{errors}");
    assert!(
        errors
            .iter()
            .all(|e| e.message.starts_with("TOML syntax error"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_required_values_and_sections() {
    let dir = temp_dir("missing");
    let path = write(
        &dir,
        "pbx.toml",
        "[web]\nlisten = \"127.0.0.1:80\"\n\n[smtp]\nfrom = \"x@y.z\"\n",
    );
    let errors = errors_of(&path);
    assert_errors(
        &errors,
        &[
            (1, 1, "missing section [sip] with key `domain`"),
            (4, 2, "missing key `url` in [smtp]"),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_types_and_ranges() {
    let dir = temp_dir("types");
    let text = "[sip]\n\
                domain = 5\n\
                listen = \"udp:127.0.0.1:5060\"\n\
                max_message_size = 10\n\
                min_expires = \"2h\"\n\
                [security]\n\
                allow = [\"10.0.0.0/8\", 7]\n\
                digest_algorithms = [\"SHA-512\"]\n\
                rate_limit = 0\n\
                sip = 1\n";
    let path = write(&dir, "pbx.toml", text);
    assert_errors(
        &errors_of(&path),
        &[
            (
                2,
                10,
                "wrong type for `domain` in [sip]: expected a string, found an integer",
            ),
            (3, 10, "expected an array of strings, found a string"),
            (
                4,
                20,
                "`max_message_size` in [sip] must be between 1024 and 1048576",
            ),
            (5, 15, "min_expires <= default_expires <= max_expires"),
            (7, 24, "expected a string, found an integer"),
            (8, 22, "unknown digest algorithm `SHA-512`"),
            (9, 14, "`rate_limit` in [security] must be between 1"),
            (10, 1, "unknown key `sip` in [security]"),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreadable_file_is_one_error() {
    let errors = errors_of(Path::new("/nonexistent/pbx.toml"));
    assert_eq!(errors.len(), 1);
    assert!(
        errors
            .to_string()
            .starts_with("/nonexistent/pbx.toml:1:1: cannot read config file")
    );
}

#[test]
fn connection_limits_and_media_bind() {
    let dir = temp_dir("limits");
    let defaults = write(&dir, "defaults.toml", "[sip]\ndomain = \"x.test\"\n");
    let c = config::load(&defaults).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.security.message_timeout, Duration::from_secs(10));
    assert_eq!(c.security.unauthenticated_idle, Duration::from_secs(30));
    assert_eq!(c.security.max_connections_per_source, 128);
    assert_eq!(c.rtp.bind.to_string(), "0.0.0.0", "wildcard SIP listeners");

    let one = write(
        &dir,
        "one.toml",
        "[sip]\ndomain = \"x.test\"\nlisten = [\"udp:127.0.0.1:5060\", \"tls:127.0.0.1:5061\"]\n",
    );
    let c = config::load(&one).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.rtp.bind.to_string(),
        "127.0.0.1",
        "one specific SIP address"
    );

    let set = write(
        &dir,
        "set.toml",
        "[sip]\ndomain = \"x.test\"\nlisten = [\"udp:127.0.0.1:5060\"]\n\
         [rtp]\nbind = \"0.0.0.0\"\n\
         [security]\nmessage_timeout = \"2s\"\nunauthenticated_idle = \"5m\"\n\
         max_connections_per_source = 0\n",
    );
    let c = config::load(&set).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.rtp.bind.to_string(), "0.0.0.0", "explicit bind wins");
    assert_eq!(c.security.message_timeout, Duration::from_secs(2));
    assert_eq!(c.security.unauthenticated_idle, Duration::from_secs(300));
    assert_eq!(c.security.max_connections_per_source, 0);

    let bad = write(
        &dir,
        "bad.toml",
        "[sip]\ndomain = \"x.test\"\n\
         [rtp]\nbind = \"eth0\"\n\
         [security]\nmessage_timeout = \"0s\"\nunauthenticated_idle = 30\n\
         max_connections_per_source = -1\n",
    );
    assert_errors(
        &errors_of(&bad),
        &[
            (4, 8, "bad bind `eth0`: expected an IP address"),
            (
                6,
                19,
                "`message_timeout` in [security] must be longer than 0s",
            ),
            (7, 24, "wrong type for `unauthenticated_idle`"),
            (
                8,
                30,
                "`max_connections_per_source` in [security] must be between 0",
            ),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_ca_file_for_tls_trunks_resolves_and_must_exist() {
    let dir = temp_dir("trunk-ca");
    let defaults = write(&dir, "defaults.toml", "[sip]\ndomain = \"x.test\"\n");
    let c = config::load(&defaults).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.sip.tls_ca_file, None,
        "only the system's roots by default"
    );

    write(&dir, "ca.pem", "-----BEGIN CERTIFICATE-----\n");
    let set = write(
        &dir,
        "set.toml",
        "[sip]\ndomain = \"x.test\"\ntls_ca_file = \"ca.pem\"\n",
    );
    let c = config::load(&set).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sip.tls_ca_file, Some(dir.join("ca.pem")));

    let missing = write(
        &dir,
        "missing.toml",
        "[sip]\ndomain = \"x.test\"\ntls_ca_file = \"nowhere.pem\"\n",
    );
    assert_errors(
        &errors_of(&missing),
        &[(3, 15, "`tls_ca_file` in [sip]: no such file")],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn strict_rtp_and_its_probation() {
    use pbx_media::relay::{LatchPolicy, StrictRtp};
    let dir = temp_dir("strict-rtp");
    let defaults = write(&dir, "defaults.toml", "[sip]\ndomain = \"x.test\"\n");
    let c = config::load(&defaults).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.rtp.strict_rtp, StrictRtp::Sequence);
    assert_eq!(c.rtp.rtp_probation, 4);
    assert_eq!(c.rtp.latching(), LatchPolicy::default());

    let set = write(
        &dir,
        "set.toml",
        "[sip]\ndomain = \"x.test\"\n[rtp]\nstrict_rtp = \"sequence\"\nrtp_probation = 8\n",
    );
    let c = config::load(&set).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.rtp.latching(), LatchPolicy::sequence(8));
    let off = write(
        &dir,
        "off.toml",
        "[sip]\ndomain = \"x.test\"\n[rtp]\nstrict_rtp = \"off\"\n",
    );
    let c = config::load(&off).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.rtp.latching(), LatchPolicy::OFF);

    let bad = write(
        &dir,
        "bad.toml",
        "[sip]\ndomain = \"x.test\"\n[rtp]\nstrict_rtp = \"yes\"\nrtp_probation = 0\n",
    );
    assert_errors(
        &errors_of(&bad),
        &[
            (
                4,
                14,
                "bad strict_rtp `yes`: expected \"sequence\" or \"off\"",
            ),
            (5, 17, "`rtp_probation` in [rtp] must be between 1 and 32"),
        ],
    );
    let too_many = write(
        &dir,
        "many.toml",
        "[sip]\ndomain = \"x.test\"\n[rtp]\nrtp_probation = 33\nstrict_rtp = true\n",
    );
    assert_errors(
        &errors_of(&too_many),
        &[
            (4, 17, "`rtp_probation` in [rtp] must be between 1 and 32"),
            (5, 14, "wrong type for `strict_rtp` in [rtp]"),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
