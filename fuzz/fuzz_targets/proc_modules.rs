//! /proc/modules: any text parses; module names are single non-empty tokens.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mods = gvtg::parse::proc_modules::parse(&text);
    for m in &mods {
        assert!(!m.name.is_empty() && !m.name.chars().any(char::is_whitespace), "{:?}", m.name);
        let _ = gvtg::parse::proc_modules::find(&mods, &m.name);
    }
});
