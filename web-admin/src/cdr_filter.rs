//! The call record search as a form or the API sends it: text fields checked one by one,
//! each problem tied to its field, then the store's [`CdrQuery`].

use pbx_store::{Cdr, CdrQuery};

use crate::validate::{FieldError, Problems};

/// The dispositions a call record can have.
pub const DISPOSITIONS: [&str; 5] = ["answered", "busy", "no_answer", "failed", "cancelled"];

/// The search as sent; empty means "any".
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CdrSearch {
    /// From this time on: `2026-12-06T08:00` (UTC), a date, RFC 3339, or Unix seconds.
    #[serde(default)]
    pub from: String,
    /// Before this time, as `from`.
    #[serde(default)]
    pub to: String,
    /// Calls from or to this number.
    #[serde(default)]
    pub extension: String,
    #[serde(default)]
    pub disposition: String,
    /// Where the previous page ended ([`cursor_of`]).
    #[serde(default)]
    pub cursor: String,
}

/// Unix seconds from what a person or a program writes; `Ok(None)` for nothing.
pub fn parse_time(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(Some)
            .map_err(|_| format!("`{text}` is too large for a time"));
    }
    let utc = jiff::tz::TimeZone::UTC;
    let seconds = if let Ok(t) = text.parse::<jiff::Timestamp>() {
        Some(t.as_second())
    } else if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        dt.to_zoned(utc.clone())
            .ok()
            .map(|z| z.timestamp().as_second())
    } else if let Ok(d) = text.parse::<jiff::civil::Date>() {
        d.to_zoned(utc).ok().map(|z| z.timestamp().as_second())
    } else {
        None
    };
    match seconds {
        Some(s) => u64::try_from(s)
            .map(Some)
            .map_err(|_| format!("`{text}` is before 1970")),
        None => Err(format!(
            "`{text}` is not a time: write 2026-12-06T08:00 (UTC), 2026-12-06 or Unix seconds"
        )),
    }
}

/// The cursor that continues after `cdr` (the last row of a page).
pub fn cursor_of(cdr: &Cdr) -> String {
    format!("{}-{}", cdr.call.started_at, cdr.id)
}

fn parse_cursor(text: &str) -> Option<(u64, i64)> {
    let (at, id) = text.split_once('-')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

/// A number as a CDR holds it: digits and the few signs dial strings use.
fn valid_number(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+*#._-".contains(&b))
}

/// The store's query for `search` with `limit` rows, or every problem by field.
pub fn query(search: &CdrSearch, limit: u32) -> Result<CdrQuery, Problems> {
    let mut problems = Vec::new();
    let mut problem =
        |field: &'static str, message: String| problems.push(FieldError { field, message });
    let from = parse_time(&search.from).unwrap_or_else(|e| {
        problem("from", e);
        None
    });
    let to = parse_time(&search.to).unwrap_or_else(|e| {
        problem("to", e);
        None
    });
    if let (Some(f), Some(t)) = (from, to)
        && t <= f
    {
        problem("to", "the end must be after the start".into());
    }
    let extension = search.extension.trim();
    if !extension.is_empty() && !valid_number(extension) {
        problem(
            "extension",
            format!("`{extension}` is not a number: digits, and + * # . _ - at most 64"),
        );
    }
    let disposition = search.disposition.trim();
    if !disposition.is_empty() && !DISPOSITIONS.contains(&disposition) {
        problem(
            "disposition",
            format!(
                "`{disposition}` is not a disposition: one of {}",
                DISPOSITIONS.join(", ")
            ),
        );
    }
    let cursor = search.cursor.trim();
    let before = if cursor.is_empty() {
        None
    } else {
        let parsed = parse_cursor(cursor);
        if parsed.is_none() {
            problem(
                "cursor",
                format!("`{cursor}` is not a cursor this server gave"),
            );
        }
        parsed
    };
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    Ok(CdrQuery {
        from,
        to,
        extension: Some(extension.to_string()).filter(|e| !e.is_empty()),
        disposition: Some(disposition.to_string()).filter(|d| !d.is_empty()),
        before,
        limit,
    })
}

/// One CSV field: quoted when it holds a separator, a quote or a line break (RFC 4180 §2),
/// and never read as a formula by a spreadsheet (a caller's number comes from the network).
pub fn csv_field(text: &str) -> String {
    let risky = text.starts_with(['=', '@', '\t', '\r'])
        || (text.starts_with(['+', '-'])
            && !text[1..].bytes().all(|b| b.is_ascii_digit() || b == b' '));
    let text = if risky {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The CSV header line.
pub const CSV_HEADER: &str = "id,call_id,caller,called,started_at,answered_at,ended_at,\
    duration_secs,disposition,hangup_cause,hangup_side,codec,caller_encrypted,callee_encrypted\r\n";

/// One CSV line of a call record (times as RFC 3339 UTC).
pub fn csv_line(cdr: &Cdr) -> String {
    let c = &cdr.call;
    let time = |t: u64| {
        i64::try_from(t)
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map_or_else(|| t.to_string(), |t| t.to_string())
    };
    let fields = [
        cdr.id.to_string(),
        csv_field(&c.call_id),
        csv_field(&c.caller),
        csv_field(&c.called),
        time(c.started_at),
        c.answered_at.map(time).unwrap_or_default(),
        time(c.ended_at),
        c.duration_secs.to_string(),
        csv_field(&c.disposition),
        csv_field(&c.hangup_cause),
        csv_field(&c.hangup_side),
        csv_field(c.codec.as_deref().unwrap_or("")),
        c.caller_encrypted.to_string(),
        c.callee_encrypted.to_string(),
    ];
    let mut line = fields.join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time(""), Ok(None));
        assert_eq!(parse_time("1800000000"), Ok(Some(1_800_000_000)));
        assert_eq!(parse_time("1970-01-01T01:00"), Ok(Some(3600)));
        assert_eq!(parse_time("1970-01-02"), Ok(Some(86400)));
        assert_eq!(parse_time("1970-01-01T02:00:00+01:00"), Ok(Some(3600)));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("1969-12-31").is_err());
    }

    #[test]
    fn problems_by_field() {
        let search = CdrSearch {
            from: "1970-01-02".into(),
            to: "1970-01-01".into(),
            extension: "10 00".into(),
            disposition: "lost".into(),
            cursor: "x".into(),
        };
        let Err(p) = query(&search, 10) else {
            panic!("accepted")
        };
        assert!(p.of("to").contains("after the start"));
        assert!(p.of("extension").contains("not a number"));
        assert!(p.of("disposition").contains("answered, busy"));
        assert!(p.of("cursor").contains("cursor"));
        assert!(p.of("from").is_empty());

        let ok = query(
            &CdrSearch {
                extension: " 1000 ".into(),
                disposition: "busy".into(),
                cursor: "100-7".into(),
                ..CdrSearch::default()
            },
            5,
        );
        let Ok(q) = ok else { panic!("refused") };
        assert_eq!(q.extension.as_deref(), Some("1000"));
        assert_eq!(q.before, Some((100, 7)));
        assert_eq!(q.limit, 5);
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("1000"), "1000");
        assert_eq!(csv_field("+4930123"), "+4930123");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-1+2"), "'-1+2");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    }
}
