//! /etc/os-release and a PCI `resource` file: any text parses; keys are never empty.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::os_release(data));
