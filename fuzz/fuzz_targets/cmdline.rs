//! /proc/cmdline and GRUB-style command lines: any text parses; normalising a key is idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let c = gvtg::parse::cmdline::parse(&text);
    for p in &c.params {
        let n = gvtg::parse::cmdline::normalize(&p.key);
        assert_eq!(gvtg::parse::cmdline::normalize(&n), n);
    }
    let _ = gvtg::parse::cmdline::split_args(&text);
    let _ = gvtg::parse::cmdline::suspicious(&c);
    let _ = c.module_param("i915", "enable_gvt");
    let _ = c.last_value("intel_iommu");
});
