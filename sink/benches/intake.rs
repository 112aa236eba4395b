//! Intake throughput with deduplication into SQLite, with 10 M distinct pairs already stored.
//!
//! `cargo bench -p posthog-identity-sidecar --bench intake`. The 10 M-pair database is built once
//! under `target/bench-data/` (about a minute) and reused. Results go to BENCHMARKS.md.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use posthog_identity_sidecar::records::{IdentityPair, RecordBatch, parse_batch};
use posthog_identity_sidecar::store::Store;

const STORED_PAIRS: u64 = 10_000_000;
const BATCH: u64 = 20_000;

fn pair(user: u64, device: u64) -> IdentityPair {
    IdentityPair {
        user_id: format!("user-{user:09}"),
        device_id: format!("device-{device:010}"),
        timestamp: "2024-03-01T10:00:00.000Z".to_owned(),
    }
}

fn database() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join("sidecar-10m.sqlite");
    let mut store = Store::open(&path).expect("open");
    let have = store.counts().expect("counts").pairs;
    if have < STORED_PAIRS {
        let started = Instant::now();
        for start in (have..STORED_PAIRS).step_by(100_000) {
            let pairs = (start..(start + 100_000).min(STORED_PAIRS))
                .map(|device| pair(device / 2, device))
                .collect();
            store
                .ingest(&RecordBatch {
                    pairs,
                    records: 100_000,
                    ..RecordBatch::default()
                })
                .expect("ingest");
        }
        eprintln!(
            "built {STORED_PAIRS} pairs in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "database: {:.1} MB for {STORED_PAIRS} pairs ({:.1} MB per million pairs)",
        size as f64 / 1e6,
        size as f64 / 1e6 / (STORED_PAIRS as f64 / 1e6)
    );
    path
}

/// A batch like Vector's: 80 % pairs already stored (the same device seen again), 20 % new.
fn mixed_batch(next_new: &AtomicU64) -> RecordBatch {
    let mut pairs = Vec::with_capacity(BATCH as usize);
    for index in 0..BATCH {
        if index % 5 == 0 {
            let device = next_new.fetch_add(1, Ordering::Relaxed);
            pairs.push(pair(device / 2, device));
        } else {
            let device = (index * 7_919 + next_new.load(Ordering::Relaxed) * 13) % STORED_PAIRS;
            pairs.push(pair(device / 2, device));
        }
    }
    RecordBatch {
        pairs,
        records: BATCH,
        ..RecordBatch::default()
    }
}

fn intake(c: &mut Criterion) {
    let path = database();
    let mut store = Store::open(&path).expect("open");
    // New devices get ids beyond anything stored, fresh for every run.
    let next_new =
        AtomicU64::new(STORED_PAIRS * 10 + u64::from(std::process::id()) * 1_000_000_000);
    let mut group = c.benchmark_group("sidecar_intake");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(BATCH));
    group.bench_function("store_ingest_with_10m_pairs", |b| {
        b.iter_batched(
            || mixed_batch(&next_new),
            |batch| store.ingest(&batch).expect("ingest"),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("parse_and_ingest_with_10m_pairs", |b| {
        b.iter_batched(
            || {
                let batch = mixed_batch(&next_new);
                let records: Vec<serde_json::Value> = batch
                    .pairs
                    .iter()
                    .map(|p| serde_json::json!({"kind": "identity", "user_id": p.user_id, "device_id": p.device_id, "timestamp": p.timestamp}))
                    .collect();
                serde_json::to_vec(&records).expect("json")
            },
            |body| store.ingest(&parse_batch(&body).expect("valid")).expect("ingest"),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, intake);
criterion_main!(benches);
