//! Every kind of problem is reported, all at once, at its `line:col`.

mod common;

use common::problems;

#[test]
fn all_problems_at_once_with_positions() {
    let text = r#"[defaults]
context = "staff"
time_zone = "Mars/Olympus"
colour = "blue"

[context.staff]
include = ["nowhere"]

[[context.staff.rule]]
pattern = "_9.1"
steps = ["answer"]

[[context.staff.rule]]
pattern = "_X."
steps = [{ dail = { targets = ["1"] } }]

[[context.staff.rule]]
pattern = "_NXX"
steps = ["answer", { goto = { context = "ghost" } }, { goto = "missing" }]

[[context.staff.rule]]
regex = "9(\\d+"
steps = ["answer"]

[[context.staff.rule]]
pattern = "123"
sound = "x"
steps = [{ menu = { prompt = "p", options = { "1" = [], "x" = ["echo"], "12" = ["echo"] } } }]
"#;
    let got = problems(text);
    let want = [
        "3:13: unknown time zone `Mars/Olympus`",
        "4:1: unknown field `colour` in [defaults]",
        "7:12: no context named `nowhere`",
        "10:11: `_9.1`: `.` and `!` may only end a pattern",
        "15:10: unknown step `dail`",
        "18:11: rule is never reached: every number it matches is taken first by the rule at line 14 (pattern `_X.`)",
        "19:41: goto: no context named `ghost`",
        "19:54: unreachable step: the `goto` before it never continues",
        "19:63: goto: no rule with label `missing` in context `staff`",
        "22:9: bad regex",
        "26:11: rule is never reached",
        "27:1: unknown field `sound` in a rule",
        "28:47: menu digit `1` goes nowhere",
        "28:57: menu option `x`: a choice is keypad digits",
        "28:73: menu option `12` is longer than `digits` = 1",
    ];
    for w in want {
        assert!(
            got.iter().any(|g| g.starts_with(w)),
            "missing {w:?} in:\n{}",
            got.join("\n")
        );
    }
    assert_eq!(got.len(), want.len(), "{}", got.join("\n"));
}

#[test]
fn include_cycles_are_reported_where_they_close() {
    let text = r#"[defaults]
context = "a"
[context.a]
include = ["b"]
[context.b]
include = ["c"]
[context.c]
include = ["a"]
"#;
    assert_eq!(problems(text), ["8:12: include cycle: a -> b -> c -> a"]);
    let self_include = "[defaults]\ncontext = \"a\"\n[context.a]\ninclude = [\"a\"]\n";
    assert_eq!(problems(self_include), ["4:12: include cycle: a -> a"]);
}

#[test]
fn unreachable_context_and_reserved_names() {
    let text = r#"[defaults]
context = "a"
[context.a]
[context.island]
[context.any]
members = ["2000"]
"#;
    assert_eq!(
        problems(text),
        [
            "4:10: context `island` is unreachable: it has no `members` or `may_call`, is not [defaults] context, no trunk or extension has it as its context, and no `include` or `goto` leads to it",
            "5:10: context name `any` is reserved (it means something in `may_call`)",
        ]
    );
}

#[test]
fn syntax_errors_stop_before_checking() {
    let got = problems("[context.a\nrule = 1\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("1:") && got[0].contains("TOML syntax error"),
        "{got:?}"
    );
}

