//! Metric names and the small helpers every protocol uses, through the
//! `metrics` facade (the binary installs the Prometheus recorder; without
//! one these are no-ops). Names follow Prometheus conventions: `_total`
//! counters, base units (`_seconds`, `_bytes`).

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use std::time::Instant;

pub const CONNECTIONS: &str = "letterbox_connections_total";
pub const CONNECTIONS_REFUSED: &str = "letterbox_connections_refused_total";
pub const CONNECTIONS_ACTIVE: &str = "letterbox_connections_active";
pub const COMMANDS: &str = "letterbox_commands_total";
pub const COMMAND_SECONDS: &str = "letterbox_command_duration_seconds";
pub const AUTH: &str = "letterbox_auth_attempts_total";
pub const MESSAGES_ACCEPTED: &str = "letterbox_messages_accepted_total";
pub const MESSAGES_REFUSED: &str = "letterbox_messages_refused_total";
pub const OUTBOUND: &str = "letterbox_outbound_recipients_total";
pub const QUEUE_MESSAGES: &str = "letterbox_queue_messages";
pub const QUEUE_OLDEST: &str = "letterbox_queue_oldest_age_seconds";
pub const STORE_COMMIT_SECONDS: &str = "letterbox_store_commit_duration_seconds";
pub const STORE_BATCH: &str = "letterbox_store_commit_batch_size";
pub const HTTP_REQUESTS: &str = "letterbox_http_requests_total";

/// Histogram buckets for latencies (seconds): 100 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets for the store's commit batch size (jobs per commit).
pub const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// HELP text for every metric, so the exposition passes `promtool check metrics`.
pub fn describe() {
    describe_counter!(CONNECTIONS, "Connections accepted, per listener");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused by a connection limit, per listener"
    );
    describe_gauge!(CONNECTIONS_ACTIVE, "Connections open now, per listener");
    describe_counter!(COMMANDS, "Commands handled, per protocol and command");
    describe_histogram!(COMMAND_SECONDS, Unit::Seconds, "Time to handle a command, per protocol");
    describe_counter!(AUTH, "Authentication attempts, per result");
    describe_counter!(MESSAGES_ACCEPTED, "Messages committed for delivery, per protocol");
    describe_counter!(
        MESSAGES_REFUSED,
        "Messages refused at the end of the transfer, per protocol and reason"
    );
    describe_counter!(OUTBOUND, "Outbound recipients finished by the queue, per result");
    describe_gauge!(QUEUE_MESSAGES, "Messages in the outbound queue");
    describe_gauge!(
        QUEUE_OLDEST,
        Unit::Seconds,
        "Age of the oldest message in the outbound queue"
    );
    describe_histogram!(
        STORE_COMMIT_SECONDS,
        Unit::Seconds,
        "Time of one store write transaction with its fsync"
    );
    describe_histogram!(STORE_BATCH, "Write jobs committed together (group commit)");
    describe_counter!(HTTP_REQUESTS, "HTTP API requests answered, per status class");
}

/// Counts one command and its duration when dropped.
pub struct CommandTimer {
    protocol: &'static str,
    command: &'static str,
    start: Instant,
}

impl CommandTimer {
    pub fn start(protocol: &'static str, command: &'static str) -> CommandTimer {
        CommandTimer {
            protocol,
            command,
            start: Instant::now(),
        }
    }
}

impl Drop for CommandTimer {
    fn drop(&mut self) {
        counter!(COMMANDS, "protocol" => self.protocol, "command" => self.command).increment(1);
        histogram!(COMMAND_SECONDS, "protocol" => self.protocol).record(self.start.elapsed().as_secs_f64());
    }
}

/// Holds one connection in the active gauge while alive.
pub(crate) struct ActiveConnection(&'static str);

impl ActiveConnection {
    pub(crate) fn open(listener: &'static str) -> ActiveConnection {
        counter!(CONNECTIONS, "listener" => listener).increment(1);
        gauge!(CONNECTIONS_ACTIVE, "listener" => listener).increment(1.0);
        ActiveConnection(listener)
    }
}

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        gauge!(CONNECTIONS_ACTIVE, "listener" => self.0).decrement(1.0);
    }
}

pub(crate) fn refused(listener: &'static str) {
    counter!(CONNECTIONS_REFUSED, "listener" => listener).increment(1);
}
