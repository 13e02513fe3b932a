//! `trunk:NAME/NUMBER` dial targets: NAME is written out (so `pbx check` can look it up in the
//! store, [`Plan::trunk_targets`]), NUMBER is a template (`${number:1}` strips a prefix,
//! `0049${1}` adds a country code).

use std::ops::Range;

use super::Builder;
use crate::api::{TRUNK_PREFIX, split_trunk_target};
use crate::model::{Plan, TrunkRef};

impl Builder<'_, '_> {
    /// Checks a dial target that names a trunk and remembers where it is written. `false`
    /// when it is malformed (the problem is reported).
    pub(super) fn trunk_target(&mut self, text: &str, span: Range<usize>) -> bool {
        if !text.starts_with(TRUNK_PREFIX) {
            return true;
        }
        let Some((name, number)) = split_trunk_target(text) else {
            let m = format!("`{text}`: a trunk target is trunk:NAME/NUMBER");
            self.rd.error(span, m);
            return false;
        };
        let valid_name = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            let m = format!(
                "`{text}`: the trunk name `{name}` is 1 to 32 letters, digits, - and _ \
                 (written out, no variables)"
            );
            self.rd.error(span, m);
            return false;
        }
        if number.is_empty() {
            let m = format!("`{text}`: no number after the trunk name");
            self.rd.error(span, m);
            return false;
        }
        let (line, col) = self.rd.report.line_col(span.start);
        self.trunk_refs.push(TrunkRef {
            name: name.to_owned(),
            line,
            col,
        });
        true
    }
}

impl Plan {
    /// The trunks the plan's `dial` targets name, each with the line and column of the target
    /// (the server checks them against the store).
    pub fn trunk_targets(&self) -> impl Iterator<Item = (&str, usize, usize)> {
        self.trunk_refs
            .iter()
            .map(|r| (r.name.as_str(), r.line, r.col))
    }
}
