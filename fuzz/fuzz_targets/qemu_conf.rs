//! libvirt's qemu.conf (virConf rules): any text parses or gives a located error; locations
//! and entry lines point into the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    match gvtg::parse::qemu_conf::parse(&text) {
        Ok(c) => {
            for e in &c.entries {
                assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
                let _ = (c.get_str(&e.name), c.get_int(&e.name), c.get_list(&e.name));
            }
            let _ = c.duplicates();
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines, "error line {} of {lines}", e.line);
            assert!(!e.message.is_empty());
        }
    }
});
