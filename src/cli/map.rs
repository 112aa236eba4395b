//! `amplitude-posthog map`: a preview and batch form of the mapping.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};

use amplitude_posthog::engine::{Engine, EngineKind};
use amplitude_posthog::input::InputSource;
use amplitude_posthog::map_run::{OutputFormat, run_map};

#[derive(Debug, clap::Args)]
pub struct MapArgs {
    /// Export files (JSON lines, plain or gzip, multi-member gzip included) or directories
    /// (their `*.json.gz` and `*.json` files, recursively, in name order); `-` or none: stdin.
    pub inputs: Vec<PathBuf>,
    /// Which form of the mapping runs.
    #[arg(long, value_enum, default_value = "vrl")]
    pub engine: EngineKind,
    /// `events`: PostHog events, one per line. `results`: one result object per input line.
    #[arg(long, value_enum, default_value = "events")]
    pub format: OutputFormat,
    /// Write refused rows here (JSON lines: file, line, reason, original row).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Write the output here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run this VRL program instead of the shipped `vrl/amplitude_to_posthog.vrl` (engine vrl).
    #[arg(long, value_name = "FILE")]
    pub program: Option<PathBuf>,
    /// Worker threads; output order is kept.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

pub fn run(args: MapArgs) -> anyhow::Result<ExitCode> {
    let inputs = if args.inputs.is_empty() {
        vec![InputSource::Stdin]
    } else {
        amplitude_posthog::input::discover(&args.inputs)?
    };
    let engine = match (&args.program, args.engine) {
        (None, kind) => Engine::load(kind)?,
        (Some(path), EngineKind::Vrl) => {
            let source = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the VRL program {}", path.display()))?;
            Engine::vrl_from_source(&source)?
        }
        (Some(_), other) => {
            bail!("--program runs a VRL program; it cannot be combined with --engine {other:?}")
        }
    };
    for warning in engine.warnings() {
        eprintln!("{warning}");
    }
    let mut rejects = match &args.rejects {
        Some(path) => Some(BufWriter::new(File::create(path).with_context(|| {
            format!("cannot create the rejects file {}", path.display())
        })?)),
        None => None,
    };
    let stdout = io::stdout();
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(path)
                .with_context(|| format!("cannot create the output file {}", path.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 20, stdout.lock())),
    };

    let started = Instant::now();
    let result = run_map(
        &inputs,
        &engine,
        usize::from(args.threads),
        args.format,
        &mut out,
        rejects.as_mut().map(|writer| writer as &mut dyn Write),
        &mut |error| eprintln!("amplitude-posthog: {error}"),
    );
    let summary = match result {
        Ok(summary) => summary,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(error) => return Err(error).context("cannot write the output"),
    };
    eprintln!("{}", summary.report(started.elapsed()));
    if !summary.failed_inputs.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
