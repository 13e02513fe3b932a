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
//! One module here touches files, for the shell: [`wav`], the recorder's durable WAV writer.
//! Prompts are played by the server's prompt library (`pbx/server/src/media/prompts.rs`).

pub mod io;
pub mod leave;
pub mod menu;
pub mod say;
pub mod wav;

pub use io::{
    Folder, GreetingKind, Input, Machine, MailboxInfo, MessageInfo, NewMessageInfo, Output,
    RecordEnd, RecordLimits, SecurityEvent, Sound, StoreAnswer, StoreRequest,
};
pub use leave::{LeaveConfig, LeaveMessage, Reason};
pub use menu::{MenuConfig, VoicemailMenu};
