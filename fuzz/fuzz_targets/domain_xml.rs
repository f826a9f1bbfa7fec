//! libvirt domain XML: the safety gate (no DTD/entities), the preflight `Domain` model, and
//! adding a `<hostdev>`: the result of an edit must itself parse.
#![no_main]
use libfuzzer_sys::fuzz_target;

const UUID: &str = "4b20d080-1b54-4048-85b3-a6a62d165c01";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = gvtg::preflight::Domain::parse(text);
    if gvtg::parse::domain_xml::parse(text).is_ok() {
        if let Ok(edited) = gvtg::parse::domain_xml::add_hostdev(text, UUID, true) {
            if let Err(e) = gvtg::parse::domain_xml::parse(&edited.xml) {
                panic!("edited domain does not parse: {e}\n{}", edited.xml);
            }
        }
    }
});
