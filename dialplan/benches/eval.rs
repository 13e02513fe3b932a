//! Evaluation and parse figures: `cargo bench -p pbx-dialplan --bench eval`.
//! Targets (issue 4): a 1,000-rule plan resolves a number in under 10 µs; parse and validate
//! (a reload) in under 50 ms.

// A benchmark reads the clock: that is its job (the crate's rule is for the sans-IO code).
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pbx_dialplan::{Action, CallContext, Plan};

/// 1,000 rules: 900 exact numbers, then 100 Asterisk patterns, each dialing and falling back
/// to voicemail, with an `if_time` every tenth rule.
fn big_plan() -> String {
    let mut text = String::from(
        "[defaults]\ncontext = \"big\"\ntime_zone = \"Europe/Berlin\"\n[context.big]\n",
    );
    for i in 0..900 {
        let n = 20_000 + i;
        let steps = if i % 10 == 0 {
            format!(
                "{{ if_time = {{ weekdays = [\"mon-fri\"], times = [\"08:00-18:00\"], then = [{{ dial = \"{n}\" }}], else = [{{ voicemail = \"{n}\" }}] }} }}"
            )
        } else {
            format!(
                "{{ dial = {{ targets = [\"{n}\"], timeout = \"20s\", on_busy = [{{ voicemail = \"{n}\" }}] }} }}"
            )
        };
        text.push_str(&format!(
            "[[context.big.rule]]\npattern = \"{n}\"\nsteps = [{steps}]\n"
        ));
    }
    for i in 0..100 {
        text.push_str(&format!(
            "[[context.big.rule]]\npattern = \"_3{i:02}XX\"\nsteps = [{{ dial = \"${{number}}\" }}, {{ voicemail = \"${{number:1}}\" }}]\n"
        ));
    }
    text
}

fn time(label: &str, iterations: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per = start.elapsed() / iterations;
    println!("{label:<55} {per:>10.2?} per iteration");
    per
}

fn main() {
    let text = big_plan();
    let parse = time("parse + validate a 1,000-rule plan", 20, || {
        black_box(Plan::parse("big.toml", black_box(&text)).is_ok());
    });
    let plan = match Plan::parse("big.toml", &text) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("the benchmark plan must validate:\n{e}"),
    };
    let directory = |n: &str| n.starts_with('2');
    let call = |dialed: &str| CallContext {
        caller: "20001".into(),
        caller_name: "Bench".into(),
        caller_context: None,
        dialed: dialed.into(),
        now: "2026-03-30T08:00:00Z".parse().unwrap_or_default(),
    };
    let mut worst = Duration::ZERO;
    for (label, number) in [
        ("route the first rule (20000) to its first action", "20000"),
        ("route the last exact rule (20899)", "20899"),
        ("route the last pattern rule (39912)", "39912"),
        ("route a number no rule matches (404)", "55555"),
    ] {
        let c = call(number);
        let per = time(label, 20_000, || {
            let mut x = plan.route(black_box(&c));
            let action = x.next(&directory, None);
            black_box(matches!(
                action,
                Action::Dial { .. } | Action::NoRoute { .. }
            ));
        });
        worst = worst.max(per);
    }
    // The slow case: 1,000 `_` patterns, every one tried before the last matches.
    let mut patterns = String::from("[defaults]\ncontext = \"p\"\n[context.p]\n");
    for i in 0..1000 {
        patterns.push_str(&format!(
            "[[context.p.rule]]\npattern = \"_4{i:03}X\"\nsteps = [{{ dial = \"${{number}}\" }}]\n"
        ));
    }
    let patterns = match Plan::parse("patterns.toml", &patterns) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("the pattern plan must validate:\n{e}"),
    };
    let c = call("49995");
    let per = time(
        "route through 1,000 `_` patterns to the last",
        20_000,
        || {
            let mut x = patterns.route(black_box(&c));
            black_box(matches!(x.next(&directory, None), Action::Dial { .. }));
        },
    );
    worst = worst.max(per);
    println!(
        "targets: resolve < 10µs (worst {worst:.2?}: {}), parse+validate < 50ms ({parse:.2?}: {})",
        if worst < Duration::from_micros(10) {
            "met"
        } else {
            "MISSED"
        },
        if parse < Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        },
    );
}
