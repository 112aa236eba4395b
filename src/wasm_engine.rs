//! Runs the WebAssembly form of the mapping through wasmtime, as any host embedding wasmtime
//! would. The engine and module are compiled once; each worker keeps one instance and reuses
//! it across rows. Fuel and memory limits stop a hostile or buggy module from hanging or
//! exhausting the host; after any trap the instance is discarded and a fresh one is built.

use serde::Deserialize;
use serde_json::value::RawValue;
use wasmtime::{
    Config, Engine, Instance, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, TypedFunc,
    WasmParams, WasmResults,
};

use amplitude_posthog_transform::{ABI_VERSION, IdentityRecord, MappedRow};

use crate::outcome::{MappingOutcome, RejectReason, SkipReason};

/// The module built from `wasm-transform/` by build.rs, embedded in this binary.
pub const EMBEDDED_MODULE: &[u8] = include_bytes!(env!("AMPLITUDE_POSTHOG_WASM"));

/// Resource limits of one instance.
#[derive(Debug, Clone, Copy)]
pub struct WasmLimits {
    /// Fuel (roughly, WebAssembly instructions) for one row: allocation, mapping and release.
    /// The default allows rows far larger than Vector's 4 MiB line limit.
    pub fuel_per_row: u64,
    /// Largest linear memory, in bytes.
    pub max_memory_bytes: usize,
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmLimits {
            fuel_per_row: 20_000_000_000,
            max_memory_bytes: 512 << 20,
        }
    }
}

/// Why a module cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WasmLoadError {
    #[error("the WebAssembly module does not compile: {0}")]
    Compile(#[source] wasmtime::Error),
    #[error("the WebAssembly module must not import anything, but imports {0}")]
    Imports(String),
    #[error("the WebAssembly module does not work: {0}")]
    Instance(#[source] InstanceError),
    #[error("the WebAssembly module implements ABI version {found}, this host needs {expected}")]
    AbiVersion { found: u32, expected: u32 },
}

/// A compiled module, shareable between threads.
#[derive(Clone)]
pub struct WasmModule {
    engine: Engine,
    module: Module,
    limits: WasmLimits,
}

impl WasmModule {
    /// The module embedded in this binary.
    pub fn embedded() -> Result<Self, WasmLoadError> {
        Self::from_bytes(EMBEDDED_MODULE, WasmLimits::default())
    }

    /// Compiles a module and checks its ABI (exports, no imports, version).
    pub fn from_bytes(bytes: &[u8], limits: WasmLimits) -> Result<Self, WasmLoadError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).map_err(WasmLoadError::Compile)?;
        let module = Module::new(&engine, bytes).map_err(WasmLoadError::Compile)?;
        let imports: Vec<String> = module
            .imports()
            .map(|import| format!("{}::{}", import.module(), import.name()))
            .collect();
        if !imports.is_empty() {
            return Err(WasmLoadError::Imports(imports.join(", ")));
        }
        let loaded = WasmModule {
            engine,
            module,
            limits,
        };
        LiveInstance::new(&loaded)?;
        Ok(loaded)
    }

    /// A mapper with its own instance, for one worker thread.
    pub fn mapper(&self) -> WasmMapper {
        WasmMapper {
            module: self.clone(),
            instance: None,
            discarded: 0,
        }
    }
}

/// The ABI's two ways of mapping a row.
#[derive(Debug, Clone, Copy)]
enum Export {
    /// `transform`: the outcome only.
    Transform,
    /// `transform_full`: the outcome, the identity records and the day.
    TransformFull,
}

/// One instance and the exports the ABI defines.
struct LiveInstance {
    store: Store<StoreLimits>,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    dealloc: TypedFunc<(u32, u32), ()>,
    transform: TypedFunc<(u32, u32), u64>,
    transform_full: TypedFunc<(u32, u32), u64>,
    fuel_per_row: u64,
}

