//! Engine throughput at 1 k, 100 k and 1 M live topics, and memory per idle
//! topic. Run: `cargo bench --bench engine` (set `BENCH_SIZES=1000,100000` to
//! pick sizes).
//!
//! Operations on live topics hit a working set of 1 024 topics spread over the
//! table (the `_uniform` variants hit all `n`, which at 1 M measures cache and
//! TLB misses more than the engine).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};

mod workload;
use workload::Workload;

/// Counts live heap bytes, for the memory-per-topic report.
struct Counting;
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE_BYTES.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
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

fn memory_report(sizes: &[usize]) {
    for &n in sizes {
        let names: Vec<String> = (0..n as u64).map(|i| workload::topic(i, 1)).collect();
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        let (engine, _) = Workload::engine_with(&names);
        let bytes = LIVE_BYTES.load(Ordering::Relaxed) - before;
        println!(
            "memory/idle_topic/{n}: {:.1} B per idle topic ({} active topics of {} bytes, one subscriber each; \
             everything the engine holds, tables and names included)",
            bytes as f64 / n as f64,
            engine.stats().active,
            names[0].len()
        );
    }
}

fn throughput(c: &mut Criterion, sizes: &[usize]) {
    type Op = fn(&mut Workload);
    let ops: [(&str, Op, bool); 6] = [
        ("sub_unsub", Workload::sub_unsub, false),
        ("lifecycle", Workload::lifecycle, false),
        ("switch", Workload::switch, false),
        ("revive", Workload::revive, false),
        ("sub_unsub_uniform", Workload::sub_unsub, true),
        ("revive_uniform", Workload::revive, true),
    ];
    for &n in sizes {
        let mut hot = Workload::new(n, false);
        let mut uniform = Workload::new(n, true);
        for (name, op, all) in ops {
            let w = if all { &mut uniform } else { &mut hot };
            let mut g = c.benchmark_group(format!("engine/{name}"));
            g.throughput(Throughput::Elements(1));
            g.warm_up_time(Duration::from_secs(1));
            g.measurement_time(Duration::from_secs(3));
            g.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(|| op(w)));
            g.finish();
        }
        assert!(hot.engine.stats().active >= n, "the background stayed live");
        assert!(
            uniform.engine.stats().active >= n,
            "the background stayed live"
        );
    }
}

fn main() {
    let sizes = sizes();
    memory_report(&sizes);
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c, &sizes);
    c.final_summary();
}
