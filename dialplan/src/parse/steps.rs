//! Reading one step: `"answer"`, `{ dial = { ... } }`, `{ menu = { ... } }`...

use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::Builder;
use super::reader::Value;
use crate::model::{DialStep, DialStrategy, GotoStep, GreetingChoice, Step, StepKind};
use crate::template::{BUILTIN_VARIABLES, Template};

const STEP_NAMES: [&str; 15] = [
    "answer",
    "dial",
    "voicemail",
    "voicemail_menu",
    "playback",
    "menu",
    "echo",
    "goto",
    "hangup",
    "set",
    "if_time",
    "http_lookup",
    "read",
    "say",
    "db_lookup",
];

/// Variables a plan may not assign: the evaluator owns them.
const READ_ONLY: [&str; 3] = ["context", "dial_status", "digits"];

pub(crate) const DEFAULT_RING: Duration = Duration::from_secs(20);

impl Builder<'_, '_> {
    pub(crate) fn step(&mut self, v: &Value<'_>) -> Option<Step> {
        let line = self.rd.line(&v.span());
        let kind = match v.get_ref() {
            DeValue::String(name) => self.bare_step(name, v)?,
            DeValue::Table(t) => {
                let mut keys = t.iter();
                let (Some((name, value)), None) = (keys.next(), keys.next()) else {
                    let m = "a step is a table with one key, the step's name: { dial = { ... } }";
                    self.rd.error(v.span(), m);
                    return None;
                };
                let name: &str = name.get_ref();
                self.step_kind(name, value, v)?
            }
            _ => {
                let found = super::reader::type_name(v.get_ref());
                let m = format!(
                    "a step is a name (\"answer\") or a table ({{ dial = ... }}), found {found}"
                );
                self.rd.error(v.span(), m);
                return None;
            }
        };
        Some(Step { kind, line })
    }

    fn unknown_step(&mut self, name: &str, v: &Value<'_>) {
        let m = format!(
            "unknown step `{name}`, expected one of {}",
            STEP_NAMES.join(", ")
        );
        self.rd.error(v.span(), m);
    }

    fn bare_step(&mut self, name: &str, v: &Value<'_>) -> Option<StepKind> {
        Some(match name {
            "answer" => StepKind::Answer,
            "echo" => StepKind::Echo,
            "hangup" => hangup_default(),
            "voicemail_menu" => StepKind::VoicemailMenu { mailbox: None },
            n if STEP_NAMES.contains(&n) => {
                let m = format!("step `{n}` needs settings: write {{ {n} = ... }}");
                self.rd.error(v.span(), m);
                return None;
            }
            n => {
                self.unknown_step(n, v);
                return None;
            }
        })
    }

    fn step_kind(&mut self, name: &str, v: &Value<'_>, whole: &Value<'_>) -> Option<StepKind> {
        match name {
            "answer" | "echo" => {
                let empty = matches!(v.get_ref(), DeValue::Table(t) if t.is_empty())
                    || matches!(v.get_ref(), DeValue::Boolean(true));
                if !empty {
                    let m = format!("`{name}` takes no settings: write \"{name}\"");
                    self.rd.error(v.span(), m);
                }
                Some(if name == "answer" {
                    StepKind::Answer
                } else {
                    StepKind::Echo
                })
            }
            "dial" => self.dial(v),
            "voicemail" => self.voicemail(v),
            "voicemail_menu" => self.voicemail_menu(v),
            "playback" => self.playback(v),
            "menu" => self.menu(v),
            "goto" => self.goto(v),
            "hangup" => self.hangup(v),
            "set" => self.set(v),
            "if_time" => self.if_time(v),
            "http_lookup" => self.http_lookup(v),
            "read" => self.read(v),
            "say" => self.say(v),
            "db_lookup" => self.db_lookup(v),
            other => {
                self.unknown_step(other, whole);
                None
            }
        }
    }

    /// `{ KEY = "x" }` or the value itself when it is a string (the shorthand).
    fn shorthand<'t, 'i>(
        &mut self,
        v: &'t Value<'i>,
        step: &str,
        keys: &[&str],
    ) -> Option<Result<&'t DeTable<'i>, &'t Value<'i>>> {
        if matches!(v.get_ref(), DeValue::String(_)) {
            return Some(Err(v));
        }
        let t = self.rd.table(v, &format!("`{step}`"))?;
        self.rd.check_keys(t, keys, &format!("`{step}`"));
        Some(Ok(t))
    }

