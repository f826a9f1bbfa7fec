//! A kernel module file: decompression (xz, zstd, gzip, by magic bytes, capped) and the ELF
//! `.modinfo` reader. A module never yields more fields than its section has NUL-separated
//! strings, and a stand-in built from any section reads back the same section.
#![no_main]
use libfuzzer_sys::fuzz_target;

use gvtg::kmod::modinfo;

fuzz_target!(|data: &[u8]| {
    let _ = modinfo::compression_of(data);
    let _ = modinfo::signature_present(data);
    let _ = modinfo::signature_tail(data);
    if let Ok(elf) = modinfo::decompress("fuzz.ko", data) {
        if let Ok(section) = modinfo::modinfo_section(&elf) {
            let records = section.split(|&b| b == 0).filter(|s| !s.is_empty()).count();
            let fields = modinfo::modinfo_fields(&elf).expect("section found, fields must read");
            assert!(fields.len() <= records, "{} fields from {records} records", fields.len());
        }
        let _ = gvtg::report::elf::stand_in("fuzz.ko", data);
    }
    // The raw input as a `.modinfo` section: the stand-in ELF must give it back.
    let elf = gvtg::report::elf::modinfo_elf(data);
    assert_eq!(modinfo::modinfo_section(&elf).expect("stand-in readable"), data);
});
