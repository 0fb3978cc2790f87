//! Latency collection and percentiles.

use std::time::Duration;

/// All observed latencies of one workload.
#[derive(Default)]
pub struct Latencies(Vec<Duration>);

/// What the summary table shows.
pub struct Summary {
    pub count: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Latencies {
    pub fn extend(&mut self, l: Vec<Duration>) {
        self.0.extend(l);
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
            p99_ms: Self::percentile(&s, 99.0),
        }
    }
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
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(Latencies::default().summary(Duration::from_secs(1)).p99_ms, 0.0);
    }
}
