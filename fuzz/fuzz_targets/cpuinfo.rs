//! /proc/cpuinfo: any text parses; flags never contain whitespace.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::cpuinfo(data));
