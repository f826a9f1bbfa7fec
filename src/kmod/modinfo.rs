//! Low-level readers for one kernel module file: decompression, the ELF
//! `.modinfo` section and the appended-signature marker.
//!
//! These mirror what libkmod does when `modinfo` opens a module:
//! - kmod's libkmod/libkmod-file.c picks the decompressor by magic bytes
//!   (`comp_types[]`: zstd, xz, zlib), never by the file name; so do we.
//! - kmod's libkmod/libkmod-elf.c (`kmod_elf_new()`, `kmod_elf_get_section()`,
//!   `kmod_elf_get_strings()`) validates the section header table, finds the
//!   first well-formed section named `.modinfo` and splits it on NUL runs.
//! - kmod's libkmod/libkmod-module.c (`kmod_module_get_info()`) splits each
//!   string at the first `=`; a string without `=` becomes a key with an
//!   empty value (it is *not* dropped).
//! - kmod's libkmod/libkmod-signature.c (`kmod_module_signature_info()`)
//!   recognises the trailer the kernel's scripts/sign-file appends;
//!   [`signature_info`] also reads the signer, key id and signature data the
//!   trailer announces and decodes them ([`super::signature`]).
//!
//! Everything here is bounded: decompressed output is capped at
//! [`MAX_DECOMPRESSED`] bytes and the xz decoder's memory at [`XZ_MEMLIMIT`].

use std::borrow::Cow;
use std::io::Read;

use anyhow::Result;

use super::error::KmodError;

/// Cap on decompressed module size. The largest Debian 6.1 module (amdgpu) is
/// about 15 MiB uncompressed; 64 MiB leaves room while stopping bombs.
pub const MAX_DECOMPRESSED: usize = 64 << 20;

/// Memory limit handed to liblzma. `xz -9` needs about 65 MiB to decode
/// (64 MiB dictionary); the kernel's own `make modules_install` uses
/// `--lzma2=dict=1MiB` (scripts/Makefile.modinst), so 128 MiB accepts every
/// real module while refusing headers that ask for gigabyte dictionaries.
pub const XZ_MEMLIMIT: u64 = 128 << 20;

/// Largest zstd window accepted: 2^27 = 128 MiB, zstd's own
/// `ZSTD_WINDOWLOG_LIMIT_DEFAULT`, set explicitly so the bound is visible.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

const XZ_MAGIC: &[u8] = &[0xFD, b'7', b'z', b'X', b'Z', 0x00];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xB5, 0x2F, 0xFD];
const GZIP_MAGIC: &[u8] = &[0x1F, 0x8B];
pub(crate) const ELF_MAGIC: &[u8; 4] = &[0x7F, b'E', b'L', b'F'];

/// Trailer written by the kernel's scripts/sign-file.c after the signature
/// (`MODULE_SIG_STRING` in include/linux/module_signature.h).
const SIG_MAGIC: &[u8] = b"~Module signature appended~\n";

use super::signature::{self, ModuleSignature, Signature, MODULE_SIGNATURE_SIZE};

/// Name of the compression format the magic bytes announce: `"xz"`,
/// `"zstd"` or `"gzip"`; `None` for anything else (including plain ELF).
pub fn compression_of(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(XZ_MAGIC) {
        Some("xz")
    } else if bytes.starts_with(ZSTD_MAGIC) {
        Some("zstd")
    } else if bytes.starts_with(GZIP_MAGIC) {
        Some("gzip")
    } else {
        None
    }
}

