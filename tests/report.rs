//! `gvtg report` and `gvtg doctor --from`: a report replays to the same verdicts, carries no
//! planted secret when redacting, holds module stand-ins modinfo reads like the originals, and
//! hostile archives are refused.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str], root: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gvtg"));
    if let Some(r) = root {
        c.arg("--root").arg(r);
    }
    c.args(args)
        .arg("--color")
        .arg("never")
        .env_remove("GVTG_ROOT")
        .env_remove("NO_COLOR")
        .output()
        .expect("running gvtg")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join("root")
}

fn report(root: &Path, out: &Path, extra: &[&str]) -> Output {
    let o = out.to_string_lossy().into_owned();
    let mut args = vec!["report", "-o", &o];
    args.extend_from_slice(extra);
    let r = run(&args, Some(root));
    assert!(r.status.success(), "report failed: {}", common::text(&r));
    r
}

/// Every member of a .tar.gz, decompressed: (path, bytes).
fn members(file: &Path) -> Vec<(String, Vec<u8>)> {
    let f = std::fs::File::open(file).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        out.push((p, b));
    }
    out
}

#[test]
fn reports_from_every_fixture_replay_to_the_same_verdicts() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(&fixtures).unwrap() {
        let dir = e.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('_') || !dir.is_dir() {
            continue;
        }
        n += 1;
        let tgz = tmp.path().join(format!("{name}.tar.gz"));
        report(&dir.join("root"), &tgz, &[]);
        // Fixtures that opt into extra doctor arguments (`--passthrough …`) replay with them
        // too: the report must carry what those checks read.
        let extra: Vec<String> = std::fs::read_to_string(dir.join("args"))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut live_args = vec!["doctor".to_string(), "--json".to_string()];
        live_args.extend(extra.iter().cloned());
        let live_refs: Vec<&str> = live_args.iter().map(String::as_str).collect();
        let live = run(&live_refs, Some(&dir.join("root")));
        let tgz_s = tgz.to_string_lossy().into_owned();
        let mut from_args = live_refs.clone();
        from_args.extend(["--from", tgz_s.as_str()]);
        let from = run(&from_args, None);
        assert!(from.stderr.is_empty(), "{name}: {}", common::text(&from));
        assert_eq!(live.status.code(), from.status.code(), "{name}: exit codes");
        let a: serde_json::Value = serde_json::from_slice(&live.stdout).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&from.stdout).unwrap();
        for (ca, cb) in a["checks"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["checks"].as_array().unwrap())
        {
            assert_eq!(
                (&ca["id"], &ca["status"], &ca["summary"]),
                (&cb["id"], &cb["status"], &cb["summary"]),
                "{name}"
            );
        }
        // Fixtures hold no secrets, so even the evidence and host facts are the same.
        assert_eq!(a, b, "{name}: JSON differs");
        // The archive's doctor.json is what --from computes.
        if !extra.is_empty() {
            continue;
        }
        let m = members(&tgz);
        let doc = &m
            .iter()
            .find(|(p, _)| p.ends_with("gvtg-report/doctor.json"))
            .unwrap()
            .1;
        assert_eq!(doc, &from.stdout, "{name}: doctor.json in the archive");
        let manifest: serde_json::Value = serde_json::from_slice(
            &m.iter()
                .find(|(p, _)| p.ends_with("gvtg-report/manifest.json"))
                .unwrap()
                .1,
        )
        .unwrap();
        assert_eq!(manifest["redaction"]["enabled"], true);
        for f in manifest["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let (_, bytes) = m
                .iter()
                .find(|(p, _)| p.split_once('/').map(|x| x.1) == Some(path))
                .unwrap_or_else(|| panic!("{name}: {path} listed but absent"));
            assert_eq!(f["size"], bytes.len() as u64);
        }
    }
    assert!(n >= 13);
}

const PLANTED: &[&str] = &[
    "zorkhost",
    "secretcorp-internal.example",
    "203.0.113.77",
    "2a01:4f8:c17:1a2b::99",
    "3c:22:fb:12:34:56",
    "SNPLANTED4455",
    "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "alicezork",
    "Alice Plantedname",
    "PlantedPass1",
    "PLANTEDSECRETVALUE",
    "PlantedUser",
    "7d1c5e2a-secret-uuid",
];

