//! `crate::kmod` must print what kmod's `modinfo` prints, for every module of
//! an installed kernel, and must never panic on hostile input.
//!
//! Needs a Debian kernel and kmod: `apt-get install linux-image-amd64 kmod`.
//! The tests FAIL (they do not skip) when either is missing. Set
//! `GVTG_TEST_KERNEL_RELEASE` to choose the kernel under /lib/modules;
//! otherwise the first release (sorted) with a modules.dep listing i915.ko
//! is used.
//!
//! kmod's signature lines (`sig_id`, `signer`, `sig_key`, `sig_hashalgo`,
//! `signature` and their `\t\t` hex continuation lines, decoded from the
//! appended PKCS#7 blob) are compared like every other line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gvtg::kmod::{self, KmodError, Located, ModInfo, ModuleIndex};
use proptest::prelude::*;

const INSTALL_HINT: &str = "apt-get install linux-image-amd64 kmod";

/// The kernel release to test against (see the file docs).
fn release() -> String {
    if let Ok(r) = std::env::var("GVTG_TEST_KERNEL_RELEASE") {
        let dep = Path::new("/lib/modules").join(&r).join("modules.dep");
        assert!(
            dep.is_file(),
            "GVTG_TEST_KERNEL_RELEASE={r} but {} does not exist; install the kernel ({INSTALL_HINT})",
            dep.display()
        );
        return r;
    }
    let mut releases: Vec<String> = std::fs::read_dir("/lib/modules")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    releases.sort();
    releases
        .into_iter()
        .find(|r| {
            let dir = Path::new("/lib/modules").join(r);
            std::fs::read_to_string(dir.join("modules.dep")).is_ok_and(|dep| {
                dep.lines().any(|l| {
                    l.split(':')
                        .next()
                        .is_some_and(|p| p.ends_with("/i915.ko") && dir.join(p).is_file())
                })
            })
        })
        .unwrap_or_else(|| {
            panic!(
                "no kernel under /lib/modules has a modules.dep with an i915.ko; \
                 install one with `{INSTALL_HINT}` (or set GVTG_TEST_KERNEL_RELEASE)"
            )
        })
}

/// kmod's `modinfo` binary.
fn kmod_modinfo() -> PathBuf {
    [
        "/usr/sbin/modinfo",
        "/sbin/modinfo",
        "/usr/bin/modinfo",
        "/bin/modinfo",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .unwrap_or_else(|| panic!("kmod's modinfo not found; install it with `{INSTALL_HINT}`"))
}

struct KmodRun {
    stdout: String,
    stderr: String,
    ok: bool,
}

fn run_kmod(args: &[&str]) -> KmodRun {
    let out = Command::new(kmod_modinfo())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run modinfo ({INSTALL_HINT}): {e}"));
    KmodRun {
        // Our fields are lossily decoded UTF-8; lossy decoding is per byte
        // run and never crosses the ASCII separators, so this compares fairly.
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        ok: out.status.success(),
    }
}

/// Signed modules: kmod starts their signature block with `sig_id:`.
fn kmod_signature_count(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("sig_id:")).count()
}

/// Compares kmod's output for `infos` (in order) with our rendering.
/// Returns a description of every mismatching module (first few in detail).
fn compare(label: &str, infos: &[ModInfo], kmod_out: &str) -> Vec<String> {
    let actual: Vec<&str> = kmod_out.split_terminator('\n').collect();
    let mut problems = Vec::new();
    let mut cursor = 0usize;
    let mut ranges = Vec::new();
    for (i, mi) in infos.iter().enumerate() {
        let rendered = mi.render_kmod_style();
        let want: Vec<&str> = rendered.split_terminator('\n').collect();
        let got = actual.get(cursor..cursor + want.len()).unwrap_or_default();
        if got != want.as_slice() {
            let first = (0..want.len())
                .find(|&k| got.get(k) != want.get(k))
                .unwrap_or(0);
            problems.push(format!(
                "[{label}] {} ({}): first difference at its line {}:\n  kmod: {:?}\n  ours: {:?}",
                mi.name,
                mi.filename,
                first + 1,
                got.get(first.saturating_sub(1)..(first + 2).min(got.len()))
                    .unwrap_or_default(),
                want.get(first.saturating_sub(1)..(first + 2).min(want.len()))
                    .unwrap_or_default(),
            ));
            // Resynchronise on the next module's first line.
            let next_first = infos.get(i + 1).map(|n| {
                n.render_kmod_style()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            });
            cursor = match next_first {
                Some(nf) => (cursor + 1..actual.len())
                    .find(|&k| actual.get(k).is_some_and(|l| *l == nf))
                    .unwrap_or(actual.len()),
                None => actual.len(),
            };
            ranges.push(None);
            continue;
        }
        ranges.push(Some((cursor, cursor + want.len())));
        cursor += want.len();
    }
    if cursor != actual.len() {
        problems.push(format!(
            "[{label}] kmod printed {} extra lines, first: {:?}",
            actual.len() - cursor,
            actual.get(cursor)
        ));
    }
    // Every module kmod shows a signature for decodes here (the line comparison
    // above checks the text); none is left undecoded.
    let decoded = infos.iter().filter(|m| m.signature.is_some()).count();
    if decoded != kmod_signature_count(kmod_out) {
        problems.push(format!(
            "[{label}] {decoded} decoded signatures, kmod printed {}",
            kmod_signature_count(kmod_out)
        ));
    }
    for mi in infos.iter().filter(|m| m.signature_error.is_some()) {
        problems.push(format!(
            "[{label}] {}: signature not decoded: {:?}",
            mi.name, mi.signature_error
        ));
    }
    problems
}

