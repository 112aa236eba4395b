//! Throughput of the three forms of the mapping against the floor (parse + serialise), on the
//! same generated rows: a realistic mix of about 1.6 KB per row.
//!
//! `cargo bench --bench mapping`; results and ratios are recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use amplitude_posthog::engine::{Engine, EngineKind};
use amplitude_posthog::generator::{Generator, GeneratorConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

// The product binary runs on jemalloc (as Vector does); so does every form here, floor included.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn corpus() -> Vec<Vec<u8>> {
    // broken_share 0: the ~950 KB rows the generator plants would dominate the timing.
    Generator::new(GeneratorConfig {
        rows: 2_000,
        seed: 1,
        broken_share: 0.0,
        ..GeneratorConfig::default()
    })
    .map(|row| row.line)
    .collect()
}

fn mapping(c: &mut Criterion) {
    let rows = corpus();
    let bytes: usize = rows.iter().map(|row| row.len() + 1).sum();
    let mut group = c.benchmark_group("mapping");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(12))
        .warm_up_time(Duration::from_secs(3));

    for (unit, throughput) in [
        ("rows", Throughput::Elements(rows.len() as u64)),
        ("bytes", Throughput::Bytes(bytes as u64)),
    ] {
        group.throughput(throughput);
        group.bench_function(format!("floor_parse_and_serialise/{unit}"), |b| {
            b.iter(|| {
                for row in &rows {
                    let value: serde_json::Value =
                        serde_json::from_slice(row).expect("generated rows are JSON");
                    black_box(serde_json::to_string(&value).expect("serialises"));
                }
            })
        });
        for (name, kind) in [
            ("native", EngineKind::Native),
            ("wasm", EngineKind::Wasm),
            ("vrl", EngineKind::Vrl),
        ] {
            let engine = Engine::load(kind).expect("engine loads");
            let mut mapper = engine.mapper();
            group.bench_function(format!("{name}/{unit}"), |b| {
                b.iter(|| {
                    for row in &rows {
                        black_box(mapper.map_line(row));
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, mapping);
criterion_main!(benches);
