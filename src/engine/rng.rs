//! The engine's only source of randomness: a seeded SplitMix64, so a run is
//! reproducible from its config and inputs (and the model checker sees the
//! generator's state as part of the engine's).

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, good enough for jitter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..=max` (0 when `max` is 0, without drawing). Any `max`
    /// is safe: `u64::MAX` (a saturated jitter) takes the draw whole.
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        match max.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn up_to_covers_the_whole_range_without_overflow() {
        let mut rng = SplitMix64::new(7);
        assert_eq!(rng.up_to(0), 0);
        assert!(rng.up_to(3) <= 3);
        let _ = rng.up_to(u64::MAX);
    }
}