/// Runs kmod `modinfo -k REL -m NAMES...` and our index on the same names.
fn check_batch(label: &str, index: &ModuleIndex, rel: &str, names: &[String]) -> Vec<String> {
    let mut args = vec!["-k", rel, "-m"];
    args.extend(names.iter().map(String::as_str));
    let (kmod, ours) = std::thread::scope(|s| {
        let k = s.spawn(|| run_kmod(&args));
        let ours: Vec<Result<ModInfo, String>> = names
            .iter()
            .map(|n| index.modinfo(n).map_err(|e| format!("{n}: {e:#}")))
            .collect();
        (k.join().expect("kmod thread"), ours)
    });
    let mut problems: Vec<String> = ours.iter().filter_map(|r| r.clone().err()).collect();
    let infos: Vec<ModInfo> = ours.into_iter().filter_map(Result::ok).collect();
    // Built-ins without records make kmod print an error after name/filename.
    let unexpected_stderr: Vec<&str> = kmod
        .stderr
        .lines()
        .filter(|l| !l.contains("could not get modinfo from"))
        .collect();
    if !unexpected_stderr.is_empty() {
        problems.push(format!("[{label}] kmod stderr: {unexpected_stderr:?}"));
    }
    if !kmod.ok && unexpected_stderr.is_empty() && kmod.stderr.is_empty() {
        problems.push(format!("[{label}] kmod failed without a message"));
    }
    problems.extend(compare(label, &infos, &kmod.stdout));
    problems
}

