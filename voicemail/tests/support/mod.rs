//! A small simulator for the voicemail machines: virtual time, and the shell's side played
//! by the test (finish a play, answer the store, press keys, let time pass).
#![allow(dead_code)] // each test file uses a different subset

use std::time::{Duration, Instant};

use pbx_voicemail::{Input, Machine, Output, RecordEnd, Sound, StoreAnswer, StoreRequest};

pub fn t0() -> Instant {
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

/// The words of a play, `digits/` dropped, files as `<path>`.
pub fn said(sounds: &[Sound]) -> String {
    sounds
        .iter()
        .map(|s| match s {
            Sound::Prompt(p) => p.strip_prefix("digits/").unwrap_or(p).to_string(),
            Sound::File(f) => format!("<{f}>"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub struct Sim<M: Machine> {
    pub m: M,
    pub now: Instant,
    /// Everything the machine asked for, in order.
    pub log: Vec<Output>,
    /// The play in progress, as the shell sees it.
    pub playing: Option<(u64, Vec<Sound>)>,
    pub recording: Option<(u64, String)>,
    /// The last request that waits for an answer.
    pub asked: Option<(u64, StoreRequest)>,
    /// Fire-and-forget writes, in order.
    pub writes: Vec<StoreRequest>,
    /// Where the last drain started in `log`.
    mark: usize,
}

impl<M: Machine> Sim<M> {
    pub fn new(m: M, now: Instant) -> Sim<M> {
        let mut s = Sim {
            m,
            now,
            log: Vec::new(),
            playing: None,
            recording: None,
            asked: None,
            writes: Vec::new(),
            mark: 0,
        };
        s.drain();
        s
    }

    /// Takes the machine's outputs, playing the shell's part of them.
    pub fn drain(&mut self) {
        while let Some(o) = self.m.poll_output() {
            match &o {
                Output::Play { id, sounds } => self.playing = Some((*id, sounds.clone())),
                Output::StopPlay { id } => {
                    assert_eq!(
                        self.playing.as_ref().map(|p| p.0),
                        Some(*id),
                        "stops what plays"
                    );
                    self.playing = None;
                }
                Output::Record { id, path, .. } => {
                    assert!(self.playing.is_none(), "records while playing");
                    self.recording = Some((*id, path.clone()));
                }
                Output::Store { id, request } => match request {
                    StoreRequest::Mailbox { .. }
                    | StoreRequest::CheckPin { .. }
                    | StoreRequest::Messages { .. } => self.asked = Some((*id, request.clone())),
                    _ => self.writes.push(request.clone()),
                },
                _ => {}
            }
            self.log.push(o);
        }
    }

    /// What came out since the last call (and drains).
    pub fn news(&mut self) -> Vec<Output> {
        self.drain();
        let news = self.log[self.mark..].to_vec();
        self.mark = self.log.len();
        news
    }

    pub fn input(&mut self, input: Input) {
        self.m.handle_input(self.now, input);
        self.drain();
    }

    /// What is playing now, as words.
    pub fn hearing(&self) -> String {
        self.playing
            .as_ref()
            .map(|(_, s)| said(s))
            .unwrap_or_default()
    }

    /// The current play runs to its end; returns what it said.
    pub fn listen(&mut self) -> String {
        let (id, sounds) = self
            .playing
            .take()
            .unwrap_or_else(|| panic!("nothing is playing; log: {:?}", self.log));
        self.input(Input::PlayFinished { id });
        said(&sounds)
    }

    pub fn key(&mut self, d: char) {
        self.input(Input::Digit(d));
    }

    pub fn keys(&mut self, ds: &str) {
        for d in ds.chars() {
            self.key(d);
        }
    }

    /// Answers the pending store request.
    pub fn answer(&mut self, answer: StoreAnswer) -> StoreRequest {
        let (id, request) = self
            .asked
            .take()
            .unwrap_or_else(|| panic!("no store request pending; log: {:?}", self.log));
        self.input(Input::Store { id, answer });
        request
    }

    /// The recording ends after `secs` seconds, for `end`.
    pub fn recorded(&mut self, secs: u64, end: RecordEnd) -> String {
        let (id, path) = self
            .recording
            .take()
            .unwrap_or_else(|| panic!("nothing is recording; log: {:?}", self.log));
        self.input(Input::RecordFinished {
            id,
            duration: Duration::from_secs(secs),
            end,
        });
        path
    }

    /// Lets `d` pass, acting on every deadline on the way.
    pub fn wait(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.m.poll_timeout().filter(|&at| at <= end) {
            assert!(at >= self.now, "a deadline in the past");
            self.now = at;
            self.m.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
    }

    pub fn hung_up(&self) -> bool {
        self.log.last() == Some(&Output::Hangup)
    }
}
