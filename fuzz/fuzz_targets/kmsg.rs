//! Kernel log records (`/dev/kmsg` records, dmesg or journalctl text): any bytes parse; line
//! numbers point into the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::kmsg(data));
