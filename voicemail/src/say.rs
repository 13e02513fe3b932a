//! Saying numbers, digits and dates with the recorded words of `sounds/en/digits/`, the way
//! Asterisk's English `ast_say_number`, `ast_say_digits` and `ast_say_date_with_format` do,
//! so that callers used to it hear the same sentences. Pure functions: a value in, the
//! prompt names out.

use jiff::civil::{Date, DateTime};

use crate::io::Sound;

fn digit_word(n: u64) -> Sound {
    Sound::prompt(format!("digits/{n}"))
}

/// A number as words: 0 "zero", 21 "twenty one", 115 "one hundred fifteen", 2026 "two
/// thousand twenty six", 1 000 000 "one million" (no "and", as Asterisk's English).
pub fn number(n: u64) -> Vec<Sound> {
    let mut out = Vec::new();
    if n == 0 {
        out.push(digit_word(0));
    } else {
        push_number(n, &mut out);
    }
    out
}

fn push_number(n: u64, out: &mut Vec<Sound>) {
    const SCALES: [(u64, &str); 3] = [
        (1_000_000_000, "digits/billion"),
        (1_000_000, "digits/million"),
        (1_000, "digits/thousand"),
    ];
    let mut n = n;
    for (scale, word) in SCALES {
        if n >= scale {
            push_number(n / scale, out);
            out.push(Sound::prompt(word));
            n %= scale;
        }
    }
    if n >= 100 {
        out.push(digit_word(n / 100));
        out.push(Sound::prompt("digits/hundred"));
        n %= 100;
    }
    if n >= 20 {
        out.push(digit_word(n / 10 * 10));
        n %= 10;
    }
    if n > 0 {
        out.push(digit_word(n));
    }
}

/// Each digit on its own: "1001" is "one zero zero one"; `*` and `#` are "star" and
/// "pound"; anything else is skipped.
pub fn digits(text: &str) -> Vec<Sound> {
    text.chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(Sound::prompt(format!("digits/{c}"))),
            '*' => Some(Sound::prompt("digits/star")),
            '#' => Some(Sound::prompt("digits/pound")),
            _ => None,
        })
        .collect()
}

/// The day of the month as an ordinal: "first" .. "twentieth", "twenty" "first", "thirtieth",
/// "thirty" "first" (Asterisk's `d` format: the words `h-1`..`h-20`, `h-30`).
pub fn ordinal_day(day: i8) -> Vec<Sound> {
    match day {
        1..=20 | 30 => vec![Sound::prompt(format!("digits/h-{day}"))],
        21..=29 => vec![
            Sound::prompt("digits/20"),
            Sound::prompt(format!("digits/h-{}", day - 20)),
        ],
        31 => vec![Sound::prompt("digits/30"), Sound::prompt("digits/h-1")],
        _ => Vec::new(),
    }
}

/// The time of day, 12-hour: "three forty five p-m", "eleven oh five a-m", "twelve o'clock
/// p-m" (Asterisk's `IMp`).
pub fn time_of_day(t: DateTime) -> Vec<Sound> {
    let hour = u64::try_from(t.hour()).unwrap_or(0);
    let minute = u64::try_from(t.minute()).unwrap_or(0);
    let mut out = vec![digit_word(if hour % 12 == 0 { 12 } else { hour % 12 })];
    match minute {
        0 => out.push(Sound::prompt("digits/oclock")),
        1..=9 => {
            out.push(Sound::prompt("digits/oh"));
            out.push(digit_word(minute));
        }
        _ => out.extend(number(minute)),
    }
    out.push(Sound::prompt(if hour < 12 {
        "digits/a-m"
    } else {
        "digits/p-m"
    }));
    out
}

/// A date in full: "Tuesday March third two thousand twenty six" (Asterisk's `ABdY`).
pub fn full_date(d: Date) -> Vec<Sound> {
    let weekday = d.weekday().to_sunday_zero_offset();
    let mut out = vec![
        Sound::prompt(format!("digits/day-{weekday}")),
        Sound::prompt(format!("digits/mon-{}", d.month() - 1)),
    ];
    out.extend(ordinal_day(d.day()));
    out.extend(number(u64::try_from(d.year()).unwrap_or(0)));
    out
}

