//! Finding the caller's context, checking what it may call, and finding the rule for a number.

use crate::api::Directory;
use crate::model::{ContextId, Matcher, Permit, Plan, Rule};

/// A rule found for a number: where it is and the regex captures.
pub(crate) struct Found {
    pub(crate) context: ContextId,
    pub(crate) rule: usize,
    pub(crate) captures: Vec<String>,
}

impl Plan {
    /// The context whose `members` list `number`, else `[defaults] context`.
    pub(crate) fn context_of(&self, number: &str) -> Option<ContextId> {
        self.contexts
            .iter()
            .position(|c| c.members.iter().any(|m| m.matches(number)))
            .map(ContextId)
            .or(self.default_context)
    }

    /// Whether `context` may call `number`; `Err` says why not.
    pub(crate) fn permits(
        &self,
        context: ContextId,
        number: &str,
        directory: &dyn Directory,
    ) -> Result<(), String> {
        let c = &self.contexts[context.0];
        let Some(permits) = &c.may_call else {
            return Ok(());
        };
        let allowed = permits.iter().any(|p| match p {
            Permit::Any => true,
            Permit::Extensions => directory.is_extension(number),
            Permit::Context(id) => {
                directory.is_extension(number) && self.context_of(number) == Some(*id)
            }
            Permit::Numbers(item) => item.matches(number),
        });
        if allowed {
            Ok(())
        } else {
            Err(format!("context {} may not call {number}", c.name))
        }
    }

    /// The first rule of `context` (then of its includes, depth first) that matches `number`.
    pub(crate) fn find_rule(
        &self,
        context: ContextId,
        number: &str,
        directory: &dyn Directory,
    ) -> Option<Found> {
        let mut visited = Vec::new();
        self.find_in(context, number, directory, &mut visited)
    }

    fn find_in(
        &self,
        context: ContextId,
        number: &str,
        directory: &dyn Directory,
        visited: &mut Vec<ContextId>,
    ) -> Option<Found> {
        if visited.contains(&context) {
            return None;
        }
        visited.push(context);
        let c = &self.contexts[context.0];
        // The first matching rule: the exact lookup, or an earlier rule of the scan list.
        let exact = c.exact.get(number).copied();
        let scanned = c
            .scan
            .iter()
            .take_while(|&&i| exact.is_none_or(|e| i < e))
            .find_map(|&i| rule_matches(&c.rules[i], number, directory).map(|caps| (i, caps)));
        if let Some((rule, captures)) = scanned.or(exact.map(|e| (e, Vec::new()))) {
            return Some(Found {
                context,
                rule,
                captures,
            });
        }
        c.includes
            .iter()
            .find_map(|inc| self.find_in(*inc, number, directory, visited))
    }
}

/// The captures when `rule` matches `number` (empty for a pattern), else `None`.
pub(crate) fn rule_matches(
    rule: &Rule,
    number: &str,
    directory: &dyn Directory,
) -> Option<Vec<String>> {
    match &rule.matcher {
        Matcher::Pattern(p) => p.matches(number).then(Vec::new),
        Matcher::Extension => directory.is_extension(number).then(Vec::new),
        Matcher::Regex(re) => re.captures(number).map(|caps| {
            caps.iter()
                .skip(1)
                .map(|m| m.map_or_else(String::new, |m| m.as_str().to_owned()))
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::model::NumberItem;

    #[test]
    fn ranges_take_same_length_digits_only() {
        let r = NumberItem::parse("1000-1099").unwrap_or_else(|e| panic!("{e}"));
        assert!(r.matches("1000") && r.matches("1099") && !r.matches("1100"));
        assert!(!r.matches("01000") && !r.matches("999"));
        assert!(NumberItem::parse("100-1099").is_err());
        assert!(NumberItem::parse("1099-1000").is_err());
        assert!(NumberItem::parse("_1XXX").is_ok_and(|p| p.matches("1234")));
    }
}