    pub(super) fn optional_block(
        &mut self,
        t: &DeTable<'_>,
        key: &str,
        step: &str,
    ) -> Option<Option<crate::model::BlockId>> {
        match t.get(key) {
            None => Some(None),
            Some(v) => Some(Some(self.block(v, &format!("`{key}` of `{step}`"))?)),
        }
    }

    fn dial(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let keys = [
            "targets",
            "timeout",
            "strategy",
            "on_busy",
            "on_no_answer",
            "on_unavailable",
        ];
        let (targets_value, table) = match self.shorthand(v, "dial", &keys)? {
            Err(s) => (Some(s), None),
            Ok(t) => (t.get("targets"), Some(t)),
        };
        let Some(targets_value) = targets_value else {
            self.rd.error(
                v.span(),
                "`dial` needs `targets`: the numbers or @groups to ring",
            );
            return None;
        };
        let mut targets = Vec::new();
        for (text, span) in self.rd.strings(targets_value, "`targets` of `dial`") {
            if let Some(group) = text.strip_prefix('@') {
                match self.groups.get(group) {
                    Some(members) => targets.extend(members.iter().cloned()),
                    None => self
                        .rd
                        .error(span, format!("no group named `{group}` in [groups]")),
                }
            } else if !self.trunk_target(text, span.clone()) {
                // Reported at the target.
            } else if let Some(t) = self.template_text(text, span, "`targets` of `dial`") {
                targets.push(t);
            }
        }
        if targets.is_empty()
            && matches!(targets_value.get_ref(), DeValue::Array(a) if a.is_empty())
        {
            self.rd
                .error(targets_value.span(), "`targets` of `dial` is empty");
        }
        let mut step = DialStep {
            targets,
            timeout: DEFAULT_RING,
            strategy: DialStrategy::All,
            on_busy: None,
            on_no_answer: None,
            on_unavailable: None,
        };
        if let Some(t) = table {
            if let Some(v) = t.get("timeout") {
                step.timeout = self
                    .rd
                    .duration(v, "`timeout` of `dial`")
                    .unwrap_or(DEFAULT_RING);
            }
            if let Some(v) = t.get("strategy") {
                match self.rd.string(v, "`strategy` of `dial`") {
                    Some("all") | None => {}
                    Some("in_order") => step.strategy = DialStrategy::InOrder,
                    Some(other) => self.rd.error(
                        v.span(),
                        format!("`strategy` of `dial`: `{other}` is not \"all\" or \"in_order\""),
                    ),
                }
            }
            step.on_busy = self.optional_block(t, "on_busy", "dial").flatten();
            step.on_no_answer = self.optional_block(t, "on_no_answer", "dial").flatten();
            step.on_unavailable = self.optional_block(t, "on_unavailable", "dial").flatten();
        }
        Some(StepKind::Dial(step))
    }

    fn voicemail(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let (mailbox, greeting) = match self.shorthand(v, "voicemail", &["mailbox", "greeting"])? {
            Err(s) => (Some(s), None),
            Ok(t) => (t.get("mailbox"), t.get("greeting")),
        };
        let Some(mailbox) = mailbox else {
            self.rd.error(
                v.span(),
                "`voicemail` needs `mailbox`, such as \"${number}\"",
            );
            return None;
        };
        let greeting = match greeting {
            None => GreetingChoice::Auto,
            Some(g) => match self.rd.string(g, "`greeting` of `voicemail`")? {
                "auto" => GreetingChoice::Auto,
                "busy" => GreetingChoice::Busy,
                "unavailable" => GreetingChoice::Unavailable,
                other => {
                    let m = format!(
                        "`greeting` of `voicemail`: `{other}` is not \"auto\", \"busy\" or \"unavailable\""
                    );
                    self.rd.error(g.span(), m);
                    return None;
                }
            },
        };
        let mailbox = self.template(mailbox, "`mailbox` of `voicemail`")?;
        Some(StepKind::Voicemail { mailbox, greeting })
    }

