//! A fixed-bucket histogram of durations, for the metrics (`GET /metrics`): observed in
//! the control path where a round trip ends, rendered at scrape time. Plain counts, no
//! atomics: only the control path's task touches it.

use std::time::Duration;

/// Upper bounds of the buckets, in seconds (Prometheus `le`); `+Inf` is implied. From a
/// LAN peer (5 ms) to a ping that needed retransmissions (Timer E doubles from 500 ms).
pub(crate) const BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bounds for what stays on a LAN and needs no retransmission (a Redis round trip):
/// 100 µs to 500 ms.
pub(crate) const FINE_BOUNDS: [f64; 11] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Histogram {
    bounds: &'static [f64; 11],
    /// Observations at or below each bound (not cumulative; rendering sums them).
    buckets: [u64; BOUNDS.len()],
    count: u64,
    sum: Duration,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::with_bounds(&BOUNDS)
    }
}

impl Histogram {
    pub(crate) fn with_bounds(bounds: &'static [f64; 11]) -> Self {
        Histogram {
            bounds,
            buckets: [0; BOUNDS.len()],
            count: 0,
            sum: Duration::ZERO,
        }
    }

    pub(crate) fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        if let Some(index) = self.bounds.iter().position(|&bound| seconds <= bound) {
            self.buckets[index] += 1;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
    }

    /// `(le, cumulative count)` for each bound, then `+Inf` as `f64::INFINITY`.
    pub(crate) fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounded = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .scan(0, |total, (&bound, &n)| {
                *total += n;
                Some((bound, *total))
            });
        bounded.chain(std::iter::once((f64::INFINITY, self.count)))
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn sum(&self) -> Duration {
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_last_is_everything() {
        let mut histogram = Histogram::default();
        for ms in [3, 5, 30, 700, 20_000] {
            histogram.observe(Duration::from_millis(ms));
        }
        let cumulative: Vec<(f64, u64)> = histogram.cumulative().collect();
        assert_eq!(cumulative[0], (0.005, 2), "5 ms is at or below 0.005");
        assert_eq!(cumulative[3], (0.05, 3));
        assert_eq!(cumulative[7], (1.0, 4));
        assert_eq!(cumulative[10], (10.0, 4));
        assert_eq!(cumulative[11], (f64::INFINITY, 5));
        assert_eq!(histogram.count(), 5);
        assert_eq!(histogram.sum(), Duration::from_millis(20_738));
    }
}
