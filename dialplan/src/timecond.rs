//! `if_time` conditions: weekdays, time ranges and dates in a named time zone. Evaluated on
//! the local wall-clock time of that zone, so a rule for 08:00-18:00 stays right across DST.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// A set of weekdays: bit 0 is Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weekdays(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(name: &str) -> Result<u8, String> {
    let lower = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| lower.len() >= 3 && d.starts_with(&lower[..3]) && lower.starts_with(d))
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| format!("`{name}` is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
}

impl Weekdays {
    pub const NONE: Weekdays = Weekdays(0);

    /// Adds `mon` or a range `mon-fri` (`fri-mon` wraps over the weekend).
    pub fn add(&mut self, text: &str) -> Result<(), String> {
        let (from, to) = match text.split_once('-') {
            Some((a, b)) => (day_index(a)?, day_index(b)?),
            None => {
                let d = day_index(text)?;
                (d, d)
            }
        };
        let mut d = from;
        loop {
            self.0 |= 1 << d;
            if d == to {
                return Ok(());
            }
            d = (d + 1) % 7;
        }
    }

    fn contains(self, day: u8) -> bool {
        self.0 & (1 << day) != 0
    }
}

/// `08:00-18:00`, minutes after midnight; the end is excluded; `22:00-06:00` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    start: u16,
    end: u16,
}

fn minutes(text: &str, whole: &str) -> Result<u16, String> {
    let bad = || format!("`{whole}`: expected HH:MM-HH:MM, such as 08:00-18:00");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m > 0) {
        return Err(format!("`{whole}`: {text} is not a time of day"));
    }
    Ok(h * 60 + m)
}

impl TimeRange {
    pub fn parse(text: &str) -> Result<TimeRange, String> {
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| format!("`{text}`: expected HH:MM-HH:MM, such as 08:00-18:00"))?;
        let range = TimeRange {
            start: minutes(a, text)?,
            end: minutes(b, text)?,
        };
        if range.start == range.end {
            return Err(format!("`{text}`: the range is empty"));
        }
        Ok(range)
    }

    fn contains(self, minute: u16) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

/// A date (`2026-04-03`), a yearly date (`12-25`), or a range of either (`12-24..12-26`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSpec {
    yearly: bool,
    /// year*10000 + month*100 + day (year 0 when yearly).
    start: i32,
    end: i32,
}

fn day_key(text: &str, whole: &str) -> Result<(bool, i32), String> {
    let bad = || format!("`{whole}`: expected YYYY-MM-DD, MM-DD or a range FROM..TO");
    let parts: Vec<&str> = text.trim().split('-').collect();
    let number = |s: &str| s.parse::<i16>().map_err(|_| bad());
    let (yearly, year, month, day) = match parts.as_slice() {
        [m, d] if m.len() == 2 && d.len() == 2 => (true, 2000, number(m)?, number(d)?),
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            (false, number(y)?, number(m)?, number(d)?)
        }
        _ => return Err(bad()),
    };
    let month_day = i8::try_from(month).ok().zip(i8::try_from(day).ok());
    let Some(date) = month_day.and_then(|(m, d)| Date::new(year, m, d).ok()) else {
        return Err(format!("`{whole}`: {text} is not a date"));
    };
    let year = if yearly { 0 } else { i32::from(date.year()) };
    Ok((
        yearly,
        year * 10000 + i32::from(date.month()) * 100 + i32::from(date.day()),
    ))
}

impl DateSpec {
    pub fn parse(text: &str) -> Result<DateSpec, String> {
        let (a, b) = text.split_once("..").unwrap_or((text, text));
        let (yearly, start) = day_key(a, text)?;
        let (yearly_end, end) = day_key(b, text)?;
        if yearly != yearly_end {
            return Err(format!("`{text}`: both ends need a year, or neither"));
        }
        if !yearly && end < start {
            return Err(format!("`{text}`: the range ends before it starts"));
        }
        Ok(DateSpec { yearly, start, end })
    }

    fn contains(self, date: Date) -> bool {
        let month_day = i32::from(date.month()) * 100 + i32::from(date.day());
        if self.yearly {
            if self.start <= self.end {
                (self.start..=self.end).contains(&month_day)
            } else {
                month_day >= self.start || month_day <= self.end
            }
        } else {
            (self.start..=self.end).contains(&(i32::from(date.year()) * 10000 + month_day))
        }
    }
}

/// Looks a time zone up in the tz database bundled into the binary (never the host's files).
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!(
            "unknown time zone `{name}` (use an IANA name such as \"Europe/Berlin\" or \"UTC\")"
        )
    })
}

