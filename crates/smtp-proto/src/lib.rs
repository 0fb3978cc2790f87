//! SMTP wire format, pure: command parsing, replies with enhanced status
//! codes, and the DATA receiver. No I/O, no tokio, no store.
//!
//! Key design decision: the DATA receiver is fed one line at a time with
//! the line ending the transport saw, and it alone decides where a message
//! ends. Only `CRLF . CRLF` ends it; a line ending in a bare LF or holding a
//! bare CR is refused for the whole message (RFC 5321 §2.3.8, §4.1.1.4), so
//! no "end of data" hidden behind a bare LF can smuggle a second message.

pub mod client;
pub mod command;
pub mod data;
pub mod reply;

pub use client::{Capabilities, ReplyAssembler, ServerReply};
pub use command::{parse_command, BodyType, Command, CommandError, MailParams, Path, RcptParams};
pub use data::{DataError, DataReceiver, DataStep};
pub use reply::Reply;
