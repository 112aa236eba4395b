//! `amplitude-posthog wasm-module`: writes the embedded WebAssembly module for other hosts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use amplitude_posthog::wasm_engine::{EMBEDDED_MODULE, WasmModule};

#[derive(Debug, clap::Args)]
pub struct WasmModuleArgs {
    /// Where to write the module.
    #[arg(long, default_value = "amplitude_posthog_transform.wasm")]
    pub out: PathBuf,
}

pub fn run(args: WasmModuleArgs) -> anyhow::Result<ExitCode> {
    // Check it loads here before handing it to another host.
    WasmModule::embedded()?;
    std::fs::write(&args.out, EMBEDDED_MODULE)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} bytes, ABI version {})",
        args.out.display(),
        EMBEDDED_MODULE.len(),
        amplitude_posthog_transform::ABI_VERSION
    );
    Ok(ExitCode::SUCCESS)
}
