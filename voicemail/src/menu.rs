//! The voicemail menu (Asterisk's `VoiceMailMain`): `*97` for the caller's own mailbox (PIN
//! asked), `*98` for any (mailbox number, then PIN). docs/voicemail.md lists the keys.
//!
//! Login: "Comedian Mail. Mailbox?" (`vm-login`, `*98` only), "Password" (`vm-password`);
//! an entry ends with `#` or a pause. A wrong PIN, or any PIN for a mailbox that does not
//! exist or has none (the same answer, so mailboxes cannot be found by trying), is reported
//! as a security event for the ban rules; after `max_attempts` failures: "login incorrect,
//! goodbye" and the PBX hangs up.
//!
//! Then "you have N new and M old messages" (saved ones count as old) and the main menu;
//! playing a message says where it is ("first message", "message 3", "last message") and its
//! envelope ("received yesterday at 3 45 p-m, from phone number 2 0 0 1") before the message.
//! A new message is moved to the old folder when it is played. After each key's answer the
//! next message plays (Asterisk's `nextaftercmd`). A menu left unanswered is repeated, and
//! after `max_idle` times the PBX says goodbye.

use std::fmt;
use std::time::{Duration, Instant};

use jiff::civil::Date;

use crate::io::{
    Folder, GreetingKind, Input, Io, Machine, MailboxInfo, MessageInfo, Output, RecordEnd,
    RecordLimits, SecurityEvent, Sound, StoreAnswer, StoreRequest, prompts, spoken,
};
use crate::say;

/// The longest mailbox number or PIN taken; an entry this long ends by itself.
const MAX_ENTRY: usize = 16;

/// How one menu session behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MenuConfig {
    /// `Some` for `*97` (the caller's own); `None` for `*98` (asked).
    pub mailbox: Option<String>,
    /// Failed logins before the PBX hangs up (Asterisk's `maxlogins`, 3).
    pub max_attempts: u32,
    /// Silence that ends a number being typed, and that gives up on one not started.
    pub digit_timeout: Duration,
    /// Silence after a menu before it is repeated.
    pub menu_timeout: Duration,
    /// Menus left unanswered in a row before goodbye.
    pub max_idle: u32,
    pub greeting_limits: RecordLimits,
    /// Recorded greetings go to `{storage}/{mailbox}/greeting-{kind}-{tag}-{n}.wav`.
    pub storage: String,
    /// Unique to this call (the shell's choice), so recordings never overwrite a file.
    pub tag: String,
    /// The listener's local date, for "yesterday" and weekdays in envelopes.
    pub today: Date,
}

/// What comes after an announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Main,
    MessageMenu,
    PlayMessage,
    ChooseFolder,
    Options,
    Review(GreetingKind),
    Hangup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AskMailbox,
    AskPin,
    CheckPin,
    LoadMailbox,
    LoadMessages,
    /// The intro and main menu, or waiting for its key.
    Main,
    /// A message with its envelope is playing.
    Message,
    /// The keys after a message, or waiting for one.
    MessageMenu,
    ChooseFolder,
    Options,
    TempChoice,
    GreetingPrompt(GreetingKind),
    GreetingBeep(GreetingKind),
    GreetingRecording(GreetingKind),
    Review(GreetingKind),
    Listen(GreetingKind),
    NewPin,
    ConfirmPin,
    /// Saying something that needs no answer ("message deleted").
    Announce(Next),
    Goodbye,
    Done,
}

/// The menu machine. See the module documentation.
pub struct VoicemailMenu {
    cfg: MenuConfig,
    io: Io,
    state: State,
    mailbox: String,
    info: MailboxInfo,
    /// Every message of the mailbox, oldest first.
    messages: Vec<MessageInfo>,
    folder: Folder,
    /// The ids of the current folder's messages, as when it was opened.
    list: Vec<i64>,
    cur: usize,
    /// Digits typed so far (a mailbox number or a PIN).
    entry: String,
    /// The new PIN typed once, waiting for its confirmation.
    new_pin: Option<String>,
    attempts: u32,
    idle: u32,
    /// The greeting being recorded and how many were recorded this call.
    greeting_path: Option<String>,
    recordings: u32,
    gone: bool,
}

