//! The `pbx` binary end to end: exit codes, messages and tables of every store command, run
//! against a temporary config and SQLite database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    dir: PathBuf,
    config: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("pbx-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf")).unwrap_or_else(|e| panic!("{e}"));
        let config = dir.join("conf/pbx.toml");
        std::fs::write(&config, "[sip]\ndomain = \"pbx.test\"\n").unwrap_or_else(|e| panic!("{e}"));
        Env { dir, config }
    }

    /// Runs `pbx ARGS... --config CONFIG`.
    fn pbx(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pbx"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn");
        Run::of(cmd.output())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        path
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(output: std::io::Result<Output>) -> Run {
        let o = output.unwrap_or_else(|e| panic!("cannot run pbx: {e}"));
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn fails(self) -> Run {
        assert_eq!(
            self.code,
            Some(1),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}

#[test]
fn check_exits_0_or_1_with_positions() {
    let env = Env::new("check");
    env.pbx(&["check"]).ok();
    std::fs::write(
        &env.config,
        "[sip]\ndomain = \"x\"\nlisten = [\"udp:1.2.3.4:0\"]\n[security]\nban_for = \"forever\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = env.pbx(&["check"]).fails();
    let lines: Vec<&str> = run.stderr.lines().collect();
    let path = env.config.display().to_string();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with(&format!("{path}:3:11: "))),
        "{lines:?}"
    );
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.starts_with(&format!("{path}:5:11: bad duration"))),
        "{lines:?}"
    );
}

#[test]
fn extension_add_list_remove() {
    let env = Env::new("ext");
    env.pbx(&[
        "extension",
        "add",
        "1000",
        "--password",
        "hunter2-secret",
        "--name",
        "Alice",
        "--email",
        "alice@example.com",
        "--pin",
        "1234",
    ])
    .ok();
    env.pbx(&["extension", "add", "1001", "--password", "pw"])
        .ok();
    // The database file was created next to the config, and never holds the password.
    let db = env.dir.join("conf/data/pbx.db");
    assert!(db.is_file());
    let mut bytes = std::fs::read(&db).unwrap_or_default();
    bytes.extend(std::fs::read(env.dir.join("conf/data/pbx.db-wal")).unwrap_or_default());
    assert!(!bytes.windows(14).any(|w| w == b"hunter2-secret"));

    let list = env.pbx(&["extension", "list"]).ok().stdout;
    assert_eq!(
        list,
        "NUMBER  NAME   EMAIL              PIN  NETWORKS  MEDIA     CONTEXT  MWI  DID\n\
         1000    Alice  alice@example.com  yes  any       optional  -        -    -\n\
         1001                              no   any       optional  -        -    -\n"
    );

    let dup = env
        .pbx(&["extension", "add", "1000", "--password", "x"])
        .fails();
    assert!(
        dup.stderr.contains("extension 1000 already exists"),
        "{}",
        dup.stderr
    );
    let bad = env
        .pbx(&["extension", "add", "1x", "--password", "", "--pin", "12"])
        .fails();
    assert_eq!(bad.stderr.lines().count(), 3, "{}", bad.stderr);

    env.pbx(&["extension", "remove", "1001"]).ok();
    let gone = env.pbx(&["extension", "remove", "1001"]).fails();
    assert!(
        gone.stderr.contains("unknown extension 1001"),
        "{}",
        gone.stderr
    );
    let list = env.pbx(&["extension", "list"]).ok().stdout;
    assert_eq!(list.lines().count(), 2);
}

