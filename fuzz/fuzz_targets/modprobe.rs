//! modprobe.d files (kmod's libkmod-config.c rules): any text parses; line numbers point into
//! the input; merging and lookups never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::modprobe(data));
