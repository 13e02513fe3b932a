//! In-band DTMF: the key tones inside the audio of a phone that sends them as sound (ITU-T
//! Q.23: one of four low "row" tones plus one of four high "column" tones), found by a bank
//! of Goertzel filters over blocks of [`BLOCK`] samples (12.75 ms at 8 kHz), the way
//! spandsp and Asterisk's `dsp.c` do it.
//!
//! A block holds a key when all of these hold (the thresholds are the usual receiver's,
//! Q.24 and the Asterisk/spandsp defaults):
//!
//! - both tones at least [`MIN_TONE_DBM0`] (Q.24 asks receivers to take -25 dBm0 or less);
//! - the twist is within limits: the high tone at most [`NORMAL_TWIST_DB`] above the low one
//!   (phones boost the high group), the low one at most [`REVERSE_TWIST_DB`] above the high;
//! - each tone is the clear peak of its group, [`PEAK_MARGIN_DB`] over the other three;
//! - the second harmonics are low ([`HARMONIC_MARGIN_DB`] under the tones): a voice is
//!   rich in harmonics, a DTMF generator is not;
//! - the two tones carry at least [`TONE_SHARE`] of the block's energy: a voice, noise or
//!   music spreads its energy, a key does not. A block only partly covered by a tone has that
//!   part as its share, so a block counts only when the tone fills 80 % of it or more.
//!
//! A key starts after [`MIN_BLOCKS`] blocks in a row hold it and ends after [`END_BLOCKS`]
//! blocks without it (Asterisk's hits-to-begin and misses-to-end). With 80 % blocks that
//! means: a tone of 40 ms or more always spans two good blocks and is taken, one of 20 ms
//! never does; a 40 ms pause between keys always parts them, a 10 ms drop-out inside a tone
//! (it spoils two blocks at most) does not. The detector is sans-IO: samples and the time of
//! the first one in, events out.

use std::time::{Duration, Instant};

use super::dtmf::InbandDetector;

/// Samples per second (G.711, RFC 3551 §4.5.14).
pub const RATE: u32 = 8000;
/// Samples per analysis block: 12.75 ms, long enough to tell neighbouring row tones apart
/// (73 Hz; the filters are 78 Hz wide), short enough to time a 40 ms key.
pub const BLOCK: usize = 102;
/// The quietest tone taken, in dBm0 (0 dBm0 is a sine of amplitude 22 670 in 16-bit linear
/// G.711, whose maximum is +3.17 dBm0).
pub const MIN_TONE_DBM0: f32 = -36.0;
pub const NORMAL_TWIST_DB: f32 = 8.0;
pub const REVERSE_TWIST_DB: f32 = 4.0;
pub const PEAK_MARGIN_DB: f32 = 6.0;
/// Both second harmonics together must be this far under both tones together. Not more:
/// with 102-sample blocks, the 1336 Hz tone of `2`, `5`, `8`, `0` leaks into the 1394 Hz
/// filter (twice 697 Hz) at -10 dB.
pub const HARMONIC_MARGIN_DB: f32 = 6.0;
/// The least share of a block's energy the two tones carry.
pub const TONE_SHARE: f32 = 0.8;
/// Blocks in a row that start a key (2 × 12.75 ms).
pub const MIN_BLOCKS: u32 = 2;
/// Blocks in a row without it that end a key (3 × 12.75 ms).
pub const END_BLOCKS: u32 = 3;

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// The amplitude of a 0 dBm0 sine, as a share of full scale (32768).
const DBM0_AMPLITUDE: f32 = 22_670.0 / 32_768.0;

/// What the detector found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InbandEvent {
    /// A key is down since `at` (reported [`MIN_BLOCKS`] blocks later).
    Start { digit: char, at: Instant },
    /// The key went up at `at`, after `duration`.
    End {
        digit: char,
        at: Instant,
        duration: Duration,
    },
}

/// One Goertzel filter (a single DFT bin at any frequency, computed sample by sample).
#[derive(Clone, Copy)]
struct Goertzel {
    coef: f32,
    s1: f32,
    s2: f32,
}