/// The row of `pbx extension list` for `number`, split into its cells (single spaces inside
/// a cell are not used by these tests).
fn extension_row(env: &Env, number: &str) -> Vec<String> {
    let list = env.pbx(&["extension", "list"]).ok().stdout;
    list.lines()
        .find(|l| l.starts_with(number))
        .unwrap_or_else(|| panic!("no {number} in {list}"))
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn extension_set_changes_each_field_in_place() {
    let env = Env::new("set");
    let dialplan = "[defaults]\ncontext = \"staff\"\n\
                    [context.staff]\n[[context.staff.rule]]\nextension = true\n\
                    steps = [{ dial = \"${number}\" }]\n\
                    [context.lobby]\nmembers = [\"1990-1999\"]\nmay_call = [\"1000\"]\n\
                    include = [\"staff\"]\n";
    env.write("conf/dialplan.toml", dialplan);
    std::fs::write(
        &env.config,
        "[sip]\ndomain = \"pbx.test\"\n[dialplan]\nfile = \"dialplan.toml\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    env.pbx(&[
        "extension",
        "add",
        "1000",
        "--password",
        "old-pass",
        "--name",
        "Al",
    ])
    .ok();
    assert_eq!(
        extension_row(&env, "1000"),
        ["1000", "Al", "no", "any", "optional", "-", "-", "-"]
    );

    let out = env
        .pbx(&["extension", "set", "1000", "--name", "Alice"])
        .ok();
    assert!(
        out.stdout.contains("extension 1000 changed"),
        "{}",
        out.stdout
    );
    env.pbx(&["extension", "set", "1000", "--email", "alice@example.com"])
        .ok();
    env.pbx(&["extension", "set", "1000", "--pin", "4321"]).ok();
    env.pbx(&["extension", "set", "1000", "--media-encryption", "required"])
        .ok();
    env.pbx(&["extension", "set", "1000", "--context", "lobby"])
        .ok();
    assert_eq!(
        extension_row(&env, "1000"),
        [
            "1000",
            "Alice",
            "alice@example.com",
            "yes",
            "any",
            "required",
            "lobby",
            "-",
            "-"
        ]
    );
    // The context is what a call from 1000 runs with (lobby may only call 1000).
    let trace = env
        .pbx(&["dialplan", "trace", "--from", "1000", "--to", "1001"])
        .ok()
        .stdout;
    assert!(trace.contains("lobby"), "{trace}");
    // "" clears a name, an e-mail and the context; the rest stays.
    env.pbx(&[
        "extension",
        "set",
        "1000",
        "--name",
        "",
        "--email",
        "",
        "--context",
        "",
    ])
    .ok();
    assert_eq!(
        extension_row(&env, "1000"),
        ["1000", "yes", "any", "required", "-", "-", "-"]
    );

    // A password change: the new one authenticates (the HA1 the server checks), the old
    // one does not, and the PIN is kept.
    env.pbx(&["extension", "set", "1000", "--password", "new-pass"])
        .ok();
    let url = format!("sqlite://{}/conf/data/pbx.db", env.dir.display());
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        use pbx_store::CredentialStore;
        let store = pbx_store::Store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let creds = store
            .credentials("1000")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("1000 is gone"));
        for (algorithm, ha1) in [
            (pbx_sip::auth::Algorithm::Md5, &creds.ha1_md5),
            (pbx_sip::auth::Algorithm::Sha256, &creds.ha1_sha256),
        ] {
            let new = pbx_sip::auth::ha1_hex(algorithm, "1000", "pbx.test", "new-pass");
            let old = pbx_sip::auth::ha1_hex(algorithm, "1000", "pbx.test", "old-pass");
            assert_eq!(ha1, &new);
            assert_ne!(ha1, &old);
        }
        assert!(
            store
                .verify_pin("1000", "4321")
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        );
        store.close().await;
    });
}

#[test]
fn extension_set_refuses_bad_input_with_exit_1() {
    let env = Env::new("set-bad");
    env.pbx(&["extension", "add", "1000", "--password", "pw"])
        .ok();
    let unknown = env
        .pbx(&["extension", "set", "1999", "--name", "Nobody"])
        .fails();
    assert!(
        unknown.stderr.contains("unknown extension 1999"),
        "{}",
        unknown.stderr
    );
    let policy = env
        .pbx(&[
            "extension",
            "set",
            "1000",
            "--media-encryption",
            "sometimes",
        ])
        .fails();
    assert!(
        policy
            .stderr
            .contains("bad media encryption `sometimes`: expected required, optional or off"),
        "{}",
        policy.stderr
    );
    let pin = env
        .pbx(&["extension", "set", "1000", "--pin", "12"])
        .fails();
    assert!(pin.stderr.contains("bad PIN"), "{}", pin.stderr);
    let empty = env
        .pbx(&["extension", "set", "1000", "--password", ""])
        .fails();
    assert!(
        empty.stderr.contains("the password is empty"),
        "{}",
        empty.stderr
    );
    let nothing = env.pbx(&["extension", "set", "1000"]).fails();
    assert!(
        nothing.stderr.contains("nothing to change"),
        "{}",
        nothing.stderr
    );
    // No dialplan configured: a context would never apply.
    let context = env
        .pbx(&["extension", "set", "1000", "--context", "staff"])
        .fails();
    assert!(
        context.stderr.contains("the config names no dialplan"),
        "{}",
        context.stderr
    );
    // Nothing changed by the refused commands.
    assert_eq!(
        extension_row(&env, "1000"),
        ["1000", "no", "any", "optional", "-", "-", "-"]
    );
}