fn fail_on(problems: Vec<String>) {
    if !problems.is_empty() {
        let shown: Vec<&String> = problems.iter().take(8).collect();
        panic!(
            "{} mismatches with kmod's modinfo; first ones:\n{}",
            problems.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn every_module_matches_kmod() {
    let rel = release();
    let start = Instant::now();
    let index = ModuleIndex::load(Path::new("/"), &rel).expect("load index");
    let files: Vec<String> = index
        .names()
        .filter(|n| matches!(index.locate_module(n), Some(Located::File { .. })))
        .map(str::to_string)
        .collect();
    let dep_lines = std::fs::read_to_string(index.dir().join("modules.dep"))
        .expect("modules.dep")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(files.len(), dep_lines, "every modules.dep line is a module");

    // Two batches in parallel: each runs one kmod process while we read the
    // same modules (2 cores).
    let half = files.len().div_ceil(2);
    let (a, b) = files.split_at(half);
    let problems = std::thread::scope(|s| {
        let ta = s.spawn(|| check_batch("modules.dep #1", &index, &rel, a));
        let pb = check_batch("modules.dep #2", &index, &rel, b);
        let mut p = ta.join().expect("batch thread");
        p.extend(pb);
        p
    });
    fail_on(problems);

    // Built-ins from modules.builtin, through the same path.
    let builtins: Vec<String> = index
        .names()
        .filter(|n| index.is_builtin(n))
        .map(str::to_string)
        .collect();
    assert!(
        !builtins.is_empty(),
        "modules.builtin lists built-in modules"
    );
    fail_on(check_batch("modules.builtin", &index, &rel, &builtins));

    // Names that only have records in modules.builtin.modinfo (e.g. `acpi`,
    // `printk`): not modules for kmod, so `modinfo NAME` finds them only as
    // aliases (of other modules); we must resolve them the same way.
    let mut extra: Vec<String> = index
        .builtin_modinfo_names()
        .filter(|n| !index.is_builtin(n))
        .map(str::to_string)
        .collect();
    extra.sort();
    assert!(!extra.is_empty());
    let mut problems = Vec::new();
    for n in &extra {
        assert!(index.locate_module(n).is_none(), "{n} is not a module");
        problems.extend(check_alias(&index, &rel, n));
    }
    fail_on(problems);

    let secs = start.elapsed().as_secs_f64();
    println!(
        "compared {} module files, {} built-ins, {} modinfo-only names in {secs:.1} s",
        files.len(),
        builtins.len(),
        extra.len()
    );
}

/// i915's GVT-g switch and kvmgt, the modules `gvtg` cares about most.
#[test]
fn i915_gvt_and_kvmgt() {
    let rel = release();
    let index = ModuleIndex::load(Path::new("/"), &rel).expect("index");
    let i915 = index.modinfo("i915").expect("i915");
    let gvt = i915
        .params()
        .into_iter()
        .find(|p| p.name == "enable_gvt")
        .expect("i915 has enable_gvt");
    assert_eq!(gvt.ptype.as_deref(), Some("bool"));
    assert!(gvt.description.is_some_and(|d| d.contains("GVT")));
    assert!(i915.signed);
    assert_eq!(i915.compression, None);
    assert_eq!(i915.get("name"), vec!["i915"]);

    match index.locate("kvmgt") {
        Some(Located::File { rel, path, deps }) => {
            assert_eq!(rel, "kernel/drivers/gpu/drm/i915/kvmgt.ko");
            assert!(path.is_file());
            assert!(deps.iter().any(|d| d.ends_with("/i915.ko")), "{deps:?}");
        }
        other => panic!("kvmgt not a module file: {other:?}"),
    }
    // '-' and '_' are the same in module names; aliases resolve too.
    assert!(index.locate("snd-hda-intel").is_some());
    assert!(index
        .locate("pci:v00008086d00003E92sv00001028sd0000085Abc03sc00i00")
        .is_some());
    assert!(index.locate("no_such_module_xyz").is_none());
    // Explicit paths and names through the top-level helper.
    let by_path = kmod::modinfo(
        Path::new("/"),
        &rel,
        &format!("/lib/modules/{rel}/kernel/drivers/gpu/drm/i915/kvmgt.ko"),
    )
    .expect("kvmgt by path");
    let by_name = kmod::modinfo(Path::new("/"), &rel, "kvmgt").expect("kvmgt by name");
    assert_eq!(by_path, by_name);
    let json = serde_json::to_string(&by_name).expect("json");
    assert!(json.contains("\"filename\""));
}

/// A sample of aliases (literal ones and instances of wildcard patterns)
/// resolves to one of the modules kmod's `modinfo -F filename ALIAS` lists.
#[test]
fn aliases_resolve_like_kmod() {
    let rel = release();
    let index = ModuleIndex::load(Path::new("/"), &rel).expect("index");
    let text = std::fs::read_to_string(index.dir().join("modules.alias")).expect("modules.alias");
    let patterns: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("alias "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(patterns.len() > 1000);
    let step = patterns.len() / 150;
    let samples: Vec<String> = patterns.iter().step_by(step).map(|p| instance(p)).collect();
    let chunks: Vec<&[String]> = samples.chunks(samples.len().div_ceil(2)).collect();
    let problems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let (index, rel) = (&index, rel.as_str());
                s.spawn(move || {
                    let mut problems = Vec::new();
                    for alias in chunk.iter() {
                        problems.extend(check_alias(index, rel, alias));
                    }
                    problems
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("alias thread"))
            .collect()
    });
    fail_on(problems);
}

/// `modinfo -k REL -F filename ALIAS` lists every module the alias names;
/// ours must be one of them (or neither finds anything).
fn check_alias(index: &ModuleIndex, rel: &str, alias: &str) -> Option<String> {
    let k = run_kmod(&["-k", rel, "-F", "filename", alias]);
    let kmod_files: Vec<&str> = k.stdout.lines().collect();
    let ours = index.modinfo(alias).ok().map(|m| m.filename);
    let ok = match &ours {
        Some(f) => kmod_files.contains(&f.as_str()),
        None => kmod_files.is_empty(),
    };
    (!ok).then(|| format!("{alias}: kmod {kmod_files:?}, ours {ours:?}"))
}

/// A concrete string matching an fnmatch pattern: `*` -> "", `?` -> "0",
/// `[set]` -> its first member.
fn instance(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {}
            '?' => out.push('0'),
            '[' => {
                let mut set: Vec<char> = Vec::new();
                for d in chars.by_ref() {
                    if d == ']' && !set.is_empty() {
                        break;
                    }
                    set.push(d);
                }
                out.push(set.first().copied().unwrap_or('0'));
            }
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Synthetic ELF files.

struct Section<'a> {
    name: &'a str,
    data: &'a [u8],
    /// Replace sh_offset with this (to make a section out of bounds).
    bogus_offset: Option<u64>,
}

/// A minimal relocatable ELF with the given sections (plus the null section
/// and `.shstrtab`), in either class and byte order.
fn build_elf(sections: &[Section], is64: bool, big_endian: bool) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, v: u64, size: usize, be: bool) {
        let bytes = v.to_le_bytes();
        let mut b: Vec<u8> = bytes.get(..size).expect("size <= 8").to_vec();
        if be {
            b.reverse();
        }
        out.extend_from_slice(&b);
    }
    let (ehsize, shentsize, word) = if is64 { (64, 64, 8) } else { (52, 40, 4) };
    let mut shstrtab = vec![0u8];
    let mut name_offs = Vec::new();
    for s in sections {
        name_offs.push(shstrtab.len() as u64);
        shstrtab.extend_from_slice(s.name.as_bytes());
        shstrtab.push(0);
    }
    let shstr_name = shstrtab.len() as u64;
    shstrtab.extend_from_slice(b".shstrtab\0");

    let mut body = vec![0u8; ehsize];
    let mut offsets = Vec::new();
    for s in sections {
        offsets.push(body.len() as u64);
        body.extend_from_slice(s.data);
    }
    let shstr_off = body.len() as u64;
    body.extend_from_slice(&shstrtab);
    while body.len() % 8 != 0 {
        body.push(0);
    }
    let shoff = body.len() as u64;
    let shnum = sections.len() + 2;

    let be = big_endian;
    let mut hdr = vec![
        0x7F,
        b'E',
        b'L',
        b'F',
        if is64 { 2 } else { 1 },
        if be { 2 } else { 1 },
        1,
        0,
    ];
    hdr.resize(16, 0);
    put(&mut hdr, 1, 2, be); // ET_REL
    put(&mut hdr, if is64 { 62 } else { 3 }, 2, be);
    put(&mut hdr, 1, 4, be);
    put(&mut hdr, 0, word, be); // entry
    put(&mut hdr, 0, word, be); // phoff
    put(&mut hdr, shoff, word, be);
    put(&mut hdr, 0, 4, be); // flags
    put(&mut hdr, ehsize as u64, 2, be);
    put(&mut hdr, 0, 2, be);
    put(&mut hdr, 0, 2, be);
    put(&mut hdr, shentsize as u64, 2, be);
    put(&mut hdr, shnum as u64, 2, be);
    put(&mut hdr, shnum as u64 - 1, 2, be); // .shstrtab is last
    body.splice(0..ehsize, hdr);

    let mut shdr = |name: u64, typ: u64, off: u64, size: u64| {
        put(&mut body, name, 4, be);
        put(&mut body, typ, 4, be);
        put(&mut body, 0, word, be); // flags
        put(&mut body, 0, word, be); // addr
        put(&mut body, off, word, be);
        put(&mut body, size, word, be);
        put(&mut body, 0, 4, be); // link
        put(&mut body, 0, 4, be); // info
        put(&mut body, 1, word, be); // addralign
        put(&mut body, 0, word, be); // entsize
    };
    shdr(0, 0, 0, 0);
    for ((s, off), name) in sections.iter().zip(&offsets).zip(&name_offs) {
        shdr(
            *name,
            1,
            s.bogus_offset.unwrap_or(*off),
            s.data.len() as u64,
        );
    }
    shdr(shstr_name, 3, shstr_off, shstrtab.len() as u64);
    body
}

fn modinfo_elf(data: &[u8], is64: bool, be: bool) -> Vec<u8> {
    build_elf(
        &[Section {
            name: ".modinfo",
            data,
            bogus_offset: None,
        }],
        is64,
        be,
    )
}

/// `struct module_signature` and the magic string.
fn sig_trailer(
    algo: u8,
    hash: u8,
    id_type: u8,
    signer: &[u8],
    key_id: &[u8],
    sig: &[u8],
) -> Vec<u8> {
    let mut t = signer.to_vec();
    t.extend_from_slice(key_id);
    t.extend_from_slice(sig);
    t.extend_from_slice(&[
        algo,
        hash,
        id_type,
        signer.len() as u8,
        key_id.len() as u8,
        0,
        0,
        0,
    ]);
    t.extend_from_slice(&(sig.len() as u32).to_be_bytes());
    t.extend_from_slice(b"~Module signature appended~\n");
    t
}

/// Hand-made modules with appended signatures: i915's real PKCS#7 blob, the same blob
/// truncated or replaced by garbage (kmod prints no signature lines then), and the raw
/// X509/PGP layouts with long key ids.
fn signed_cases() -> Vec<(&'static str, Vec<u8>)> {
    let (_, i915) = i915_bytes();
    let tail = gvtg::kmod::modinfo::signature_tail(&i915).expect("i915 is signed");
    let blob = tail
        .get(..tail.len() - 40)
        .expect("PKCS#7 blob before the trailer")
        .to_vec();
    let elf = || modinfo_elf(b"license=GPL\0parm=p:a parameter\0name=s\0", true, false);
    let with = |t: Vec<u8>| [elf(), t].concat();
    let key: Vec<u8> = (0..25).map(|i| i * 7).collect();
    let sig: Vec<u8> = (0..45).map(|i| 255 - i).collect();
    vec![
        ("pkcs7_i915_blob", with(tail.to_vec())),
        (
            "pkcs7_truncated",
            with(sig_trailer(
                1,
                4,
                2,
                b"",
                b"",
                blob.get(..blob.len() / 2).expect("half"),
            )),
        ),
        (
            "pkcs7_garbage",
            with(sig_trailer(1, 4, 2, b"", b"", b"this is not DER at all")),
        ),
        ("x509_raw", with(sig_trailer(1, 4, 1, b"Alice", &key, &sig))),
        (
            "pgp_raw",
            with(sig_trailer(0, 8, 0, b"", &key[..20], &sig[..20])),
        ),
    ]
}

/// kmod's quirks, checked against kmod itself on hand-made modules.
#[test]
fn synthetic_quirks_match_kmod() {
    let rel = release();
    let dir = tempfile::tempdir().expect("tempdir");
    let tricky: &[u8] = b"license=GPL\0noequals\0averyveryverylongkey=v\0fifteen_chars_k=w\0\
        parmtype=onlytype:int\0parm=nocolon\0parm=x:\0parmtype=x:bool\0parm=dup:first\0\
        parmtype=dup:int\0parm=dup:second\0=emptykey\0author=J\xf6rg\0parm=a:b:c\0";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("tricky64le", modinfo_elf(tricky, true, false)),
        ("tricky32be", modinfo_elf(tricky, false, true)),
        (
            "leading_nuls",
            modinfo_elf(b"\0\0\0alias=foo\0\0\0name=x\0", true, false),
        ),
        ("lone_byte", modinfo_elf(b"\0\0z", true, false)),
        ("one_byte", modinfo_elf(b"z", true, false)),
        ("unterminated", modinfo_elf(b"a=1\0b=2", true, false)),
        ("empty_section", modinfo_elf(b"", true, false)),
        (
            "second_modinfo_wins",
            build_elf(
                &[
                    Section {
                        name: ".modinfo",
                        data: b"first=1\0",
                        bogus_offset: Some(1 << 40),
                    },
                    Section {
                        name: ".text",
                        data: b"\x90\x90",
                        bogus_offset: None,
                    },
                    Section {
                        name: ".modinfo",
                        data: b"second=2\0",
                        bogus_offset: None,
                    },
                ],
                true,
                false,
            ),
        ),
    ];
    let cases = [cases, signed_cases()].concat();
    let mut problems = Vec::new();
    for (name, bytes) in &cases {
        let path = dir.path().join(format!("{name}.ko"));
        std::fs::write(&path, bytes).expect("write");
        let p = path.to_str().expect("utf-8 tempdir");
        let kmod = run_kmod(&[p]);
        assert!(kmod.ok, "{name}: kmod failed: {}", kmod.stderr);
        let ours = kmod::modinfo(Path::new("/"), &rel, p).expect(name);
        let k = kmod.stdout;
        // kmod prints signature lines exactly where the signature decodes.
        let decodes = matches!(*name, "pkcs7_i915_blob" | "x509_raw" | "pgp_raw");
        assert_eq!(
            kmod_signature_count(&k),
            usize::from(decodes),
            "{name}: {k}"
        );
        assert_eq!(ours.signature.is_some(), decodes, "{name}");
        let undecodable = name.starts_with("pkcs7_") && !decodes;
        assert_eq!(ours.signature_error.is_some(), undecodable, "{name}");
        if k != ours.render_kmod_style() {
            problems.push(format!(
                "{name}:\n--- kmod\n{k}--- ours\n{}",
                ours.render_kmod_style()
            ));
        }
    }
    // No .modinfo at all: kmod fails, so do we.
    let none = build_elf(
        &[Section {
            name: ".text",
            data: b"\x90",
            bogus_offset: None,
        }],
        true,
        false,
    );
    let path = dir.path().join("no_modinfo.ko");
    std::fs::write(&path, none).expect("write");
    let p = path.to_str().expect("utf-8");
    assert!(!run_kmod(&[p]).ok);
    let err = kmod::modinfo(Path::new("/"), &rel, p).expect_err("no .modinfo");
    assert!(err.chain().any(|c| c
        .downcast_ref::<KmodError>()
        .is_some_and(|k| matches!(k, KmodError::NoModinfo))));
    fail_on(problems);
}

