//! The timing scheme of both sides (`measure` in `session.mjs` is the same
//! loop): a warm-up of about one round in doubling batches, then rounds of a
//! fixed time budget in batches of about a millisecond, so reading the clock
//! costs nothing; every round's ns per op is kept and the median reported.
//! Each round is timed twice: in wall time, and in the process's CPU time,
//! which does not count the time spent waiting for a core on a busy machine.
//! Rounds of different sizes can be run alternately ([`warm_up`], then
//! [`round`] in turn), so that [`paired_growth`] compares rounds that saw the
//! same load.

use std::time::{Duration, Instant};

/// The rounds of one measurement.
#[derive(Clone, Debug, Default)]
pub struct Rounds {
    /// Wall-time ns per op of each round, in the order run.
    pub ns: Vec<f64>,
    /// CPU-time ns per op of each round (empty where the platform has no
    /// process CPU clock).
    pub cpu: Vec<f64>,
}

/// The median of `xs` (NaN for none).
pub fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[m],
        _ => (s[m - 1] + s[m]) / 2.0,
    }
}

impl Rounds {
    /// The median round's wall-time ns per op.
    pub fn median(&self) -> f64 {
        median(&self.ns)
    }

    /// The median round's CPU-time ns per op, if measured.
    pub fn cpu_median(&self) -> Option<f64> {
        (!self.cpu.is_empty()).then(|| median(&self.cpu))
    }

    pub fn min(&self) -> f64 {
        self.ns.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn max(&self) -> f64 {
        self.ns.iter().copied().fold(0.0, f64::max)
    }
}

/// Ops per batch once warmed up: about a millisecond's worth.
#[derive(Clone, Copy, Debug)]
pub struct Batch(u64);

/// Warms `op` up for about `budget` in doubling batches; `check(target, k)`
/// then proves the `k` ops did their work.
#[allow(clippy::disallowed_methods)] // a benchmark measures wall time
pub fn warm_up<T>(
    target: &mut T,
    op: fn(&mut T),
    check: &mut impl FnMut(&mut T, u64),
    budget: Duration,
) -> Batch {
    let warm = Instant::now();
    let (mut batch, mut ran) = (1u64, 0u64);
    while warm.elapsed() < budget {
        run(target, op, batch);
        ran += batch;
        batch *= 2;
    }
    let per_op = warm.elapsed().as_nanos() as f64 / ran as f64;
    check(target, ran);
    Batch(((1e6 / per_op).round() as u64).max(1))
}

/// One round of about `budget`, appended to `out`; `check` runs after it,
/// untimed.
#[allow(clippy::disallowed_methods)] // a benchmark measures wall time
pub fn round<T>(
    target: &mut T,
    op: fn(&mut T),
    check: &mut impl FnMut(&mut T, u64),
    Batch(batch): Batch,
    budget: Duration,
    out: &mut Rounds,
) {
    let cpu_start = cpu_time();
    let start = Instant::now();
    let mut ops = 0;
    let mut elapsed = Duration::ZERO;
    while elapsed < budget {
        run(target, op, batch);
        ops += batch;
        elapsed = start.elapsed();
    }
    if let (Some(a), Some(b)) = (cpu_start, cpu_time()) {
        out.cpu.push((b - a).as_nanos() as f64 / ops as f64);
    }
    check(target, ops);
    out.ns.push(elapsed.as_nanos() as f64 / ops as f64);
}

/// A warm-up and `rounds` rounds of `op` on `target`; `check(target, k)`
/// runs after each (untimed) and must prove that the last `k` ops did their
/// work.
pub fn measure<T>(
    target: &mut T,
    op: fn(&mut T),
    mut check: impl FnMut(&mut T, u64),
    rounds: usize,
    budget: Duration,
) -> Rounds {
    let batch = warm_up(target, op, &mut check, budget);
    let mut out = Rounds::default();
    for _ in 0..rounds {
        round(target, op, &mut check, batch, budget, &mut out);
    }
    out
}

fn run<T>(target: &mut T, op: fn(&mut T), k: u64) {
    for _ in 0..k {
        op(std::hint::black_box(&mut *target));
    }
}

/// The median over paired rounds of `b`'s time over `a`'s (wall, then CPU):
/// rounds run alternately see the same load, so their ratio is steadier
/// than the ratio of two medians.
pub fn paired_growth(a: &Rounds, b: &Rounds) -> (f64, Option<f64>) {
    let ratios =
        |x: &[f64], y: &[f64]| -> Vec<f64> { x.iter().zip(y).map(|(x, y)| y / x).collect() };
    let wall = median(&ratios(&a.ns, &b.ns));
    let cpu = (!a.cpu.is_empty() && !b.cpu.is_empty()).then(|| median(&ratios(&a.cpu, &b.cpu)));
    (wall, cpu)
}

/// CPU time this process has used so far (user and system).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub fn cpu_time() -> Option<Duration> {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call to fill.
    let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    (rc == 0).then(|| Duration::new(secs, nanos))
}

/// CPU time this process has used so far: not measured on this platform.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub fn cpu_time() -> Option<Duration> {
    None
}
