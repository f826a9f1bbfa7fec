//! Kernel log records (`/dev/kmsg` records, dmesg or journalctl text): any bytes parse; line
//! numbers point into the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&b| b == b'\n').count();
    for r in gvtg::parse::kmsg::parse(data) {
        assert!(r.line >= 1 && r.line <= lines, "line {} of {lines}", r.line);
        if let Some(l) = r.level {
            assert!(l <= 7, "level {l}");
        }
    }
});