fn plant(root: &Path) {
    let w = |rel: &str, s: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    };
    let append = |rel: &str, s: &str| {
        let p = root.join(rel);
        let mut t = std::fs::read_to_string(&p).unwrap_or_default();
        t.push_str(s);
        std::fs::write(p, t).unwrap();
    };
    w("etc/hostname", "zorkhost.secretcorp-internal.example\n");
    w("proc/sys/kernel/hostname", "zorkhost\n");
    w("etc/machine-id", "0f1e2d3c4b5a69788796a5b4c3d2e1f0\n");
    append(
        "dev/kmsg",
        "6,900,99000000,-;e1000e 0000:00:19.0 eth0: (PCI Express:2.5GT/s:Width x1) 3c:22:fb:12:34:56\n\
         6,901,99000001,-;IPv6: ADDRCONF eth0 2a01:4f8:c17:1a2b::99 via 203.0.113.77 for zorkhost.secretcorp-internal.example\n\
         6,902,99000002,-;usb 1-1: SerialNumber: SNPLANTED4455\n\
         6,903,99000003,-;systemd[1]: machine-id 0f1e2d3c4b5a69788796a5b4c3d2e1f0 on zorkhost\n",
    );
    append(
        "etc/passwd",
        "alicezork:x:1000:1000:Alice Plantedname,,,:/home/alicezork:/bin/bash\n",
    );
    append("etc/group", "alicezork:x:1000:\nkvm2:x:998:alicezork\n");
    append(
        "etc/default/grub",
        "# set by alicezork from /home/alicezork/grub.txt, nfs 203.0.113.77\n",
    );
    append(
        "etc/modprobe.d/kvm.conf",
        "# zorkhost.secretcorp-internal.example\n",
    );
    w(
        "etc/libvirt/qemu/win10.xml",
        "<domain type='kvm'>\n  <name>win10</name>\n  <devices>\n\
         <graphics type='vnc' port='-1' passwd='PlantedPass1' listen='203.0.113.77'/>\n\
         <disk type='network'><source protocol='rbd' name='pool/img'><host name='zorkhost.secretcorp-internal.example'/>\
         <auth username='PlantedUser'><secret type='ceph' uuid='7d1c5e2a-secret-uuid'/></auth></source>\
         <serial>SNPLANTED4455</serial></disk>\n\
         <interface type='bridge'><mac address='3c:22:fb:12:34:56'/></interface>\n\
         <hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='f3b9c1d2-6a4e-4c1b-9e07-2d5a8b3c7e41'/></source></hostdev>\n\
         <disk type='file'><source file='/home/alicezork/win10.qcow2'/></disk>\n\
         </devices>\n</domain>\n",
    );
    w(
        "etc/libvirt/secrets/x.xml",
        "<secret><usage>PLANTEDSECRETVALUE</usage></secret>\n",
    );
    w(
        "etc/libvirt/qemu/plain.xml",
        "<domain><name>plain</name><secret>PLANTEDSECRETVALUE</secret></domain>\n",
    );
}

