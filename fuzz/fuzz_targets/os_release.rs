//! /etc/os-release and a PCI `resource` file: any text parses; keys are never empty.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for k in gvtg::host::snapshot::parse_os_release(&text).keys() {
        assert!(!k.is_empty());
    }
    let _ = gvtg::host::snapshot::parse_resource(&text);
});
