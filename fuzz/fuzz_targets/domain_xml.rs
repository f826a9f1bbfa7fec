//! libvirt domain XML: the safety gate (no DTD/entities), the preflight `Domain` model, and
//! adding a `<hostdev>`: the result of an edit must itself parse.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::domain_xml(data));
