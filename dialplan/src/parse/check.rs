//! Checks that need the whole plan: goto targets, include cycles, shadowed rules and contexts
//! nothing leads to.

use std::ops::Range;

use super::Builder;
use crate::model::{ContextId, Matcher, Plan, Rule};

impl Builder<'_, '_> {
    pub(super) fn check(&mut self, plan: &mut Plan, name_sites: &[Range<usize>]) {
        let mut used = vec![false; plan.contexts.len()];
        if let Some(id) = plan.default_context {
            used[id.0] = true;
        }
        for (i, c) in plan.contexts.iter().enumerate() {
            // `may_call` marks a class of service the server may assign (a trunk's context).
            used[i] |= !c.members.is_empty() || c.may_call.is_some();
            // A trunk's or an extension's `--context` in the store.
            used[i] |= self.assigned.contains(&c.name);
            for inc in &c.includes {
                used[inc.0] = true;
            }
        }
        self.check_gotos(plan, &mut used);
        self.check_include_cycles(plan);
        for c in 0..plan.contexts.len() {
            self.check_shadowing(plan, ContextId(c));
        }
        for (i, context) in plan.contexts.iter().enumerate() {
            if !used[i]
                && let Some(site) = name_sites.get(i)
            {
                let m = format!(
                    "context `{}` is unreachable: it has no `members` or `may_call`, is not \
                     [defaults] context, no trunk or extension has it as its context, and no \
                     `include` or `goto` leads to it",
                    context.name
                );
                self.rd.error(site.clone(), m);
            }
        }
    }

    fn check_gotos(&mut self, plan: &Plan, used: &mut [bool]) {
        for goto in std::mem::take(&mut self.gotos) {
            let target = match &goto.context {
                None => Some(goto.from),
                Some((name, span)) => {
                    let id = plan.by_name.get(name).copied();
                    match id {
                        Some(id) => used[id.0] = true,
                        None => self
                            .rd
                            .error(span.clone(), format!("goto: no context named `{name}`")),
                    }
                    id
                }
            };
            if let (Some(target), Some((label, span))) = (target, &goto.label)
                && !plan.contexts[target.0].labels.contains_key(label)
            {
                let context = &plan.contexts[target.0].name;
                self.rd.error(
                    span.clone(),
                    format!("goto: no rule with label `{label}` in context `{context}`"),
                );
            }
        }
    }

    fn check_include_cycles(&mut self, plan: &Plan) {
        // Depth-first search; a back edge closes a cycle, reported at the include that closes it.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut marks = vec![Mark::New; plan.contexts.len()];
        let mut path: Vec<usize> = Vec::new();
        fn visit(
            b: &mut Builder<'_, '_>,
            plan: &Plan,
            c: usize,
            marks: &mut [Mark],
            path: &mut Vec<usize>,
        ) {
            marks[c] = Mark::Open;
            path.push(c);
            for (k, inc) in plan.contexts[c].includes.iter().enumerate() {
                match marks[inc.0] {
                    Mark::New => visit(b, plan, inc.0, marks, path),
                    Mark::Open => {
                        let start = path.iter().position(|&p| p == inc.0).unwrap_or(0);
                        let names: Vec<&str> = path[start..]
                            .iter()
                            .chain(std::iter::once(&inc.0))
                            .map(|&i| plan.contexts[i].name.as_str())
                            .collect();
                        let span = b.include_sites[c].get(k).cloned().unwrap_or(0..0);
                        b.rd.error(span, format!("include cycle: {}", names.join(" -> ")));
                    }
                    Mark::Done => {}
                }
            }
            path.pop();
            marks[c] = Mark::Done;
        }
        for c in 0..plan.contexts.len() {
            if marks[c] == Mark::New {
                visit(self, plan, c, &mut marks, &mut path);
            }
        }
    }

    fn check_shadowing(&mut self, plan: &Plan, c: ContextId) {
        let rules = &plan.contexts[c.0].rules;
        for (j, later) in rules.iter().enumerate() {
            // A labelled rule is still reached by `goto`.
            if later.label.is_some() {
                continue;
            }
            if let Some(earlier) = rules[..j].iter().find(|e| shadows(e, later)) {
                let span = self.rule_sites[c.0].get(j).cloned().unwrap_or(0..0);
                let m = format!(
                    "rule is never reached: every number it matches is taken first by the rule at \
                     line {} ({})",
                    earlier.line,
                    describe(&earlier.matcher)
                );
                self.rd.error(span, m);
            }
        }
    }
}

/// True when every number `later` matches is matched by `earlier` (as far as can be known
/// without the directory).
fn shadows(earlier: &Rule, later: &Rule) -> bool {
    match (&earlier.matcher, &later.matcher) {
        (Matcher::Pattern(a), Matcher::Pattern(b)) => a.covers(b),
        (Matcher::Regex(a), Matcher::Pattern(b)) => b.is_exact() && a.is_match(b.as_str()),
        (Matcher::Regex(a), Matcher::Regex(b)) => a.as_str() == b.as_str(),
        (Matcher::Extension, Matcher::Extension) => true,
        (Matcher::Pattern(a), Matcher::Extension) => a.matches_everything(),
        _ => false,
    }
}

pub(crate) fn describe(m: &Matcher) -> String {
    match m {
        Matcher::Pattern(p) => format!("pattern `{p}`"),
        Matcher::Regex(r) => {
            let s = r.as_str();
            let inner = s
                .strip_prefix("^(?:")
                .and_then(|s| s.strip_suffix(")$"))
                .unwrap_or(s);
            format!("regex `{inner}`")
        }
        Matcher::Extension => "extension = true".to_owned(),
    }
}
