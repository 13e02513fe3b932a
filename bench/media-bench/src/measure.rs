//! What the generator measures: per-stream RFC 3550 jitter, latency percentiles, and the
//! relay process's CPU and memory read from /proc (the same kernel counters getrusage(2)
//! reports, but readable for another process while it runs).

use std::fs;

/// RFC 3550 §6.4.1 interarrival jitter, in nanoseconds instead of timestamp units (the
/// generator knows the send time exactly).
#[derive(Default)]
pub struct Jitter {
    last_transit: Option<i64>,
    j: f64,
}

impl Jitter {
    pub fn update(&mut self, transit_ns: i64) {
        if let Some(prev) = self.last_transit {
            let d = (transit_ns - prev).unsigned_abs() as f64;
            // J(i) = J(i-1) + (|D(i-1,i)| - J(i-1))/16
            self.j += (d - self.j) / 16.0;
        }
        self.last_transit = Some(transit_ns);
    }

    pub fn micros(&self) -> f64 {
        self.j / 1000.0
    }
}

/// The `p`-th percentile (0..=100) of sorted samples.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// User + system CPU time of process `pid`, in microseconds (/proc/PID/stat fields 14, 15).
pub fn cpu_micros(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields resume after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1_000_000 / clock_ticks())
}

/// VmRSS of process `pid` in kB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn clock_ticks() -> u64 {
    // USER_HZ is 100 on every Linux architecture this runs on.
    100
}
