//! Outbound delivery: the queue worker that sends mail for remote
//! recipients to their domains' servers.
//!
//! Key design decisions:
//! - The queue lives in the store ([`letterbox_store::Store`]), claimed with
//!   leases, so a shared PostgreSQL store lets several nodes work one queue
//!   without sending a message twice.
//! - Recipients of one entry at one domain share one transaction; outcomes
//!   are recorded per recipient as soon as they are known.
//! - The SMTP client is ours ([`client`]): per-recipient results with
//!   PIPELINING, DSN parameters and BDAT are the heart of an MTA, and the
//!   TLS policy hook (opportunistic now; MTA-STS/DANE later) sits in one place.
//! - DNS sits behind the [`Dns`] trait (`letterbox-dns`, shared with the
//!   inbound checks); static routes in the config
//!   bypass it (and let tests run several servers on loopback).

pub mod client;
pub mod config;
pub mod dsn;
pub mod vacation;
pub mod worker;

pub use config::{DeliveryConfig, HostPort, Smarthost, SmarthostTls};
pub use letterbox_dns::{self as dns, Dns, DnsError, HickoryDns, MxAnswer};
pub use worker::Worker;
