//! From TOML text to a [`Plan`]: the file's sections, contexts and rules. Steps are read in
//! [`steps`]; cross-references and reachability are checked in [`check`].

mod branching;
mod check;
mod ivr;
mod reader;
mod steps;
mod trunks;

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use jiff::tz::TimeZone;
use toml::de::DeTable;

use crate::model::{BlockId, Context, ContextId, Matcher, NumberItem, Permit, Plan, Rule, Step};
use crate::pattern::DialPattern;
use crate::template::{BUILTIN_VARIABLES, Template, VarRef};
use crate::timecond::{DateSpec, time_zone};
pub(crate) use check::describe as describe_matcher;
use pbx_diag::{Diagnostics, Reporter};
use reader::{Reader, Value};

/// Names a context may not have: they mean something else in `may_call`.
const RESERVED_CONTEXTS: [&str; 2] = ["any", "extensions"];

/// A `goto` to check once every context and label is known.
struct GotoRef {
    from: ContextId,
    context: Option<(String, Range<usize>)>,
    label: Option<(String, Range<usize>)>,
}

/// Where a rule's matcher is written, for shadowing messages.
struct RuleSite {
    span: Range<usize>,
}

/// Reads the whole file, collecting what later checks need.
pub(crate) struct Builder<'r, 'a> {
    pub(crate) rd: Reader<'r, 'a>,
    pub(crate) blocks: Vec<Vec<Step>>,
    pub(crate) groups: HashMap<String, Vec<Template>>,
    pub(crate) holidays: HashMap<String, Vec<DateSpec>>,
    pub(crate) default_zone: Option<(String, TimeZone)>,
    contexts: HashMap<String, ContextId>,
    gotos: Vec<GotoRef>,
    var_uses: Vec<(String, Range<usize>)>,
    pub(crate) var_sets: HashSet<String>,
    /// Capture groups of the rule being read (0 for a pattern rule).
    captures: usize,
    /// The context being read.
    current: ContextId,
    /// Per context, where each rule's matcher is written (in evaluation order).
    rule_sites: Vec<Vec<Range<usize>>>,
    /// Per context, where each include is written (aligned with `Context::includes`).
    include_sites: Vec<Vec<Range<usize>>>,
    /// `trunk:NAME/...` targets read so far.
    trunk_refs: Vec<crate::model::TrunkRef>,
    /// Contexts the server assigns from outside the file (a trunk's `--context`, an
    /// extension's): reachable without `members` or `may_call`.
    assigned: &'a [String],
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Plan {
    /// Parses and validates a dialplan. `path` is only used in messages. Every problem is
    /// reported, each as `path:line:col: message`; a plan with problems is never returned.
    pub fn parse(path: &str, text: &str) -> Result<Plan, Diagnostics> {
        Plan::parse_assigned(path, text, &[])
    }

    /// As [`Plan::parse`], `assigned` naming the contexts the server gives calls itself (the
    /// contexts of the store's trunks and extensions): none of them is unreachable.
    pub fn parse_assigned(
        path: &str,
        text: &str,
        assigned: &[String],
    ) -> Result<Plan, Diagnostics> {
        let mut report = Reporter::new(path, text);
        let (root, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            let mut lines = HashSet::new();
            for e in syntax {
                let offset = e.span().map_or(0, |s| s.start);
                if lines.insert(report.line_col(offset).0) {
                    let message = format!("TOML syntax error: {}", e.message().trim());
                    report.error(offset..offset, message);
                }
            }
            return Err(report.finish());
        }
        let plan = {
            let mut b = Builder {
                rd: Reader {
                    report: &mut report,
                },
                blocks: Vec::new(),
                groups: HashMap::new(),
                holidays: HashMap::new(),
                default_zone: None,
                contexts: HashMap::new(),
                gotos: Vec::new(),
                var_uses: Vec::new(),
                var_sets: HashSet::new(),
                captures: 0,
                current: ContextId(0),
                rule_sites: Vec::new(),
                include_sites: Vec::new(),
                trunk_refs: Vec::new(),
                assigned,
            };
            b.plan(path, root.get_ref())
        };
        if report.has_errors() {
            Err(report.finish())
        } else {
            Ok(plan)
        }
    }
}

impl Builder<'_, '_> {
    fn plan(&mut self, path: &str, root: &DeTable<'_>) -> Plan {
        let keys = ["defaults", "groups", "holidays", "context"];
        self.rd.check_keys(root, &keys, "the dialplan");
        // Context names first: defaults, includes, goto and may_call refer to them.
        let mut context_tables: Vec<(String, Range<usize>, &Value<'_>)> = Vec::new();
        if let Some(v) = root.get("context")
            && let Some(t) = self.rd.table(v, "`context`")
        {
            for (name, value) in t.iter() {
                context_tables.push((name.get_ref().to_string(), name.span(), value));
            }
        } else {
            self.rd
                .error(0..0, "no contexts: add at least one [context.NAME]");
        }
        context_tables.sort_by_key(|(_, span, _)| span.start);
        for (i, (name, span, _)) in context_tables.iter().enumerate() {
            if !is_name(name) {
                self.rd.error(
                    span.clone(),
                    format!("context name `{name}`: use letters, digits, - and _"),
                );
            } else if RESERVED_CONTEXTS.contains(&name.as_str()) {
                self.rd.error(
                    span.clone(),
                    format!("context name `{name}` is reserved (it means something in `may_call`)"),
                );
            }
            self.contexts.insert(name.clone(), ContextId(i));
        }
        self.groups(root.get("groups"));
        self.holidays(root.get("holidays"));
        let default_context = self.defaults(root.get("defaults"));
        let mut contexts = Vec::new();
        for (i, (name, _, value)) in context_tables.iter().enumerate() {
            self.current = ContextId(i);
            contexts.push(self.context(name, value));
        }
        let mut plan = Plan {
            path: path.to_owned(),
            default_context,
            by_name: self.contexts.clone(),
            contexts,
            blocks: std::mem::take(&mut self.blocks),
            trunk_refs: std::mem::take(&mut self.trunk_refs),
        };
        self.check_variables();
        let name_sites: Vec<Range<usize>> =
            context_tables.iter().map(|(_, s, _)| s.clone()).collect();
        self.check(&mut plan, &name_sites);
        plan
    }

    fn groups(&mut self, v: Option<&Value<'_>>) {
        let Some(t) = v.and_then(|v| self.rd.table(v, "[groups]")) else {
            return;
        };
        for (name, members) in t.iter() {
            let what = format!("group `{}`", name.get_ref());
            let targets = self
                .rd
                .parsed_list(members, &what, Template::parse)
                .into_iter()
                .filter(|(t, span)| self.trunk_target(t.source(), span.clone()))
                .map(|(t, _)| t)
                .collect::<Vec<_>>();
            if targets.is_empty() {
                self.rd
                    .error(members.span(), format!("{what} has no members"));
            }
            self.groups.insert(name.get_ref().to_string(), targets);
        }
    }

    fn holidays(&mut self, v: Option<&Value<'_>>) {
        let Some(t) = v.and_then(|v| self.rd.table(v, "[holidays]")) else {
            return;
        };
        for (name, dates) in t.iter() {
            let what = format!("holidays `{}`", name.get_ref());
            let list = self.rd.parsed_list(dates, &what, DateSpec::parse);
            self.holidays.insert(
                name.get_ref().to_string(),
                list.into_iter().map(|(d, _)| d).collect(),
            );
        }
    }

    fn defaults(&mut self, v: Option<&Value<'_>>) -> Option<ContextId> {
        let t = v.and_then(|v| self.rd.table(v, "[defaults]"))?;
        self.rd
            .check_keys(t, &["context", "time_zone"], "[defaults]");
        if let Some(v) = t.get("time_zone")
            && let Some(name) = self.rd.string(v, "`time_zone`")
        {
            match time_zone(name) {
                Ok(zone) => self.default_zone = Some((name.to_owned(), zone)),
                Err(m) => self.rd.error(v.span(), m),
            }
        }
        let v = t.get("context")?;
        let name = self.rd.string(v, "`context` in [defaults]")?;
        let id = self.contexts.get(name).copied();
        if id.is_none() {
            self.rd
                .error(v.span(), format!("no context named `{name}`"));
        }
        id
    }

    fn context_ref(&mut self, name: &str, span: Range<usize>) -> Option<ContextId> {
        let id = self.contexts.get(name).copied();
        if id.is_none() {
            self.rd.error(span, format!("no context named `{name}`"));
        }
        id
    }

    fn context(&mut self, name: &str, v: &Value<'_>) -> Context {
        let what = format!("[context.{name}]");
        let mut context = Context {
            name: name.to_owned(),
            members: Vec::new(),
            includes: Vec::new(),
            may_call: None,
            rules: Vec::new(),
            labels: HashMap::new(),
            exact: HashMap::new(),
            scan: Vec::new(),
        };
        let Some(t) = self.rd.table(v, &what) else {
            self.include_sites.push(Vec::new());
            self.rule_sites.push(Vec::new());
            return context;
        };
        let keys = ["members", "include", "may_call", "order", "rule"];
        self.rd.check_keys(t, &keys, &what);
        if let Some(v) = t.get("members") {
            let members = self.rd.parsed_list(v, "`members`", NumberItem::parse);
            context.members = members.into_iter().map(|(m, _)| m).collect();
        }
        let mut include_sites = Vec::new();
        if let Some(v) = t.get("include") {
            for (name, span) in self.rd.strings(v, "`include`") {
                if let Some(id) = self.context_ref(name, span.clone()) {
                    context.includes.push(id);
                    include_sites.push(span);
                }
            }
        }
        self.include_sites.push(include_sites);
        if let Some(v) = t.get("may_call") {
            context.may_call = Some(self.may_call(v));
        }
        let by_specificity = match t.get("order") {
            None => false,
            Some(v) => match self.rd.string(v, "`order`") {
                Some("file") | None => false,
                Some("specificity") => true,
                Some(other) => {
                    let m = format!("`order`: `{other}` is not \"file\" or \"specificity\"");
                    self.rd.error(v.span(), m);
                    false
                }
            },
        };
        let mut rules = Vec::new();
        if let Some(v) = t.get("rule")
            && let Some(items) = self.rd.array(v, "`rule`")
        {
            for item in items.iter() {
                rules.extend(self.rule(item));
            }
        }
        if by_specificity {
            // Asterisk's order for patterns; regex and `extension` rules after them, in file order.
            rules.sort_by(
                |(a, _): &(Rule, RuleSite), (b, _)| match (&a.matcher, &b.matcher) {
                    (Matcher::Pattern(x), Matcher::Pattern(y)) => x.specificity_cmp(y),
                    (Matcher::Pattern(_), _) => std::cmp::Ordering::Less,
                    (_, Matcher::Pattern(_)) => std::cmp::Ordering::Greater,
                    _ => std::cmp::Ordering::Equal,
                },
            );
        }
        let mut sites = Vec::new();
        for (rule, site) in rules {
            if let Some(label) = &rule.label
                && context
                    .labels
                    .insert(label.clone(), context.rules.len())
                    .is_some()
            {
                self.rd.error(
                    site.span.clone(),
                    format!("label `{label}` is used twice in {what}"),
                );
            }
            context.rules.push(rule);
            sites.push(site.span);
        }
        self.rule_sites.push(sites);
        context.index_rules();
        context
    }

    fn may_call(&mut self, v: &Value<'_>) -> Vec<Permit> {
        let mut permits = Vec::new();
        for (text, span) in self.rd.strings(v, "`may_call`") {
            let permit = match text {
                "any" => Permit::Any,
                "extensions" => Permit::Extensions,
                t if t.starts_with(|c: char| c.is_ascii_digit() || "_*#+".contains(c)) => {
                    match NumberItem::parse(t) {
                        Ok(item) => Permit::Numbers(item),
                        Err(m) => {
                            self.rd.error(span, format!("`may_call`: {m}"));
                            continue;
                        }
                    }
                }
                name => match self.context_ref(name, span) {
                    Some(id) => Permit::Context(id),
                    None => continue,
                },
            };
            permits.push(permit);
        }
        permits
    }

    fn rule(&mut self, v: &Value<'_>) -> Option<(Rule, RuleSite)> {
        let t = self.rd.table(v, "a rule")?;
        let keys = ["pattern", "regex", "extension", "label", "steps"];
        self.rd.check_keys(t, &keys, "a rule");
        let given: Vec<(&str, &Value<'_>)> = ["pattern", "regex", "extension"]
            .into_iter()
            .filter_map(|k| t.get(k).map(|v| (k, v)))
            .collect();
        let (matcher, site) = match given.as_slice() {
            [(kind, v)] => (self.matcher(kind, v), v.span()),
            [] => {
                self.rd.error(
                    v.span(),
                    "a rule needs one of `pattern`, `regex` or `extension = true`",
                );
                (None, v.span())
            }
            [_, (_, second), ..] => {
                self.rd.error(
                    second.span(),
                    "a rule has one of `pattern`, `regex` or `extension`, not several",
                );
                (None, v.span())
            }
        };
        self.captures = match &matcher {
            Some(Matcher::Regex(re)) => re.captures_len().saturating_sub(1),
            _ => 0,
        };
        let label = t.get("label").and_then(|v| {
            let label = self.rd.string(v, "`label`")?;
            if !is_name(label) {
                self.rd.error(
                    v.span(),
                    format!("label `{label}`: use letters, digits, - and _"),
                );
            }
            Some(label.to_owned())
        });
        let steps = match t.get("steps") {
            Some(v) => self.block(v, "the rule's `steps`"),
            None => {
                self.rd.error(v.span(), "a rule needs `steps`");
                None
            }
        };
        let line = self.rd.line(&site);
        let rule = Rule {
            matcher: matcher?,
            label,
            steps: steps?,
            line,
        };
        Some((rule, RuleSite { span: site }))
    }

    fn matcher(&mut self, kind: &str, v: &Value<'_>) -> Option<Matcher> {
        let what = format!("`{kind}`");
        if kind == "extension" {
            return match self.rd.boolean(v, &what)? {
                true => Some(Matcher::Extension),
                false => {
                    self.rd.error(
                        v.span(),
                        "`extension = false` matches nothing: remove the rule",
                    );
                    None
                }
            };
        }
        let text = self.rd.string(v, &what)?;
        let parsed = if kind == "pattern" {
            DialPattern::parse(text).map(Matcher::Pattern)
        } else {
            regex::Regex::new(&format!("^(?:{text})$"))
                .map(Matcher::Regex)
                .map_err(|e| format!("bad regex: {}", e.to_string().lines().last().unwrap_or("")))
        };
        parsed.map_err(|m| self.rd.error(v.span(), m)).ok()
    }

    /// Parses a template and records the variables it reads.
    pub(crate) fn template(&mut self, v: &Value<'_>, what: &str) -> Option<Template> {
        let text = self.rd.string(v, what)?;
        self.template_text(text, v.span(), what)
    }

    pub(crate) fn template_text(
        &mut self,
        text: &str,
        span: Range<usize>,
        what: &str,
    ) -> Option<Template> {
        let template = match Template::parse(text) {
            Ok(t) => t,
            Err(m) => {
                self.rd.error(span, format!("{what}: {m}"));
                return None;
            }
        };
        for var in template.vars() {
            match var {
                VarRef::Named(name) => self.var_uses.push((name.clone(), span.clone())),
                VarRef::Capture(n) if *n > self.captures => {
                    let m = match self.captures {
                        0 => format!("{what}: `${{{n}}}` needs a `regex` rule with capture groups"),
                        c => format!(
                            "{what}: `${{{n}}}`, but the rule's regex has only {c} capture group(s)"
                        ),
                    };
                    self.rd.error(span.clone(), m);
                }
                VarRef::Capture(_) => {}
            }
        }
        Some(template)
    }

    /// A list of steps; `None` when it is not one (reported).
    pub(crate) fn block(&mut self, v: &Value<'_>, what: &str) -> Option<BlockId> {
        let items = self.rd.array(v, what)?;
        if items.is_empty() {
            self.rd.error(
                v.span(),
                format!("{what} is empty: it needs at least one step"),
            );
        }
        let mut steps = Vec::new();
        let mut ended_by: Option<&'static str> = None;
        for item in items.iter() {
            if let Some(name) = ended_by {
                let m = format!("unreachable step: the `{name}` before it never continues");
                self.rd.error(item.span(), m);
                ended_by = None;
            }
            if let Some(step) = self.step(item) {
                if matches!(step.kind.name(), "goto" | "hangup") {
                    ended_by = Some(step.kind.name());
                }
                steps.push(step);
            }
        }
        self.blocks.push(steps);
        Some(BlockId(self.blocks.len() - 1))
    }

    pub(crate) fn goto_ref(
        &mut self,
        context: Option<(String, Range<usize>)>,
        label: Option<(String, Range<usize>)>,
    ) {
        self.gotos.push(GotoRef {
            from: self.current,
            context,
            label,
        });
    }

    fn check_variables(&mut self) {
        for (name, span) in std::mem::take(&mut self.var_uses) {
            if !BUILTIN_VARIABLES.contains(&name.as_str()) && !self.var_sets.contains(&name) {
                let builtins = BUILTIN_VARIABLES.join(", ");
                let m = format!(
                    "unknown variable `${{{name}}}`: not set by any `set` or `http_lookup` \
                     (built in: {builtins})"
                );
                self.rd.error(span, m);
            }
        }
    }
}