/// When a message arrived, as VoiceMailMain's envelope says it: "received [day] at
/// [time]", Asterisk's `'vm-received' q 'digits/at' IMp`. The day (`q`) is nothing for
/// today, "yesterday", the weekday within the last week, else the full date. `today` is the
/// listener's local date; `at` is local time too.
pub fn received(at: DateTime, today: Date) -> Vec<Sound> {
    let mut out = vec![Sound::prompt("vm-received")];
    let days_ago = today
        .since(at.date())
        .map_or(i32::MIN, |span| span.get_days());
    match days_ago {
        0 => {}
        1 => out.push(Sound::prompt("digits/yesterday")),
        2..=6 => out.push(Sound::prompt(format!(
            "digits/day-{}",
            at.weekday().to_sunday_zero_offset()
        ))),
        _ => out.extend(full_date(at.date())),
    }
    out.push(Sound::prompt("digits/at"));
    out.extend(time_of_day(at));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prompt names, without `digits/`, space-separated.
    fn said(sounds: &[Sound]) -> String {
        sounds
            .iter()
            .map(|s| match s {
                Sound::Prompt(p) => p.strip_prefix("digits/").unwrap_or(p).to_string(),
                Sound::File(f) => format!("<{f}>"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn numbers_as_asterisk_says_them() {
        let cases: [(u64, &str); 16] = [
            (0, "0"),
            (3, "3"),
            (13, "13"),
            (20, "20"),
            (21, "20 1"),
            (99, "90 9"),
            (100, "1 hundred"),
            (101, "1 hundred 1"),
            (115, "1 hundred 15"),
            (342, "3 hundred 40 2"),
            (1000, "1 thousand"),
            (1001, "1 thousand 1"),
            (2026, "2 thousand 20 6"),
            (12_345, "12 thousand 3 hundred 40 5"),
            (1_000_000, "1 million"),
            (3_000_400_017, "3 billion 4 hundred thousand 17"),
        ];
        for (n, words) in cases {
            assert_eq!(said(&number(n)), words, "{n}");
        }
    }

    #[test]
    fn digits_one_by_one() {
        assert_eq!(said(&digits("1001")), "1 0 0 1");
        assert_eq!(said(&digits("*97#")), "star 9 7 pound");
        assert_eq!(said(&digits("+49 30-1")), "4 9 3 0 1");
        assert!(digits("").is_empty());
    }

    #[test]
    fn ordinals_of_days() {
        let got: Vec<String> = [1, 2, 11, 20, 21, 29, 30, 31]
            .iter()
            .map(|&d| said(&ordinal_day(d)))
            .collect();
        assert_eq!(
            got,
            [
                "h-1", "h-2", "h-11", "h-20", "20 h-1", "20 h-9", "h-30", "30 h-1"
            ]
        );
        assert!(ordinal_day(0).is_empty() && ordinal_day(32).is_empty());
    }

    #[test]
    fn times_of_day() {
        let t = |h, m| jiff::civil::date(2026, 3, 3).at(h, m, 0, 0);
        assert_eq!(said(&time_of_day(t(0, 0))), "12 oclock a-m");
        assert_eq!(said(&time_of_day(t(9, 5))), "9 oh 5 a-m");
        assert_eq!(said(&time_of_day(t(12, 30))), "12 30 p-m");
        assert_eq!(said(&time_of_day(t(15, 45))), "3 40 5 p-m");
        assert_eq!(said(&time_of_day(t(23, 11))), "11 11 p-m");
    }

    #[test]
    fn envelope_dates_relative_to_today() {
        // Tuesday 3 March 2026.
        let today = jiff::civil::date(2026, 3, 3);
        let at = |d: Date, h, m| d.at(h, m, 0, 0);
        assert_eq!(
            said(&received(at(today, 15, 45), today)),
            "vm-received at 3 40 5 p-m"
        );
        let yesterday = jiff::civil::date(2026, 3, 2);
        assert_eq!(
            said(&received(at(yesterday, 8, 0), today)),
            "vm-received yesterday at 8 oclock a-m"
        );
        // Within the week: the weekday (Thursday 26 February is day-4).
        let thursday = jiff::civil::date(2026, 2, 26);
        assert_eq!(
            said(&received(at(thursday, 10, 7), today)),
            "vm-received day-4 at 10 oh 7 a-m"
        );
        // Older: weekday, month, ordinal day, year.
        let older = jiff::civil::date(2025, 12, 21);
        assert_eq!(
            said(&received(at(older, 13, 0), today)),
            "vm-received day-0 mon-11 20 h-1 2 thousand 20 5 at 1 oclock p-m"
        );
        // A clock that ran ahead (received "tomorrow"): the full date, not a weekday.
        let ahead = jiff::civil::date(2026, 3, 4);
        assert_eq!(
            said(&received(at(ahead, 9, 30), today)),
            "vm-received day-3 mon-2 h-4 2 thousand 20 6 at 9 30 a-m"
        );
    }
}
