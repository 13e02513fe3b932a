//! Voicemail without I/O: the machines that take a message ([`leave::LeaveMessage`]) and run
//! the `*97`/`*98` menu ([`menu::VoicemailMenu`]), and the pure helpers that say numbers,
//! digits and dates as Asterisk does ([`say`]).
//!
//! The machines are sans-IO like the rest of the PBX's cores: the shell feeds them what
//! happened ([`Input`]: a key, a prompt or recording finished, the store's answer, a hang-up)
//! with the time, acts on what they ask ([`Output`]: play prompts or files, record to a
//! path, stop, store requests, security events, transfer, hang up) and wakes them at
//! [`Machine::poll_timeout`]. Prompts are named as in `sounds/en/` (`vm-login`,
//! `digits/7`); `sounds/README.md` lists them. The keys are documented in docs/voicemail.md.
//!
//! Two modules here touch files, for the shell: [`wav`], the recorder's durable WAV writer,
//! and [`sounds`], prompts by name with the admin's folder overriding the committed one.

pub mod io;
pub mod leave;
pub mod menu;
pub mod say;
pub mod sounds;
pub mod wav;

pub use io::{
    Folder, GreetingKind, Input, Machine, MailboxInfo, MessageInfo, NewMessageInfo, Output,
    RecordEnd, RecordLimits, SecurityEvent, Sound, StoreAnswer, StoreRequest,
};
pub use leave::{LeaveConfig, LeaveMessage, Reason};
pub use menu::{MenuConfig, VoicemailMenu};