// ---------------------------------------------------------------------------
// Compression.

fn i915_bytes() -> (PathBuf, Vec<u8>) {
    let rel = release();
    let index = ModuleIndex::load(Path::new("/"), &rel).expect("index");
    let Some(Located::File { path, .. }) = index.locate("i915") else {
        panic!("i915 is not a module file ({INSTALL_HINT})");
    };
    let bytes = std::fs::read(&path).expect("read i915.ko");
    (path, bytes)
}

fn xz(data: &[u8], preset: u32) -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), preset);
    e.write_all(data).expect("xz");
    e.finish().expect("xz")
}

fn zst(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 1).expect("zstd")
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

#[test]
fn compressed_i915_gives_identical_fields() {
    let rel = release();
    let (path, plain) = i915_bytes();
    let base = kmod::modinfo_file(&path).expect("plain i915");
    let dir = tempfile::tempdir().expect("tempdir");
    let variants = [
        ("i915.ko.xz", "xz", xz(&plain, 1)),
        ("i915.ko.zst", "zstd", zst(&plain)),
        ("i915.ko.gz", "gzip", gz(&plain)),
        // Magic bytes win over a misleading extension.
        ("i915.ko", "zstd", zst(&plain)),
    ];
    for (name, format, bytes) in variants {
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes).expect("write");
        let mi = kmod::modinfo_file(&p).expect(name);
        assert_eq!(mi.fields, base.fields, "{name}");
        assert_eq!(mi.compression, Some(format), "{name}");
        assert!(mi.signed, "{name}: signature survives compression");
        assert!(mi.signature.is_some(), "{name}: {:?}", mi.signature_error);
        assert_eq!(mi.signature, base.signature, "{name}");
        assert_eq!(mi.name, "i915");
        // kmod here is built with +XZ +ZSTD (not zlib): compare where it can.
        if format != "gzip" {
            let k = run_kmod(&["-k", &rel, p.to_str().expect("utf-8")]);
            if k.ok {
                assert_eq!(k.stdout, mi.render_kmod_style(), "{name}");
                assert_eq!(kmod_signature_count(&k.stdout), 1, "{name}");
            }
        }
    }
}