impl LiveInstance {
    /// Instantiates the module and checks its ABI: version 1's exports, the version, then
    /// the exports later versions added (so an older module is refused for its version).
    fn new(module: &WasmModule) -> Result<Self, InstanceError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(module.limits.max_memory_bytes)
            .instances(1)
            .build();
        let mut store = Store::new(&module.engine, limits);
        store.limiter(|limits| limits);
        store.set_fuel(module.limits.fuel_per_row)?;
        let instance = Instance::new(&mut store, &module.module, &[])?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or(InstanceError::NoExport("memory"))?;
        let alloc = typed_export(&instance, &mut store, "alloc")?;
        let dealloc = typed_export(&instance, &mut store, "dealloc")?;
        let transform = typed_export(&instance, &mut store, "transform")?;
        let abi_version: TypedFunc<(), u32> = typed_export(&instance, &mut store, "abi_version")?;
        let found = abi_version.call(&mut store, ())?;
        if found != ABI_VERSION {
            return Err(InstanceError::AbiVersion(found));
        }
        let transform_full = typed_export(&instance, &mut store, "transform_full")?;
        Ok(LiveInstance {
            store,
            memory,
            alloc,
            dealloc,
            transform,
            transform_full,
            fuel_per_row: module.limits.fuel_per_row,
        })
    }

    /// Runs `export` on one line and returns the result object's bytes.
    fn call(&mut self, export: Export, line: &[u8]) -> Result<Vec<u8>, InstanceError> {
        self.store.set_fuel(self.fuel_per_row)?;
        let length = u32::try_from(line.len()).map_err(InstanceError::RowTooLarge)?;
        let input = self.alloc.call(&mut self.store, length)?;
        self.memory
            .write(&mut self.store, input as usize, line)
            .map_err(|source| InstanceError::Memory {
                what: "writing the row",
                source,
            })?;
        let function = match export {
            Export::Transform => &self.transform,
            Export::TransformFull => &self.transform_full,
        };
        let packed = function.call(&mut self.store, (input, length))?;
        let (output, output_length) = ((packed >> 32) as u32, packed as u32);
        let mut result = vec![0; output_length as usize];
        self.memory
            .read(&self.store, output as usize, &mut result)
            .map_err(|source| InstanceError::Memory {
                what: "reading the result",
                source,
            })?;
        self.dealloc
            .call(&mut self.store, (output, output_length))?;
        Ok(result)
    }
}

/// The function `name` exports, with the signature the ABI gives it.
fn typed_export<Params: WasmParams, Results: WasmResults>(
    instance: &Instance,
    store: &mut Store<StoreLimits>,
    name: &'static str,
) -> Result<TypedFunc<Params, Results>, InstanceError> {
    instance
        .get_func(&mut *store, name)
        .ok_or(InstanceError::NoExport(name))?
        .typed(&*store)
        .map_err(|source| InstanceError::Signature {
            export: name,
            source,
        })
}

/// Maps rows through one reused instance; one per worker.
pub struct WasmMapper {
    module: WasmModule,
    instance: Option<LiveInstance>,
    discarded: u64,
}

impl WasmMapper {
    /// Maps one raw input line (`transform`). A trap (out of fuel, out of memory, a bug in
    /// the module) makes the row a reject with the trap's message, and the next row gets a
    /// fresh instance.
    pub fn map_line(&mut self, line: &[u8]) -> MappingOutcome {
        self.map(Export::Transform, line).outcome
    }

    /// Maps one raw input line to its outcome, identity records and day (`transform_full`),
    /// with the same handling of traps.
    pub fn map_line_with_identities(&mut self, line: &[u8]) -> MappedRow {
        self.map(Export::TransformFull, line)
    }