// Hand-written: the entry and the new PIN are secrets.
impl fmt::Debug for VoicemailMenu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VoicemailMenu")
            .field("state", &self.state)
            .field("mailbox", &self.mailbox)
            .field("folder", &self.folder)
            .field("cur", &self.cur)
            .finish_non_exhaustive()
    }
}

/// "You have N new and M old messages", as Asterisk's `vm_intro_en`.
pub fn intro(new: u64, old: u64) -> Vec<Sound> {
    let mut out = vec![Sound::prompt("vm-youhave")];
    let plural = |n: u64| Sound::prompt(if n == 1 { "vm-message" } else { "vm-messages" });
    if new > 0 {
        out.extend(say::number(new));
        out.push(Sound::prompt("vm-INBOX"));
        out.push(if old > 0 {
            Sound::prompt("vm-and")
        } else {
            plural(new)
        });
    }
    if old > 0 {
        out.extend(say::number(old));
        out.push(Sound::prompt("vm-Old"));
        out.push(plural(old));
    }
    if new == 0 && old == 0 {
        out.extend(prompts(&["vm-no", "vm-messages"]));
    }
    out
}

fn pin_ok(pin: &str) -> bool {
    (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

impl VoicemailMenu {
    /// Starts with "Mailbox?" (`*98`) or "Password" (`*97`).
    pub fn new(_now: Instant, cfg: MenuConfig) -> VoicemailMenu {
        let mut m = VoicemailMenu {
            mailbox: cfg.mailbox.clone().unwrap_or_default(),
            cfg,
            io: Io::default(),
            state: State::Done,
            info: MailboxInfo::default(),
            messages: Vec::new(),
            folder: Folder::New,
            list: Vec::new(),
            cur: 0,
            entry: String::new(),
            new_pin: None,
            attempts: 0,
            idle: 0,
            greeting_path: None,
            recordings: 0,
            gone: false,
        };
        if m.cfg.mailbox.is_some() {
            m.say(&["vm-password"], State::AskPin);
        } else {
            m.say(&["vm-login"], State::AskMailbox);
        }
        m
    }

    fn say(&mut self, names: &[&str], state: State) {
        self.play(prompts(names), state);
    }

    fn play(&mut self, sounds: Vec<Sound>, state: State) {
        self.io.play(sounds);
        self.state = state;
    }

    fn announce(&mut self, names: &[&str], next: Next) {
        self.say(names, State::Announce(next));
    }

    fn goodbye(&mut self) {
        self.say(&["vm-goodbye"], State::Goodbye);
    }

    fn finish(&mut self) {
        self.io.timer = None;
        self.state = State::Done;
    }

    fn new_count(&self) -> u64 {
        self.messages
            .iter()
            .filter(|m| m.folder == Folder::New)
            .count() as u64
    }

    fn message_at(&self, i: usize) -> Option<&MessageInfo> {
        let id = *self.list.get(i)?;
        self.messages.iter().find(|m| m.id == id)
    }

    fn open_folder(&mut self, folder: Folder) {
        self.folder = folder;
        self.list = self
            .messages
            .iter()
            .filter(|m| m.folder == folder)
            .map(|m| m.id)
            .collect();
        self.cur = 0;
    }

    fn goto(&mut self, next: Next) {
        match next {
            Next::Main => self.main_menu(false),
            Next::MessageMenu => self.message_menu(),
            Next::PlayMessage => self.play_message(),
            Next::ChooseFolder => self.choose_folder(),
            Next::Options => self.say(&["vm-options"], State::Options),
            Next::Review(kind) => self.say(&["vm-review"], State::Review(kind)),
            Next::Hangup => {
                self.io.emit(Output::Hangup);
                self.finish();
            }
        }
    }

    // ---------------------------------------------------------------- login

    fn submit(&mut self) {
        let entry = std::mem::take(&mut self.entry);
        match self.state {
            State::AskMailbox if entry.is_empty() => self.login_failed(false),
            State::AskMailbox => {
                self.mailbox = entry;
                self.say(&["vm-password"], State::AskPin);
            }
            State::AskPin if entry.is_empty() => self.login_failed(false),
            State::AskPin => {
                self.io.ask(StoreRequest::CheckPin {
                    number: self.mailbox.clone(),
                    pin: entry,
                });
                self.state = State::CheckPin;
            }
            State::NewPin if pin_ok(&entry) => {
                self.new_pin = Some(entry);
                self.say(&["vm-reenterpassword"], State::ConfirmPin);
            }
            State::NewPin if entry.is_empty() => self.goto(Next::Options),
            State::NewPin => self.announce(&["vm-invalid-password"], Next::Options),
            State::ConfirmPin => {
                if self.new_pin.take().is_some_and(|p| p == entry) {
                    self.io.write(StoreRequest::SetPin {
                        number: self.mailbox.clone(),
                        pin: entry,
                    });
                    self.announce(&["vm-passchanged"], Next::Options);
                } else {
                    self.announce(&["vm-mismatch"], Next::Options);
                }
            }
            _ => {}
        }
    }

    /// A failed login: a wrong PIN (a security event) or nothing typed (not one).
    fn login_failed(&mut self, guessed: bool) {
        if guessed {
            self.io.emit(Output::Security(SecurityEvent::WrongPin {
                mailbox: self.mailbox.clone(),
            }));
        }
        self.attempts += 1;
        if self.attempts >= self.cfg.max_attempts {
            self.say(&["vm-incorrect", "vm-goodbye"], State::Goodbye);
        } else if self.cfg.mailbox.is_none() {
            self.say(&["vm-incorrect-mailbox"], State::AskMailbox);
        } else {
            self.say(&["vm-incorrect", "vm-password"], State::AskPin);
        }
    }

    fn on_answer(&mut self, answer: StoreAnswer) {
        match (self.state, answer) {
            (State::CheckPin, StoreAnswer::Pin(true)) => {
                self.attempts = 0;
                self.io.ask(StoreRequest::Mailbox {
                    number: self.mailbox.clone(),
                });
                self.state = State::LoadMailbox;
            }
            (State::CheckPin, StoreAnswer::Pin(false)) => self.login_failed(true),
            (State::LoadMailbox, StoreAnswer::Mailbox(Some(info))) => {
                self.info = info;
                self.io.ask(StoreRequest::Messages {
                    number: self.mailbox.clone(),
                });
                self.state = State::LoadMessages;
            }
            (State::LoadMessages, StoreAnswer::Messages(mut list)) => {
                list.sort_by_key(|m| (m.received, m.id));
                self.messages = list;
                let start = if self.new_count() > 0 {
                    Folder::New
                } else {
                    Folder::Old
                };
                self.open_folder(start);
                self.main_menu(true);
            }
            _ => self.say(&["im-sorry", "vm-goodbye"], State::Goodbye),
        }
    }

    // ---------------------------------------------------------------- main menu

    /// The intro (at login) and "press 1 for new messages, press 2 to change folders, press
    /// 0 for mailbox options, press star for help or pound to exit" (`vm_instructions_en`).
    fn main_menu(&mut self, with_intro: bool) {
        let mut sounds = Vec::new();
        if with_intro {
            let new = self.new_count();
            let old = self.messages.len() as u64 - new;
            sounds.extend(intro(new, old));
        }
        if !self.list.is_empty() {
            sounds.push(Sound::prompt("vm-onefor"));
            sounds.push(Sound::prompt(self.folder.prompt()));
            sounds.push(Sound::prompt("vm-messages"));
        }
        sounds.extend(prompts(&["vm-opts", "vm-helpexit"]));
        self.play(sounds, State::Main);
    }

    fn main_key(&mut self, d: char) {
        match d {
            '1' => self.first_message(),
            '2' => self.choose_folder(),
            '0' => self.goto(Next::Options),
            '*' => self.main_menu(false),
            '#' => self.goodbye(),
            _ => self.announce(&["vm-sorry"], Next::Main),
        }
    }

    fn choose_folder(&mut self) {
        let mut sounds = vec![Sound::prompt("vm-changeto")];
        for (i, f) in Folder::ALL.iter().enumerate() {
            sounds.extend(say::digits(&i.to_string()));
            sounds.extend(prompts(&["vm-for", f.prompt(), "vm-messages"]));
        }
        sounds.push(Sound::prompt("vm-tocancel"));
        self.play(sounds, State::ChooseFolder);
    }

    fn folder_key(&mut self, d: char) {
        let pick = d
            .to_digit(10)
            .and_then(|i| Folder::ALL.get(usize::try_from(i).ok()?));
        match (d, pick) {
            (_, Some(&folder)) => {
                self.open_folder(folder);
                self.announce(&[folder.prompt(), "vm-messages"], Next::Main);
            }
            ('#', _) => self.main_menu(false),
            _ => self.announce(&["vm-sorry"], Next::ChooseFolder),
        }
    }

    // ---------------------------------------------------------------- messages

    fn first_message(&mut self) {
        if self.list.is_empty() {
            self.announce(&["vm-nomore"], Next::Main);
        } else {
            self.cur = 0;
            self.play_message();
        }
    }

    /// "First message" / "message 3" / "last message", the envelope, the message.
    fn play_message(&mut self) {
        let last = self.list.len().saturating_sub(1);
        let Some(m) = self.message_at(self.cur).cloned() else {
            self.announce(&["vm-nomore"], Next::Main);
            return;
        };
        let mut sounds = Vec::new();
        if self.cur == 0 {
            sounds.push(Sound::prompt("vm-first"));
        } else if self.cur == last {
            sounds.push(Sound::prompt("vm-last"));
        }
        sounds.push(Sound::prompt("vm-message"));
        if self.cur != 0 && self.cur != last {
            sounds.extend(say::number(self.cur as u64 + 1));
        }
        sounds.extend(say::received(m.received, self.cfg.today));
        if m.caller_number.is_empty() {
            sounds.push(Sound::prompt("vm-unknown-caller"));
        } else {
            sounds.push(Sound::prompt("vm-from-phonenumber"));
            sounds.extend(say::digits(&m.caller_number));
        }
        sounds.push(Sound::File(m.path.clone()));
        if m.folder == Folder::New {
            // Heard: the lamp goes off once no new message is left.
            self.io.write(StoreRequest::Move {
                id: m.id,
                folder: Folder::Old,
            });
            self.set_folder(m.id, Folder::Old);
        }
        self.play(sounds, State::Message);
    }

    fn set_folder(&mut self, id: i64, folder: Folder) {
        if let Some(m) = self.messages.iter_mut().find(|m| m.id == id) {
            m.folder = folder;
        }
    }

    /// "Press 4 for the previous message, 5 to repeat, 6 for the next, 7 to delete, 9 to
    /// save, star for help or pound to exit" (the parts that apply).
    fn message_menu(&mut self) {
        let last = self.list.len().saturating_sub(1);
        let mut names = Vec::new();
        if self.cur > 0 {
            names.push("vm-prev");
        }
        names.push("vm-repeat");
        if self.cur < last {
            names.push("vm-next");
        }
        names.extend(["vm-delete", "vm-savemessage", "vm-helpexit"]);
        self.say(&names, State::MessageMenu);
    }

    fn message_key(&mut self, d: char) {
        let len = self.list.len();
        match d {
            '1' => self.first_message(),
            '4' if self.cur > 0 => {
                self.cur -= 1;
                self.play_message();
            }
            '4' => self.announce(&["vm-nomore"], Next::MessageMenu),
            '5' => self.play_message(),
            '6' if self.cur + 1 < len => {
                self.cur += 1;
                self.play_message();
            }
            '6' => self.announce(&["vm-nomore"], Next::MessageMenu),
            '7' => self.remove_current(true),
            '9' => self.remove_current(false),
            '2' => self.choose_folder(),
            '0' => self.goto(Next::Options),
            '*' => self.message_menu(),
            '#' => self.goodbye(),
            _ => self.announce(&["vm-sorry"], Next::MessageMenu),
        }
    }

    /// Deletes (7) or saves (9) the current message; the next one plays.
    fn remove_current(&mut self, delete: bool) {
        let Some(&id) = self.list.get(self.cur) else {
            self.announce(&["vm-nomore"], Next::Main);
            return;
        };
        let done = if delete {
            self.io.write(StoreRequest::Delete { id });
            self.messages.retain(|m| m.id != id);
            "vm-deleted"
        } else {
            self.io.write(StoreRequest::Move {
                id,
                folder: Folder::Saved,
            });
            self.set_folder(id, Folder::Saved);
            if self.folder == Folder::Saved {
                self.announce(&["vm-message", "vm-saved"], Next::MessageMenu);
                return;
            }
            "vm-saved"
        };
        self.list.remove(self.cur);
        if self.list.is_empty() {
            self.cur = 0;
            self.announce(&["vm-message", done, "vm-nomore"], Next::Main);
        } else if self.cur < self.list.len() {
            self.announce(&["vm-message", done], Next::PlayMessage);
        } else {
            self.cur = self.list.len() - 1;
            self.announce(&["vm-message", done, "vm-nomore"], Next::MessageMenu);
        }
    }

    // ---------------------------------------------------------------- mailbox options

    fn options_key(&mut self, d: char) {
        match d {
            '1' => self.record_greeting(GreetingKind::Unavailable),
            '2' => self.record_greeting(GreetingKind::Busy),
            '3' => self.record_greeting(GreetingKind::Name),
            '4' if self.info.greeting(GreetingKind::Temporary).is_some() => {
                self.say(&["vm-tempgreeting2"], State::TempChoice);
            }
            '4' => self.record_greeting(GreetingKind::Temporary),
            '5' => {
                self.entry.clear();
                self.say(&["vm-newpassword"], State::NewPin);
            }
            '*' => self.main_menu(false),
            '#' => self.goodbye(),
            _ => self.announce(&["vm-sorry"], Next::Options),
        }
    }

    fn temp_key(&mut self, d: char) {
        match d {
            '1' => self.record_greeting(GreetingKind::Temporary),
            '2' => {
                self.io.write(StoreRequest::RemoveGreeting {
                    number: self.mailbox.clone(),
                    kind: GreetingKind::Temporary,
                });
                self.info
                    .greetings
                    .retain(|(k, _)| *k != GreetingKind::Temporary);
                self.announce(&["vm-tempremoved"], Next::Options);
            }
            _ => self.goto(Next::Options),
        }
    }

    fn record_greeting(&mut self, kind: GreetingKind) {
        self.recordings += 1;
        self.greeting_path = Some(format!(
            "{}/{}/greeting-{}-{}-{}.wav",
            self.cfg.storage,
            self.mailbox,
            kind.as_str(),
            self.cfg.tag,
            self.recordings
        ));
        let prompt = match kind {
            GreetingKind::Unavailable => "vm-rec-unv",
            GreetingKind::Busy => "vm-rec-busy",
            GreetingKind::Temporary => "vm-rec-temp",
            GreetingKind::Name => "vm-rec-name",
        };
        self.say(&[prompt], State::GreetingPrompt(kind));
    }

    fn greeting_recorded(&mut self, kind: GreetingKind, duration: Duration, end: RecordEnd) {
        let Some(path) = self.greeting_path.clone() else {
            return;
        };
        if spoken(duration, end, self.cfg.greeting_limits) < self.cfg.greeting_limits.min {
            self.greeting_path = None;
            self.io.emit(Output::Discard { path });
            if self.gone {
                self.finish();
            } else {
                self.announce(&["vm-tooshort"], Next::Options);
            }
        } else if self.gone {
            self.accept_greeting(kind);
            self.finish();
        } else {
            self.goto(Next::Review(kind));
        }
    }

    fn accept_greeting(&mut self, kind: GreetingKind) {
        if let Some(path) = self.greeting_path.take() {
            self.io.write(StoreRequest::SetGreeting {
                number: self.mailbox.clone(),
                kind,
                path: path.clone(),
            });
            self.info.greetings.retain(|(k, _)| *k != kind);
            self.info.greetings.push((kind, path));
        }
    }

    /// "Press 1 to accept this recording, 2 to listen to it, 3 to re-record".
    fn review_key(&mut self, kind: GreetingKind, d: char) {
        match d {
            '1' => {
                self.accept_greeting(kind);
                self.announce(&["vm-msgsaved"], Next::Options);
            }
            '2' => {
                let path = self.greeting_path.clone().unwrap_or_default();
                self.play(vec![Sound::File(path)], State::Listen(kind));
            }
            '3' => {
                if let Some(path) = self.greeting_path.take() {
                    self.io.emit(Output::Discard { path });
                }
                self.record_greeting(kind);
            }
            _ => self.announce(&["vm-sorry"], Next::Review(kind)),
        }
    }

    // ---------------------------------------------------------------- events

    fn on_digit(&mut self, now: Instant, d: char) {
        self.idle = 0;
        match self.state {
            State::AskMailbox | State::AskPin | State::NewPin | State::ConfirmPin => {
                self.io.stop_play();
                if d == '#' || self.entry.len() + 1 >= MAX_ENTRY {
                    if d.is_ascii_digit() {
                        self.entry.push(d);
                    }
                    self.io.timer = None;
                    self.submit();
                } else if d.is_ascii_digit() {
                    self.entry.push(d);
                    self.io.timer = Some(now + self.cfg.digit_timeout);
                }
            }
            State::Main => {
                self.io.stop_play();
                self.main_key(d);
            }
            State::Message | State::MessageMenu => {
                self.io.stop_play();
                self.message_key(d);
            }
            State::ChooseFolder => {
                self.io.stop_play();
                self.folder_key(d);
            }
            State::Options => {
                self.io.stop_play();
                self.options_key(d);
            }
            State::TempChoice => {
                self.io.stop_play();
                self.temp_key(d);
            }
            State::Review(kind) => {
                self.io.stop_play();
                self.review_key(kind, d);
            }
            State::Listen(kind) => {
                self.io.stop_play();
                self.goto(Next::Review(kind));
            }
            State::GreetingPrompt(_) if d == '*' => {
                self.io.stop_play();
                self.greeting_path = None;
                self.goto(Next::Options);
            }
            State::GreetingRecording(_) if d == '#' => self.io.stop_record(),
            // A key cuts an announcement short ("message deleted, no more messages") and
            // counts in the menu that follows, as it would a moment later. Not before a
            // message plays: a `7` meant for the last one must not delete the next unheard.
            State::Announce(next @ (Next::Main | Next::MessageMenu | Next::Options)) => {
                self.io.stop_play();
                self.goto(next);
                self.on_digit(now, d);
            }
            _ => {}
        }
    }

    fn on_play_done(&mut self, now: Instant) {
        match self.state {
            State::AskMailbox | State::AskPin | State::NewPin | State::ConfirmPin => {
                self.io.timer = Some(now + self.cfg.digit_timeout);
            }
            State::Main
            | State::MessageMenu
            | State::ChooseFolder
            | State::Options
            | State::TempChoice
            | State::Review(_) => self.io.timer = Some(now + self.cfg.menu_timeout),
            State::Message => self.message_menu(),
            State::Listen(kind) => self.goto(Next::Review(kind)),
            State::GreetingPrompt(kind) => self.say(&["beep"], State::GreetingBeep(kind)),
            State::GreetingBeep(kind) => {
                let path = self.greeting_path.clone().unwrap_or_default();
                self.io.record(&path, self.cfg.greeting_limits);
                self.state = State::GreetingRecording(kind);
            }
            State::Announce(next) => self.goto(next),
            State::Goodbye => self.goto(Next::Hangup),
            _ => {}
        }
    }

    fn on_hangup(&mut self) {
        self.gone = true;
        match self.state {
            State::GreetingRecording(_) => self.io.stop_record(),
            State::Review(kind) | State::Listen(kind) => {
                self.accept_greeting(kind);
                self.finish();
            }
            _ => self.finish(),
        }
    }
}

impl Machine for VoicemailMenu {
    fn handle_input(&mut self, now: Instant, input: Input) {
        if self.state == State::Done {
            return;
        }
        match input {
            Input::Digit(d) if !self.gone => self.on_digit(now, d),
            Input::Digit(_) => {}
            Input::PlayFinished { id } => {
                if self.io.play_done(id) {
                    self.on_play_done(now);
                }
            }
            Input::RecordFinished { id, duration, end } => {
                if self.io.record_done(id)
                    && let State::GreetingRecording(kind) = self.state
                {
                    self.greeting_recorded(kind, duration, end);
                }
            }
            Input::Store { id, answer } => {
                if self.io.answered(id) && !self.gone {
                    self.on_answer(answer);
                }
            }
            Input::Hangup => self.on_hangup(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.gone || !self.io.due(now) {
            return;
        }
        match self.state {
            State::AskMailbox | State::AskPin | State::NewPin | State::ConfirmPin => {
                self.submit();
            }
            State::Review(kind) => {
                // No answer: keep the recording, as Asterisk does.
                self.accept_greeting(kind);
                self.announce(&["vm-msgsaved"], Next::Options);
            }
            State::Main
            | State::MessageMenu
            | State::ChooseFolder
            | State::Options
            | State::TempChoice => {
                self.idle += 1;
                if self.idle >= self.cfg.max_idle {
                    self.goodbye();
                } else {
                    let again = match self.state {
                        State::Main => Next::Main,
                        State::MessageMenu => Next::MessageMenu,
                        State::ChooseFolder => Next::ChooseFolder,
                        _ => Next::Options,
                    };
                    self.goto(again);
                }
            }
            _ => {}
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.io.pop()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.io.timer
    }

    fn is_finished(&self) -> bool {
        self.state == State::Done && self.io.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn intro_as_vm_intro_en() {
        assert_eq!(said(&intro(0, 0)), "vm-youhave vm-no vm-messages");
        assert_eq!(said(&intro(1, 0)), "vm-youhave 1 vm-INBOX vm-message");
        assert_eq!(said(&intro(3, 0)), "vm-youhave 3 vm-INBOX vm-messages");
        assert_eq!(said(&intro(0, 1)), "vm-youhave 1 vm-Old vm-message");
        assert_eq!(
            said(&intro(2, 21)),
            "vm-youhave 2 vm-INBOX vm-and 20 1 vm-Old vm-messages"
        );
    }

    #[test]
    fn pins_are_4_to_12_digits() {
        assert!(pin_ok("1234") && pin_ok("123456789012"));
        assert!(!pin_ok("123") && !pin_ok("1234567890123") && !pin_ok("12a4"));
    }
}
