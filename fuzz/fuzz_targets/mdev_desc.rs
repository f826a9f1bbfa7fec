//! An mdev type's `description` sysfs file (i915's "low_gm_size: 64MB\n..."): any text parses
//! or is refused.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gvtg::fuzzing::mdev_desc(data));
