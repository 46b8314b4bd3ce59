//! The jitter generator is SplitMix64 value for value, and `up_to` covers its
//! whole range.

use crate::engine::rng::SplitMix64;

/// The published reference outputs of SplitMix64 (Vigna's `splitmix64.c`).
#[test]
fn splitmix64_matches_the_reference_outputs() {
    let mut rng = SplitMix64::new(0);
    let seed_0: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
    assert_eq!(
        seed_0,
        [
            0xe220_a839_7b1d_cdaf,
            0x6e78_9e6a_a1b9_65f4,
            0x06c4_5d18_8009_454f,
            0xf88b_b8a8_724c_81ec
        ]
    );
    let mut rng = SplitMix64::new(1_234_567);
    let seed_1234567: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
    assert_eq!(
        seed_1234567,
        [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821
        ]
    );
}

#[test]
fn up_to_zero_is_zero_and_draws_nothing() {
    let mut rng = SplitMix64::new(7);
    let before = rng.clone();
    assert_eq!(rng.up_to(0), 0);
    assert_eq!(rng, before, "no value drawn");
    // The whole range: no `max + 1` to overflow.
    assert_eq!(rng.up_to(u64::MAX), before.clone().next_u64());
}

#[test]
fn up_to_reaches_both_ends_and_nothing_beyond() {
    let mut rng = SplitMix64::new(42);
    for max in [1_u64, 2, 3, 9] {
        let mut seen = vec![0_u32; max as usize + 1];
        for _ in 0..400 {
            let v = rng.up_to(max);
            assert!(v <= max, "{v} > {max}");
            seen[v as usize] += 1;
        }
        assert!(
            seen.iter().all(|&n| n > 0),
            "up_to({max}) missed a value: {seen:?}"
        );
    }
}