#[test]
fn redaction_removes_every_planted_secret() {
    let d = common::copy_fixture("bdw-healthy");
    plant(d.path());
    let before = run(&["doctor", "--json"], Some(d.path()));
    let tmp = tempfile::tempdir().unwrap();
    let tgz = tmp.path().join("r.tar.gz");
    report(d.path(), &tgz, &[]);
    let m = members(&tgz);
    assert!(m
        .iter()
        .any(|(p, _)| p.ends_with("etc/libvirt/qemu/win10.xml")));
    assert!(!m.iter().any(|(p, _)| p.ends_with("plain.xml")));
    for (path, bytes) in &m {
        let text = String::from_utf8_lossy(bytes).to_lowercase();
        for s in PLANTED {
            assert!(
                !text.contains(&s.to_lowercase())
                    && !path.to_lowercase().contains(&s.to_lowercase()),
                "{s:?} found in {path}"
            );
        }
    }
    // The verdicts are unchanged by redaction.
    let from = run(
        &["doctor", "--json", "--from", &tgz.to_string_lossy()],
        None,
    );
    let a: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&from.stdout).unwrap();
    let st = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().into(),
                    c["status"].as_str().unwrap().into(),
                    c["summary"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(st(&a), st(&b));
    // Consistent tokens: the same host name maps to the same token everywhere.
    let kmsg = &m
        .iter()
        .find(|(p, _)| p.ends_with("root/dev/kmsg"))
        .unwrap()
        .1;
    let kmsg = String::from_utf8_lossy(kmsg);
    assert!(
        kmsg.contains("host-1.domain-1.invalid") && kmsg.contains("on host-1"),
        "{kmsg}"
    );

    // --no-redact keeps them, and says so.
    let raw = tmp.path().join("raw.tar.gz");
    let o = report(d.path(), &raw, &["--no-redact"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("keeps host and domain names"));
    let m = members(&raw);
    let all: String = m
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(all.contains("zorkhost") && all.contains("PlantedPass1"));
    let manifest = &m
        .iter()
        .find(|(p, _)| p.ends_with("manifest.json"))
        .unwrap()
        .1;
    let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    assert_eq!(manifest["redaction"]["enabled"], false);
    assert!(manifest["redaction"]["kept"]
        .as_str()
        .unwrap()
        .contains("user names"));
}

#[test]
fn module_stand_ins_give_the_same_modinfo() {
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for fx in ["bdw-healthy", "rkl-f-no-igpu"] {
        let root = fixture(fx);
        let tgz = tmp.path().join(format!("{fx}.tar.gz"));
        report(&root, &tgz, &[]);
        let dest = tmp.path().join(fx);
        std::fs::create_dir_all(&dest).unwrap();
        let st = Command::new("tar")
            .arg("xzf")
            .arg(&tgz)
            .arg("-C")
            .arg(&dest)
            .status()
            .unwrap();
        assert!(st.success());
        let top = std::fs::read_dir(&dest)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        for (p, _) in members(&tgz) {
            if !p.contains(".ko") {
                continue;
            }
            let rel = p.split_once("/root/").unwrap().1;
            let modinfo = |f: &Path| {
                let o = run(&["modinfo", &f.to_string_lossy()], None);
                assert!(o.status.success(), "{}", common::text(&o));
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| !l.starts_with("filename:"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let orig = root.join(rel);
            let small = top.join("root").join(rel);
            assert_eq!(modinfo(&orig), modinfo(&small), "{rel}");
            assert!(
                std::fs::metadata(&small).unwrap().len() < 64 * 1024,
                "{rel}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} modules checked");
}

#[test]
fn markdown_summary() {
    let o = run(
        &["report", "--markdown"],
        Some(&fixture("skl-no-enable-gvt")),
    );
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("| gvtg |") && s.contains("**FAIL**") && s.contains("<details>"),
        "{s}"
    );
    assert!(s.contains("</details>"));
}

/// Writes a .tar.gz with one raw member (name bytes written directly, bypassing tar's checks).
fn hostile(path: &Path, name: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut dir = tar::Header::new_old();
    dir.as_old_mut().name[..15].copy_from_slice(b"gvtg-report-x/\0");
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_size(0);
    dir.set_mode(0o755);
    dir.set_cksum();
    b.append(&dir, std::io::empty()).unwrap();
    let mut h = tar::Header::new_old();
    let n = name.as_bytes();
    h.as_old_mut().name[..n.len()].copy_from_slice(n);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data).unwrap();
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn hostile_archives_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, tar::EntryType, Option<&str>, &str)] = &[
        (
            "gvtg-report-x/../../evil",
            tar::EntryType::Regular,
            None,
            "leaves",
        ),
        ("/tmp/evil-abs", tar::EntryType::Regular, None, "leaves"),
        (
            "gvtg-report-x/root/l",
            tar::EntryType::Symlink,
            Some("../../../../etc"),
            "outside",
        ),
        (
            "gvtg-report-x/root/l",
            tar::EntryType::Symlink,
            Some("/etc"),
            "outside",
        ),
        (
            "gvtg-report-x/root/h",
            tar::EntryType::Link,
            Some("/etc/passwd"),
            "hard link",
        ),
        (
            "gvtg-report-x/root/dev/kvm",
            tar::EntryType::Char,
            None,
            "Char",
        ),
        ("gvtg-report-x/root/p", tar::EntryType::Fifo, None, "Fifo"),
    ];
    for (i, (name, kind, link, want)) in cases.iter().enumerate() {
        let f = tmp.path().join(format!("{i}.tar.gz"));
        hostile(&f, name, *kind, *link, b"");
        let o = run(&["doctor", "--from", &f.to_string_lossy()], None);
        assert!(!o.status.success(), "{name}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{name}: {err}");
    }
    assert!(!tmp.path().join("evil").exists());
    // A decompression bomb: 40 MiB of zeros in one member (compresses ~1000:1).
    let f = tmp.path().join("bomb.tar.gz");
    hostile(
        &f,
        "gvtg-report-x/root/z",
        tar::EntryType::Regular,
        None,
        &vec![0u8; 30 * 1024 * 1024],
    );
    let o = run(&["doctor", "--from", &f.to_string_lossy()], None);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ratio"),
        "{}",
        common::text(&o)
    );
    // Too big for one member.
    let f = tmp.path().join("big.tar.gz");
    hostile(
        &f,
        "gvtg-report-x/root/z",
        tar::EntryType::Regular,
        None,
        &vec![7u8; 33 * 1024 * 1024],
    );
    let o = run(&["doctor", "--from", &f.to_string_lossy()], None);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("larger than"),
        "{}",
        common::text(&o)
    );
    // --from and --root together.
    let o = run(
        &["doctor", "--from", "x.tar.gz"],
        Some(&fixture("bdw-healthy")),
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used together"));
}