    fn voicemail_menu(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let mailbox = match self.shorthand(v, "voicemail_menu", &["mailbox"])? {
            Err(s) => Some(s),
            Ok(t) => t.get("mailbox"),
        };
        let mailbox = match mailbox {
            Some(m) => Some(self.template(m, "`mailbox` of `voicemail_menu`")?),
            None => None,
        };
        Some(StepKind::VoicemailMenu { mailbox })
    }

    fn playback(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let prompt = match self.shorthand(v, "playback", &["prompt"])? {
            Err(s) => Some(s),
            Ok(t) => t.get("prompt"),
        };
        let Some(prompt) = prompt else {
            self.rd
                .error(v.span(), "`playback` needs `prompt`: the name of a sound");
            return None;
        };
        let prompt = self.template(prompt, "`prompt` of `playback`")?;
        Some(StepKind::Playback { prompt })
    }

    fn goto(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let name_of = |b: &mut Self, key: &str, v: &Value<'_>| {
            b.rd.string(v, &format!("`{key}` of `goto`"))
                .map(|s| (s.to_owned(), v.span()))
        };
        let (context, label, number) =
            match self.shorthand(v, "goto", &["context", "label", "number"])? {
                Err(s) => (None, name_of(self, "label", s), None),
                Ok(t) => {
                    let context = t.get("context").and_then(|c| name_of(self, "context", c));
                    let label = t.get("label").and_then(|l| name_of(self, "label", l));
                    let number = match t.get("number") {
                        Some(n) => Some(self.template(n, "`number` of `goto`")?),
                        None => None,
                    };
                    if t.is_empty() {
                        self.rd.error(
                            v.span(),
                            "`goto` needs a `context`, a `label` or a `number`",
                        );
                    }
                    (context, label, number)
                }
            };
        self.goto_ref(context.clone(), label.clone());
        Some(StepKind::Goto(GotoStep {
            context: context.map(|(c, _)| c),
            label: label.map(|(l, _)| l),
            number,
        }))
    }

    fn hangup(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let (status, reason) = match v.get_ref() {
            DeValue::Integer(_) => (Some(v), None),
            _ => {
                let t = self.rd.table(v, "`hangup`")?;
                self.rd.check_keys(t, &["status", "reason"], "`hangup`");
                (t.get("status"), t.get("reason"))
            }
        };
        let StepKind::Hangup {
            status: mut code,
            reason: mut text,
        } = hangup_default()
        else {
            return None;
        };
        if let Some(s) = status {
            let n = self.rd.integer(s, "`status` of `hangup`", 400..=699)?;
            code = u16::try_from(n).unwrap_or(code);
            text = reason_phrase(code).to_owned();
        }
        if let Some(r) = reason {
            text = self.rd.string(r, "`reason` of `hangup`")?.to_owned();
        }
        Some(StepKind::Hangup {
            status: code,
            reason: text,
        })
    }

    fn set(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let t = self.rd.table(v, "`set`")?;
        let mut assignments = Vec::new();
        for (name, value) in t.iter() {
            let name_text: &str = name.get_ref();
            if self.assignable(name_text, name.span()) {
                let template = self.template(value, &format!("`{name_text}` of `set`"))?;
                assignments.push((name_text.to_owned(), template));
            }
        }
        if assignments.is_empty() && t.is_empty() {
            self.rd.error(
                v.span(),
                "`set` is empty: write { set = { NAME = \"value\" } }",
            );
        }
        Some(StepKind::Set(assignments))
    }

    pub(super) fn assignable(&mut self, name: &str, span: std::ops::Range<usize>) -> bool {
        if READ_ONLY.contains(&name) {
            self.rd.error(
                span,
                format!("`{name}` is set by the PBX and cannot be assigned"),
            );
            return false;
        }
        let valid =
            Template::parse(&format!("${{{name}}}")).is_ok() && name.parse::<usize>().is_err();
        if !valid {
            self.rd.error(
                span,
                format!("`{name}` is not a variable name (letters, digits and _)"),
            );
            return false;
        }
        if !BUILTIN_VARIABLES.contains(&name) {
            self.var_sets.insert(name.to_owned());
        }
        true
    }
}

fn hangup_default() -> StepKind {
    StepKind::Hangup {
        status: 480,
        reason: reason_phrase(480).to_owned(),
    }
}

/// The RFC's reason phrase of `status`; a plain word for a status the RFCs do not name.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    pbx_sip::status::StatusCode(status)
        .known_reason()
        .unwrap_or("Call Rejected")
}
