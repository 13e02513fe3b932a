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
        "NUMBER  NAME   EMAIL              PIN  NETWORKS\n\
         1000    Alice  alice@example.com  yes  any\n\
         1001                              no   any\n"
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
        cdrs.starts_with("START  CALLER  CALLED  DISPOSITION"),
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
