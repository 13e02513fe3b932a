//! Reading the steps that branch on what the call meets: `menu`, `if_time`, `http_lookup`.

use std::time::Duration;

use toml::de::DeValue;

use super::Builder;
use super::reader::Value;
use crate::model::{HttpMethod, HttpStep, MenuStep, StepKind};
use crate::timecond::{DateSpec, TimeCondition, TimeRange, Weekdays, time_zone};

impl Builder<'_, '_> {
    pub(super) fn menu(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let t = self.rd.table(v, "`menu`")?;
        let keys = [
            "prompt",
            "digits",
            "timeout",
            "retries",
            "options",
            "invalid",
            "on_failure",
        ];
        self.rd.check_keys(t, &keys, "`menu`");
        let prompt = match t.get("prompt") {
            Some(p) => self.template(p, "`prompt` of `menu`"),
            None => {
                self.rd.error(
                    v.span(),
                    "`menu` needs `prompt`: the sound that lists the choices",
                );
                None
            }
        };
        let max_digits = t
            .get("digits")
            .and_then(|d| self.rd.integer(d, "`digits` of `menu`", 1..=20))
            .map_or(1, |d| usize::try_from(d).unwrap_or(1));
        let timeout = t
            .get("timeout")
            .and_then(|d| self.rd.duration(d, "`timeout` of `menu`"))
            .unwrap_or(Duration::from_secs(5));
        let retries = t
            .get("retries")
            .and_then(|d| self.rd.integer(d, "`retries` of `menu`", 0..=10))
            .map_or(2, |r| u32::try_from(r).unwrap_or(2));
        let mut options = Vec::new();
        match t
            .get("options")
            .map(|o| (o, self.rd.table(o, "`options` of `menu`")))
        {
            Some((_, Some(table))) => {
                for (digits, steps) in table.iter() {
                    let key: &str = digits.get_ref();
                    let ok = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
                    if !ok {
                        self.rd.error(
                            digits.span(),
                            format!("menu option `{key}`: a choice is keypad digits (0-9, *, #)"),
                        );
                    } else if key.chars().count() > max_digits {
                        self.rd.error(digits.span(), format!("menu option `{key}` is longer than `digits` = {max_digits}: the caller can never enter it"));
                    }
                    if matches!(steps.get_ref(), DeValue::Array(a) if a.is_empty()) {
                        self.rd.error(
                            digits.span(),
                            format!("menu digit `{key}` goes nowhere: give it steps"),
                        );
                        continue;
                    }
                    if let Some(block) = self.block(steps, &format!("menu option `{key}`")) {
                        options.push((key.to_owned(), block));
                    }
                }
                if table.is_empty() {
                    self.rd.error(
                        v.span(),
                        "`options` of `menu` is empty: no digit goes anywhere",
                    );
                }
            }
            Some((_, None)) => {}
            None => self
                .rd
                .error(v.span(), "`menu` needs `options`: what each digit does"),
        }
        let invalid = self.optional_block(t, "invalid", "menu").flatten();
        let on_failure = self.optional_block(t, "on_failure", "menu").flatten();
        Some(StepKind::Menu(MenuStep {
            prompt: prompt?,
            max_digits,
            timeout,
            retries,
            options,
            invalid,
            on_failure,
        }))
    }

