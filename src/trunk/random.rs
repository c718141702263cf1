//! A small deterministic generator for the values SIP needs to be unpredictable enough
//! (Call-ID, tags, branches, cnonces) and for backoff jitter. The shell seeds it from the
//! operating system; tests seed it with a constant so every run is the same.
//!
//! SplitMix64 (Steele, Lea, Flood 2014): statistically fine for identifiers and jitter. It
//! is not a CSPRNG: nothing here is a secret, the cnonce only has to be unique.

#[derive(Debug, Clone)]
pub struct Random {
    state: u64,
}

impl Random {
    pub fn new(seed: u64) -> Self {
        Random { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 16 lower-case hex digits.
    pub fn hex(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// A value in `0..bound` (bound > 0); the tiny modulo bias is irrelevant for jitter.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_values_spread() {
        let (mut a, mut b) = (Random::new(7), Random::new(7));
        let first: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        assert_ne!(first[0], first[1]);
        assert_eq!(Random::new(1).hex().len(), 16);
        let mut r = Random::new(3);
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}