#[test]
fn hostile_inputs_give_errors() {
    let (_, plain) = i915_bytes();
    // Truncated ELF at various points.
    for cut in [0, 3, 16, 63, 64, 1000, plain.len() / 2, plain.len() - 4096] {
        let r = kmod::decompress("cut.ko", plain.get(..cut).expect("cut"))
            .and_then(|e| kmod::modinfo_fields(&e));
        assert!(r.is_err(), "truncated at {cut} must fail");
    }
    // Garbage.
    assert!(kmod::decompress("garbage.ko", b"this is not a module at all").is_err());
    assert!(kmod::modinfo_fields(&[0xAB; 4096]).is_err());
    // Truncated compressed streams.
    for (fmt, packed) in [
        ("xz", xz(&plain, 0)),
        ("zstd", zst(&plain)),
        ("gzip", gz(&plain)),
    ] {
        let half = packed.get(..packed.len() / 2).expect("half");
        assert!(kmod::decompress(fmt, half).is_err(), "truncated {fmt}");
    }
}

fn is_too_large(e: &anyhow::Error) -> bool {
    e.downcast_ref::<KmodError>()
        .is_some_and(|k| matches!(k, KmodError::TooLarge { .. }))
}

#[test]
fn decompression_bombs_are_refused() {
    // 1 GiB of zeros per format: one 16 MiB stream repeated 64 times
    // (concatenated streams/frames/members are valid and decoded, like
    // kmod does), so building the bomb stays cheap.
    let zeros = vec![0u8; 16 << 20];
    for (fmt, one) in [
        ("xz", xz(&zeros, 0)),
        ("zstd", zst(&zeros)),
        ("gzip", gz(&zeros)),
    ] {
        let bomb: Vec<u8> = one.repeat(64);
        let t = Instant::now();
        let err = kmod::decompress(fmt, &bomb).expect_err(fmt);
        assert!(is_too_large(&err), "{fmt}: {err:#}");
        println!(
            "{fmt} bomb ({} bytes) refused in {:?}",
            bomb.len(),
            t.elapsed()
        );
    }
    // A single xz stream just over the cap.
    let big = vec![0u8; kmod::modinfo::MAX_DECOMPRESSED + 1];
    let err = kmod::decompress("big.xz", &xz(&big, 0)).expect_err("over cap");
    assert!(is_too_large(&err), "{err:#}");
    // Exactly at the cap is fine (decompresses, then is not an ELF file).
    let at = vec![0u8; kmod::modinfo::MAX_DECOMPRESSED];
    let packed = zst(&at);
    let ok = kmod::decompress("cap.zst", &packed).expect("at cap");
    assert_eq!(ok.len(), kmod::modinfo::MAX_DECOMPRESSED);
}

// ---------------------------------------------------------------------------
// Property tests.

/// kmod_elf_get_strings() + kmod_module_get_info(), written independently.
fn model(section: &[u8]) -> Vec<(String, String)> {
    let first = section.iter().position(|&b| b != 0);
    let rest = match first {
        // kmod keeps the rest only if more than one byte remains.
        Some(i) if section.len() - i > 1 => &section[i..],
        _ => &section[..0],
    };
    rest.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| match s.iter().position(|&b| b == b'=') {
            Some(i) => (
                String::from_utf8_lossy(&s[..i]).into_owned(),
                String::from_utf8_lossy(&s[i + 1..]).into_owned(),
            ),
            None => (String::from_utf8_lossy(s).into_owned(), String::new()),
        })
        .collect()
}