#[test]
fn extension_set_refuses_a_context_the_dialplan_lacks() {
    let env = Env::new("set-ctx");
    env.write(
        "conf/dialplan.toml",
        "[defaults]\ncontext = \"staff\"\n[context.staff]\n[[context.staff.rule]]\n\
         extension = true\nsteps = [{ dial = \"${number}\" }]\n",
    );
    std::fs::write(
        &env.config,
        "[sip]\ndomain = \"pbx.test\"\n[dialplan]\nfile = \"dialplan.toml\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    env.pbx(&["extension", "add", "1000", "--password", "pw"])
        .ok();
    let run = env
        .pbx(&["extension", "set", "1000", "--context", "sales"])
        .fails();
    assert!(
        run.stderr.contains("--context sales: no such context") && run.stderr.contains("staff"),
        "{}",
        run.stderr
    );
}

#[test]
fn help_describes_only_what_is_built() {
    let env = Env::new("help");
    let mut texts = vec![env.pbx(&["--help"]).ok().stdout];
    for sub in [
        "serve",
        "check",
        "extension",
        "registration",
        "cdr",
        "admin",
        "ban",
        "dialplan",
    ] {
        texts.push(env.pbx(&[sub, "--help"]).ok().stdout);
    }
    for sub in ["add", "set", "import", "list", "remove"] {
        texts.push(env.pbx(&["extension", sub, "--help"]).ok().stdout);
    }
    let set = env.pbx(&["extension", "set", "--help"]).ok().stdout;
    for flag in [
        "--password",
        "--name",
        "--email",
        "--pin",
        "--media-encryption",
        "--context",
    ] {
        assert!(set.contains(flag), "{flag} missing:\n{set}");
    }
    for text in &texts {
        let lower = text.to_lowercase();
        for line in lower.lines() {
            // Nothing is named as waiting for another part any more.
            assert!(!line.contains("not built yet"), "{line}\nin:\n{text}");
        }
    }
    // Trunks are built: the contract's flags are there.
    let add = env.pbx(&["trunk", "add", "--help"]).ok().stdout;
    for flag in [
        "--host",
        "--transport",
        "--username",
        "--password",
        "--register",
        "--allow",
        "--context",
    ] {
        assert!(add.contains(flag), "{flag} missing:\n{add}");
    }
    let trunk = env.pbx(&["trunk", "--help"]).ok().stdout;
    for sub in ["add", "list", "remove"] {
        assert!(trunk.contains(sub), "{sub} missing:\n{trunk}");
    }
}

#[test]
fn import_reports_bad_rows_and_imports_nothing() {
    let env = Env::new("import");
    env.pbx(&["extension", "add", "1005", "--password", "pw"])
        .ok();
    let csv = env.write(
        "bad.csv",
        "number,password,name,email,pin\n\
         1000,pw0,Alice,alice@example.com,1234\n\
         1001,pw1,Bob,not-an-email,\n\
         1002,,Carol,,\n\
         1000,pw3,Dup,,\n\
         1005,pw4,Exists,,\n",
    );
    let csv_arg = csv.display().to_string();
    let run = env.pbx(&["extension", "import", &csv_arg]).fails();
    let expected = [
        format!("{csv_arg}:3: bad e-mail address `not-an-email`"),
        format!("{csv_arg}:4: the password is empty"),
        format!("{csv_arg}:5: extension 1000 is already on line 2"),
        format!("{csv_arg}:6: extension 1005 already exists"),
    ];
    for line in &expected {
        assert!(
            run.stderr.contains(line.as_str()),
            "missing `{line}` in:\n{}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("nothing imported"), "{}", run.stderr);
    let list = env.pbx(&["extension", "list"]).ok().stdout;
    assert_eq!(list.lines().count(), 2, "{list}");

    let good = env.write(
        "good.csv",
        "number,password,name,email,pin\n1000,pw0,Alice,alice@example.com,1234\n1001,\"p,w\",Bob,,\n",
    );
    let out = env
        .pbx(&["extension", "import", &good.display().to_string()])
        .ok()
        .stdout;
    assert!(out.contains("imported 2 extensions"), "{out}");
    assert_eq!(
        env.pbx(&["extension", "list"]).ok().stdout.lines().count(),
        4
    );

    let missing = env
        .pbx(&["extension", "import", "/nonexistent.csv"])
        .fails();
    assert!(
        missing.stderr.contains("cannot read /nonexistent.csv"),
        "{}",
        missing.stderr
    );
}

#[test]
fn admin_create_and_token() {
    let env = Env::new("admin");
    env.pbx(&["admin", "create", "root", "--password", "pw"])
        .ok();
    env.pbx(&["admin", "create", "root", "--password", "pw"])
        .fails();
    let token = env.pbx(&["admin", "token", "root"]).ok().stdout;
    let token = token.trim();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let unknown = env.pbx(&["admin", "token", "nobody"]).fails();
    assert!(
        unknown.stderr.contains("admin nobody not found"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn ban_and_registration_and_cdr_listings() {
    let env = Env::new("lists");
    // Seed the database through the library, as the running server would.
    let url = format!("sqlite://{}/conf/data/pbx.db", env.dir.display());
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        use pbx_store::{BanStore, LocationStore};
        let store = pbx_store::Store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let now = pbx_store::now_unix();
        let ip = |s: &str| s.parse().unwrap_or_else(|_| panic!("{s}"));
        let r = store
            .add_ban(ip("127.0.0.2"), "5 failed authentications", now + 3600)
            .await;
        r.unwrap_or_else(|e| panic!("{e}"));
        let uri = |s: &str| pbx_sip::uri::Uri::parse(s).unwrap_or_else(|_| panic!("{s}"));
        let binding = pbx_store::Binding {
            aor: "1000".into(),
            binding: pbx_sip::registrar::Binding {
                contact: uri("sip:1000@127.0.0.3:5070"),
                expires_at: now + 600,
                call_id: "c".into(),
                cseq: 1,
                q: None,
                instance: None,
                reg_id: None,
            },
            transport: pbx::config::Transport::Tcp,
            source: "127.0.0.3:40000".parse().unwrap_or_else(|_| panic!()),
            local: "127.0.0.1:5060".parse().unwrap_or_else(|_| panic!()),
            conn: None,
            user_agent: "baresip v3".into(),
            reachable: Some(true),
        };
        store
            .upsert_binding(&binding)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // An expired binding is not shown.
        let mut old = binding.clone();
        old.binding.contact = uri("sip:old@x");
        old.binding.expires_at = now - 1;
        store
            .upsert_binding(&old)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store.close().await;
    });

    let regs = env.pbx(&["registration", "list"]).ok().stdout;
    let lines: Vec<&str> = regs.lines().collect();
    assert_eq!(lines.len(), 2, "{regs}");
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("EXTENSION  CONTACT")),
        "{regs}"
    );
    let row = lines.get(1).copied().unwrap_or_default();
    for part in [
        "1000",
        "sip:1000@127.0.0.3:5070",
        "tcp",
        "127.0.0.3:40000",
        "baresip v3",
    ] {
        assert!(row.contains(part), "{row}");
    }
    assert!(row.contains("in 59") || row.contains("in 600s"), "{row}");

    let bans = env.pbx(&["ban", "list"]).ok().stdout;
    assert!(bans.starts_with("ADDRESS    REASON"), "{bans}");
    assert!(
        bans.contains("127.0.0.2  5 failed authentications  in "),
        "{bans}"
    );
    env.pbx(&["ban", "remove", "127.0.0.2"]).ok();
    let again = env.pbx(&["ban", "remove", "127.0.0.2"]).fails();
    assert!(
        again.stderr.contains("127.0.0.2 is not banned"),
        "{}",
        again.stderr
    );
    assert_eq!(env.pbx(&["ban", "list"]).ok().stdout.lines().count(), 1);
    // A malformed address is bad input: exit 1 too.
    env.pbx(&["ban", "remove", "not-an-ip"]).fails();

    let cdrs = env.pbx(&["cdr", "list", "--limit", "5"]).ok().stdout;
    assert!(
        cdrs.starts_with("ID  START  CALLER  CALLED  DISPOSITION"),
        "{cdrs}"
    );
}

#[test]
fn config_is_accepted_anywhere_and_defaults_to_config_pbx_toml() {
    let env = Env::new("global");
    let config = env.config.display().to_string();
    let run = |args: &[&str], cwd: &Path| {
        Run::of(
            Command::new(env!("CARGO_BIN_EXE_pbx"))
                .args(args)
                .current_dir(cwd)
                .output(),
        )
    };
    run(&["--config", &config, "extension", "list"], &env.dir).ok();
    run(&["extension", "--config", &config, "list"], &env.dir).ok();
    // Without --config: config/pbx.toml under the working directory.
    std::fs::create_dir_all(env.dir.join("config")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&env.config, env.dir.join("config/pbx.toml")).unwrap_or_else(|e| panic!("{e}"));
    run(&["check"], &env.dir).ok();
    let missing = run(&["check"], Path::new("/")).fails();
    assert!(
        missing
            .stderr
            .contains("config/pbx.toml:1:1: cannot read config file"),
        "{}",
        missing.stderr
    );
}

#[test]
fn trunk_add_warns_of_a_missing_context_and_the_list_shows_tls_and_dtmf() {
    let env = Env::new("trunk-list");
    env.write(
        "conf/dialplan.toml",
        "[defaults]\ncontext = \"staff\"\n[context.staff]\n[[context.staff.rule]]\n\
         extension = true\nsteps = [{ dial = \"${number}\" }]\n",
    );
    std::fs::write(
        &env.config,
        "[sip]\ndomain = \"pbx.test\"\n[dialplan]\nfile = \"dialplan.toml\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The plan has no from-legacy: its calls are refused as any caller's without a context.
    let run = env
        .pbx(&[
            "trunk",
            "add",
            "legacy",
            "--host",
            "192.0.2.5",
            "--context",
            "from-legacy",
            "--dtmf",
            "info",
        ])
        .ok();
    assert!(
        run.stderr.contains("context `from-legacy` is not in")
            && run.stderr.contains("get 403 until it is"),
        "{}",
        run.stderr
    );
    env.pbx(&[
        "trunk",
        "add",
        "lab",
        "--host",
        "192.0.2.6",
        "--transport",
        "tls",
        "--tls-no-verify",
        "--context",
        "staff",
    ])
    .ok();
    let ca = env.write("carrier-ca.pem", "not read by add\n");
    let ca = ca.to_string_lossy().into_owned();
    env.pbx(&[
        "trunk",
        "add",
        "carrier",
        "--host",
        "192.0.2.7",
        "--transport",
        "tls",
        "--tls-ca-file",
        &ca,
        "--context",
        "staff",
        "--dtmf",
        "auto",
    ])
    .ok();
    let list = env.pbx(&["trunk", "list"]).ok().stdout;
    let header = list.lines().next().unwrap_or_default();
    assert!(
        header.contains("TRANSPORT") && header.contains("DTMF"),
        "{list}"
    );
    let row = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {list}"))
            .to_string()
    };
    let legacy = row("legacy");
    assert!(
        legacy.contains(" udp ") && legacy.contains(" info "),
        "{list}"
    );
    let lab = row("lab");
    assert!(
        lab.contains("tls (not verified)") && lab.contains(" rfc4733 "),
        "{list}"
    );
    let carrier = row("carrier");
    assert!(
        carrier.contains(&format!("tls (CA {ca})")) && carrier.contains(" auto "),
        "{list}"
    );
}

#[test]
fn a_did_names_one_extension() {
    let env = Env::new("did-unique");
    env.pbx(&[
        "extension",
        "add",
        "1000",
        "--password",
        "pw",
        "--did",
        "+4930123",
    ])
    .ok();
    env.pbx(&["extension", "add", "1001", "--password", "pw"])
        .ok();
    let run = env
        .pbx(&[
            "extension",
            "add",
            "1002",
            "--password",
            "pw",
            "--did",
            "+4930123",
        ])
        .fails();
    assert!(
        run.stderr
            .contains("DID +4930123 is already extension 1000's"),
        "{}",
        run.stderr
    );
    let run = env
        .pbx(&["extension", "set", "1001", "--did", "+4930123"])
        .fails();
    assert!(
        run.stderr
            .contains("DID +4930123 is already extension 1000's"),
        "{}",
        run.stderr
    );
    // Nothing changed: 1002 was not created, 1001 has no DID.
    let list = env.pbx(&["extension", "list"]).ok().stdout;
    assert_eq!(list.lines().count(), 3, "{list}");
    assert_eq!(
        extension_row(&env, "1001").last().map(String::as_str),
        Some("-")
    );
    // Its own DID again is no conflict.
    env.pbx(&["extension", "set", "1000", "--did", "+4930123"])
        .ok();

    // The CSV: each row that repeats a DID, of the database or of an earlier row, at its line.
    let csv = env.write(
        "dids.csv",
        "number,password,did\n\
         2000,pw,+15550001\n\
         2001,pw,+15550001\n\
         2002,pw,+4930123\n\
         2003,pw,\n\
         2004,pw,\n",
    );
    let csv_arg = csv.display().to_string();
    let run = env.pbx(&["extension", "import", &csv_arg]).fails();
    for line in [
        format!("{csv_arg}:3: DID +15550001 is already extension 2000's on line 2"),
        format!("{csv_arg}:4: DID +4930123 is already extension 1000's"),
    ] {
        assert!(
            run.stderr.contains(&line),
            "missing `{line}` in:\n{}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("nothing imported"), "{}", run.stderr);
    let list = env.pbx(&["extension", "list"]).ok().stdout;
    assert_eq!(list.lines().count(), 3, "{list}");
}
