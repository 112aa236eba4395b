//! Runs the shipped VRL program through the `vrl` crate, the compiler and runtime Vector embeds.
//!
//! The program is compiled once; each row runs against a target shaped like the event Vector's
//! `file` source produces (`{"message": <raw line>}`), in timezone UTC, exactly as the `remap`
//! transform of `vector.toml` runs it.

use std::sync::Arc;

use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{CompileConfig, Program, TargetValue, TimeZone, TypeState};
use vrl::diagnostic::{Formatter, Note};
use vrl::value::{KeyString, ObjectMap, Secrets, Value};

use amplitude_posthog_transform::{IdentityRecord, MappedRow, utc_day};

use crate::outcome::{MappingOutcome, RejectReason, SkipReason};

/// The mapping program shipped with the product.
pub const MAPPING_PROGRAM: &str = include_str!("../vrl/amplitude_to_posthog.vrl");

/// The metadata object (`%amplitude_posthog`) in which the program tells its host what `.`
/// does not carry: why a row was skipped (`skipped`) and the row's time (`timestamp`, §4,
/// set as soon as it is read, so a refused row has it too).
const METADATA: &str = "amplitude_posthog";

/// The field that sets an identity record (§3.1) apart from a PostHog event in the output.
pub const IDENTITY_RECORD_KEY: &str = "kind";

/// A VRL program that failed to compile, with VRL's own diagnostics.
#[derive(Debug, thiserror::Error)]
#[error("the VRL program does not compile:\n{rendered}")]
pub struct VrlCompileError {
    pub rendered: String,
}

/// A compiled VRL program, shareable between threads.
#[derive(Clone)]
pub struct VrlProgram {
    program: Arc<Program>,
    warnings: Arc<Vec<String>>,
}

impl VrlProgram {
    /// Compiles the shipped mapping program.
    pub fn mapping() -> Result<Self, VrlCompileError> {
        Self::compile(MAPPING_PROGRAM)
    }

    /// Compiles `source` with the standard library Vector ships (pinned `vrl` crate).
    pub fn compile(source: &str) -> Result<Self, VrlCompileError> {
        let functions = vrl::stdlib::all();
        let state = TypeState::default();
        match vrl::compiler::compile_with_state(
            source,
            &functions,
            &state,
            CompileConfig::default(),
        ) {
            Ok(result) => {
                let warnings = result
                    .warnings
                    .iter()
                    .map(|warning| Formatter::new(source, vec![warning.clone()]).to_string())
                    .collect();
                Ok(VrlProgram {
                    program: Arc::new(result.program),
                    warnings: Arc::new(warnings),
                })
            }
            Err(diagnostics) => Err(VrlCompileError {
                rendered: Formatter::new(source, diagnostics).to_string(),
            }),
        }
    }

    /// The compiled program, for hosts that run it against their own targets.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Compiler warnings, rendered by VRL's diagnostic formatter.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A mapper with its own runtime state, for one worker thread.
    pub fn mapper(&self) -> VrlMapper {
        VrlMapper {
            program: self.program.clone(),
            runtime: Runtime::default(),
            timezone: TimeZone::Named(chrono_tz::UTC),
        }
    }
}

/// Runs the program row by row; one per worker thread.
pub struct VrlMapper {
    program: Arc<Program>,
    runtime: Runtime,
    timezone: TimeZone,
}

impl VrlMapper {
    /// Maps one raw input line (without its newline).
    pub fn map_line(&mut self, line: &[u8]) -> MappingOutcome {
        self.map_line_with_identities(line).outcome
    }

    /// Maps one raw input line: the outcome, the row's identity records (§3.1), its day.
    pub fn map_line_with_identities(&mut self, line: &[u8]) -> MappedRow {
        let mut event = ObjectMap::new();
        event.insert(
            KeyString::from("message"),
            Value::Bytes(bytes::Bytes::copy_from_slice(line)),
        );
        self.map_value(Value::Object(event))
    }

    /// Runs the program on an arbitrary event, as Vector's remap transform would.
    pub fn map_value(&mut self, event: Value) -> MappedRow {
        let mut target = TargetValue {
            value: event,
            metadata: Value::Object(ObjectMap::new()),
            secrets: Secrets::default(),
        };
        let resolved = self
            .runtime
            .resolve(&mut target, &self.program, &self.timezone);
        self.runtime.clear();
        // The metadata the program set stays when it fails: a refused row has its day too.
        let day = our_metadata(&target.metadata, "timestamp")
            .and_then(Value::as_str)
            .and_then(|timestamp| utc_day(&timestamp).map(str::to_owned));
        let mapped = match resolved {
            Ok(_) => mapped_from_target(target),
            Err(Terminate::Error(error) | Terminate::Abort(error)) => {
                MappedRow::refused(RejectReason::parse(&dropped_message(&error)))
            }
        };
        MappedRow { day, ..mapped }
    }
}

/// The message Vector's remap puts in `metadata.dropped.message`: the user's message of an
/// `assert`/`abort` when there is one, else the error's text.
pub fn dropped_message(error: &vrl::compiler::ExpressionError) -> String {
    use vrl::diagnostic::DiagnosticMessage;
    error
        .notes()
        .iter()
        .rev()
        .find_map(|note| match note {
            Note::UserErrorMessage(message) => Some(message.clone()),
            _ => None,
        })
        .unwrap_or_else(|| error.to_string())
}

/// `%amplitude_posthog.<field>`, when the program set it.
fn our_metadata<'a>(metadata: &'a Value, field: &str) -> Option<&'a Value> {
    metadata.as_object()?.get(METADATA)?.as_object()?.get(field)
}

/// What the program left: PostHog events, then identity records (objects with a `kind`),
/// taken as typed records straight from the program's values. The day is the caller's.
fn mapped_from_target(target: TargetValue) -> MappedRow {
    let unexpected = |reason: String| MappedRow::refused(RejectReason::Unexpected(reason));
    let Value::Array(outputs) = target.value else {
        return unexpected(format!(
            "program left a {} instead of an array of events",
            target.value.kind_str()
        ));
    };
    let (mut events, mut identities) = (Vec::new(), Vec::new());
    for output in &outputs {
        let is_record = output
            .as_object()
            .is_some_and(|fields| fields.contains_key(IDENTITY_RECORD_KEY));
        if is_record {
            match identity_record(output) {
                Ok(record) => identities.push(record),
                Err(error) => {
                    return unexpected(format!(
                        "program emitted an identity record that is not one: {error}"
                    ));
                }
            }
            continue;
        }
        match serde_json::to_string(output) {
            Ok(json) => events.push(json),
            Err(error) => return unexpected(format!("output could not be serialised: {error}")),
        }
    }
    let outcome = if events.is_empty() {
        let reason = our_metadata(&target.metadata, "skipped")
            .and_then(|value| value.as_str().map(|text| text.into_owned()));
        match reason.as_deref().and_then(SkipReason::parse) {
            Some(reason) => MappingOutcome::Skipped(reason),
            None => {
                return unexpected(format!(
                    "program emitted no event without a skip reason (metadata: {reason:?})"
                ));
            }
        }
    } else {
        MappingOutcome::Events(events)
    };
    MappedRow {
        outcome,
        identities,
        day: None,
    }
}

/// An identity record of the program's output as the typed record, value to value (the
/// VRL value through serde's data model, no JSON text).
fn identity_record(output: &Value) -> Result<IdentityRecord, serde_json::Error> {
    serde_json::from_value(serde_json::to_value(output)?)
}
