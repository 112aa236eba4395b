//! The wasmtime host: the embedded module honours the ABI, and a hostile or buggy module can
//! neither hang nor exhaust the host; after a trap the next row gets a fresh instance.

use amplitude_posthog::wasm_engine::{EMBEDDED_MODULE, WasmLimits, WasmLoadError, WasmModule};
use amplitude_posthog::{MappingOutcome, RejectReason, SkipReason};
use amplitude_posthog_transform::IdentityRecord;

const ROW: &[u8] = br#"{"event_type":"Signed Up","user_id":"user-1","event_time":"2024-07-06 12:34:56.789000","uuid":"0b7a1c8e-3f5d-4c8e-9b1a-6d2f4e8c1a55"}"#;

/// A module speaking the ABI whose `transform` (and `transform_full`, the same function)
/// misbehaves on demand: input starting with `L` loops forever, `M` grows memory without end,
/// `T` traps; anything else answers a skip.
const MISBEHAVING: &str = r#"
(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 16) "{\"skipped\":\"session_marker\"}")
  (func (export "alloc") (param $len i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $at))
  (func (export "dealloc") (param i32 i32))
  (func (export "abi_version") (result i32) (i32.const 3))
  (export "transform_full" (func $transform))
  (func $transform (export "transform") (param $ptr i32) (param $len i32) (result i64)
    (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 76))
      (then (loop $forever (br $forever))))
    (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 77))
      (then (loop $grow (drop (memory.grow (i32.const 1024))) (br $grow))))
    (if (i32.eq (i32.load8_u (local.get $ptr)) (i32.const 84))
      (then unreachable))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 28))))
"#;

fn misbehaving() -> WasmModule {
    let bytes = wat::parse_str(MISBEHAVING).expect("valid WAT");
    WasmModule::from_bytes(
        &bytes,
        WasmLimits {
            fuel_per_row: 50_000_000,
            max_memory_bytes: 16 << 20,
        },
    )
    .expect("loads")
}

fn is_failure(outcome: &MappingOutcome) -> bool {
    matches!(outcome, MappingOutcome::Rejected(RejectReason::Unexpected(message)) if message.contains("failed on this row"))
}

