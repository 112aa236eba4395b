#!/usr/bin/env bash
# Builds the WebAssembly form of the mapping once and prints the module's path, for machines
# whose rustup has no wasm32-unknown-unknown target. Use it as
#
#   export AMPLITUDE_POSTHOG_WASM_FILE="$(bash wasm-transform/build-module.sh)"
#
# and build as usual: build.rs then embeds this module instead of building its own.
#
# Toolchains, in order: the current one when it has the target (what build.rs would do
# itself), else Debian's rustc-web + rust-web-src + lld-19, which build the standard library
# for the target from source (-Zbuild-std). The module goes to target/wasm-build/.
set -euo pipefail
cd "$(dirname "$0")/.."
target=wasm32-unknown-unknown
out_dir="${CARGO_TARGET_DIR:-target}/wasm-build"
case "$out_dir" in /*) ;; *) out_dir="$(pwd)/$out_dir" ;; esac
args=(build --locked --package amplitude-posthog-transform --lib --target "$target"
      --profile wasm --target-dir "$out_dir")

if [ -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ]; then
  cargo "${args[@]}" >&2
else
  linker=""
  for candidate in /usr/bin/wasm-ld-19 /usr/bin/wasm-ld /usr/bin/rust-lld; do
    if [ -x "$candidate" ]; then linker="$candidate"; break; fi
  done
  if [ ! -x /usr/bin/cargo ] || [ ! -x /usr/bin/rustc ] || [ -z "$linker" ] \
     || [ ! -d /usr/lib/rustlib/src/rust/library/std ]; then
    echo "no toolchain can build $target: either 'rustup target add $target', or" \
         "'apt-get install rustc-web cargo-web rust-web-src lld-19' (Debian)" >&2
    exit 1
  fi
  # Debian's cargo must not pick up rustup's proxies or this workspace's pinned toolchain.
  env -u RUSTUP_TOOLCHAIN -u RUSTC -u RUSTDOC -u CARGO RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$linker" \
    /usr/bin/cargo "${args[@]}" -Zbuild-std=std,panic_abort >&2
fi
module="$out_dir/$target/wasm/amplitude_posthog_transform.wasm"
test -s "$module"
echo "$module"