impl Goertzel {
    fn new(freq: f32) -> Goertzel {
        Goertzel {
            coef: 2.0 * (std::f32::consts::TAU * freq / RATE as f32).cos(),
            s1: 0.0,
            s2: 0.0,
        }
    }

    fn push(&mut self, x: f32) {
        let s0 = x + self.coef * self.s1 - self.s2;
        self.s2 = self.s1;
        self.s1 = s0;
    }

    /// The power of the block's component at this frequency (A²/2 for a sine of amplitude
    /// A filling the block), and a reset for the next block.
    fn take_power(&mut self) -> f32 {
        let mag2 = self.s1 * self.s1 + self.s2 * self.s2 - self.coef * self.s1 * self.s2;
        self.s1 = 0.0;
        self.s2 = 0.0;
        let n = BLOCK as f32;
        2.0 * mag2.max(0.0) / (n * n)
    }
}

/// Where the detector is between blocks.
#[derive(Clone, Copy, Debug)]
enum State {
    Idle,
    /// `blocks` blocks in a row held `digit`, the first starting at `since`.
    Pending {
        digit: char,
        blocks: u32,
        since: Instant,
    },
    /// `digit` is down since `since`; its last block ended at `last`, `misses` blocks ago.
    Down {
        digit: char,
        since: Instant,
        last: Instant,
        misses: u32,
    },
}

/// The in-band DTMF detector of one leg. See the module documentation.
pub struct InbandDtmf {
    /// Rows, columns, then the second harmonics of rows and columns.
    filters: [Goertzel; 16],
    in_block: usize,
    energy: f32,
    min_power: f32,
    state: State,
}

impl Default for InbandDtmf {
    fn default() -> Self {
        InbandDtmf::new()
    }
}

impl std::fmt::Debug for InbandDtmf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InbandDtmf")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn ratio(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

/// The index and value of the largest of four.
fn peak(p: &[f32]) -> (usize, f32) {
    p.iter().copied().enumerate().fold(
        (0, f32::MIN),
        |best, (i, v)| if v > best.1 { (i, v) } else { best },
    )
}

impl InbandDtmf {
    pub fn new() -> InbandDtmf {
        let mut filters = [Goertzel::new(0.0); 16];
        let freqs = ROWS
            .iter()
            .chain(&COLS)
            .copied()
            .chain(ROWS.iter().chain(&COLS).map(|f| 2.0 * f));
        for (g, f) in filters.iter_mut().zip(freqs) {
            *g = Goertzel::new(f);
        }
        let a = DBM0_AMPLITUDE * 10f32.powf(MIN_TONE_DBM0 / 20.0);
        InbandDtmf {
            filters,
            in_block: 0,
            energy: 0.0,
            min_power: a * a / 2.0,
            state: State::Idle,
        }
    }

    /// Takes 8 kHz linear samples, the first of them heard at `at`; calls `out` for each
    /// key that started or ended in them.
    pub fn push(&mut self, at: Instant, pcm: &[i16], mut out: impl FnMut(InbandEvent)) {
        for (i, &s) in pcm.iter().enumerate() {
            let x = f32::from(s) / 32_768.0;
            self.energy += x * x;
            for g in &mut self.filters {
                g.push(x);
            }
            self.in_block += 1;
            if self.in_block == BLOCK {
                let end = at + sample_time(i + 1);
                let key = self.classify();
                self.step(end, key, &mut out);
            }
        }
    }

    /// The key the block just completed holds, if any; resets for the next block.
    fn classify(&mut self) -> Option<char> {
        let mut p = [0f32; 16];
        for (v, g) in p.iter_mut().zip(&mut self.filters) {
            *v = g.take_power();
        }
        let total = self.energy / BLOCK as f32;
        self.energy = 0.0;
        self.in_block = 0;

        let (r, row) = peak(&p[0..4]);
        let (c, col) = peak(&p[4..8]);
        let tones = row + col;
        let others_low = |group: &[f32], best: usize, top: f32| {
            group
                .iter()
                .enumerate()
                .all(|(i, &v)| i == best || v * ratio(PEAK_MARGIN_DB) <= top)
        };
        let hit = row >= self.min_power
            && col >= self.min_power
            && col <= row * ratio(NORMAL_TWIST_DB)
            && row <= col * ratio(REVERSE_TWIST_DB)
            && others_low(&p[0..4], r, row)
            && others_low(&p[4..8], c, col)
            && (p[8 + r] + p[12 + c]) * ratio(HARMONIC_MARGIN_DB) <= tones
            && tones >= TONE_SHARE * total;
        if hit { Some(KEYS[r][c]) } else { None }
    }

