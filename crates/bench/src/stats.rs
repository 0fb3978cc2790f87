//! Latency collection and percentiles; per-operation tables.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// All observed latencies of one workload.
#[derive(Default, Clone)]
pub struct Latencies(Vec<Duration>);

/// What the summary table shows.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub count: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latencies {
    pub fn extend(&mut self, l: Vec<Duration>) {
        self.0.extend(l);
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile, in milliseconds.
    fn percentile(sorted: &[Duration], p: f64) -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
    }

    pub fn summary(&self, elapsed: Duration) -> Summary {
        let mut s = self.0.clone();
        s.sort_unstable();
        Summary {
            count: s.len(),
            per_second: s.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: Self::percentile(&s, 50.0),
            p90_ms: Self::percentile(&s, 90.0),
            p99_ms: Self::percentile(&s, 99.0),
            max_ms: s.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        }
    }
}

/// Counters the progress display reads while a workload runs.
#[derive(Default)]
pub struct Live {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
}

impl Live {
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// Latencies and error counts per named operation, for one client; merged
/// at the end.
#[derive(Clone)]
pub struct Ops {
    names: &'static [&'static str],
    lat: Vec<Latencies>,
    errors: Vec<u64>,
    live: Arc<Live>,
}

/// One row of a per-operation table.
#[derive(Debug, Clone, Serialize)]
pub struct OpRow {
    pub op: String,
    pub errors: u64,
    #[serde(flatten)]
    pub summary: Summary,
}

impl Ops {
    pub fn new(names: &'static [&'static str], live: Arc<Live>) -> Self {
        Ops {
            names,
            lat: vec![Latencies::default(); names.len()],
            errors: vec![0; names.len()],
            live,
        }
    }

    /// A successful operation `op` (an index into the names).
    pub fn record(&mut self, op: usize, d: Duration) {
        self.lat[op].push(d);
        self.live.ops.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed operation (`NO`/`BAD`/`-ERR`, or a dropped connection).
    pub fn error(&mut self, op: usize) {
        self.errors[op] += 1;
        self.live.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn merge(&mut self, other: Ops) {
        for (i, l) in other.lat.into_iter().enumerate() {
            self.lat[i].extend(l.0);
            self.errors[i] += other.errors[i];
        }
    }

    pub fn summary(&self, op: usize, elapsed: Duration) -> Summary {
        self.lat[op].summary(elapsed)
    }

    /// One row per operation that happened (or failed), then `total` over
    /// all of them.
    pub fn rows(&self, elapsed: Duration) -> Vec<OpRow> {
        let mut rows: Vec<OpRow> = (0..self.names.len())
            .filter(|&i| self.lat[i].len() > 0 || self.errors[i] > 0)
            .map(|i| OpRow {
                op: self.names[i].to_string(),
                errors: self.errors[i],
                summary: self.summary(i, elapsed),
            })
            .collect();
        let mut all = Latencies::default();
        for l in &self.lat {
            all.extend(l.0.clone());
        }
        rows.push(OpRow {
            op: "total".to_string(),
            errors: self.errors.iter().sum(),
            summary: all.summary(elapsed),
        });
        rows
    }
}

/// Print a per-operation table on stdout.
pub fn print_table(rows: &[OpRow]) {
    println!(
        "{:<22} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "operation", "count", "errors", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for r in rows {
        let s = &r.summary;
        println!(
            "{:<22} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            r.op, s.count, r.errors, s.per_second, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        );
    }
}

/// Write a JSON document to a file.
pub fn write_json(path: &std::path::Path, v: &impl Serialize) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::write(path, serde_json::to_string_pretty(v)? + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = Latencies::default();
        l.extend((1..=100).map(Duration::from_millis).collect());
        let s = l.summary(Duration::from_secs(2));
        assert_eq!(s.count, 100);
        assert_eq!(s.per_second, 50.0);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p90_ms, 90.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(Latencies::default().summary(Duration::from_secs(1)).p99_ms, 0.0);
    }

    #[test]
    fn op_tables() {
        static NAMES: [&str; 3] = ["a", "b", "c"];
        let live = Arc::new(Live::default());
        let mut x = Ops::new(&NAMES, live.clone());
        let mut y = Ops::new(&NAMES, live.clone());
        x.record(0, Duration::from_millis(10));
        y.record(0, Duration::from_millis(30));
        y.record(2, Duration::from_millis(20));
        y.error(2);
        x.merge(y);
        assert_eq!(live.ops(), 3);
        assert_eq!(live.errors(), 1);
        let rows = x.rows(Duration::from_secs(1));
        let names: Vec<_> = rows.iter().map(|r| r.op.as_str()).collect();
        assert_eq!(names, ["a", "c", "total"]);
        assert_eq!(rows[0].summary.count, 2);
        assert_eq!(rows[0].summary.max_ms, 30.0);
        assert_eq!(rows[1].errors, 1);
        assert_eq!(rows[2].summary.count, 3);
        assert_eq!(rows[2].errors, 1);
        assert_eq!(rows[2].summary.p50_ms, 20.0);
    }
}
