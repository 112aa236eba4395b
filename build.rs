//! Embeds the WebAssembly form of the mapping (`wasm-transform/`, target
//! `wasm32-unknown-unknown`) in the library, so `--engine wasm` and `wasm-module` need no
//! manual step.
//!
//! Two ways, in order:
//! 1. `AMPLITUDE_POSTHOG_WASM_FILE=/path/to/module.wasm`: a module built elsewhere, for
//!    example by `wasm-transform/build-module.sh` on a machine whose rustup has no wasm target.
//! 2. The toolchain running this build, with its `wasm32-unknown-unknown` target (pinned in
//!    rust-toolchain.toml): a nested cargo build into its own target directory, so it never
//!    waits on this build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";
const PACKAGE: &str = "amplitude-posthog-transform";
const ARTIFACT: &str = "amplitude_posthog_transform.wasm";
const PREBUILT: &str = "AMPLITUDE_POSTHOG_WASM_FILE";

fn main() {
    println!("cargo:rerun-if-env-changed={PREBUILT}");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let module = match env::var_os(PREBUILT) {
        Some(prebuilt) => {
            let prebuilt = PathBuf::from(prebuilt);
            println!("cargo:rerun-if-changed={}", prebuilt.display());
            prebuilt
        }
        None => {
            for path in [
                "build.rs",
                "wasm-transform/src",
                "wasm-transform/Cargo.toml",
                "data/countries.tsv",
                "Cargo.lock",
            ] {
                println!("cargo:rerun-if-changed={path}");
            }
            build_module(&out_dir)
        }
    };
    let embedded = out_dir.join(ARTIFACT);
    std::fs::copy(&module, &embedded)
        .unwrap_or_else(|error| panic!("cannot copy {}: {error}", module.display()));
    println!(
        "cargo:rustc-env=AMPLITUDE_POSTHOG_WASM={}",
        embedded.display()
    );
}

fn build_module(out_dir: &Path) -> PathBuf {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    assert!(
        has_target(&rustc),
        "cannot build the WebAssembly module: this Rust toolchain has no {TARGET} target.\n\
         Either `rustup target add {TARGET}`, or build the module once with\n\
         `export {PREBUILT}=\"$(bash wasm-transform/build-module.sh)\"` (it can use Debian's \
         rustc-web, rust-web-src and lld-19) and build again."
    );
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // target/<profile>/build/<pkg>-<hash>/out → a stable directory beside the profile dirs.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map_or_else(|| out_dir.join("wasm-build"), |dir| dir.join("wasm-build"));
    let mut command = Command::new(&cargo);
    command.env("RUSTC", &rustc);
    // The outer build's wrappers and flags (clippy, coverage) are not meant for the module.
    for variable in [
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        command.env_remove(variable);
    }
    let status = command
        .current_dir(&manifest_dir)
        .args([
            "build",
            "--locked",
            "--package",
            PACKAGE,
            "--lib",
            "--target",
            TARGET,
            "--profile",
            "wasm",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .unwrap_or_else(|error| {
            panic!("cannot run cargo to build the WebAssembly module: {error}")
        });
    assert!(
        status.success(),
        "building the WebAssembly module failed ({status})"
    );
    target_dir.join(TARGET).join("wasm").join(ARTIFACT)
}

/// Whether `rustc`'s sysroot holds the standard library for the target.
fn has_target(rustc: &str) -> bool {
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        .is_some_and(|sysroot| {
            sysroot
                .join("lib/rustlib")
                .join(TARGET)
                .join("lib")
                .is_dir()
        })
}