/// The condition of one `if_time` step: true when every part given holds.
#[derive(Debug, Clone)]
pub struct TimeCondition {
    pub zone_name: String,
    pub zone: TimeZone,
    pub weekdays: Option<Weekdays>,
    pub times: Vec<TimeRange>,
    pub dates: Vec<DateSpec>,
    /// Dates of the holiday lists named in `except_holidays`: the condition is false on them.
    pub except: Vec<DateSpec>,
}

impl TimeCondition {
    /// The local time of `now` in the condition's zone.
    pub fn local(&self, now: Timestamp) -> DateTime {
        now.to_zoned(self.zone.clone()).datetime()
    }

    pub fn holds(&self, now: Timestamp) -> bool {
        let local = self.local(now);
        let date = local.date();
        let day = date.weekday().to_monday_zero_offset();
        let minute = u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute()))
            .unwrap_or_default();
        let weekday_ok = self
            .weekdays
            .is_none_or(|w| u8::try_from(day).is_ok_and(|d| w.contains(d)));
        let time_ok = self.times.is_empty() || self.times.iter().any(|t| t.contains(minute));
        let date_ok = self.dates.is_empty() || self.dates.iter().any(|d| d.contains(date));
        let holiday = self.except.iter().any(|d| d.contains(date));
        weekday_ok && time_ok && date_ok && !holiday
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office_hours(zone: &str) -> TimeCondition {
        let mut weekdays = Weekdays::NONE;
        weekdays.add("mon-fri").unwrap_or_default();
        TimeCondition {
            zone_name: zone.into(),
            zone: time_zone(zone).unwrap_or(TimeZone::UTC),
            weekdays: Some(weekdays),
            times: vec![TimeRange::parse("08:00-18:00").unwrap_or(TimeRange { start: 0, end: 1 })],
            dates: vec![],
            except: vec![DateSpec::parse("12-25").unwrap_or(DateSpec {
                yearly: true,
                start: 0,
                end: 0,
            })],
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn berlin_office_hours_follow_the_dst_change() {
        let c = office_hours("Europe/Berlin");
        // Friday 27 March 2026, 07:30 UTC = 08:30 CET: open.
        assert!(c.holds(at("2026-03-27T07:30:00Z")));
        // Monday 30 March 2026 (after the change on Sunday 29th), 06:30 UTC = 08:30 CEST: open,
        // although 06:30 UTC was 07:30 local (closed) the week before.
        assert!(c.holds(at("2026-03-30T06:30:00Z")));
        assert!(!c.holds(at("2026-03-23T06:30:00Z")));
        // 16:30 UTC = 18:30 CEST: closed; a week before it was 17:30 CET: open.
        assert!(!c.holds(at("2026-03-30T16:30:00Z")));
        assert!(c.holds(at("2026-03-23T16:30:00Z")));
        // Sunday of the change itself: closed (weekend).
        assert!(!c.holds(at("2026-03-29T09:00:00Z")));
        // Autumn: Monday 26 October 2026 07:30 UTC = 08:30 CET: open.
        assert!(c.holds(at("2026-10-26T07:30:00Z")));
        // Christmas is a holiday, even on a Friday in office hours.
        assert!(!c.holds(at("2026-12-25T10:00:00Z")));
    }

    #[test]
    fn parts_parse_and_reject() {
        let mut w = Weekdays::NONE;
        assert!(w.add("fri-mon").is_ok());
        assert!(w.contains(4) && w.contains(6) && w.contains(0) && !w.contains(2));
        assert!(Weekdays(0).add("funday").is_err());
        assert!(
            TimeRange::parse("22:00-06:00").is_ok_and(|r| r.contains(23 * 60) && r.contains(60))
        );
        assert!(TimeRange::parse("08:00-24:00").is_ok());
        for bad in ["8-18", "08:00-25:00", "08:61-09:00", "10:00-10:00"] {
            assert!(TimeRange::parse(bad).is_err(), "{bad}");
        }
        assert!(DateSpec::parse("12-24..12-26").is_ok());
        assert!(
            DateSpec::parse("12-31..01-01").is_ok_and(|d| d.contains(Date::constant(2026, 1, 1)))
        );
        for bad in [
            "2026-02-30",
            "13-01",
            "2026-12-24..12-26",
            "2026-12-26..2026-12-24",
            "x",
        ] {
            assert!(DateSpec::parse(bad).is_err(), "{bad}");
        }
        assert!(time_zone("Mars/Olympus").is_err());
        assert!(time_zone("America/New_York").is_ok());
    }
}
