//! Builds the WebAssembly form of the mapping (`wasm-transform/`, target
//! `wasm32-unknown-unknown`) so the library can embed it: building the module is part of the
//! normal build, with no manual step.
//!
//! Toolchains, in order:
//! 1. `AMPLITUDE_POSTHOG_WASM_FILE=/path/to/module.wasm`: use a module built elsewhere.
//! 2. The toolchain running this build, when it has the `wasm32-unknown-unknown` target
//!    (`rustup target add wasm32-unknown-unknown`, pinned in rust-toolchain.toml).
//! 3. Debian's `rustc-web` + `rust-web-src` + `lld-19` (installed by `.ci/run` on machines whose
//!    rustup cannot download targets): the standard library is built from source for the
//!    target (`-Zbuild-std`).
//!
//! The nested build uses its own target directory, so it never waits on this build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";
const PACKAGE: &str = "amplitude-posthog-transform";
const ARTIFACT: &str = "amplitude_posthog_transform.wasm";

fn main() {
    for path in [
        "build.rs",
        "wasm-transform/src",
        "wasm-transform/Cargo.toml",
        "data/countries.tsv",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-env-changed=AMPLITUDE_POSTHOG_WASM_FILE");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let embedded = out_dir.join(ARTIFACT);
    let module = match env::var_os("AMPLITUDE_POSTHOG_WASM_FILE") {
        Some(prebuilt) => PathBuf::from(prebuilt),
        None => build_module(&out_dir),
    };
    std::fs::copy(&module, &embedded)
        .unwrap_or_else(|error| panic!("cannot copy {}: {error}", module.display()));
    println!(
        "cargo:rustc-env=AMPLITUDE_POSTHOG_WASM={}",
        embedded.display()
    );
}

fn build_module(out_dir: &Path) -> PathBuf {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // target/<profile>/build/<pkg>-<hash>/out → a stable directory beside the profile dirs.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map_or_else(|| out_dir.join("wasm-build"), |dir| dir.join("wasm-build"));
    let current_rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let current_cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());

    let mut command = if has_target(&current_rustc) {
        let mut command = Command::new(&current_cargo);
        command.env("RUSTC", &current_rustc);
        command
    } else if let Some(debian) = DebianToolchain::find() {
        let mut command = Command::new(&debian.cargo);
        command
            .env("RUSTC", &debian.rustc)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", &debian.linker)
            .arg("-Zbuild-std=std,panic_abort");
        command
    } else {
        panic!(
            "cannot build the WebAssembly module: the Rust toolchain has no {TARGET} target.\n\
             Either `rustup target add {TARGET}`, or install Debian's rustc-web, cargo-web, \
             rust-web-src and lld-19 (what .ci/run does), or point AMPLITUDE_POSTHOG_WASM_FILE \
             at a module built elsewhere."
        );
    };
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

/// Debian's packaged Rust, which can build the standard library for any target it knows.
struct DebianToolchain {
    cargo: PathBuf,
    rustc: PathBuf,
    linker: PathBuf,
}

impl DebianToolchain {
    fn find() -> Option<DebianToolchain> {
        let cargo = PathBuf::from("/usr/bin/cargo");
        let rustc = PathBuf::from("/usr/bin/rustc");
        let source = Path::new("/usr/lib/rustlib/src/rust/library/std");
        let linker = [
            "/usr/bin/wasm-ld-19",
            "/usr/bin/wasm-ld",
            "/usr/bin/rust-lld",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())?;
        (cargo.exists() && rustc.exists() && source.is_dir()).then_some(DebianToolchain {
            cargo,
            rustc,
            linker,
        })
    }
}
