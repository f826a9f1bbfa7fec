//! Kernel build configuration (`boot/config-REL`): any text parses; line numbers point into the
//! input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let k = gvtg::parse::kconfig::parse(&text);
    for (name, (_, line)) in &k.values {
        assert!(*line >= 1 && *line <= lines, "{name}: line {line} of {lines}");
        let _ = k.enabled(name);
    }
});
