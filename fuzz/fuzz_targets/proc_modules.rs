//! /proc/modules: any text parses; module names are single non-empty tokens.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::proc_modules(data));