    /// Moves the state on by one block that ended at `end` and held `key`.
    fn step(&mut self, end: Instant, key: Option<char>, out: &mut impl FnMut(InbandEvent)) {
        let start = end.checked_sub(sample_time(BLOCK)).unwrap_or(end);
        self.state = match (self.state, key) {
            (State::Down { digit, since, .. }, Some(k)) if k == digit => State::Down {
                digit,
                since,
                last: end,
                misses: 0,
            },
            (
                State::Down {
                    digit,
                    since,
                    last,
                    misses,
                },
                None,
            ) => {
                if misses + 1 >= END_BLOCKS {
                    out(ended(digit, since, last));
                    State::Idle
                } else {
                    State::Down {
                        digit,
                        since,
                        last,
                        misses: misses + 1,
                    }
                }
            }
            (
                State::Down {
                    digit, since, last, ..
                },
                Some(k),
            ) => {
                // Another key without a pause: the first one is up.
                out(ended(digit, since, last));
                self.pending(k, 1, start, out)
            }
            (
                State::Pending {
                    digit,
                    blocks,
                    since,
                },
                Some(k),
            ) if k == digit => self.pending(k, blocks + 1, since, out),
            (_, Some(k)) => self.pending(k, 1, start, out),
            (_, None) => State::Idle,
        };
    }

    fn pending(
        &self,
        digit: char,
        blocks: u32,
        since: Instant,
        out: &mut impl FnMut(InbandEvent),
    ) -> State {
        if blocks >= MIN_BLOCKS {
            out(InbandEvent::Start { digit, at: since });
            let last = since + sample_time(BLOCK * blocks as usize);
            State::Down {
                digit,
                since,
                last,
                misses: 0,
            }
        } else {
            State::Pending {
                digit,
                blocks,
                since,
            }
        }
    }
}

fn ended(digit: char, since: Instant, last: Instant) -> InbandEvent {
    InbandEvent::End {
        digit,
        at: last,
        duration: last.saturating_duration_since(since),
    }
}

/// How long `samples` samples last.
fn sample_time(samples: usize) -> Duration {
    Duration::from_micros(samples as u64 * 1_000_000 / u64::from(RATE))
}

impl InbandDetector for InbandDtmf {
    /// A packet lasts 10-60 ms, so at most one key ends in it.
    fn audio(&mut self, now: Instant, pcm: &[i16]) -> Option<(char, Duration)> {
        let mut ended = None;
        self.push(now, pcm, |e| {
            if let InbandEvent::End {
                digit, duration, ..
            } = e
            {
                ended = Some((digit, duration));
            }
        });
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goertzel_power_of_a_sine_is_half_its_square() {
        let mut g = Goertzel::new(1000.0);
        for n in 0..BLOCK {
            let t = n as f32 / RATE as f32;
            g.push(0.5 * (std::f32::consts::TAU * 1000.0 * t).sin());
        }
        let p = g.take_power();
        assert!((p - 0.125).abs() < 0.01, "{p}");
        assert_eq!((g.s1, g.s2), (0.0, 0.0));
    }

    #[test]
    fn every_key_has_its_pair() {
        let keys: String = KEYS.iter().flatten().collect();
        assert_eq!(keys, "123A456B789C*0#D");
    }

    #[test]
    fn sample_times() {
        assert_eq!(sample_time(BLOCK), Duration::from_micros(12_750));
        assert_eq!(sample_time(8000), Duration::from_secs(1));
    }
}