proptest! {
    // No failure persistence: an integration test has no lib.rs beside it.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(elf) = kmod::decompress("random", &bytes) {
            let _ = kmod::modinfo_fields(&elf);
        }
        let _ = kmod::modinfo_fields(&bytes);
        let _ = kmod::signature_present(&bytes);
    }

    #[test]
    fn magic_prefixed_bytes_never_panic(
        which in 0usize..5,
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let prefixes: [&[u8]; 5] = [
            &[0xFD, b'7', b'z', b'X', b'Z', 0],
            &[0x28, 0xB5, 0x2F, 0xFD],
            &[0x1F, 0x8B, 8, 0],
            &[0x7F, b'E', b'L', b'F', 2, 1, 1, 0],
            &[0x7F, b'E', b'L', b'F', 1, 2, 1, 0],
        ];
        let mut bytes = prefixes[which].to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(elf) = kmod::decompress("prefixed", &bytes) {
            let _ = kmod::modinfo_fields(&elf);
        }
    }

    #[test]
    fn modinfo_fields_follow_kmod_model(
        section in proptest::collection::vec(
            prop_oneof![Just(0u8), Just(b'='), Just(b':'), Just(0xC3), b'a'..=b'e'], 0..200),
        is64 in any::<bool>(),
        be in any::<bool>(),
    ) {
        let elf = modinfo_elf(&section, is64, be);
        let got = kmod::modinfo_fields(&elf).expect("well-formed ELF");
        prop_assert_eq!(got, model(&section));
    }

    #[test]
    fn mutated_elf_never_panics(
        section in proptest::collection::vec(any::<u8>(), 0..64),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        is64 in any::<bool>(),
        be in any::<bool>(),
    ) {
        let mut elf = modinfo_elf(&section, is64, be);
        let len = elf.len();
        for (at, v) in flips {
            elf[at % len] = v;
        }
        let whole = kmod::modinfo_fields(&elf);
        let _ = kmod::decompress("mutated", &elf);
        // The file reader (pread of headers, `.modinfo` and trailer only) agrees with the
        // whole-image parser on every mutation, errors included.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mutated.ko");
        std::fs::write(&path, &elf).expect("write");
        match (whole, kmod::modinfo_file(&path)) {
            (Ok(fields), Ok(mi)) => {
                prop_assert_eq!(fields, mi.fields);
                prop_assert_eq!(kmod::signature_present(&elf), mi.signed);
                prop_assert_eq!(kmod::signature_info(&elf).and_then(Result::ok), mi.signature);
            }
            (Err(_), Err(_)) => {}
            (w, f) => prop_assert!(false, "slice {:?} vs file {:?}", w.map(|_| ()), f.map(|_| ())),
        }
    }

    #[test]
    fn signed_trailer_read_from_file_agrees(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        modsig in proptest::collection::vec(any::<u8>(), 12..=12),
    ) {
        let mut elf = modinfo_elf(b"license=GPL\0", true, false);
        elf.extend_from_slice(&body);
        elf.extend_from_slice(&modsig);
        elf.extend_from_slice(b"~Module signature appended~\n");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signed.ko");
        std::fs::write(&path, &elf).expect("write");
        let mi = kmod::modinfo_file(&path).expect("valid ELF");
        prop_assert_eq!(kmod::signature_present(&elf), mi.signed);
        let whole = kmod::signature_info(&elf);
        prop_assert_eq!(whole.clone().and_then(Result::ok), mi.signature);
        prop_assert_eq!(whole.and_then(Result::err), mi.signature_error);
    }
}

// ---------------------------------------------------------------------------
// A captured tree under a non-`/` root (no kmod needed).

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, bytes).expect("write");
}

#[test]
fn captured_tree_lookup() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let d = "lib/modules/9.9.9-test";
    let foo = modinfo_elf(
        b"alias=pci:v00001234d*\0license=GPL\0name=foo_bar\0",
        true,
        false,
    );
    let baz = modinfo_elf(b"license=MIT\0name=baz\0", false, true);
    let qux = modinfo_elf(b"name=qux\0", true, false);
    write(
        root,
        &format!("{d}/kernel/drivers/foo/foo-bar.ko.xz"),
        &xz(&foo, 1),
    );
    write(root, &format!("{d}/kernel/drivers/baz.ko.zst"), &zst(&baz));
    write(root, "abs/qux.ko", &qux);
    write(
        root,
        &format!("{d}/modules.dep"),
        b"kernel/drivers/foo/foo-bar.ko.xz: kernel/drivers/baz.ko.zst\n\
          kernel/drivers/baz.ko.zst:\n/abs/qux.ko:\n",
    );
    write(
        root,
        &format!("{d}/modules.builtin"),
        b"kernel/lib/bi-mod.ko\n",
    );
    write(
        root,
        &format!("{d}/modules.builtin.modinfo"),
        b"bi_mod.license=GPL\0bi_mod.parm=p:desc\0other.alias=net-pf-99\0\
          other.license=X\0bi_mod.description=second block\0",
    );
    write(
        root,
        &format!("{d}/modules.alias"),
        b"# Aliases extracted from modules themselves.\n\
          alias pci:v00001234d* foo_bar\nalias fs-baz baz\n",
    );
    write(
        root,
        &format!("{d}/modules.symbols"),
        b"alias symbol:baz_fn baz\n",
    );

    let index = ModuleIndex::load(root, "9.9.9-test").expect("load");
    assert_eq!(
        index.names().collect::<Vec<_>>(),
        ["foo_bar", "baz", "qux", "bi_mod"]
    );
    let dir = root.join(d);
    assert_eq!(
        index.locate("foo-bar"),
        Some(Located::File {
            path: dir.join("kernel/drivers/foo/foo-bar.ko.xz"),
            rel: "kernel/drivers/foo/foo-bar.ko.xz".into(),
            deps: vec!["kernel/drivers/baz.ko.zst".into()],
        })
    );
    // An absolute modules.dep path stays inside the captured root.
    assert!(matches!(index.locate("qux"),
        Some(Located::File { path, .. }) if path == root.join("abs/qux.ko")));
    // Aliases (wildcard, '-'/'_' normalised), symbols, built-in aliases.
    assert_eq!(
        index.resolve("pci:v00001234d00005678").as_deref(),
        Some("foo_bar")
    );
    assert_eq!(index.resolve("fs-baz").as_deref(), Some("baz"));
    assert_eq!(index.resolve("symbol:baz_fn").as_deref(), Some("baz"));
    assert_eq!(index.resolve("net-pf-99").as_deref(), Some("other"));
    assert_eq!(index.resolve("other"), None, "not in modules.builtin");
    assert!(index.is_builtin("bi-mod"));
    assert!(!index.is_builtin("baz"));

    let mi = kmod::modinfo(root, "9.9.9-test", "foo_bar").expect("foo_bar");
    assert_eq!(mi.compression, Some("xz"));
    assert_eq!(mi.get("license"), ["GPL"]);
    assert!(!mi.signed);
    assert_eq!(
        kmod::modinfo(root, "9.9.9-test", "baz")
            .expect("baz")
            .compression,
        Some("zstd")
    );
    // Paths are taken inside the root when it is not "/".
    let by_path = kmod::modinfo(root, "9.9.9-test", "/abs/qux.ko").expect("qux by path");
    assert_eq!(
        by_path.filename,
        root.join("abs/qux.ko").display().to_string()
    );

    // Built-in: only the first contiguous block of records, like kmod.
    let bi = kmod::modinfo(root, "9.9.9-test", "bi-mod").expect("bi_mod");
    assert_eq!(
        bi.render_kmod_style(),
        "name:           bi_mod\nfilename:       (builtin)\nlicense:        GPL\n\
         parm:           p:desc\n"
    );
    let other = index.modinfo("net-pf-99").expect("builtin alias");
    assert_eq!(other.get("license"), ["X"]);

    let err = kmod::modinfo(root, "9.9.9-test", "nope").expect_err("missing");
    assert!(format!("{err:#}").contains("nope"));
    assert!(ModuleIndex::load(root, "../x").is_err());
    assert!(ModuleIndex::load(root, "0.0.0-missing").is_err());
}

