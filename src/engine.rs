//! The forms of the mapping behind one interface, so every command can run any of them.

use amplitude_posthog_transform::MappedRow;

use crate::outcome::MappingOutcome;
use crate::vrl_engine::{VrlCompileError, VrlProgram};
use crate::wasm_engine::{WasmLoadError, WasmModule};

/// Which implementation of MAPPING.md maps the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// The shipped VRL program, run by the `vrl` crate exactly as Vector runs it.
    Vrl,
    /// The Rust crate `amplitude-posthog-transform`, compiled into this binary.
    Native,
    /// The same crate compiled to WebAssembly, run by wasmtime.
    Wasm,
}

/// Maps rows one at a time; each worker thread owns one.
pub trait RowMapper: Send {
    fn map_line(&mut self, line: &[u8]) -> MappingOutcome;

    /// The outcome, the row's identity records (docs/MAPPING.md §3.1) and its day.
    fn map_line_with_identities(&mut self, line: &[u8]) -> MappedRow;

    /// [`RowMapper::map_line`] of a row as read: one too long to hold (`oversized`, see
    /// [`crate::input::Line`]) is `event_too_large` without being mapped.
    fn map_read(&mut self, line: &[u8], oversized: Option<u64>) -> MappingOutcome {
        match oversized {
            Some(_) => MappingOutcome::Rejected(TOO_LARGE),
            None => self.map_line(line),
        }
    }

    /// [`RowMapper::map_line_with_identities`] of a row as read, as [`RowMapper::map_read`].
    fn map_read_with_identities(&mut self, line: &[u8], oversized: Option<u64>) -> MappedRow {
        match oversized {
            Some(_) => MappedRow::refused(TOO_LARGE),
            None => self.map_line_with_identities(line),
        }
    }
}

/// The refusal of a row too long to hold.
const TOO_LARGE: amplitude_posthog_transform::RejectReason =
    amplitude_posthog_transform::RejectReason::EventTooLarge;

impl RowMapper for crate::wasm_engine::WasmMapper {
    fn map_line(&mut self, line: &[u8]) -> MappingOutcome {
        crate::wasm_engine::WasmMapper::map_line(self, line)
    }

    fn map_line_with_identities(&mut self, line: &[u8]) -> MappedRow {
        crate::wasm_engine::WasmMapper::map_line_with_identities(self, line)
    }
}

impl RowMapper for crate::vrl_engine::VrlMapper {
    fn map_line(&mut self, line: &[u8]) -> MappingOutcome {
        crate::vrl_engine::VrlMapper::map_line(self, line)
    }

    fn map_line_with_identities(&mut self, line: &[u8]) -> MappedRow {
        crate::vrl_engine::VrlMapper::map_line_with_identities(self, line)
    }
}

/// The native form: a pure function, nothing to prepare.
pub struct NativeMapper;

impl RowMapper for NativeMapper {
    fn map_line(&mut self, line: &[u8]) -> MappingOutcome {
        amplitude_posthog_transform::map_line(line)
    }

    fn map_line_with_identities(&mut self, line: &[u8]) -> MappedRow {
        amplitude_posthog_transform::map_line_with_identities(line)
    }
}

/// A prepared engine (program compiled, module loaded) that hands out per-thread mappers.
#[derive(Clone)]
pub enum Engine {
    Vrl(VrlProgram),
    Native,
    Wasm(WasmModule),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Vrl(#[from] VrlCompileError),
    #[error(transparent)]
    Wasm(#[from] WasmLoadError),
}

impl Engine {
    pub fn load(kind: EngineKind) -> Result<Engine, EngineError> {
        match kind {
            EngineKind::Vrl => Ok(Engine::Vrl(VrlProgram::mapping()?)),
            EngineKind::Native => Ok(Engine::Native),
            EngineKind::Wasm => Ok(Engine::Wasm(WasmModule::embedded()?)),
        }
    }

    /// The VRL engine with a program other than the shipped one (a user's modified copy).
    pub fn vrl_from_source(source: &str) -> Result<Engine, EngineError> {
        Ok(Engine::Vrl(VrlProgram::compile(source)?))
    }

    /// Compiler warnings of the program, rendered for the user.
    pub fn warnings(&self) -> &[String] {
        match self {
            Engine::Vrl(program) => program.warnings(),
            Engine::Native | Engine::Wasm(_) => &[],
        }
    }

    pub fn mapper(&self) -> Box<dyn RowMapper> {
        match self {
            Engine::Vrl(program) => Box::new(program.mapper()),
            Engine::Native => Box::new(NativeMapper),
            Engine::Wasm(module) => Box::new(module.mapper()),
        }
    }
}
