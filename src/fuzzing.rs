//! One entry point per parser for the fuzz targets in `fuzz/` (cargo-fuzz, `scripts/fuzz`) and
//! for `tests/fuzz_regressions.rs`, which replays every input a fuzzer ever crashed on
//! (`testdata/fuzz-regressions/TARGET/`). Each function feeds arbitrary bytes to a parser and
//! asserts the properties that must hold for any input; a panic here is a bug in the parser (or
//! in the property). Not part of the supported API.

use crate::kmod::modinfo as kmodinfo;

/// Every target, as named in `fuzz/Cargo.toml` and `testdata/fuzz-regressions/`.
pub const TARGETS: &[&str] = &[
    "cpuinfo",
    "cmdline",
    "grub",
    "modprobe",
    "qemu_conf",
    "kconfig",
    "kmsg",
    "mdev_desc",
    "proc_modules",
    "domain_xml",
    "os_release",
    "sidefile",
    "modinfo",
    "report_archive",
];

/// Runs target `name` on `data`; false when no target has that name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "cpuinfo" => cpuinfo(data),
        "cmdline" => cmdline(data),
        "grub" => grub(data),
        "modprobe" => modprobe(data),
        "qemu_conf" => qemu_conf(data),
        "kconfig" => kconfig(data),
        "kmsg" => kmsg(data),
        "mdev_desc" => mdev_desc(data),
        "proc_modules" => proc_modules(data),
        "domain_xml" => domain_xml(data),
        "os_release" => os_release(data),
        "sidefile" => sidefile(data),
        "modinfo" => modinfo(data),
        "report_archive" => report_archive(data),
        _ => return false,
    }
    true
}

/// /proc/cpuinfo: any text parses; flags never contain whitespace.
pub fn cpuinfo(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let c = crate::parse::cpuinfo::parse(&text);
    if let Some(flags) = &c.flags {
        for f in flags {
            assert!(
                !f.is_empty() && !f.chars().any(char::is_whitespace),
                "flag {f:?}"
            );
        }
    }
    let _ = (c.is_intel(), c.has_flag("vmx"));
}

/// /proc/cmdline and GRUB-style command lines: any text parses; normalising a key is idempotent.
pub fn cmdline(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let c = crate::parse::cmdline::parse(&text);
    for p in &c.params {
        let n = crate::parse::cmdline::normalize(&p.key);
        assert_eq!(crate::parse::cmdline::normalize(&n), n);
    }
    let _ = crate::parse::cmdline::split_args(&text);
    let _ = crate::parse::cmdline::suspicious(&c);
    let _ = c.module_param("i915", "enable_gvt");
    let _ = c.last_value("intel_iommu");
}

/// /etc/default/grub (shell assignments): any text parses; line numbers point into the input.
pub fn grub(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let g = crate::parse::grub::parse(&text);
    for a in &g.assignments {
        assert!(a.line >= 1 && a.line <= lines, "line {} of {lines}", a.line);
    }
    let cmdline = g.kernel_cmdline();
    let _ = crate::parse::cmdline::parse(&cmdline);
    let _ = g.misnamed_cmdline_vars();
}

/// modprobe.d files (kmod's libkmod-config.c rules): any text parses; line numbers point into
/// the input; merging and lookups never panic.
pub fn modprobe(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let f = crate::parse::modprobe::parse(&text);
    for e in &f.entries {
        assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
    }
    for p in &f.problems {
        assert!(
            p.line >= 1 && p.line <= lines,
            "problem line {} of {lines}",
            p.line
        );
    }
    let merged = crate::parse::modprobe::merge_order(vec![(
        "etc/modprobe.d".to_string(),
        "fuzz.conf".to_string(),
        text.into_owned(),
    )]);
    let _ = crate::parse::modprobe::option_value(&merged, "i915", "enable_gvt");
    let _ = crate::parse::modprobe::is_blacklisted(&merged, "kvmgt");
}

