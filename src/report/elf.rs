//! Module stand-ins: a minimal ELF64 relocatable object holding only a `.modinfo` section, so a
//! report carries what the doctor reads from a multi-MB `.ko` in a few hundred bytes, without a
//! compiler. Layout: ELF header, `.modinfo` bytes, `.shstrtab`, then the section header table
//! (null, `.modinfo`, `.shstrtab`).

use std::io::Write;

use anyhow::Result;

use crate::kmod::modinfo;

const EHDR: usize = 64;
const SHDR: usize = 64;
const SHSTRTAB: &[u8] = b"\0.modinfo\0.shstrtab\0";

/// Builds an ELF64 little-endian x86-64 relocatable whose `.modinfo` section is `section`.
pub fn modinfo_elf(section: &[u8]) -> Vec<u8> {
    let modinfo_off = EHDR;
    let shstr_off = modinfo_off + section.len();
    let shoff = (shstr_off + SHSTRTAB.len()).div_ceil(8) * 8;
    let mut b = Vec::with_capacity(shoff + 3 * SHDR);
    // e_ident
    b.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&1u16.to_le_bytes()); // e_type = ET_REL
    b.extend_from_slice(&62u16.to_le_bytes()); // e_machine = EM_X86_64
    b.extend_from_slice(&1u32.to_le_bytes()); // e_version
    b.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    b.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    b.extend_from_slice(&(shoff as u64).to_le_bytes()); // e_shoff
    b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    b.extend_from_slice(&(EHDR as u16).to_le_bytes()); // e_ehsize
    b.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
    b.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    b.extend_from_slice(&(SHDR as u16).to_le_bytes()); // e_shentsize
    b.extend_from_slice(&3u16.to_le_bytes()); // e_shnum
    b.extend_from_slice(&2u16.to_le_bytes()); // e_shstrndx
    debug_assert_eq!(b.len(), EHDR);
    b.extend_from_slice(section);
    b.extend_from_slice(SHSTRTAB);
    b.resize(shoff, 0);
    // Section 0: null.
    b.extend_from_slice(&[0; SHDR]);
    // Section 1: .modinfo (PROGBITS, ALLOC).
    shdr(&mut b, 1, 1, 2, modinfo_off, section.len(), 8);
    // Section 2: .shstrtab (STRTAB).
    shdr(&mut b, 10, 3, 0, shstr_off, SHSTRTAB.len(), 1);
    b
}

fn shdr(b: &mut Vec<u8>, name: u32, ty: u32, flags: u64, off: usize, size: usize, align: u64) {
    b.extend_from_slice(&name.to_le_bytes());
    b.extend_from_slice(&ty.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // sh_addr
    b.extend_from_slice(&(off as u64).to_le_bytes());
    b.extend_from_slice(&(size as u64).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // sh_link
    b.extend_from_slice(&0u32.to_le_bytes()); // sh_info
    b.extend_from_slice(&align.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // sh_entsize
}

/// The stand-in for a module file's bytes: its `.modinfo` in a minimal ELF, compressed the way the
/// original was (xz, zstd, gzip or none), so the file keeps its name and path.
pub fn stand_in(name_hint: &str, original: &[u8]) -> Result<Vec<u8>> {
    let elf = modinfo::decompress(name_hint, original)?;
    let section = modinfo::modinfo_section(&elf)?;
    let mut small = modinfo_elf(section);
    // Keep an appended signature, so `modinfo` still shows the signer.
    if let Some(sig) = modinfo::signature_tail(&elf) {
        small.extend_from_slice(sig);
    }
    Ok(match modinfo::compression_of(original) {
        Some("xz") => {
            let mut e = xz2::write::XzEncoder::new_stream(
                Vec::new(),
                xz2::stream::Stream::new_easy_encoder(6, xz2::stream::Check::Crc32)?,
            );
            e.write_all(&small)?;
            e.finish()?
        }
        Some("zstd") => zstd::stream::encode_all(&small[..], 3)?,
        Some("gzip") => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&small)?;
            e.finish()?
        }
        _ => small,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_modinfo() {
        let sec =
            b"license=GPL\0name=i915\0parm=enable_gvt:Enable GVT-g\0parmtype=enable_gvt:bool\0";
        let elf = modinfo_elf(sec);
        let fields = modinfo::modinfo_fields(&elf).unwrap();
        assert_eq!(fields[1], ("name".into(), "i915".into()));
        assert_eq!(fields.len(), 4);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&elf).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(&elf).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::stream::encode_all(&elf[..], 3).unwrap();
        for (orig, comp) in [
            (&elf, None),
            (&gz, Some("gzip")),
            (&xz, Some("xz")),
            (&zst, Some("zstd")),
        ] {
            let s = stand_in("x.ko", orig).unwrap();
            assert_eq!(modinfo::compression_of(&s), comp);
            let back = modinfo::decompress("x", &s).unwrap();
            assert_eq!(modinfo::modinfo_fields(&back).unwrap(), fields);
        }
    }

    #[test]
    fn keeps_an_appended_signature() {
        let mut signed = modinfo_elf(b"name=kvmgt\0license=GPL\0");
        signed.extend_from_slice(b"padding-code");
        let tail: Vec<u8> = [
            &b"abcdefghij"[..],
            &[0, 4, 2, 3, 2, 0, 0, 0, 0, 0, 0, 5],
            b"~Module signature appended~\n",
        ]
        .concat();
        signed.extend_from_slice(&tail);
        assert!(modinfo::signature_present(&signed));
        let s = stand_in("kvmgt.ko", &signed).unwrap();
        assert!(modinfo::signature_present(&s));
        assert!(s.ends_with(&tail) && !s.windows(12).any(|w| w == b"padding-code"));
        assert_eq!(modinfo::signature_tail(&s), Some(&tail[..]));
    }
}