/// Returns the uncompressed ELF image of a module file.
///
/// The format is chosen by magic bytes like kmod's libkmod-file.c does, so a
/// mis-named file (`.ko` that is really xz) still works; `name_hint` is only
/// used in error messages. Plain ELF is returned borrowed. Output larger than
/// [`MAX_DECOMPRESSED`] is an error ([`KmodError::TooLarge`]), as are
/// corrupt or truncated streams and unknown formats. Concatenated
/// streams/frames/members are accepted, as kmod does (`LZMA_CONCATENATED`,
/// zstd's streaming API, zlib's `gzread`).
pub fn decompress<'a>(name_hint: &str, bytes: &'a [u8]) -> Result<Cow<'a, [u8]>> {
    let format = match compression_of(bytes) {
        Some(f) => f,
        None if bytes.starts_with(ELF_MAGIC) => return Ok(Cow::Borrowed(bytes)),
        None => {
            let magic = bytes
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(KmodError::UnknownFormat {
                name: name_hint.to_string(),
                magic,
            }
            .into());
        }
    };
    let corrupt = |source: std::io::Error| KmodError::Corrupt {
        name: name_hint.to_string(),
        format,
        source,
    };
    let out = match format {
        "xz" => {
            let stream =
                xz2::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, xz2::stream::CONCATENATED)
                    .map_err(|e| corrupt(e.into()))?;
            read_capped(xz2::read::XzDecoder::new_stream(bytes, stream))
        }
        "zstd" => {
            let mut dec = zstd::stream::read::Decoder::with_buffer(bytes).map_err(corrupt)?;
            dec.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(corrupt)?;
            read_capped(dec)
        }
        _ => read_capped(flate2::read::MultiGzDecoder::new(bytes)),
    };
    match out {
        Ok(Some(v)) => Ok(Cow::Owned(v)),
        Ok(None) => Err(KmodError::TooLarge {
            name: name_hint.to_string(),
            format,
            limit: MAX_DECOMPRESSED,
        }
        .into()),
        Err(e) => Err(corrupt(e).into()),
    }
}

/// Reads at most `MAX_DECOMPRESSED + 1` bytes; `Ok(None)` means "over the cap".
fn read_capped<R: Read>(reader: R) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    // `take` bounds both time and memory: a bomb stops after the cap + 1 byte.
    reader
        .take(MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > MAX_DECOMPRESSED {
        Ok(None)
    } else {
        Ok(Some(out))
    }
}

/// The `.modinfo` strings of an (uncompressed) ELF module as `(key, value)`
/// pairs, in file order, exactly as kmod's `kmod_module_get_info()` lists
/// them before adding signature fields.
///
/// Only the ELF header and section header table are parsed (with goblin's
/// `Elf::parse_header` + `SectionHeader::parse`), not symbols or relocations.
/// Splitting follows kmod's `kmod_elf_get_strings()`: leading NULs are
/// skipped, runs of NULs separate strings (so empty strings never appear),
/// and if at most one byte remains after the leading NULs the section is
/// treated as empty (a kmod quirk reproduced for parity). Each string is
/// split at its first `=`; a string without `=` yields `(string, "")`, which
/// is how kmod stores and prints it. Bytes that are not UTF-8 are replaced
/// with U+FFFD.
pub fn modinfo_fields(elf: &[u8]) -> Result<Vec<(String, String)>> {
    let section = modinfo_section(elf)?;
    Ok(split_strings(section).map(split_key_value).collect())
}

/// The raw bytes of the `.modinfo` section, found as kmod finds it.
pub fn modinfo_section(elf: &[u8]) -> Result<&[u8]> {
    find_section(elf, b".modinfo")
}

/// Splits a NUL-separated string table the way kmod's
/// `kmod_elf_get_strings()` does (see [`modinfo_fields`]).
pub(crate) fn split_strings(section: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut s = section;
    // kmod: `while (strings[0] == '\0' && size > 1) { strings++; size--; }`
    while s.len() > 1 && s.first() == Some(&0) {
        s = s.get(1..).unwrap_or_default();
    }
    // kmod: `if (size <= 1) return 0;` - even a lone non-NUL byte is dropped.
    if s.len() <= 1 {
        s = &[];
    }
    s.split(|&b| b == 0).filter(|p| !p.is_empty())
}