#[test]
fn the_embedded_module_has_no_imports_and_maps_a_row() {
    let module = WasmModule::embedded().expect("the embedded module loads");
    let mut mapper = module.mapper();
    let MappingOutcome::Events(events) = mapper.map_line(ROW) else {
        panic!("not mapped")
    };
    assert_eq!(events.len(), 1);
    assert!(
        events[0].starts_with(r#"{"distinct_id":"user-1","event":"Signed Up""#),
        "{}",
        events[0]
    );
    assert!(EMBEDDED_MODULE.starts_with(b"\0asm"));
}

#[test]
fn one_instance_serves_many_rows_without_leaking_memory() {
    let module = WasmModule::embedded().expect("loads");
    let mut mapper = module.mapper();
    let big = format!(
        r#"{{"event_type":"x","user_id":"u","event_time":"2024-07-06 12:34:56","event_properties":{{"s":"{}"}}}}"#,
        "a".repeat(300_000)
    );
    // 2 000 rows of 300 KB through one instance: freed buffers are reused, or the 512 MiB
    // memory limit would stop it.
    for _ in 0..2_000 {
        assert!(matches!(
            mapper.map_line(big.as_bytes()),
            MappingOutcome::Events(_)
        ));
    }
    assert_eq!(mapper.instances_discarded(), 0);
}

#[test]
fn an_endless_loop_runs_out_of_fuel_and_the_next_row_gets_a_fresh_instance() {
    let mut mapper = misbehaving().mapper();
    assert_eq!(
        mapper.map_line(b"ok"),
        MappingOutcome::Skipped(SkipReason::SessionMarker)
    );
    let looped = mapper.map_line(b"Loop");
    assert!(is_failure(&looped), "{looped:?}");
    assert_eq!(
        mapper.map_line(b"ok"),
        MappingOutcome::Skipped(SkipReason::SessionMarker)
    );
    assert_eq!(mapper.instances_discarded(), 1);
}

#[test]
fn memory_growth_is_capped_and_traps_are_contained() {
    let mut mapper = misbehaving().mapper();
    // memory.grow fails at the cap and the module loops until its fuel runs out.
    assert!(is_failure(&mapper.map_line(b"Memory")));
    assert!(is_failure(&mapper.map_line(b"Trap")));
    assert_eq!(
        mapper.map_line(b"ok"),
        MappingOutcome::Skipped(SkipReason::SessionMarker)
    );
    assert_eq!(mapper.instances_discarded(), 2);
}

#[test]
fn a_module_with_imports_is_refused() {
    let bytes =
        wat::parse_str(r#"(module (import "env" "now" (func)) (memory (export "memory") 1))"#)
            .expect("WAT");
    let error = WasmModule::from_bytes(&bytes, WasmLimits::default())
        .err()
        .expect("refused");
    assert!(
        matches!(error, WasmLoadError::Imports(ref imports) if imports == "env::now"),
        "{error}"
    );
}

/// Why the misbehaving module, with `version` for its ABI version, is refused.
fn refused_at_version(version: &str, source: &str) -> WasmLoadError {
    let source = source.replace(
        "(func (export \"abi_version\") (result i32) (i32.const 3))",
        &format!("(func (export \"abi_version\") (result i32) (i32.const {version}))"),
    );
    let bytes = wat::parse_str(&source).expect("WAT");
    WasmModule::from_bytes(&bytes, WasmLimits::default())
        .err()
        .expect("refused")
}

#[test]
fn a_module_of_another_abi_version_is_refused() {
    let error = refused_at_version("2", MISBEHAVING);
    assert!(
        matches!(
            error,
            WasmLoadError::AbiVersion {
                found: 2,
                expected: 3
            }
        ),
        "{error}"
    );
}

#[test]
fn a_module_of_abi_version_1_without_transform_full_is_refused_for_its_version() {
    let version_1 = MISBEHAVING.replace("(export \"transform_full\" (func $transform))", "");
    let error = refused_at_version("1", &version_1);
    assert!(
        matches!(
            error,
            WasmLoadError::AbiVersion {
                found: 1,
                expected: 3
            }
        ),
        "{error}"
    );
}

#[test]
fn transform_full_returns_the_rows_identity_records_and_day_as_the_native_crate_does() {
    let mut mapper = WasmModule::embedded().expect("loads").mapper();
    let row = br#"{"event_type":"session_start","user_id":"user-1","device_id":"d-1","event_time":"2024-07-06 23:59:59.999","groups":{"company":"acme"},"group_properties":{"company":{"acme":{"plan":"pro"}}}}"#;
    let mapped = mapper.map_line_with_identities(row);
    assert_eq!(
        mapped.outcome,
        MappingOutcome::Skipped(SkipReason::SessionMarker)
    );
    assert_eq!(mapped.day.as_deref(), Some("2024-07-06"));
    let records: Vec<String> = mapped
        .identities
        .iter()
        .map(IdentityRecord::to_json)
        .collect();
    assert_eq!(
        records,
        [
            r#"{"device_id":"d-1","kind":"identity","timestamp":"2024-07-06T23:59:59.999Z","user_id":"user-1"}"#,
            r#"{"group_properties":{"company":{"acme":{"plan":"pro"}}},"groups":{"company":"acme"},"kind":"groups","timestamp":"2024-07-06T23:59:59.999Z"}"#,
        ]
    );
    assert_eq!(
        mapped,
        amplitude_posthog_transform::map_line_with_identities(row)
    );
    // A refused row: no records, and the day of its time when it has one.
    let refused = mapper.map_line_with_identities(
        br#"{"event_type":"e","user_id":"null","event_time":"2024-07-06 12:00:00"}"#,
    );
    assert_eq!(
        refused.outcome,
        MappingOutcome::Rejected(RejectReason::NoIdentity)
    );
    assert!(refused.identities.is_empty());
    assert_eq!(refused.day.as_deref(), Some("2024-07-06"));
    assert_eq!(mapper.map_line_with_identities(b"{").day, None);
    assert_eq!(mapper.instances_discarded(), 0);
}

#[test]
fn a_module_missing_an_export_is_refused() {
    let bytes = wat::parse_str(r#"(module (memory (export "memory") 1))"#).expect("WAT");
    let error = WasmModule::from_bytes(&bytes, WasmLimits::default())
        .err()
        .expect("refused");
    assert!(error.to_string().contains("alloc"), "{error}");
}
