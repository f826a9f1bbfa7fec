//! A kernel module file: decompression (xz, zstd, gzip, by magic bytes, capped) and the ELF
//! `.modinfo` reader. A module never yields more fields than its section has NUL-separated
//! strings, and a stand-in built from any section reads back the same section.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::modinfo(data));
