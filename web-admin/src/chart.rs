//! The dashboard's bar chart of calls per hour, laid out on the server: the template draws
//! the SVG from these numbers, so the chart needs no script and prints as it shows.

/// One hour's bar.
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub calls: u64,
    /// `13:00 UTC: 5 calls`, the bar's tooltip.
    pub title: String,
}

/// A label under the axis.
pub struct Tick {
    pub x: u32,
    pub label: String,
}

pub struct HourChart {
    pub width: u32,
    pub height: u32,
    /// Where the bars stand.
    pub baseline: u32,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    /// The tallest bar's count (the scale), at least 1.
    pub max: u64,
    pub total: u64,
}

const HOURS: u64 = 24;
const WIDTH: u32 = 720;
const HEIGHT: u32 = 180;
const BASELINE: u32 = 156;
const TOP: u32 = 12;
const SLOT: u32 = WIDTH / HOURS as u32;

/// The 24 hours up to and including the one `now` is in, from `counts` (an hour's start in
/// Unix seconds, calls); hours missing from `counts` had none.
pub fn last_day(now: u64, counts: &[(u64, u64)]) -> HourChart {
    let first = (now / 3600).saturating_sub(HOURS - 1) * 3600;
    let per_hour: Vec<u64> = (0..HOURS)
        .map(|i| {
            let start = first + i * 3600;
            counts
                .iter()
                .filter(|(h, _)| *h == start)
                .map(|(_, n)| *n)
                .sum()
        })
        .collect();
    let max = per_hour.iter().copied().max().unwrap_or(0).max(1);
    let room = u64::from(BASELINE - TOP);
    let mut bars = Vec::new();
    let mut ticks = Vec::new();
    for (i, calls) in per_hour.iter().copied().enumerate() {
        let start = first + i as u64 * 3600;
        let hour = start / 3600 % 24;
        let x = i as u32 * SLOT;
        // A bar of at least 2 px for any call, so one call in a busy day still shows.
        let mut height = u32::try_from(calls * room / max).unwrap_or(0);
        if calls > 0 {
            height = height.max(2);
        }
        bars.push(Bar {
            x: x + 3,
            y: BASELINE - height,
            width: SLOT - 6,
            height,
            calls,
            title: format!(
                "{hour:02}:00 UTC: {calls} call{}",
                if calls == 1 { "" } else { "s" }
            ),
        });
        if hour.is_multiple_of(3) {
            ticks.push(Tick {
                x: x + SLOT / 2,
                label: format!("{hour:02}h"),
            });
        }
    }
    HourChart {
        width: WIDTH,
        height: HEIGHT,
        baseline: BASELINE,
        total: per_hour.iter().sum(),
        bars,
        ticks,
        max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_24_hours_with_the_busiest_full_height() {
        let now = 100 * 3600 + 1800; // half past hour 100 (04:30 UTC)
        let chart = last_day(now, &[(100 * 3600, 4), (90 * 3600, 2), (70 * 3600, 9)]);
        assert_eq!(chart.bars.len(), 24);
        assert_eq!(chart.total, 6, "hour 70 is more than a day ago");
        assert_eq!(chart.max, 4);
        let last = chart.bars.last().map(|b| (b.calls, b.height, b.y));
        assert_eq!(last, Some((4, BASELINE - TOP, TOP)));
        assert_eq!(chart.bars[13].calls, 2);
        assert_eq!(chart.bars[13].height, (BASELINE - TOP) / 2);
        assert_eq!(chart.bars[0].height, 0);
        assert_eq!(chart.bars[23].title, "04:00 UTC: 4 calls");
        assert_eq!(chart.ticks.len(), 8);
    }

    #[test]
    fn an_empty_day() {
        let chart = last_day(5 * 3600, &[]);
        assert_eq!((chart.total, chart.max), (0, 1));
        assert!(chart.bars.iter().all(|b| b.height == 0 && b.y == BASELINE));
    }
}
