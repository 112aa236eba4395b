//! The `amplitude-posthog` command line: argument parsing and dispatch to the library.

mod export;
mod generate;
mod map;
mod migrate;
mod prepare;
mod report;
mod resume;
mod secret;
mod verify;
mod wasm_module;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "amplitude-posthog",
    version,
    about = "Migrate Amplitude export history to PostHog"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate an export to PostHog in one command: resumable, with progress and a summary.
    Migrate(migrate::MigrateArgs),
    /// The reconciliation report of a migration, per day: report.json and report.html.
    Report(report::ReportArgs),
    /// Ask PostHog how many migrated events it holds per day and compare with the report.
    Verify(verify::VerifyArgs),
    /// Map Amplitude export rows (JSON lines, plain or gzip) to PostHog events.
    Map(map::MapArgs),
    /// Generate a realistic, deterministic Amplitude export for tests and benchmarks.
    Generate(generate::GenerateArgs),
    /// Download Amplitude's history through the Export API, resumably, into an export directory.
    Export(export::ExportArgs),
    /// Unpack an Amplitude export zip (e.g. from organisation settings) into an export directory.
    Unpack(export::UnpackArgs),
    /// Before Vector reads an export: check every file decompresses, add missing final newlines.
    Prepare(prepare::PrepareArgs),
    /// After a crash: make Vector re-read the gzip exports it was in the middle of.
    Resume(resume::ResumeArgs),
    /// Write the mapping's WebAssembly module (for hosts that embed wasmtime).
    WasmModule(wasm_module::WasmModuleArgs),
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Migrate(args) => migrate::run_command(args),
        Command::Report(args) => report::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Map(args) => map::run(args),
        Command::Generate(args) => generate::run(args),
        Command::WasmModule(args) => wasm_module::run(args),
        Command::Prepare(args) => prepare::run(args),
        Command::Resume(args) => resume::run(args),
        Command::Export(args) => export::run(args),
        Command::Unpack(args) => export::unpack(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("amplitude-posthog: {error:#}");
            ExitCode::FAILURE
        }
    }
}
