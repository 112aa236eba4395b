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
            eprintln!("amplitude-posthog: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The value of `option`, an http(s) URL with a host (such as `example`).
fn http_url(option: &str, value: &str, example: &str) -> anyhow::Result<reqwest::Url> {
    use anyhow::Context;
    let url =
        reqwest::Url::parse(value).with_context(|| format!("{option} {value:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        anyhow::bail!("{option} must be an http(s) URL such as {example}");
    }
    Ok(url)
}

/// An error and its causes as one line, `error: cause: cause`, each cause told once. The
/// library's errors keep their cause as a source *and* name it in their message; so the causes
/// are appended only until one is already in the line: from there on the message has told them.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if line.contains(&cause) {
            break;
        }
        line.push_str(": ");
        line.push_str(&cause);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    /// A cause the message already names, with a cause of its own the message does not.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot open x: {0}")]
    struct Open(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("database is locked")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn a_cause_the_message_names_is_told_once() {
        let error = anyhow::Error::new(Open(Inner(std::io::Error::other("error code 5"))));
        assert_eq!(one_line(&error), "cannot open x: database is locked");
    }

    #[test]
    fn a_context_is_followed_by_its_cause() {
        let error = anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write");
        assert_eq!(one_line(&error), "cannot write: disk full");
        let nested = anyhow::Error::new(Open(Inner(std::io::Error::other("error code 5"))))
            .context("the report");
        assert_eq!(
            one_line(&nested),
            "the report: cannot open x: database is locked"
        );
    }
}
