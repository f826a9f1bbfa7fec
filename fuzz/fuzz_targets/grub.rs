//! /etc/default/grub (shell assignments): any text parses; line numbers point into the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::grub(data));