/// kmod's `kmod_module_get_info()`: key up to the first `=`, value after it;
/// no `=` means the whole string is the key and the value is empty.
pub(crate) fn split_key_value(s: &[u8]) -> (String, String) {
    match s.iter().position(|&b| b == b'=') {
        Some(i) => {
            let (k, v) = s.split_at(i);
            (lossy(k), lossy(v.get(1..).unwrap_or_default()))
        }
        None => (lossy(s), String::new()),
    }
}

fn lossy(b: &[u8]) -> String {
    // The common case (valid UTF-8) checked first: `from_utf8_lossy` walks chunk by chunk and
    // was a sixth of `gvtg modinfo i915` (1,900 records).
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    KmodError::BadElf(msg.into()).into()
}

/// Finds the contents of the first section called `name`, with kmod's
/// validation rules (libkmod-elf.c `kmod_elf_new()` and
/// `kmod_elf_get_section()`):
/// - `e_shentsize` must equal the class's `Shdr` size and the whole table
///   must lie inside the file;
/// - the section-name string table (`e_shstrndx`, which must not be 0) must
///   lie inside the file and end with NUL;
/// - sections are scanned from index 1; a section whose `offset + size`
///   overflows or passes the end of the file, or whose name offset is past
///   the string table, is skipped and the scan goes on.
fn find_section<'a>(elf: &'a [u8], name: &[u8]) -> Result<&'a [u8]> {
    let mut src = elf;
    let (start, len) = locate_section(&mut src, elf.len() as u64, name)?;
    // `locate_section` checked `start + len <= elf.len()`.
    let start = usize::try_from(start).map_err(|_| bad("section offset out of range"))?;
    let len = usize::try_from(len).map_err(|_| bad("section size out of range"))?;
    elf.get(start..start.saturating_add(len))
        .ok_or_else(|| bad("section lies outside the file"))
}

/// Random access to a module image: a byte slice in memory or an open file
/// read with `pread` (so an uncompressed module is never read whole).
pub(crate) trait ReadAt {
    /// Exactly `len` bytes at `offset`; the caller has checked the range
    /// against the image length.
    fn bytes_at(&mut self, offset: u64, len: usize) -> std::io::Result<Cow<'_, [u8]>>;
}

impl ReadAt for &[u8] {
    fn bytes_at(&mut self, offset: u64, len: usize) -> std::io::Result<Cow<'_, [u8]>> {
        usize::try_from(offset)
            .ok()
            .and_then(|o| self.get(o..o.checked_add(len)?))
            .map(Cow::Borrowed)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
    }
}

impl ReadAt for std::fs::File {
    fn bytes_at(&mut self, offset: u64, len: usize) -> std::io::Result<Cow<'_, [u8]>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, offset)?;
        Ok(Cow::Owned(buf))
    }
}

/// The signature of a module image as kmod reports it: `None` when there is no
/// structurally valid appended signature ([`signature_present`] false), else the decoded
/// fields or why they could not be decoded (kmod then prints no signature lines).
pub type SignatureInfo = Option<std::result::Result<Signature, String>>;

