//! Plain aligned text tables and time formatting for the CLI's listings.

use pbx_engine::date::civil_from_days;
use std::fmt::Write;

/// Formats `rows` under `header`, columns separated by two spaces, no trailing spaces.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(cur) => *cur = (*cur).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let width = widths.get(i).copied().unwrap_or(0);
            let _ = write!(line, "{cell:<width$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `2024-05-06 07:08:09Z` for unix seconds (UTC).
pub fn format_unix(t: u64) -> String {
    let t = i64::try_from(t).unwrap_or(i64::MAX);
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// "in 59s (2024-...)" or "expired (2024-...)".
pub fn format_expiry(at: u64, now: u64) -> String {
    if at > now {
        let left = at - now;
        format!("in {left}s ({})", format_unix(at))
    } else {
        format!("expired ({})", format_unix(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let rows = vec![
            vec!["1000".to_string(), "Alice".to_string(), String::new()],
            vec!["10".to_string(), "Bob Builder".to_string(), "x".to_string()],
        ];
        assert_eq!(
            render(&["NUMBER", "NAME", "PIN"], &rows),
            "NUMBER  NAME         PIN\n1000    Alice\n10      Bob Builder  x\n"
        );
    }

    #[test]
    fn unix_times() {
        assert_eq!(format_unix(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_unix(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(format_unix(1_700_000_000), "2023-11-14 22:13:20Z");
        assert_eq!(format_expiry(100, 40), "in 60s (1970-01-01 00:01:40Z)");
        assert_eq!(format_expiry(40, 100), "expired (1970-01-01 00:00:40Z)");
    }
}