#[test]
fn from_report_script_makes_a_fixture_the_hosts_test_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let tgz = tmp.path().join("r.tar.gz");
    report(&fixture("kbl-enable-guc-3"), &tgz, &[]);
    let fixtures = tmp.path().join("fixtures");
    std::fs::create_dir_all(&fixtures).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/_gen/from-report.sh");
    let o = Command::new("sh")
        .arg(&script)
        .arg(&tgz)
        .arg("imported-host")
        .env("GVTG", env!("CARGO_BIN_EXE_gvtg"))
        .env("FIXTURES", &fixtures)
        .env_remove("GVTG_ROOT")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let f = fixtures.join("imported-host");
    // What tests/hosts.rs checks for every fixture host.
    let root = f.join("root");
    let readme = std::fs::read_to_string(f.join("README.md")).unwrap();
    let text = run(&["doctor", "-v"], Some(&root));
    let json = run(&["doctor", "--json"], Some(&root));
    assert!(text.stderr.is_empty() && json.stderr.is_empty());
    assert_eq!(text.status.code(), json.status.code());
    assert_eq!(
        std::fs::read(f.join("expected/doctor.txt")).unwrap(),
        text.stdout
    );
    assert_eq!(
        std::fs::read(f.join("expected/doctor.json")).unwrap(),
        json.stdout
    );
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["checks"].as_array().unwrap().len(), 14);
    let expects: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expect:"))
        .collect();
    assert_eq!(expects.len(), 14, "{readme}");
    for line in expects {
        let mut it = line.split_whitespace();
        let (id, status) = (it.next().unwrap(), it.next().unwrap());
        let got = doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap();
        assert_eq!(got["status"], status, "{id}");
    }
    // And it is the same host: the original fixture's blessed output matches.
    let orig = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kbl-enable-guc-3/expected");
    assert_eq!(
        std::fs::read(orig.join("doctor.json")).unwrap(),
        json.stdout
    );
    assert_eq!(std::fs::read(orig.join("doctor.txt")).unwrap(), text.stdout);
    // No empty directories (git could not hold them).
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let entries: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert!(!entries.is_empty(), "{} is empty", d.display());
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    assert!(readme.contains("redaction: on"));
    // A second import under the same name is refused.
    let o = Command::new("sh")
        .arg(&script)
        .arg(&tgz)
        .arg("imported-host")
        .env("GVTG", env!("CARGO_BIN_EXE_gvtg"))
        .env("FIXTURES", &fixtures)
        .output()
        .unwrap();
    assert!(!o.status.success());
}