/// The `.modinfo` fields and signature of an *uncompressed* module read through `src`
/// (`size` bytes long), reading only the ELF header, the section header table, the
/// section-name table, `.modinfo`, the last 40 bytes (the signature trailer) and, when
/// that trailer is valid, the signer, key id and signature data it announces. Same
/// results as [`modinfo_fields`] and [`signature_info`] on the whole image.
pub(crate) fn modinfo_fields_at(
    src: &mut impl ReadAt,
    size: u64,
) -> Result<(Vec<(String, String)>, SignatureInfo)> {
    let (start, len) = locate_section(src, size, b".modinfo")?;
    let len = usize::try_from(len).map_err(|_| bad("section size out of range"))?;
    let section = src.bytes_at(start, len).map_err(io_bad)?;
    let fields = split_strings(&section).map(split_key_value).collect();
    let trailer_len = SIG_MAGIC.len() + MODULE_SIGNATURE_SIZE;
    let Some(at) = size.checked_sub(trailer_len as u64) else {
        return Ok((fields, None));
    };
    let tail = src.bytes_at(at, trailer_len).map_err(io_bad)?.into_owned();
    if !signature_check_tail(&tail, size) {
        return Ok((fields, None));
    }
    let Some(modsig) = tail
        .get(..MODULE_SIGNATURE_SIZE)
        .and_then(ModuleSignature::parse)
    else {
        return Ok((fields, None));
    };
    // signature_check_tail() checked that the region fits before the struct.
    let region_len = modsig.region_len();
    let sig = match (at.checked_sub(region_len), usize::try_from(region_len)) {
        (Some(region_at), Ok(n)) => {
            let region = src.bytes_at(region_at, n).map_err(io_bad)?;
            signature::decode(&modsig, &region)
        }
        _ => Err("signature region out of range".to_string()),
    };
    Ok((fields, Some(sig)))
}

/// [`SignatureInfo`] of a whole (uncompressed) module image.
pub fn signature_info(bytes: &[u8]) -> SignatureInfo {
    let rest = bytes.strip_suffix(SIG_MAGIC)?;
    let sig_start = rest.len().checked_sub(MODULE_SIGNATURE_SIZE)?;
    if !signature_check(bytes) {
        return None;
    }
    let modsig = ModuleSignature::parse(rest.get(sig_start..)?)?;
    let region = usize::try_from(modsig.region_len())
        .ok()
        .and_then(|n| rest.get(sig_start.checked_sub(n)?..sig_start));
    Some(match region {
        Some(region) => signature::decode(&modsig, region),
        None => Err("signature region out of range".to_string()),
    })
}

fn io_bad(e: std::io::Error) -> anyhow::Error {
    bad(format!("read: {e}"))
}

/// Finds the offset and size of the first section called `name`, with kmod's
/// validation rules (libkmod-elf.c `kmod_elf_new()` and
/// `kmod_elf_get_section()`):
/// - `e_shentsize` must equal the class's `Shdr` size and the whole table
///   must lie inside the file;
/// - the section-name string table (`e_shstrndx`, which must not be 0) must
///   lie inside the file and end with NUL;
/// - sections are scanned from index 1; a section whose `offset + size`
///   overflows or passes the end of the file, or whose name offset is past
///   the string table, is skipped and the scan goes on.
///
/// Only the ELF header, the section header table and the section-name table
/// are read from `src`; the returned range lies inside `size`.
fn locate_section(src: &mut impl ReadAt, size: u64, name: &[u8]) -> Result<(u64, u64)> {
    use goblin::container::{Container, Ctx};
    use goblin::elf::{header, Elf, SectionHeader};

    // The largest ELF header (64-bit); a 32-bit one is shorter.
    let head_len = usize::try_from(size.min(header::header64::SIZEOF_EHDR as u64))
        .map_err(|_| bad("file size out of range"))?;
    let head = src.bytes_at(0, head_len).map_err(io_bad)?;
    if !head.starts_with(ELF_MAGIC) {
        return Err(bad("missing \\x7fELF magic"));
    }
    let header = Elf::parse_header(&head).map_err(|e| bad(format!("header: {e}")))?;
    drop(head);
    let container = header.container().map_err(|e| bad(format!("class: {e}")))?;
    let endian = header
        .endianness()
        .map_err(|e| bad(format!("byte order: {e}")))?;
    let ctx = Ctx::new(container, endian);
    let entsize = SectionHeader::size(ctx);
    if usize::from(header.e_shentsize) != entsize {
        return Err(bad(format!(
            "section header size {} (expected {entsize} for {}-bit)",
            header.e_shentsize,
            if container == Container::Big { 64 } else { 32 }
        )));
    }
    let count = usize::from(header.e_shnum);
    let shoff = header.e_shoff;
    if count == 0 || shoff == 0 {
        // kmod: e_shstrndx can then never be a valid index -> EINVAL. goblin
        // would instead read an extended count from section 0; refuse first.
        return Err(bad("no section header table"));
    }
    let table_len = count
        .checked_mul(entsize)
        .ok_or_else(|| bad("section header table size overflows"))?;
    let table_end = shoff
        .checked_add(table_len as u64)
        .ok_or_else(|| bad("section header table size overflows"))?;
    if table_end > size {
        return Err(bad("file is too short to hold the section header table"));
    }
    let table = src.bytes_at(shoff, table_len).map_err(io_bad)?;
    let shdrs = SectionHeader::parse_from(&table, 0, count, ctx)
        .map_err(|e| bad(format!("section headers: {e}")))?;
    drop(table);

    // (offset, size) of a section's contents when they lie inside the file.
    let range = |sh: &SectionHeader| -> Option<(u64, u64)> {
        let end = sh.sh_offset.checked_add(sh.sh_size)?;
        (end <= size).then_some((sh.sh_offset, sh.sh_size))
    };
    let strndx = usize::from(header.e_shstrndx);
    let (names_at, names_len) = match strndx {
        0 => None,
        i => shdrs.get(i).and_then(range),
    }
    .ok_or_else(|| bad(format!("invalid section-name table index {strndx}")))?;
    let names_len =
        usize::try_from(names_len).map_err(|_| bad("section-name table out of range"))?;
    let names = src.bytes_at(names_at, names_len).map_err(io_bad)?;
    if names.last() != Some(&0) {
        return Err(bad("section-name table does not end with NUL"));
    }
    for sh in shdrs.iter().skip(1) {
        let Some(found) = range(sh) else { continue };
        // goblin already widened the 32-bit sh_name to usize.
        let Some(tail) = names.get(sh.sh_name..) else {
            continue;
        };
        // C string comparison (kmod uses streq on the NUL-terminated name).
        let sname = tail.split(|&b| b == 0).next().unwrap_or_default();
        if sname == name {
            return Ok(found);
        }
    }
    Err(KmodError::NoModinfo.into())
}