    fn map(&mut self, export: Export, line: &[u8]) -> MappedRow {
        let result = self
            .live_instance()
            .and_then(|instance| instance.call(export, line))
            .and_then(|bytes| parse_result(&bytes));
        result.unwrap_or_else(|error| {
            if self.instance.take().is_some() {
                self.discarded += 1;
            }
            MappedRow::refused(RejectReason::Unexpected(format!(
                "the WebAssembly module failed on this row: {error}"
            )))
        })
    }

    /// How many times an instance was discarded after a failure.
    pub fn instances_discarded(&self) -> u64 {
        self.discarded
    }

    fn live_instance(&mut self) -> Result<&mut LiveInstance, InstanceError> {
        match &mut self.instance {
            Some(instance) => Ok(instance),
            empty => Ok(empty.insert(LiveInstance::new(&self.module)?)),
        }
    }
}

/// Why an instance cannot be built, or a call into it failed: the message of
/// [`WasmLoadError::Instance`], or of a row's `unexpected` refusal.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// wasmtime refused: instantiation, fuel, or a call that trapped (out of fuel, out of
    /// memory, a bug in the module).
    #[error("{0}")]
    Wasmtime(#[from] wasmtime::Error),
    #[error("no exported `{0}`")]
    NoExport(&'static str),
    /// An export the ABI defines has another signature.
    #[error("`{export}`: {source}")]
    Signature {
        export: &'static str,
        #[source]
        source: wasmtime::Error,
    },
    #[error("the module implements ABI version {0}")]
    AbiVersion(u32),
    #[error("the row is larger than 4 GiB")]
    RowTooLarge(#[source] std::num::TryFromIntError),
    /// The module's memory could not be written or read.
    #[error("{what}: {source}")]
    Memory {
        what: &'static str,
        #[source]
        source: wasmtime::MemoryAccessError,
    },
    /// The result object breaks the ABI.
    #[error("the result is not UTF-8")]
    ResultNotUtf8(#[source] std::str::Utf8Error),
    #[error("the result is not a result object: {0}")]
    ResultNotObject(#[source] serde_json::Error),
    #[error("unknown skip reason {0:?}")]
    UnknownSkipReason(String),
    #[error("the result object must hold exactly one of events, skipped, rejected")]
    AmbiguousResult,
}

impl From<InstanceError> for WasmLoadError {
    fn from(error: InstanceError) -> Self {
        match error {
            InstanceError::AbiVersion(found) => WasmLoadError::AbiVersion {
                found,
                expected: ABI_VERSION,
            },
            error => WasmLoadError::Instance(error),
        }
    }
}

/// A result object: `{"events":[…]}`, `{"skipped":"…"}` or `{"rejected":"…"}` (events kept
/// as their exact bytes), with `"identities":[…]` and `"day"` from `transform_full`.
fn parse_result(bytes: &[u8]) -> Result<MappedRow, InstanceError> {
    #[derive(Deserialize)]
    struct ResultObject<'a> {
        #[serde(borrow)]
        events: Option<Vec<&'a RawValue>>,
        skipped: Option<String>,
        rejected: Option<String>,
        #[serde(default)]
        identities: Vec<IdentityRecord>,
        day: Option<String>,
    }
    let text = std::str::from_utf8(bytes).map_err(InstanceError::ResultNotUtf8)?;
    let result: ResultObject =
        serde_json::from_str(text).map_err(InstanceError::ResultNotObject)?;
    let outcome = match (result.events, result.skipped, result.rejected) {
        (Some(events), None, None) => MappingOutcome::Events(
            events
                .into_iter()
                .map(|event| event.get().to_owned())
                .collect(),
        ),
        (None, Some(reason), None) => SkipReason::parse(&reason)
            .map(MappingOutcome::Skipped)
            .ok_or(InstanceError::UnknownSkipReason(reason))?,
        (None, None, Some(reason)) => MappingOutcome::Rejected(RejectReason::parse(&reason)),
        _ => return Err(InstanceError::AmbiguousResult),
    };
    Ok(MappedRow {
        outcome,
        identities: result.identities,
        day: result.day,
    })
}
