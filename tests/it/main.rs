//! The root package's integration tests, in one binary so the large dependencies (`vrl`,
//! `wasmtime`, `axum`) are linked once. One module per topic.

/// A PostHog capture stand-in self-test: it behaves as PostHog's documented contract says.
mod capture_stand_in;
/// `amplitude-posthog map`, `generate` and `wasm-module` as a user runs them.
mod cli_map;
/// One dead-letter shape (Vector's) for every writer, and the replay recipe.
mod dead_letters;
/// VRL ≡ native ≡ WASM on fixtures, 200 000 generated rows and hostile input.
mod differential;
/// `export` and `unpack` against an Export API stand-in.
mod export;
/// The exporter's memory stays flat on a 300 MB zip.
mod export_memory;
/// The corpus generator: deterministic, Amplitude's layout, intended outcomes.
mod generator;
/// The golden fixtures, one per rule of `docs/MAPPING.md`, through the VRL program.
mod golden_mapping;
/// Test helpers that need this package (fixtures, corpora, the three forms).
mod helpers;
/// The identity records (§3.1) the VRL program emits beside the events.
mod identity_records;
/// Size and depth limits, already-parsed input, the VRL program's copies of tables.
mod mapping_limits;
/// `amplitude-posthog migrate`: delivery, kills, faults, bad input.
mod migrate;
/// `migrate` sends as PostHog asks: export order, one day per request, late rows last, the rate.
mod migrate_order;
/// Persons by event time, live projects and devices' earliest users, replayed through PostHog's rules.
mod migrate_persons;
/// `migrate` under a hostile user: huge lines, two runs, wrong hosts, lost states, odd names.
mod migrate_safety;
/// `amplitude-posthog prepare`: export files checked, missing final newlines added.
mod prepare;
/// `report` and `verify` after a real migration: numbers, HTML, PostHog's counts.
mod report_verify;
/// The repository stands alone: no outside references, links resolve, the license.
mod repository;
/// `amplitude-posthog resume`: Vector checkpoints of partially read gzip files.
mod resume;
/// `vector.toml` checked without Vector: inputs, programs, data-safety settings.
mod vector_config;
/// Real Vector killed mid-file (and `resume`), the sidecar killed mid-run: nothing lost.
mod vector_crash;
/// Real Vector through PostHog's 4xx answers and transient faults: nothing lost.
mod vector_faults;
/// The shipped `vector.toml` on a real Vector: validate, unit tests, end-to-end delivery.
mod vector_run;
/// How `migrate --engine vector` ends: a file Vector cannot finish, a row too long for Vector.
mod vector_supervisor;
/// The generated Vector unit tests, run through the `vrl` crate.
mod vector_unit_tests;
/// The ids the VRL program builds equal the `uuid` crate's.
mod vrl_ids;
/// A one-character change to the VRL program is caught.
mod vrl_mutations;
/// The wasmtime host: ABI, fuel and memory limits, traps.
mod wasm_host;