/// Each step's own problems, at the value that is wrong.
#[test]
fn step_problems() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{ dial = { timeout = "20s" } }"#,
            "`dial` needs `targets`",
        ),
        (
            r#"{ dial = { targets = ["@sales"] } }"#,
            "no group named `sales`",
        ),
        (
            r#"{ dial = { targets = "1", timeout = "soon" } }"#,
            "`timeout` of `dial`: `soon` is not a duration",
        ),
        (
            r#"{ dial = { targets = "1", strategy = "random" } }"#,
            "`random` is not \"all\" or \"in_order\"",
        ),
        (
            r#"{ dial = { targets = "1", on_busy = [] } }"#,
            "`on_busy` of `dial` is empty",
        ),
        (
            r#"{ voicemail = { greeting = "busy" } }"#,
            "`voicemail` needs `mailbox`",
        ),
        (
            r#"{ voicemail = { mailbox = "1", greeting = "loud" } }"#,
            "`loud` is not \"auto\"",
        ),
        (r#"{ playback = {} }"#, "`playback` needs `prompt`"),
        (
            r#"{ menu = { options = { "1" = ["echo"] } } }"#,
            "`menu` needs `prompt`",
        ),
        (r#"{ menu = { prompt = "p" } }"#, "`menu` needs `options`"),
        (
            r#"{ menu = { prompt = "p", digits = 0, options = { "1" = ["echo"] } } }"#,
            "`digits` of `menu`: must be between 1 and 20",
        ),
        (
            r#"{ hangup = 200 }"#,
            "`status` of `hangup`: must be between 400 and 699",
        ),
        (
            r#"{ hangup = { status = 486, why = "x" } }"#,
            "unknown field `why` in `hangup`",
        ),
        (
            r#"{ set = { digits = "1" } }"#,
            "`digits` is set by the PBX",
        ),
        (
            r#"{ set = { v = "${nope}" } }"#,
            "unknown variable `${nope}`",
        ),
        (r#"{ playback = "${2}" }"#, "`${2}` needs a `regex` rule"),
        (
            r#"{ if_time = { then = ["echo"] } }"#,
            "`if_time` needs at least one of",
        ),
        (
            r#"{ if_time = { times = ["08:00-18:00"] } }"#,
            "`if_time` needs `then`",
        ),
        (
            r#"{ if_time = { weekdays = ["mon-fry"], then = ["echo"] } }"#,
            "`fry` is not a weekday",
        ),
        (
            r#"{ if_time = { times = "8-18", then = ["echo"] } }"#,
            "expected HH:MM-HH:MM",
        ),
        (
            r#"{ if_time = { dates = ["2026-02-30"], then = ["echo"] } }"#,
            "is not a date",
        ),
        (
            r#"{ if_time = { time_zone = "Europe/Berlinn", times = "08:00-09:00", then = ["echo"] } }"#,
            "unknown time zone `Europe/Berlinn`",
        ),
        (
            r#"{ if_time = { except_holidays = ["xmas"], then = ["echo"] } }"#,
            "no holiday list named `xmas`",
        ),
        (
            r#"{ http_lookup = { url = "ftp://x" } }"#,
            "must start with http:// or https://",
        ),
        (
            r#"{ http_lookup = { url = "http://x", body = "b" } }"#,
            "`body` of `http_lookup` needs method = \"POST\"",
        ),
        (
            r#"{ http_lookup = { url = "http://x", method = "PUT" } }"#,
            "`PUT` is not \"GET\" or \"POST\"",
        ),
        (r#"{ read = { prompt = "p" } }"#, "`read` needs `var`"),
        (
            r#"{ read = { var = "digits", prompt = "p" } }"#,
            "`digits` is set by the PBX",
        ),
        (
            r#"{ say = { number = "1", digits = "2" } }"#,
            "`say` takes one of digits, number, date or time",
        ),
        (
            r#"{ db_lookup = { database = "crm", query = "SELECT 1 WHERE x = '${caller}'", set = { a = "a" } } }"#,
            "cannot hold ${...}",
        ),
        (
            r#"{ db_lookup = { query = "SELECT 1", set = { a = "a" } } }"#,
            "`db_lookup` needs `database`",
        ),
        (
            r#"{ db_lookup = { database = "crm", query = "SELECT 1" } }"#,
            "`db_lookup` needs `set`",
        ),
        (
            r#"{ goto = { context = "a", label = "nope" } }"#,
            "no rule with label `nope` in context `a`",
        ),
        (
            r#"{ answer = { now = true } }"#,
            "`answer` takes no settings",
        ),
        (r#""dial""#, "step `dial` needs settings"),
        (r#""dance""#, "unknown step `dance`"),
        (
            r#"{ dial = { targets = "1" }, echo = true }"#,
            "a step is a table with one key",
        ),
        (r#"42"#, "a step is a name"),
    ];
    for (step, want) in cases {
        let text = format!(
            "[defaults]\ncontext = \"a\"\n[context.a]\n[[context.a.rule]]\npattern = \"1\"\nsteps = [{step}]\n"
        );
        let got = problems(&text);
        assert!(
            got.iter().any(|g| g.starts_with("6:") && g.contains(want)),
            "{step}: expected {want:?} on line 6, got {got:?}"
        );
    }
}

#[test]
fn rule_problems() {
    let cases: &[(&str, &str)] = &[
        (
            "steps = [\"echo\"]",
            "a rule needs one of `pattern`, `regex` or `extension = true`",
        ),
        (
            "pattern = \"1\"\nregex = \"1\"\nsteps = [\"echo\"]",
            "not several",
        ),
        ("pattern = \"1\"", "a rule needs `steps`"),
        ("pattern = \"1\"\nsteps = []", "the rule's `steps` is empty"),
        ("extension = false\nsteps = [\"echo\"]", "matches nothing"),
        ("pattern = \"1 2\"\nsteps = [\"echo\"]", "cannot be dialed"),
        (
            "pattern = \"1\"\nlabel = \"a b\"\nsteps = [\"echo\"]",
            "label `a b`",
        ),
    ];
    for (rule, want) in cases {
        let text =
            format!("[defaults]\ncontext = \"a\"\n[context.a]\n[[context.a.rule]]\n{rule}\n");
        let got = problems(&text);
        assert!(
            got.iter().any(|g| g.contains(want)),
            "{rule}: expected {want:?}, got {got:?}"
        );
    }
}

#[test]
fn context_problems() {
    let cases: &[(&str, &str)] = &[
        ("members = [\"1000-99\"]", "a range is FIRST-LAST"),
        ("may_call = [\"ghost\"]", "no context named `ghost`"),
        ("may_call = [\"_9.1\"]", "may only end"),
        (
            "order = \"random\"",
            "`random` is not \"file\" or \"specificity\"",
        ),
        ("rules = []", "unknown field `rules` in [context.a]"),
    ];
    for (line, want) in cases {
        let text = format!("[defaults]\ncontext = \"a\"\n[context.a]\n{line}\n");
        let got = problems(&text);
        assert!(
            got.iter().any(|g| g.starts_with("4:") && g.contains(want)),
            "{line}: expected {want:?}, got {got:?}"
        );
    }
    assert!(problems("").iter().any(|g| g.contains("no contexts")));
    assert!(
        problems("[defaults]\ncontext = \"x\"\n[context.a]\nmembers = [\"1\"]\n")
            .iter()
            .any(|g| g == "2:11: no context named `x`")
    );
}

#[test]
fn specificity_order_reorders_and_shadowing_follows_it() {
    // In file order `_X.` would shadow `_NXX`; sorted by specificity it does not.
    let body = "[[context.a.rule]]\npattern = \"_X.\"\nsteps = [\"echo\"]\n[[context.a.rule]]\npattern = \"_NXX\"\nsteps = [\"answer\"]\n";
    let file_order = format!("[defaults]\ncontext = \"a\"\n[context.a]\n{body}");
    assert!(
        problems(&file_order)
            .iter()
            .any(|g| g.contains("never reached"))
    );
    let sorted =
        format!("[defaults]\ncontext = \"a\"\n[context.a]\norder = \"specificity\"\n{body}");
    let p = common::plan(&sorted);
    let mut x = p.route(&common::call("1000", "200"));
    assert_eq!(
        x.next(&common::directory, None),
        pbx_dialplan::Action::Answer
    );
}

#[test]
fn labelled_rules_may_be_shadowed() {
    let text = "[defaults]\ncontext = \"a\"\n[context.a]\n[[context.a.rule]]\npattern = \"_X.\"\nsteps = [{ goto = \"late\" }]\n[[context.a.rule]]\npattern = \"_1XX\"\nlabel = \"late\"\nsteps = [\"echo\"]\n";
    common::plan(text);
}