#[test]
fn default_name_is_in_the_current_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gvtg"))
        .arg("--root")
        .arg(fixture("amd-host"))
        .arg("report")
        .current_dir(tmp.path())
        .env_remove("GVTG_ROOT")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let re = regex::Regex::new(r"^gvtg-report-host-1-\d{8}-\d{6}\.tar\.gz$").unwrap();
    assert!(names.len() == 1 && re.is_match(&names[0]), "{names:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains(&names[0]));
    // --root on the unpacked tree works as --from does.
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&names[0])
        .current_dir(tmp.path())
        .status()
        .unwrap();
    assert!(st.success());
    let top = tmp.path().join(names[0].trim_end_matches(".tar.gz"));
    let a = run(&["doctor", "--json"], Some(&top.join("root")));
    let b = run(
        &[
            "doctor",
            "--json",
            "--from",
            &tmp.path().join(&names[0]).to_string_lossy(),
        ],
        None,
    );
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(
        std::fs::read(top.join("gvtg-report/doctor.json")).unwrap(),
        a.stdout
    );
}

/// On a machine with a real kernel's modules (Debian's are signed), the stand-in of each module
/// the doctor inspects prints exactly what kmod's own `modinfo` prints for the original, signature
/// lines included, apart from `filename:`. Skipped when there is no such kernel or no modinfo.
#[test]
fn real_module_stand_ins_agree_with_kmod() {
    let Ok(kmod) = which_modinfo() else {
        eprintln!("skipped: no kmod modinfo");
        return;
    };
    let Some((dir, rels)) = real_modules() else {
        eprintln!("skipped: no /lib/modules/*/modules.dep with i915.ko");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for rel in rels {
        let orig = dir.join(&rel);
        let bytes = std::fs::read(&orig).unwrap();
        let small = gvtg::report::elf::stand_in(&rel, &bytes).unwrap();
        assert!(
            small.len() < bytes.len() / 10 || bytes.len() < 64 * 1024,
            "{rel}"
        );
        let file = tmp.path().join(rel.rsplit('/').next().unwrap());
        std::fs::write(&file, &small).unwrap();
        let out = |p: &Path| {
            let o = Command::new(&kmod).arg(p).output().unwrap();
            assert!(o.status.success(), "{}", common::text(&o));
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.starts_with("filename:"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(out(&orig), out(&file), "{rel}");
        // gvtg's own modinfo of the stand-in prints the same, signature lines included.
        let ours = gvtg::kmod::modinfo_file(&file).unwrap();
        assert!(
            ours.signature.is_some(),
            "{rel}: {:?}",
            ours.signature_error
        );
        let ours = ours
            .render_kmod_style()
            .lines()
            .filter(|l| !l.starts_with("filename:"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(out(&orig), ours, "{rel}");
    }
}

fn which_modinfo() -> Result<PathBuf, ()> {
    ["/usr/sbin/modinfo", "/sbin/modinfo", "/usr/bin/modinfo"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(())
}

fn real_modules() -> Option<(PathBuf, Vec<String>)> {
    let mut releases: Vec<PathBuf> = std::fs::read_dir("/lib/modules")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    releases.sort();
    for dir in releases {
        let Ok(dep) = std::fs::read_to_string(dir.join("modules.dep")) else {
            continue;
        };
        let rels: Vec<String> = dep
            .lines()
            .filter_map(|l| l.split_once(':').map(|x| x.0.to_string()))
            .filter(|p| {
                let stem = p
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .split('.')
                    .next()
                    .unwrap_or("");
                [
                    "i915",
                    "kvmgt",
                    "kvm",
                    "kvm-intel",
                    "vfio",
                    "mdev",
                    "vfio-pci",
                ]
                .contains(&stem)
            })
            .filter(|p| dir.join(p).is_file())
            .collect();
        if rels.iter().any(|p| p.contains("i915.ko")) {
            return Some((dir, rels));
        }
    }
    None
}

#[test]
fn a_fifo_in_the_tree_does_not_hang_the_report_and_markdown_with_output_writes_both() {
    let d = common::copy_fixture("skl-no-enable-gvt");
    let fifo = d.path().join("etc/modprobe.d/zz-fifo.conf");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let tmp = tempfile::tempdir().unwrap();
    let tgz = tmp.path().join("r.tar.gz");
    let start = std::time::Instant::now();
    let o = run(
        &["report", "--markdown", "-o", &tgz.to_string_lossy()],
        Some(d.path()),
    );
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(start.elapsed().as_secs() < 30);
    assert!(String::from_utf8_lossy(&o.stdout).contains("<details>"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrote"));
    assert!(!members(&tgz)
        .iter()
        .any(|(p, _)| p.ends_with("zz-fifo.conf")));
}