#[test]
fn malformed_indexes_name_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let d = "lib/modules/1";
    let cases: [(&str, &[u8], &str); 3] = [
        ("modules.dep", b"a.ko:\nno colon here\n", "modules.dep:2"),
        (
            "modules.alias",
            b"alias a b\nalias broken\n",
            "modules.alias:2",
        ),
        (
            "modules.builtin.modinfo",
            b"a.x=1\0nodot\0",
            "modules.builtin.modinfo: record 2",
        ),
    ];
    for (file, content, want) in cases {
        write(root, &format!("{d}/modules.dep"), b"a.ko:\n");
        write(root, &format!("{d}/{file}"), content);
        // The alias index is read on first alias lookup: loading succeeds, module names still
        // resolve, and a name that is not a module reports the located alias-file error.
        let err = if file == "modules.alias" {
            let idx = ModuleIndex::load(root, "1").expect("index loads; aliases are lazy");
            assert!(idx.locate("a").is_some());
            idx.modinfo("no-such-name").expect_err(file)
        } else {
            ModuleIndex::load(root, "1").expect_err(file)
        };
        assert!(format!("{err:#}").contains(want), "{file}: {err:#}");
        std::fs::remove_file(root.join(d).join(file)).expect("rm");
    }
}

#[test]
fn streaming_lookup_agrees_with_the_full_index() {
    // `locate_modules` (one pass over modules.dep, used by the doctor and `gvtg modinfo NAME`)
    // must find exactly what the full index finds, for every module of the kernel.
    let rel = release();
    let root = Path::new("/");
    let index = ModuleIndex::load(root, &rel).expect("index");
    let names: Vec<String> = index.names().map(str::to_string).collect();
    assert!(names.len() > 1000, "only {} modules", names.len());
    for chunk in names.chunks(50) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let found = gvtg::kmod::depmod::locate_modules(root, &rel, &refs).expect("scan");
        for n in chunk {
            assert_eq!(found.get(n), index.locate_module(n).as_ref(), "{n}");
        }
    }
    let none = gvtg::kmod::depmod::locate_modules(root, &rel, &["no_such_module_xyz"]).unwrap();
    assert!(none.is_empty());
}

// ---------------------------------------------------------------------------
// modules.dep.bin (kmod's own trie) against modules.dep.

#[test]
fn dep_bin_agrees_with_modules_dep() {
    let rel = release();
    let dep = std::fs::read_to_string(Path::new("/lib/modules").join(&rel).join("modules.dep"))
        .expect("modules.dep");
    let mut checked = 0;
    let mut problems = Vec::new();
    for line in dep.lines() {
        let Some((path, _)) = line.split_once(':') else {
            continue;
        };
        let Some(name) = gvtg::kmod::depmod::path_to_modname(path) else {
            continue;
        };
        let text = gvtg::kmod::depmod::locate_modules(Path::new("/"), &rel, &[name.as_str()])
            .expect("modules.dep")
            .remove(&name);
        let bin = gvtg::kmod::depmod::lookup_dep_bin(Path::new("/"), &rel, &name);
        if bin.is_none() || bin != text {
            problems.push(format!(
                "{name}: modules.dep.bin {bin:?}, modules.dep {text:?}"
            ));
        }
        checked += 1;
    }
    assert!(checked > 1000, "only {checked} modules in modules.dep");
    // A dash in the name finds the underscore key, as kmod normalises it.
    let dashed = gvtg::kmod::depmod::lookup_dep_bin(Path::new("/"), &rel, "kvm-intel");
    assert!(dashed.is_some(), "kvm-intel not found in modules.dep.bin");
    assert_eq!(
        dashed,
        gvtg::kmod::depmod::lookup_dep_bin(Path::new("/"), &rel, "kvm_intel")
    );
    assert_eq!(
        gvtg::kmod::depmod::lookup_dep_bin(Path::new("/"), &rel, "no_such_module_x"),
        None
    );
    fail_on(problems);
}

#[test]
fn dep_bin_absent_or_hostile_is_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = dir.path().join("lib/modules/9.9.9");
    std::fs::create_dir_all(&m).expect("mkdir");
    assert_eq!(
        kmod::depmod::lookup_dep_bin(dir.path(), "9.9.9", "foo"),
        None
    );
    let real = std::fs::read(
        Path::new("/lib/modules")
            .join(release())
            .join("modules.dep.bin"),
    )
    .expect("modules.dep.bin");
    // Truncations and byte flips of the real index: never a panic, never a wrong answer shape.
    for cut in [0, 3, 8, 12, 100, real.len() / 2, real.len() - 1] {
        std::fs::write(m.join("modules.dep.bin"), &real[..cut]).expect("write");
        let _ = kmod::depmod::lookup_dep_bin(dir.path(), "9.9.9", "i915");
    }
    let mut flipped = real.clone();
    for i in (0..flipped.len()).step_by(997) {
        flipped[i] ^= 0xA5;
    }
    std::fs::write(m.join("modules.dep.bin"), &flipped).expect("write");
    for name in ["i915", "kvmgt", "vfio", "a", ""] {
        let _ = kmod::depmod::lookup_dep_bin(dir.path(), "9.9.9", name);
    }
    std::fs::write(
        m.join("modules.dep.bin"),
        b"\xb0\x07\xf4\x57\x00\x02\x00\x01\xff\xff\xff\xff",
    )
    .expect("write");
    assert_eq!(
        kmod::depmod::lookup_dep_bin(dir.path(), "9.9.9", "i915"),
        None
    );
    assert_eq!(
        kmod::depmod::lookup_dep_bin(dir.path(), "../x", "i915"),
        None
    );
}

