//! A report archive (`gvtg doctor --from FILE`): any bytes unpack or give an error, and nothing
//! is ever written outside the extraction directory.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::report_archive(data));
