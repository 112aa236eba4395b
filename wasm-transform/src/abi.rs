//! The WebAssembly ABI (core module, `wasm32-unknown-unknown`, no imports). See README.md.
//!
//! Memory ownership: the host asks the module for an input buffer with `alloc(len)`, writes
//! the line there, and calls `transform(ptr, len)` (or `transform_full`). The module takes
//! ownership of the input buffer (it frees it) and returns `(out_ptr << 32) | out_len`: a
//! UTF-8 JSON result object the host reads and then releases with `dealloc(out_ptr, out_len)`.

use crate::{ABI_VERSION, map_line, map_line_with_identities};

/// Allocates `len` bytes in the module's memory for the host to write into.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: u32) -> u32 {
    let mut buffer: Vec<u8> = Vec::with_capacity(len as usize);
    let pointer = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    pointer as u32
}

/// Frees a buffer obtained from `alloc` or returned by `transform` / `transform_full`.
///
/// # Safety
/// `ptr` and `len` must describe a buffer this module handed out and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dealloc(ptr: u32, len: u32) {
    if len > 0 {
        // SAFETY: the buffer was allocated by this module with capacity `len`.
        drop(unsafe { Vec::from_raw_parts(ptr as *mut u8, 0, len as usize) });
    }
}

/// Maps one line to its outcome. Frees the input buffer; returns the output buffer as
/// `(ptr << 32) | len`.
///
/// # Safety
/// `ptr` and `len` must describe a buffer obtained from `alloc(len)` and filled by the host.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn transform(ptr: u32, len: u32) -> u64 {
    // SAFETY: as this function's contract says.
    unsafe { respond(ptr, len, |line| map_line(line).to_result_json()) }
}

/// Maps one line to its outcome, identity records and day (ABI version 2). Frees the input
/// buffer; returns the output buffer as `(ptr << 32) | len`.
///
/// # Safety
/// `ptr` and `len` must describe a buffer obtained from `alloc(len)` and filled by the host.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn transform_full(ptr: u32, len: u32) -> u64 {
    // SAFETY: as this function's contract says.
    unsafe {
        respond(ptr, len, |line| {
            map_line_with_identities(line).to_result_json()
        })
    }
}

/// Takes the input buffer, answers with `result` of it, and packs the answer's buffer.
///
/// # Safety
/// `ptr` and `len` must describe a buffer obtained from `alloc(len)` and filled by the host.
unsafe fn respond(ptr: u32, len: u32, result: impl FnOnce(&[u8]) -> String) -> u64 {
    // SAFETY: the host wrote `len` bytes into a buffer of capacity `len` from `alloc`.
    let input = unsafe { Vec::from_raw_parts(ptr as *mut u8, len as usize, len as usize) };
    let output = result(&input).into_bytes().into_boxed_slice();
    drop(input);
    let out_len = output.len() as u64;
    let out_ptr = Box::into_raw(output) as *mut u8 as u64;
    (out_ptr << 32) | out_len
}

/// The ABI version the module implements.
#[unsafe(no_mangle)]
pub extern "C" fn abi_version() -> u32 {
    ABI_VERSION
}
