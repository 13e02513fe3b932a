//! Sans-IO SIP for the PBX.
//!
//! Nothing in this crate touches a socket, a file or a clock: the server's async shell feeds
//! bytes and the current time in, and gets messages to send and deadlines out.
//!
//! - [`message`]: requests, responses and their header list (zero-copy over [`bytes::Bytes`]).
//! - [`parse`]: the RFC 3261 §25 message parser; [`framing`] splits a TCP/TLS byte stream.
//! - [`header`], [`uri`]: typed views of the headers and URIs the PBX reads.
//! - [`transaction`]: the four RFC 3261 §17 transaction machines.
//! - [`auth`]: digest authentication (RFC 3261 §22, RFC 7616, RFC 8760).
//! - [`registrar`]: the RFC 3261 §10.3 binding rules.
//! - [`transport`]: the transport names shared by the config, the store and the engine.

pub mod auth;
pub mod build;
pub mod framing;
pub mod header;
pub mod message;
pub mod method;
pub mod nat;
pub mod parse;
pub mod registrar;
pub mod serialize;
pub mod status;
pub mod transaction;
pub mod transport;
pub mod uri;
