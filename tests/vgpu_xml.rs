//! `gvtg vgpu xml --domain` on real-world domain XMLs, checked by libvirt's own schema
//! (`virt-xml-validate FILE domain`, Debian package libvirt-clients, which runs xmllint from
//! libxml2-utils). Fails, never skips, when the validator is missing.
//!
//! Samples that validate as published must still validate with the vGPU added; samples that do
//! not (placeholders such as `RAM_KiB`, a newer `<cpu>` than libvirt 9.0 knows) must gain no
//! new schema error.

use std::path::{Path, PathBuf};
use std::process::Command;

const U: &str = "a297db4a-f4c2-11e6-90f6-d3b88d6c9525";

fn validator() -> PathBuf {
    for d in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(d).join("virt-xml-validate");
        if p.exists() {
            let xmllint = Path::new(d).join("xmllint");
            assert!(
                xmllint.exists() || Path::new("/usr/bin/xmllint").exists(),
                "virt-xml-validate needs xmllint: apt-get install -y libxml2-utils"
            );
            return p;
        }
    }
    panic!("virt-xml-validate not found: apt-get install -y libvirt-clients libxml2-utils")
}

/// The sample without its first `<!-- source -->` line.
fn sample(dir: &Path, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/real-world/libvirt")
            .join(name),
    )
    .unwrap();
    let body = text.split_once('\n').map_or("", |(_, b)| b);
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Schema errors of a file, without file names and line numbers.
fn validate(file: &Path) -> (bool, Vec<String>) {
    let o = Command::new(validator())
        .arg(file)
        .arg("domain")
        .output()
        .expect("running virt-xml-validate");
    let errs = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains("error"))
        .map(|l| {
            let l = l.rsplit_once(": Relax-NG").map_or(l, |(_, r)| r);
            l.to_string()
        })
        .collect();
    (o.status.success(), errs)
}

fn add(domain: &Path, display: bool, out: &Path) -> String {
    let mut args = vec!["vgpu", "xml", U, "--domain", domain.to_str().unwrap()];
    if display {
        args.push("--display");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_gvtg"))
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(out, &o.stdout).unwrap();
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn edited_real_domains_validate() {
    let dir = tempfile::tempdir().unwrap();
    for (name, valid_before) in [
        ("bung69-fedora35-gvtg-working-domain.xml", true),
        ("radxa-x4-windows_11-sriov-vf-hostdev-pci.xml", false),
        ("gpd-win2-gvt-win-template.xml", false),
        (
            "phyllomeos-annotated-domain-qemu-set-hostdev0-without-hostdev.xml",
            false,
        ),
    ] {
        let input = sample(dir.path(), name);
        let (ok_before, errs_before) = validate(&input);
        assert_eq!(ok_before, valid_before, "{name} before: {errs_before:?}");
        for display in [false, true] {
            let out = dir.path().join(format!("out-{display}-{name}"));
            let xml = add(&input, display, &out);
            assert!(xml.contains(&format!("<address uuid='{U}'/>")), "{name}");
            let (ok, errs) = validate(&out);
            if valid_before {
                assert!(ok, "{name} display={display}: {errs:?}\n{xml}");
            } else {
                let new: Vec<_> = errs.iter().filter(|e| !errs_before.contains(e)).collect();
                assert!(
                    new.is_empty(),
                    "{name} display={display}: new errors {new:?}"
                );
            }
        }
    }
}

#[test]
fn minimal_domain_with_display_validates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("mini.xml");
    std::fs::write(
        &d,
        "<domain type='kvm'>\n  <name>vgpu</name>\n  <memory unit='KiB'>1048576</memory>\n  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n  </os>\n  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n  </devices>\n</domain>\n",
    )
    .unwrap();
    let out = dir.path().join("out.xml");
    let xml = add(&d, true, &out);
    assert!(xml.contains("xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"));
    assert!(xml.contains("<gl enable='yes'/>"));
    let (ok, errs) = validate(&out);
    assert!(ok, "{errs:?}\n{xml}");
}