/// Whether `bytes` (the *uncompressed* module image: signing happens before
/// compression) ends with a structurally valid appended module signature.
///
/// Checks what kmod's `kmod_module_signature_info()` checks before decoding
/// the signature: the `~Module signature appended~\n` trailer, a 12-byte
/// `struct module_signature` before it with `algo < 2`, `hash < 9`,
/// `id_type < 3`, a non-zero big-endian `sig_len`, and
/// `signer_len + key_id_len + sig_len` not larger than what precedes it.
/// kmod (built with OpenSSL) additionally parses the PKCS#7 blob and prints
/// nothing when that fails; [`signature_info`] does that part.
pub fn signature_present(bytes: &[u8]) -> bool {
    signature_tail(bytes).is_some()
}

/// The appended signature of a module image (signer, key id, PKCS#7 blob, `struct
/// module_signature` and the magic string), when [`signature_present`] says there is one.
pub fn signature_tail(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_suffix(SIG_MAGIC)?;
    let sig_start = rest.len().checked_sub(MODULE_SIGNATURE_SIZE)?;
    let modsig = rest.get(sig_start..)?;
    let sig_len = u32::from_be_bytes(modsig.get(8..12)?.try_into().ok()?) as usize;
    let (signer_len, key_id_len) = (*modsig.get(3)?, *modsig.get(4)?);
    let start =
        sig_start.checked_sub(usize::from(signer_len) + usize::from(key_id_len) + sig_len)?;
    if !signature_check(bytes) {
        return None;
    }
    bytes.get(start..)
}

fn signature_check(bytes: &[u8]) -> bool {
    let trailer_len = SIG_MAGIC.len() + MODULE_SIGNATURE_SIZE;
    match bytes.len().checked_sub(trailer_len) {
        Some(at) => signature_check_tail(bytes.get(at..).unwrap_or_default(), bytes.len() as u64),
        None => false,
    }
}