    pub(super) fn if_time(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let t = self.rd.table(v, "`if_time`")?;
        let keys = [
            "time_zone",
            "weekdays",
            "times",
            "dates",
            "except_holidays",
            "then",
            "else",
        ];
        self.rd.check_keys(t, &keys, "`if_time`");
        let zone = match t.get("time_zone") {
            Some(z) => {
                let name = self.rd.string(z, "`time_zone` of `if_time`")?;
                match time_zone(name) {
                    Ok(zone) => Some((name.to_owned(), zone)),
                    Err(m) => {
                        self.rd.error(z.span(), m);
                        None
                    }
                }
            }
            None => Some(
                self.default_zone
                    .clone()
                    .unwrap_or(("UTC".to_owned(), jiff::tz::TimeZone::UTC)),
            ),
        };
        let weekdays = t.get("weekdays").map(|w| {
            let mut days = Weekdays::NONE;
            for (text, span) in self.rd.strings(w, "`weekdays` of `if_time`") {
                if let Err(m) = days.add(text) {
                    self.rd.error(span, m);
                }
            }
            days
        });
        let times = t.get("times").map_or_else(Vec::new, |x| {
            self.rd
                .parsed_list(x, "`times` of `if_time`", TimeRange::parse)
        });
        let dates = t.get("dates").map_or_else(Vec::new, |x| {
            self.rd
                .parsed_list(x, "`dates` of `if_time`", DateSpec::parse)
        });
        let mut except = Vec::new();
        if let Some(h) = t.get("except_holidays") {
            for (name, span) in self.rd.strings(h, "`except_holidays` of `if_time`") {
                match self.holidays.get(name) {
                    Some(dates) => except.extend(dates.iter().copied()),
                    None => self.rd.error(
                        span,
                        format!("no holiday list named `{name}` in [holidays]"),
                    ),
                }
            }
        }
        if weekdays.is_none() && times.is_empty() && dates.is_empty() && except.is_empty() {
            self.rd.error(
                v.span(),
                "`if_time` needs at least one of `weekdays`, `times`, `dates`, `except_holidays`",
            );
        }
        let then = match t.get("then") {
            Some(b) => self.block(b, "`then` of `if_time`"),
            None => {
                self.rd.error(
                    v.span(),
                    "`if_time` needs `then`: the steps when the time matches",
                );
                None
            }
        };
        let otherwise = self.optional_block(t, "else", "if_time")?;
        let (zone_name, zone) = zone?;
        let condition = TimeCondition {
            zone_name,
            zone,
            weekdays,
            times: times.into_iter().map(|(r, _)| r).collect(),
            dates: dates.into_iter().map(|(d, _)| d).collect(),
            except,
        };
        Some(StepKind::IfTime {
            condition: Box::new(condition),
            then: then?,
            otherwise,
        })
    }

    pub(super) fn http_lookup(&mut self, v: &Value<'_>) -> Option<StepKind> {
        let t = self.rd.table(v, "`http_lookup`")?;
        let keys = ["url", "method", "body", "timeout", "set", "on_failure"];
        self.rd.check_keys(t, &keys, "`http_lookup`");
        let url = match t.get("url") {
            Some(u) => self.template(u, "`url` of `http_lookup`"),
            None => {
                self.rd.error(v.span(), "`http_lookup` needs `url`");
                None
            }
        };
        if let Some(u) = t.get("url")
            && let DeValue::String(s) = u.get_ref()
            && !(s.starts_with("http://") || s.starts_with("https://"))
        {
            self.rd.error(
                u.span(),
                "`url` of `http_lookup` must start with http:// or https://",
            );
        }
        let method = match t
            .get("method")
            .map(|m| (m, self.rd.string(m, "`method` of `http_lookup`")))
        {
            None | Some((_, Some("GET"))) | Some((_, None)) => HttpMethod::Get,
            Some((_, Some("POST"))) => HttpMethod::Post,
            Some((m, Some(other))) => {
                self.rd.error(
                    m.span(),
                    format!("`method` of `http_lookup`: `{other}` is not \"GET\" or \"POST\""),
                );
                HttpMethod::Get
            }
        };
        let body = t
            .get("body")
            .and_then(|b| self.template(b, "`body` of `http_lookup`"));
        if body.is_some()
            && method == HttpMethod::Get
            && let Some(b) = t.get("body")
        {
            self.rd
                .error(b.span(), "`body` of `http_lookup` needs method = \"POST\"");
        }
        let timeout = t
            .get("timeout")
            .and_then(|d| self.rd.duration(d, "`timeout` of `http_lookup`"))
            .unwrap_or(Duration::from_secs(3));
        let mut assign = Vec::new();
        if let Some(s) = t.get("set")
            && let Some(table) = self.rd.table(s, "`set` of `http_lookup`")
        {
            for (name, path) in table.iter() {
                let name_text: &str = name.get_ref();
                if self.assignable(name_text, name.span())
                    && let Some(p) = self.rd.string(path, &format!("`{name_text}` of `set`"))
                {
                    assign.push((name_text.to_owned(), p.to_owned()));
                }
            }
        }
        let on_failure = self
            .optional_block(t, "on_failure", "http_lookup")
            .flatten();
        Some(StepKind::HttpLookup(HttpStep {
            method,
            url: url?,
            body,
            timeout,
            assign,
            on_failure,
        }))
    }
}
