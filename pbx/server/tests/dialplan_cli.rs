//! `pbx check` with a dialplan and `pbx dialplan trace`, run as the binary against a temporary
//! config, dialplan and SQLite database.

use std::path::PathBuf;
use std::process::{Command, Output};

struct Env {
    dir: PathBuf,
    config: PathBuf,
    dialplan: PathBuf,
}

impl Env {
    /// A config naming `dialplan.toml`, which holds `dialplan`.
    fn new(name: &str, dialplan: &str) -> Env {
        let dir =
            std::env::temp_dir().join(format!("pbx-dialplan-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf")).unwrap_or_else(|e| panic!("{e}"));
        let config = dir.join("conf/pbx.toml");
        let dialplan_path = dir.join("conf/dialplan.toml");
        std::fs::write(
            &config,
            "[sip]\ndomain = \"pbx.test\"\n[dialplan]\nfile = \"dialplan.toml\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&dialplan_path, dialplan).unwrap_or_else(|e| panic!("{e}"));
        Env {
            dir,
            config,
            dialplan: dialplan_path,
        }
    }

    fn pbx(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_pbx"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .output();
        Run::of(output)
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

    fn exits(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}

fn demo() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/dialplan.toml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_shipped_demo_config_checks() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/pbx.toml");
    let run = Run::of(
        Command::new(env!("CARGO_BIN_EXE_pbx"))
            .args(["check", "--config", config])
            .output(),
    )
    .exits(0);
    assert!(run.stdout.ends_with(": ok\n"), "{}", run.stdout);
}

#[test]
fn check_reports_every_dialplan_problem_with_its_position() {
    let env = Env::new(
        "check",
        "[defaults]\ncontext = \"a\"\n[context.a]\ninclude = [\"b\"]\n[context.b]\ninclude = [\"a\"]\n\
         [[context.b.rule]]\npattern = \"_X.\"\nsteps = [{ goto = \"nowhere\" }]\n\
         [[context.b.rule]]\npattern = \"100\"\nsteps = [{ if_time = { time_zone = \"Moon/Base\", times = \"08:00-09:00\", then = [\"echo\"] } }]\n",
    );
    let run = env.pbx(&["check"]).exits(1);
    let path = env.dialplan.display().to_string();
    let lines: Vec<&str> = run.stderr.lines().collect();
    let want = [
        "6:12: include cycle: a -> b -> a",
        "9:19: goto: no rule with label `nowhere` in context `b`",
        "11:11: rule is never reached",
        "12:36: unknown time zone `Moon/Base`",
    ];
    assert_eq!(lines.len(), want.len(), "{}", run.stderr);
    for (line, w) in lines.iter().zip(want) {
        assert!(
            line.starts_with(&format!("{path}:{w}")),
            "{line} does not start with {w}"
        );
    }
    assert!(run.stdout.is_empty());
}

#[test]
fn trace_uses_the_database_for_extensions() {
    let env = Env::new("trace", &demo());
    env.pbx(&[
        "extension",
        "add",
        "1000",
        "--password",
        "pw-1000",
        "--name",
        "Reception",
    ])
    .exits(0);
    env.pbx(&[
        "extension",
        "add",
        "1001",
        "--password",
        "pw-1001",
        "--name",
        "Alice",
    ])
    .exits(0);
    let run = env
        .pbx(&[
            "dialplan",
            "trace",
            "--from",
            "1001",
            "--to",
            "1000",
            "--at",
            "2026-03-30T08:30:00+02:00",
            "--dial",
            "busy",
        ])
        .exits(0);
    assert_eq!(
        run.stdout,
        "call from 1001 (Alice) to 1000 at 2026-03-30T06:30:00Z\n\
         caller 1001 is in context staff\n\
         context staff: rule at line 37 (extension = true) matches 1000\n  \
         dial extension 1000 for 20s as \"Alice\" -> assume busy\n  \
         voicemail mailbox=1000 greeting=busy\n\
         end\n"
    );
    // 1002 is not in the database: no rule matches it.
    let run = env
        .pbx(&["dialplan", "trace", "--from", "1001", "--to", "1002"])
        .exits(0);
    assert!(
        run.stdout
            .ends_with("no route 404 no rule in context staff matches 1002\n"),
        "{}",
        run.stdout
    );
    // The IVR with digits.
    let run = env
        .pbx(&[
            "dialplan", "trace", "--from", "1001", "--to", "700", "--digits", "2",
        ])
        .exits(0);
    assert!(
        run.stdout.contains("  playback demo-goodbye\nhangup 480"),
        "{}",
        run.stdout
    );
    // A lobby phone may not call Alice.
    let run = env
        .pbx(&["dialplan", "trace", "--from", "1990", "--to", "1001"])
        .exits(0);
    assert!(
        run.stdout
            .ends_with("refused 403 context lobby may not call 1001\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn trace_rejects_bad_arguments_and_bad_plans() {
    let env = Env::new("bad", &demo());
    let run = env
        .pbx(&[
            "dialplan",
            "trace",
            "--from",
            "1",
            "--to",
            "2",
            "--at",
            "yesterday",
        ])
        .exits(1);
    assert!(
        run.stderr.contains("is not an RFC 3339 time"),
        "{}",
        run.stderr
    );
    let run = env
        .pbx(&[
            "dialplan", "trace", "--from", "1", "--to", "2", "--dial", "maybe",
        ])
        .exits(1);
    assert!(
        run.stderr.contains("expected busy, no-answer"),
        "{}",
        run.stderr
    );
    std::fs::write(&env.dialplan, "[context.a]\nrule = 3\n").unwrap_or_else(|e| panic!("{e}"));
    let run = env
        .pbx(&["dialplan", "trace", "--from", "1", "--to", "2"])
        .exits(1);
    assert!(
        run.stderr
            .contains("dialplan.toml:2:8: `rule`: expected an array"),
        "{}",
        run.stderr
    );
}
