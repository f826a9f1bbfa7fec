//! /proc/cmdline and GRUB-style command lines: any text parses; normalising a key is idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::cmdline(data));