/// libvirt's qemu.conf (virConf rules): any text parses or gives a located error; locations
/// and entry lines point into the input.
pub fn qemu_conf(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    match crate::parse::qemu_conf::parse(&text) {
        Ok(c) => {
            for e in &c.entries {
                assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
                let _ = (c.get_str(&e.name), c.get_int(&e.name), c.get_list(&e.name));
            }
            let _ = c.duplicates();
        }
        Err(e) => {
            assert!(
                e.line >= 1 && e.line <= lines,
                "error line {} of {lines}",
                e.line
            );
            assert!(!e.message.is_empty());
        }
    }
}

/// Kernel build configuration (`boot/config-REL`): any text parses; line numbers point into the
/// input.
pub fn kconfig(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let k = crate::parse::kconfig::parse(&text);
    for (name, (_, line)) in &k.values {
        assert!(
            *line >= 1 && *line <= lines,
            "{name}: line {line} of {lines}"
        );
        let _ = k.enabled(name);
    }
}

/// Kernel log records (`/dev/kmsg` records, dmesg or journalctl text): any bytes parse; line
/// numbers point into the input.
pub fn kmsg(data: &[u8]) {
    let lines = data.split(|&b| b == b'\n').count();
    let all = crate::parse::kmsg::parse(data);
    for r in &all {
        assert!(r.line >= 1 && r.line <= lines, "line {} of {lines}", r.line);
        if let Some(l) = r.level {
            assert!(l <= 7, "level {l}");
        }
    }
    // The doctor's filtered scan (whole, and read in pieces) finds the same records holding a
    // term and the same count as the full parse.
    let Some(filter) = crate::checks::log_filter() else {
        return;
    };
    let terms = crate::checks::log_terms();
    let holds = |r: &&crate::parse::kmsg::Record| terms.iter().any(|t| r.text.contains(t));
    let want: Vec<&crate::parse::kmsg::Record> = all.iter().filter(holds).collect();
    let (total, kept) = crate::parse::kmsg::parse_filtered(data, filter);
    assert_eq!(total, all.len(), "record count");
    assert_eq!(kept.iter().filter(holds).collect::<Vec<_>>(), want);
    let mut piecewise = Trickle(data);
    let read = crate::parse::kmsg::parse_filtered_read(&mut piecewise, filter, 1 << 30);
    assert_eq!(read.ok(), Some((total, kept)), "read in pieces");
}

/// A reader handing out its bytes 7 at a time (so a log is scanned in many pieces).
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        let (head, rest) = self.0.split_at(n);
        buf.get_mut(..n).unwrap_or_default().copy_from_slice(head);
        self.0 = rest;
        Ok(n)
    }
}

/// An mdev type's `description` sysfs file (i915's "low_gm_size: 64MB\n..."): any text parses
/// or is refused.
pub fn mdev_desc(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::parse::mdev_desc::parse(&text);
}

/// /proc/modules: any text parses; module names are single non-empty tokens.
pub fn proc_modules(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mods = crate::parse::proc_modules::parse(&text);
    for m in &mods {
        assert!(
            !m.name.is_empty() && !m.name.chars().any(char::is_whitespace),
            "{:?}",
            m.name
        );
        let _ = crate::parse::proc_modules::find(&mods, &m.name);
    }
}

const UUID: &str = "4b20d080-1b54-4048-85b3-a6a62d165c01";

/// libvirt domain XML: the safety gate (no DTD/entities), the preflight `Domain` model, and
/// adding a `<hostdev>`: the result of an edit must itself parse.
pub fn domain_xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::preflight::Domain::parse(text);
    if crate::parse::domain_xml::parse(text).is_ok() {
        if let Ok(edited) = crate::parse::domain_xml::add_hostdev(text, UUID, true) {
            if let Err(e) = crate::parse::domain_xml::parse(&edited.xml) {
                panic!("edited domain does not parse: {e}\n{}", edited.xml);
            }
        }
    }
}

/// /etc/os-release and a PCI `resource` file: any text parses; keys are shell variable names.
pub fn os_release(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for k in crate::host::snapshot::parse_os_release(&text).keys() {
        assert!(
            k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "key {k:?}"
        );
    }
    let _ = crate::host::snapshot::parse_resource(&text);
}

