//! A dependency-free progress ticker on stderr: rewritten in place twice a
//! second on a terminal, a plain line every five seconds otherwise (logs).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A running ticker; stop it with [`Progress::finish`].
pub struct Progress {
    task: JoinHandle<()>,
    tty: bool,
}

/// `[#####.....]` for `done` of `total`.
pub fn bar(done: f64, total: f64, width: usize) -> String {
    let filled = if total > 0.0 {
        ((done / total).clamp(0.0, 1.0) * width as f64).round() as usize
    } else {
        0
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

impl Progress {
    /// The usual line of a timed workload: a bar over `total_secs`, the
    /// operations done (`what`) with their rate, and the errors.
    pub fn timed(
        name: &'static str,
        what: &'static str,
        live: std::sync::Arc<crate::stats::Live>,
        total_secs: f64,
    ) -> Progress {
        Progress::start(move |el| {
            let s = el.as_secs_f64();
            format!(
                "{name} {} {s:.1}/{total_secs}s, {} {what} ({:.0}/s), {} errors",
                bar(s, total_secs, 30),
                live.ops(),
                live.ops() as f64 / s.max(1e-9),
                live.errors()
            )
        })
    }

    /// Start ticking; `status` renders the line from the elapsed time.
    pub fn start(status: impl Fn(Duration) -> String + Send + 'static) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let started = Instant::now();
        let every = if tty {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let line = status(started.elapsed());
                let mut err = std::io::stderr().lock();
                let _ = if tty {
                    write!(err, "\r{line}\x1b[K")
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
            }
        });
        Progress { task, tty }
    }

    /// Stop and clear the line.
    pub async fn finish(self) {
        self.task.abort();
        let _ = self.task.await;
        if self.tty {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars() {
        assert_eq!(bar(0.0, 10.0, 4), "[....]");
        assert_eq!(bar(5.0, 10.0, 4), "[##..]");
        assert_eq!(bar(20.0, 10.0, 4), "[####]");
        assert_eq!(bar(1.0, 0.0, 2), "[..]");
    }
}
