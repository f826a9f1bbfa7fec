//! /etc/default/grub (shell assignments): any text parses; line numbers point into the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let g = gvtg::parse::grub::parse(&text);
    for a in &g.assignments {
        assert!(a.line >= 1 && a.line <= lines, "line {} of {lines}", a.line);
    }
    let cmdline = g.kernel_cmdline();
    let _ = gvtg::parse::cmdline::parse(&cmdline);
    let _ = g.misnamed_cmdline_vars();
});