/// `gvtg modinfo -k REL ARGS…` as a process: (stdout bytes, stderr, exit code).
fn run_gvtg_modinfo(args: &[&str]) -> (Vec<u8>, String, Option<i32>) {
    let out = Command::new(env!("CARGO_BIN_EXE_gvtg"))
        .arg("modinfo")
        .args(args)
        .output()
        .expect("run gvtg");
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// The same arguments to kmod's `modinfo` and to `gvtg modinfo`, both in one process: stdout
/// must be byte-identical and the exit codes equal. Returns a problem description, if any.
/// `may_be_empty`: kmod printing nothing is expected (e.g. signature fields of built-ins).
fn same_as_kmod(label: &str, args: &[&str], may_be_empty: bool) -> Option<String> {
    let kmod = Command::new(kmod_modinfo())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run modinfo ({INSTALL_HINT}): {e}"));
    let (ours, stderr, code) = run_gvtg_modinfo(args);
    if kmod.status.code() != code {
        return Some(format!(
            "[{label}] exit code: kmod {:?}, gvtg {code:?} (gvtg stderr: {stderr})",
            kmod.status.code()
        ));
    }
    if kmod.stdout.is_empty() && code == Some(0) && !may_be_empty {
        return Some(format!("[{label}] kmod printed nothing"));
    }
    if kmod.stdout != ours {
        let at = kmod
            .stdout
            .iter()
            .zip(&ours)
            .position(|(a, b)| a != b)
            .unwrap_or(kmod.stdout.len().min(ours.len()));
        let around = |b: &[u8]| {
            String::from_utf8_lossy(
                b.get(at.saturating_sub(60)..(at + 60).min(b.len()))
                    .unwrap_or_default(),
            )
            .into_owned()
        };
        return Some(format!(
            "[{label}] stdout differs at byte {at} ({} vs {} bytes):\n  kmod: {:?}\n  ours: {:?}",
            kmod.stdout.len(),
            ours.len(),
            around(&kmod.stdout),
            around(&ours)
        ));
    }
    None
}

/// `-F FIELD` (and kmod's shorthands), `-0` and several modules in one process, for every
/// module file and built-in module of the kernel: the whole output must be kmod's, byte for
/// byte (`filename`, `name`, `parm` and the signature fields are special cases in kmod).
#[test]
fn fields_null_and_many_modules_match_kmod() {
    let rel = release();
    let index = ModuleIndex::load(Path::new("/"), &rel).expect("load index");
    let files: Vec<&str> = index
        .names()
        .filter(|n| matches!(index.locate_module(n), Some(Located::File { .. })))
        .collect();
    let builtins: Vec<&str> = index.names().filter(|n| index.is_builtin(n)).collect();
    assert!(files.len() > 1000 && !builtins.is_empty());
    let modes: &[&[&str]] = &[
        &[],
        &["-0"],
        &["-F", "filename"],
        &["-F", "name"],
        &["-F", "parm"],
        &["-F", "parmtype"],
        &["-F", "alias"],
        &["-F", "depends"],
        &["-F", "signer"],
        &["-F", "sig_key"],
        &["-F", "signature"],
        &["--field", "vermagic", "--null"],
        &["-F", "parm", "-0"],
        &["-F", "no_such_field"],
        &["-a"],
        &["-d"],
        &["-l"],
        &["-p"],
        &["-n"],
    ];
    let mut problems = Vec::new();
    // Built-in names are also aliases of loadable modules (crc32), which kmod resolves first
    // and gvtg deliberately does not (see `gvtg::kmod::depmod`): name them with -m.
    for (what, names, by_name) in [
        ("module files", &files, false),
        ("built-ins", &builtins, true),
    ] {
        for mode in modes {
            let mut args = vec!["-k", rel.as_str()];
            if by_name {
                args.push("-m");
            }
            args.extend_from_slice(mode);
            args.extend(names.iter().copied());
            // kmod prints nothing for a field no module has, and exits 0; so must we.
            let label = format!("{what}, {}", mode.join(" "));
            if mode.contains(&"no_such_field") {
                let (out, _, code) = run_gvtg_modinfo(&args);
                if !out.is_empty() || code != Some(0) {
                    problems.push(format!(
                        "[{label}] printed {} bytes, exit {code:?}",
                        out.len()
                    ));
                }
                continue;
            }
            problems.extend(same_as_kmod(&label, &args, by_name));
        }
    }
    fail_on(problems);
}

/// Paths, a name kmod cannot find among found ones (exit 1, the others still printed), and a
/// path that does not exist: the same stdout and exit code as kmod's.
#[test]
fn paths_and_missing_modules_match_kmod() {
    let rel = release();
    let index = ModuleIndex::load(Path::new("/"), &rel).expect("load index");
    let path_of = |n: &str| match index.locate_module(n) {
        Some(Located::File { path, .. }) => path.to_string_lossy().into_owned(),
        other => panic!("{n}: {other:?}"),
    };
    let (i915, kvmgt) = (path_of("i915"), path_of("kvmgt"));
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("two paths", vec![i915.as_str(), kvmgt.as_str()]),
        ("path -F filename", vec!["-F", "filename", i915.as_str()]),
        ("name and path -0", vec!["-0", "kvm", kvmgt.as_str()]),
        (
            "missing in the middle",
            vec!["kvm", "no_such_module_x", "kvmgt"],
        ),
        ("only missing", vec!["no_such_module_x"]),
        (
            "missing -F",
            vec!["-F", "license", "no_such_module_x", "i915"],
        ),
    ];
    let mut problems = Vec::new();
    for (label, names) in cases {
        let mut args = vec!["-k", rel.as_str()];
        args.extend(names);
        if let Some(p) = same_as_kmod(label, &args, false) {
            problems.push(p);
        }
    }
    // A missing module is named on stderr.
    let (_, stderr, code) = run_gvtg_modinfo(&["-k", &rel, "kvm", "no_such_module_x"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no_such_module_x"), "{stderr}");
    fail_on(problems);
}
