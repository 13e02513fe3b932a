//! Reading the IVR steps that ask and answer: `read`, `say`, `db_lookup`.

use std::time::Duration;

use super::Builder;
use super::reader::Value;
use crate::api::SayKind;
use crate::model::{DbStep, ReadStep, SayStep, StepKind};

impl Builder<'_, '_> {
    pub(super) fn read(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let t = self.rd.table(v, "`read`")?;
        self.rd
            .check_keys(t, &["var", "prompt", "max_digits", "timeout"], "`read`");
        let var = match t.get("var") {
            Some(name) => {
                let text = self.rd.string(name, "`var` of `read`")?;
                self.assignable(text, name.span()).then(|| text.to_owned())
            }
            None => {
                self.rd.error(
                    v.span(),
                    "`read` needs `var`: the variable that gets the digits",
                );
                None
            }
        };
        let prompt = match t.get("prompt") {
            Some(p) => self.template(p, "`prompt` of `read`"),
            None => {
                self.rd
                    .error(v.span(), "`read` needs `prompt`: the sound that asks");
                None
            }
        };
        let max_digits = t
            .get("max_digits")
            .and_then(|d| self.rd.integer(d, "`max_digits` of `read`", 1..=32))
            .map_or(16, |d| usize::try_from(d).unwrap_or(16));
        let timeout = t
            .get("timeout")
            .and_then(|d| self.rd.duration(d, "`timeout` of `read`"))
            .unwrap_or(Duration::from_secs(5));
        Some(StepKind::Read(ReadStep {
            var: var?,
            prompt: prompt?,
            max_digits,
            timeout,
        }))
    }

    pub(super) fn say(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let t = self.rd.table(v, "`say`")?;
        let kinds = [
            SayKind::Digits,
            SayKind::Number,
            SayKind::Date,
            SayKind::Time,
        ];
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        self.rd.check_keys(t, &names, "`say`");
        let mut found = kinds
            .iter()
            .filter_map(|k| t.get(k.as_str()).map(|value| (*k, value)));
        let (Some((kind, value)), None) = (found.next(), found.next()) else {
            let m =
                "`say` takes one of digits, number, date or time: { say = { number = \"${n}\" } }";
            self.rd.error(v.span(), m);
            return None;
        };
        let value = self.template(value, &format!("`{}` of `say`", kind.as_str()))?;
        Some(StepKind::Say(SayStep { kind, value }))
    }

    pub(super) fn db_lookup(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let t = self.rd.table(v, "`db_lookup`")?;
        let keys = [
            "database",
            "query",
            "params",
            "timeout",
            "set",
            "on_failure",
        ];
        self.rd.check_keys(t, &keys, "`db_lookup`");
        let text_of = |b: &mut Self, key: &str| match t.get(key) {
            Some(x) => {
                b.rd.string(x, &format!("`{key}` of `db_lookup`"))
                    .map(str::to_owned)
            }
            None => {
                b.rd.error(v.span(), format!("`db_lookup` needs `{key}`"));
                None
            }
        };
        let database = text_of(self, "database");
        let query = text_of(self, "query");
        if let (Some(q), Some(qv)) = (&query, t.get("query"))
            && q.contains("${")
        {
            // Values go in as bound parameters ($1, $2...), never into the SQL text.
            self.rd.error(
                qv.span(),
                "`query` of `db_lookup` cannot hold ${...}: write $1, $2... and list the values in `params`",
            );
        }
        let mut params = Vec::new();
        if let Some(p) = t.get("params") {
            for (text, span) in self.rd.strings(p, "`params` of `db_lookup`") {
                if let Some(t) = self.template_text(text, span, "`params` of `db_lookup`") {
                    params.push(t);
                }
            }
        }
        let timeout = t
            .get("timeout")
            .and_then(|d| self.rd.duration(d, "`timeout` of `db_lookup`"))
            .unwrap_or(Duration::from_secs(3));
        let mut assign = Vec::new();
        match t.get("set") {
            Some(s) => {
                if let Some(table) = self.rd.table(s, "`set` of `db_lookup`") {
                    for (name, column) in table.iter() {
                        let name_text: &str = name.get_ref();
                        if self.assignable(name_text, name.span())
                            && let Some(c) =
                                self.rd.string(column, &format!("`{name_text}` of `set`"))
                        {
                            assign.push((name_text.to_owned(), c.to_owned()));
                        }
                    }
                }
            }
            None => self.rd.error(
                v.span(),
                "`db_lookup` needs `set`: which variable gets which column, { balance = \"balance\" }",
            ),
        }
        let on_failure = self.optional_block(t, "on_failure", "db_lookup").flatten();
        Some(StepKind::DbLookup(DbStep {
            database: database?,
            query: query?,
            params,
            timeout,
            assign,
            on_failure,
        }))
    }
}
