//! Engine throughput side by side with the minimal-engine baseline
//! (`workload::sketch`) in one run, at 1 k, 100 k and 1 M live topics, and
//! memory per idle topic for both, allocator overhead included.
//!
//! Run: `cargo bench --bench engine` (set `BENCH_SIZES=1000,100000` to pick
//! sizes). Benchmark ids pair up as `<op>/engine/<size>` and
//! `<op>/sketch/<size>`, so the ratio of each pair can be read from
//! criterion's own output.
//!
//! Operations on live topics hit a working set of 1 024 topics spread over the
//! table; the `_uniform` variants hit all `n`, which at 1 M measures cache and
//! TLB misses more than either engine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};

mod workload;
use workload::sketch::SketchWorkload;
use workload::Workload;

extern "C" {
    /// glibc: the usable size of a block `malloc` returned (its request
    /// rounded up to the allocator's size class).
    fn malloc_usable_size(ptr: *mut u8) -> usize;
}

/// The bookkeeping word glibc keeps in front of every block.
const MALLOC_HEADER: isize = 8;

/// Counts live heap bytes twice: as requested, and as the allocator really
/// spends them (size class plus header), for the memory-per-topic report.
struct Counting;
static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static SPENT: AtomicIsize = AtomicIsize::new(0);

fn spent(ptr: *mut u8) -> isize {
    if ptr.is_null() {
        return 0;
    }
    // SAFETY: `ptr` is a live block from the system allocator (glibc malloc).
    unsafe { malloc_usable_size(ptr) as isize + MALLOC_HEADER }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        REQUESTED.fetch_add(l.size() as isize, Ordering::Relaxed);
        SPENT.fetch_add(spent(p), Ordering::Relaxed);
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        REQUESTED.fetch_sub(l.size() as isize, Ordering::Relaxed);
        SPENT.fetch_sub(spent(p), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let before = spent(p);
        let q = unsafe { System.realloc(p, l, n) };
        if !q.is_null() {
            REQUESTED.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
            SPENT.fetch_add(spent(q) - before, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn sizes() -> Vec<usize> {
    std::env::var("BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 100_000, 1_000_000])
}

/// Bytes (requested, spent) that `build` leaves allocated, per topic.
fn per_topic<T>(n: usize, build: impl FnOnce() -> T) -> (f64, f64, T) {
    let (r0, s0) = (
        REQUESTED.load(Ordering::Relaxed),
        SPENT.load(Ordering::Relaxed),
    );
    let value = build();
    let r = REQUESTED.load(Ordering::Relaxed) - r0;
    let s = SPENT.load(Ordering::Relaxed) - s0;
    (r as f64 / n as f64, s as f64 / n as f64, value)
}

fn memory_report(sizes: &[usize]) {
    for &n in sizes {
        let names: Vec<String> = (0..n as u64).map(|i| workload::topic(i, 1)).collect();
        let (req, spent, engine) = per_topic(n, || Workload::engine_with(&names).0);
        assert_eq!(engine.stats().active, n);
        println!(
            "memory/idle_topic/engine/{n}: {spent:.1} B per idle topic with allocator overhead \
             ({req:.1} B requested); {n} active topics of {} bytes, one subscriber each, \
             everything the engine holds",
            names[0].len()
        );
        drop(engine);
        let (req, spent, sketch) = per_topic(n, || SketchWorkload::sketch_with(&names).0);
        assert_eq!(sketch.len(), n);
        println!(
            "memory/idle_topic/sketch/{n}: {spent:.1} B per idle topic with allocator overhead \
             ({req:.1} B requested)"
        );
    }
}

type EngineOp = fn(&mut Workload);
type SketchOp = fn(&mut SketchWorkload);

fn throughput(c: &mut Criterion, sizes: &[usize]) {
    let ops: [(&str, EngineOp, SketchOp, bool); 6] = [
        (
            "sub_unsub",
            Workload::sub_unsub,
            SketchWorkload::sub_unsub,
            false,
        ),
        (
            "lifecycle",
            Workload::lifecycle,
            SketchWorkload::lifecycle,
            false,
        ),
        ("switch", Workload::switch, SketchWorkload::switch, false),
        ("revive", Workload::revive, SketchWorkload::revive, false),
        (
            "sub_unsub_uniform",
            Workload::sub_unsub,
            SketchWorkload::sub_unsub,
            true,
        ),
        (
            "revive_uniform",
            Workload::revive,
            SketchWorkload::revive,
            true,
        ),
    ];
    for &n in sizes {
        let mut engines = [Workload::new(n, false), Workload::new(n, true)];
        let mut sketches = [SketchWorkload::new(n, false), SketchWorkload::new(n, true)];
        for (name, engine_op, sketch_op, uniform) in ops {
            let mut g = c.benchmark_group(name);
            g.throughput(Throughput::Elements(1));
            g.warm_up_time(Duration::from_secs(1));
            g.measurement_time(Duration::from_secs(3));
            let w = &mut engines[usize::from(uniform)];
            g.bench_function(BenchmarkId::new("engine", n), |b| b.iter(|| engine_op(w)));
            let s = &mut sketches[usize::from(uniform)];
            g.bench_function(BenchmarkId::new("sketch", n), |b| b.iter(|| sketch_op(s)));
            g.finish();
        }
        for w in &engines {
            assert!(w.engine.stats().active >= n, "the background stayed live");
        }
        for s in &sketches {
            assert!(s.sketch.len() >= n, "the background stayed live");
        }
    }
}

/// `ENGINE_BENCH_PROFILE=<op>/<engine|sketch>/<size>/<iterations>`: runs one
/// operation in a loop, without criterion, for a profiler or an instruction
/// counter (e.g. `valgrind --tool=callgrind`: run twice with different
/// iteration counts and divide the difference).
fn profile(spec: &str) {
    let parts: Vec<&str> = spec.split('/').collect();
    let [op, side, size, iterations] = parts[..] else {
        panic!("ENGINE_BENCH_PROFILE=<op>/<engine|sketch>/<size>/<iterations>, got {spec}");
    };
    let (size, iterations): (usize, usize) = (
        size.parse().expect("a size"),
        iterations.parse().expect("an iteration count"),
    );
    let uniform = op.ends_with("_uniform");
    let op = op.trim_end_matches("_uniform");
    if side == "engine" {
        let mut w = Workload::new(size, uniform);
        let f: EngineOp = match op {
            "sub_unsub" => Workload::sub_unsub,
            "lifecycle" => Workload::lifecycle,
            "switch" => Workload::switch,
            _ => Workload::revive,
        };
        for _ in 0..iterations {
            f(&mut w);
        }
    } else {
        let mut w = SketchWorkload::new(size, uniform);
        let f: SketchOp = match op {
            "sub_unsub" => SketchWorkload::sub_unsub,
            "lifecycle" => SketchWorkload::lifecycle,
            "switch" => SketchWorkload::switch,
            _ => SketchWorkload::revive,
        };
        for _ in 0..iterations {
            f(&mut w);
        }
    }
}

/// `ENGINE_BENCH_QUICK=<size>`: a quick ratio on a busy machine: batches
/// of each operation on both engines, interleaved, keeping the fastest batch
/// of each (the one nothing else interrupted).
#[allow(clippy::disallowed_methods)] // a benchmark measures wall time
fn quick(size: usize) {
    use std::time::Instant;
    let ops: [(&str, EngineOp, SketchOp); 4] = [
        ("sub_unsub", Workload::sub_unsub, SketchWorkload::sub_unsub),
        ("lifecycle", Workload::lifecycle, SketchWorkload::lifecycle),
        ("switch", Workload::switch, SketchWorkload::switch),
        ("revive", Workload::revive, SketchWorkload::revive),
    ];
    let mut e = Workload::new(size, false);
    let mut k = SketchWorkload::new(size, false);
    for (name, eop, kop) in ops {
        let (mut best_e, mut best_k) = (f64::MAX, f64::MAX);
        for _ in 0..300 {
            let t = Instant::now();
            for _ in 0..200 {
                eop(&mut e);
            }
            best_e = best_e.min(t.elapsed().as_nanos() as f64 / 200.0);
            let t = Instant::now();
            for _ in 0..200 {
                kop(&mut k);
            }
            best_k = best_k.min(t.elapsed().as_nanos() as f64 / 200.0);
        }
        println!(
            "{name}/{size}: engine {best_e:.1} ns, sketch {best_k:.1} ns, ratio {:.2}",
            best_e / best_k
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var("ENGINE_BENCH_PROFILE") {
        return profile(&spec);
    }
    if let Ok(size) = std::env::var("ENGINE_BENCH_QUICK") {
        return quick(size.parse().expect("a size"));
    }
    let sizes = sizes();
    memory_report(&sizes);
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c, &sizes);
    c.final_summary();
}
