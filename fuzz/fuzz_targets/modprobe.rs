//! modprobe.d files (kmod's libkmod-config.c rules): any text parses; line numbers point into
//! the input; merging and lookups never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let f = gvtg::parse::modprobe::parse(&text);
    for e in &f.entries {
        assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
    }
    for p in &f.problems {
        assert!(p.line >= 1 && p.line <= lines, "problem line {} of {lines}", p.line);
    }
    let merged = gvtg::parse::modprobe::merge_order(vec![(
        "etc/modprobe.d".to_string(),
        "fuzz.conf".to_string(),
        text.into_owned(),
    )]);
    let _ = gvtg::parse::modprobe::option_value(&merged, "i915", "enable_gvt");
    let _ = gvtg::parse::modprobe::is_blacklisted(&merged, "kvmgt");
});
