//! /proc/cpuinfo: any text parses; flags never contain whitespace.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let c = gvtg::parse::cpuinfo::parse(&text);
    if let Some(flags) = &c.flags {
        for f in flags {
            assert!(!f.is_empty() && !f.chars().any(char::is_whitespace), "flag {f:?}");
        }
    }
    let _ = (c.is_intel(), c.has_flag("vmx"));
});