/// The captured tree's side file (`gvtg-tree.toml`): any text parses or gives an error; an
/// accepted file never declares a path that leaves the tree.
pub fn sidefile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(s) = crate::host::sidefile::SideFile::parse(&text) {
        for (path, _) in s.nodes_under("") {
            assert!(
                !path.starts_with('/') && !path.split('/').any(|c| c == ".."),
                "{path:?}"
            );
        }
        if let Some(k) = &s.kernel_log {
            assert!(
                !k.starts_with('/') && !k.split('/').any(|c| c == ".."),
                "{k:?}"
            );
        }
        for name in s.children("") {
            assert!(!name.is_empty() && !name.contains('/'));
            let _ = s.is_dir(&name);
        }
    }
}

/// A kernel module file: decompression (xz, zstd, gzip, by magic bytes, capped) and the ELF
/// `.modinfo` reader. A module never yields more fields than its section has NUL-separated
/// strings, and a stand-in built from any section reads back the same section.
pub fn modinfo(data: &[u8]) {
    let _ = kmodinfo::compression_of(data);
    let _ = kmodinfo::signature_present(data);
    let _ = kmodinfo::signature_tail(data);
    // The appended signature: present exactly when the trailer checks pass, and the
    // pread-style reader (headers, `.modinfo`, trailer, signature region) agrees with
    // the whole-image reader.
    let sig = kmodinfo::signature_info(data);
    assert_eq!(sig.is_some(), kmodinfo::signature_present(data));
    if let Ok((_, at)) = kmodinfo::modinfo_fields_at(&mut &data[..], data.len() as u64) {
        assert_eq!(at, sig, "pread reader and whole-image reader disagree");
    }
    // The PKCS#7 decoder on the raw bytes, as if they were a signature blob.
    if let Ok(sig_len) = u32::try_from(data.len()) {
        let modsig = crate::kmod::signature::ModuleSignature {
            algo: 1,
            hash: 4,
            id_type: 2,
            signer_len: 0,
            key_id_len: 0,
            sig_len,
        };
        if let Ok(s) = crate::kmod::signature::decode(&modsig, data) {
            assert!(s.signature.len() <= data.len() && s.key_id.len() <= data.len());
        }
    }
    if let Ok(elf) = kmodinfo::decompress("fuzz.ko", data) {
        if let Ok(section) = kmodinfo::modinfo_section(&elf) {
            let records = section.split(|&b| b == 0).filter(|s| !s.is_empty()).count();
            let fields = kmodinfo::modinfo_fields(&elf).expect("section found, fields must read");
            assert!(
                fields.len() <= records,
                "{} fields from {records} records",
                fields.len()
            );
        }
        let _ = crate::report::elf::stand_in("fuzz.ko", data);
    }
    // The raw input as a `.modinfo` section: the stand-in ELF must give it back.
    let elf = crate::report::elf::modinfo_elf(data);
    assert_eq!(
        kmodinfo::modinfo_section(&elf).expect("stand-in readable"),
        data
    );
}

/// A report archive (`gvtg doctor --from FILE`): any bytes unpack or give an error, and nothing
/// is ever written outside the extraction directory.
pub fn report_archive(data: &[u8]) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("r.tar.gz");
    std::fs::write(&file, data).expect("write input");
    let dest = tmp.path().join("out");
    std::fs::create_dir(&dest).expect("mkdir");
    let res = crate::report::archive::unpack(&file, &dest);
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["out", "r.tar.gz"],
        "unpack wrote beside its destination"
    );
    if let Ok(root) = res {
        let canon = root.canonicalize().expect("root exists");
        assert!(canon.starts_with(dest.canonicalize().expect("dest")));
        // The replay reads the whole tree and judges it, as `doctor --from` does: that must not
        // panic on whatever the archive held.
        if let Ok(host) = crate::host::root::HostRoot::at(&root) {
            let snapshot = crate::host::Snapshot::collect(&host);
            let sel = crate::checks::Selection {
                passthrough: true,
                ..Default::default()
            };
            let results = crate::checks::run(&snapshot, &sel);
            assert!(!results.is_empty());
        }
    }
}