/// [`signature_check`] on the last `MODULE_SIGNATURE_SIZE + SIG_MAGIC.len()`
/// bytes of an image that is `size` bytes long.
fn signature_check_tail(tail: &[u8], size: u64) -> bool {
    let Some(modsig) = tail.strip_suffix(SIG_MAGIC) else {
        return false;
    };
    if modsig.len() != MODULE_SIGNATURE_SIZE {
        return false;
    }
    let Some(sig_start) = size.checked_sub((MODULE_SIGNATURE_SIZE + SIG_MAGIC.len()) as u64) else {
        return false;
    };
    let byte = |i: usize| modsig.get(i).copied().unwrap_or(u8::MAX);
    let (algo, hash, id_type, signer_len, key_id_len) =
        (byte(0), byte(1), byte(2), byte(3), byte(4));
    // PKEY_ALGO__LAST = 2, PKEY_HASH__LAST = 9, PKEY_ID_TYPE__LAST = 3
    // (libkmod-signature.c enums).
    if algo >= 2 || hash >= 9 || id_type >= 3 {
        return false;
    }
    let sig_len = match modsig.get(8..12) {
        Some(&[a, b, c, d]) => u64::from(u32::from_be_bytes([a, b, c, d])),
        _ => return false,
    };
    sig_len != 0 && sig_start >= u64::from(signer_len) + u64::from(key_id_len) + sig_len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(b: &[u8]) -> Vec<&[u8]> {
        split_strings(b).collect()
    }

    #[test]
    fn split_like_kmod() {
        assert_eq!(strings(b"a=1\0b=2\0"), vec![&b"a=1"[..], b"b=2"]);
        assert_eq!(strings(b"\0\0a=1\0\0\0b=2"), vec![&b"a=1"[..], b"b=2"]);
        // kmod drops a lone trailing byte after leading NULs, and a 1-byte section.
        assert!(strings(b"\0\0x").is_empty());
        assert!(strings(b"x").is_empty());
        assert_eq!(strings(b"xy"), vec![&b"xy"[..]]);
        assert!(strings(b"").is_empty());
        assert!(strings(b"\0\0\0").is_empty());
    }

    #[test]
    fn key_value() {
        assert_eq!(split_key_value(b"a=b=c"), ("a".into(), "b=c".into()));
        assert_eq!(split_key_value(b"noeq"), ("noeq".into(), String::new()));
        assert_eq!(split_key_value(b"=v"), (String::new(), "v".into()));
    }

    #[test]
    fn magic_detection() {
        assert_eq!(compression_of(XZ_MAGIC), Some("xz"));
        assert_eq!(compression_of(&[0x28, 0xB5, 0x2F, 0xFD, 0]), Some("zstd"));
        assert_eq!(compression_of(&[0x1F, 0x8B]), Some("gzip"));
        assert_eq!(compression_of(ELF_MAGIC), None);
        assert!(decompress("x", b"nope").is_err());
        assert!(decompress("x", b"").is_err());
        assert!(matches!(
            decompress("x.ko", b"\x7fELFwhatever"),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn signature_trailer() {
        let mut m = vec![0u8; 100];
        m.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 50]);
        m.extend_from_slice(SIG_MAGIC);
        assert!(signature_present(&m));
        let mut bad_len = vec![0u8; 10];
        bad_len.extend_from_slice(&[0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 50]);
        bad_len.extend_from_slice(SIG_MAGIC);
        assert!(!signature_present(&bad_len));
        assert!(!signature_present(SIG_MAGIC));
        assert!(!signature_present(b""));
    }

    #[test]
    fn elf_errors_do_not_panic() {
        assert!(modinfo_fields(b"").is_err());
        assert!(modinfo_fields(b"\x7fELF").is_err());
        assert!(modinfo_fields(&[0x7F, b'E', b'L', b'F', 2, 1, 1, 0]).is_err());
    }
}
