//! The dialplan's `say` step: a variable's value as the prompts that speak it
//! (`pbx_voicemail::say`, the same sayers as the voicemail menu).

use pbx_dialplan::SayKind;
use pbx_voicemail::{Sound, say};

/// The prompts that say `value` as `kind`; `None` when the value is not one (a `number`
/// that is not a whole number, a `date` that is no date).
pub(crate) fn sounds(kind: SayKind, value: &str, tz: &jiff::tz::TimeZone) -> Option<Vec<Sound>> {
    let value = value.trim();
    match kind {
        SayKind::Digits => {
            let out = say::digits(value);
            (!out.is_empty()).then_some(out)
        }
        SayKind::Number => value.parse::<u64>().ok().map(say::number),
        SayKind::Date => {
            let date = match unix(value, tz) {
                Some(at) => at.date(),
                None => value.parse::<jiff::civil::Date>().ok()?,
            };
            Some(say::full_date(date))
        }
        SayKind::Time => {
            let at = match unix(value, tz) {
                Some(at) => at,
                None => jiff::civil::Date::default().to_datetime(value.parse().ok()?),
            };
            Some(say::time_of_day(at))
        }
    }
}

/// Unix seconds as local civil time.
fn unix(value: &str, tz: &jiff::tz::TimeZone) -> Option<jiff::civil::DateTime> {
    let secs: i64 = value.parse().ok()?;
    let at = jiff::Timestamp::from_second(secs).ok()?;
    Some(at.to_zoned(tz.clone()).datetime())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: Option<Vec<Sound>>) -> Vec<String> {
        s.unwrap_or_default()
            .into_iter()
            .map(|s| match s {
                Sound::Prompt(p) => p,
                Sound::File(f) => f,
            })
            .collect()
    }

    #[test]
    fn each_kind_says_its_value_and_refuses_what_it_is_not() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(
            names(sounds(SayKind::Number, "250", &utc)),
            ["digits/2", "digits/hundred", "digits/50"]
        );
        assert_eq!(
            names(sounds(SayKind::Digits, "4711", &utc)),
            ["digits/4", "digits/7", "digits/1", "digits/1"]
        );
        assert!(sounds(SayKind::Number, "12abc", &utc).is_none());
        assert!(sounds(SayKind::Number, "", &utc).is_none());
        assert!(sounds(SayKind::Digits, "", &utc).is_none());
        // 2026-03-03 15:45 UTC, as unix seconds and as text.
        let date = names(sounds(SayKind::Date, "2026-03-03", &utc));
        assert_eq!(names(sounds(SayKind::Date, "1772552700", &utc)), date);
        assert!(date.contains(&"digits/day-2".to_string()), "{date:?}");
        let time = names(sounds(SayKind::Time, "15:45", &utc));
        assert_eq!(names(sounds(SayKind::Time, "1772552700", &utc)), time);
        assert!(sounds(SayKind::Date, "yesterday", &utc).is_none());
    }
}
