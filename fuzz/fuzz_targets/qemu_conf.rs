//! libvirt's qemu.conf (virConf rules): any text parses or gives a located error; locations
//! and entry lines point into the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::qemu_conf(data));
