//! `gvtg preflight` on a copy of the bdw-healthy fixture: exit codes, text, JSON, hostile XML.

mod common;
use common::{copy_fixture, gvtg, text};

const UUID: &str = "f3b9c1d2-6a4e-4c1b-9e07-2d5a8b3c7e41";
const MISSING: &str = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";

fn domain(name: &str, uuid: &str) -> String {
    format!(
        "<domain type='kvm'>\n  <name>{name}</name>\n  <memory unit='GiB'>4</memory>\n  <devices>\n    <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci' display='off'>\n      <source>\n        <address uuid='{uuid}'/>\n      </source>\n    </hostdev>\n  </devices>\n</domain>\n"
    )
}

fn put(root: &std::path::Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn existing_vgpu_starts_missing_one_does_not() {
    let t = copy_fixture("bdw-healthy");
    put(t.path(), "etc/libvirt/qemu/good.xml", &domain("good", UUID));
    put(
        t.path(),
        "etc/libvirt/qemu/bad.xml",
        &domain("bad", MISSING),
    );
    let ok = gvtg(t.path(), &["preflight", "--domain", "good", "-v"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let out = text(&ok);
    assert!(out.contains("domain good"), "{out}");
    assert!(out.contains("i915-GVTg_V4_4"), "{out}");
    assert!(out.contains("/dev/vfio/0"), "{out}");
    assert!(out.contains("the domain can start"), "{out}");

    let bad = gvtg(t.path(), &["preflight", "--domain", "bad"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let out = text(&bad);
    assert!(out.contains(&format!("{MISSING} does not exist")), "{out}");
    assert!(
        out.contains(&format!("gvtg vgpu create TYPE --uuid {MISSING} --persist")),
        "{out}"
    );
    assert!(out.contains("the domain will not start"), "{out}");

    // The same XML given as a file.
    let f = t.path().join("etc/libvirt/qemu/bad.xml");
    let o = gvtg(t.path(), &["preflight", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn autostart_definition_is_a_warning() {
    let t = copy_fixture("bdw-healthy");
    put(t.path(), "etc/libvirt/qemu/vm.xml", &domain("vm", MISSING));
    put(
        t.path(),
        &format!("etc/mdevctl.d/0000:00:02.0/{MISSING}"),
        "{\"mdev_type\": \"i915-GVTg_V4_4\", \"start\": \"auto\", \"attrs\": []}\n",
    );
    let o = gvtg(t.path(), &["preflight", "--domain", "vm"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("will be created at boot, not now"));
}

#[test]
fn json_has_schema_domain_and_checks() {
    let t = copy_fixture("bdw-healthy");
    put(
        t.path(),
        "etc/libvirt/qemu/bad.xml",
        &domain("bad", MISSING),
    );
    let o = gvtg(t.path(), &["preflight", "--domain", "bad", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["domain"], "bad");
    assert_eq!(v["startable"], false);
    assert_eq!(v["summary"]["exit_code"], 1);
    let checks = v["checks"].as_array().unwrap();
    let uuid = checks.iter().find(|c| c["id"] == "vgpu.uuid").unwrap();
    assert_eq!(uuid["status"], "fail");
    assert!(uuid["remedy"]
        .as_str()
        .unwrap()
        .contains("gvtg vgpu create"));
    assert!(uuid["evidence"].is_array());
}

#[test]
fn libvirt_version_flag_judges_set_lines() {
    let t = copy_fixture("bdw-healthy");
    let xml = format!(
        "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>s</name><devices><hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='{UUID}'/></source></hostdev></devices><qemu:commandline><qemu:arg value='-set'/><qemu:arg value='device.hostdev0.x-igd-opregion=on'/></qemu:commandline></domain>"
    );
    put(t.path(), "etc/libvirt/qemu/s.xml", &xml);
    let old = gvtg(
        t.path(),
        &["preflight", "--domain", "s", "--libvirt-version", "7.0.0"],
    );
    assert_eq!(old.status.code(), Some(0), "{}", text(&old));
    let new = gvtg(
        t.path(),
        &["preflight", "--domain", "s", "--libvirt-version", "8.5.0"],
    );
    assert_eq!(new.status.code(), Some(1), "{}", text(&new));
    assert!(text(&new).contains("<qemu:property name='x-igd-opregion' type='bool' value='true'/>"));
    // Unknown in a captured tree: a warning that says why, exit 0.
    let unk = gvtg(t.path(), &["preflight", "--domain", "s"]);
    assert_eq!(unk.status.code(), Some(0));
    assert!(text(&unk).contains("libvirt version unknown (a captured tree"));
}

#[test]
fn hostile_xml_is_an_error_not_a_hang() {
    let t = copy_fixture("bdw-healthy");
    let bomb = "<?xml version='1.0'?>\n<!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>]>\n<domain><name>&lol2;</name></domain>\n";
    let deep = format!(
        "<domain>{}{}</domain>",
        "<x>".repeat(50_000),
        "</x>".repeat(50_000)
    );
    for (i, x) in [bomb.to_string(), deep, "<domain><name>".into()]
        .iter()
        .enumerate()
    {
        let f = t.path().join(format!("hostile{i}.xml"));
        std::fs::write(&f, x).unwrap();
        let o = gvtg(t.path(), &["preflight", f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("domain.xml  ERROR"), "{}", text(&o));
    }
}

#[test]
fn usage_errors_exit_2() {
    let t = copy_fixture("bdw-healthy");
    for args in [
        vec!["preflight"],
        vec!["preflight", "--domain", "../../etc/passwd"],
        vec!["preflight", "--domain", "nosuchvm"],
        vec!["preflight", "/nonexistent/domain.xml"],
        vec!["preflight", "--domain", "x", "--libvirt-version", "eight"],
    ] {
        let o = gvtg(t.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
    }
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn hook_install_and_remove_respect_existing_hooks() {
    // No hooks at all: hooks/qemu is ours.
    let t = copy_fixture("bdw-healthy");
    let single = t.path().join("etc/libvirt/hooks/qemu");
    let o = gvtg(t.path(), &["preflight", "--install-hook"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let script = std::fs::read_to_string(&single).unwrap();
    assert!(script.starts_with("#!/bin/sh\n# gvtg-preflight hook"));
    assert!(script.contains("preflight --run-hook \"$1\""));
    assert_eq!(mode(&single), 0o755);
    let again = gvtg(t.path(), &["preflight", "--install-hook"]);
    assert!(text(&again).contains("already installed"));
    let rm = gvtg(t.path(), &["preflight", "--remove-hook"]);
    assert_eq!(rm.status.code(), Some(0));
    assert!(!single.exists());

    // The qemu.d layout: a drop-in, the foreign hooks/qemu untouched.
    let t = copy_fixture("bdw-healthy");
    put(
        t.path(),
        "etc/libvirt/hooks/qemu",
        "#!/bin/sh\n# someone else's\n",
    );
    std::fs::create_dir_all(t.path().join("etc/libvirt/hooks/qemu.d")).unwrap();
    let o = gvtg(t.path(), &["preflight", "--install-hook"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let dropin = t.path().join("etc/libvirt/hooks/qemu.d/gvtg-preflight");
    assert!(std::fs::read_to_string(&dropin)
        .unwrap()
        .contains("gvtg-preflight hook"));
    let rm = gvtg(t.path(), &["preflight", "--remove-hook"]);
    assert_eq!(rm.status.code(), Some(0));
    assert!(!dropin.exists());
    assert_eq!(
        std::fs::read_to_string(t.path().join("etc/libvirt/hooks/qemu")).unwrap(),
        "#!/bin/sh\n# someone else's\n"
    );

    // A foreign hooks/qemu and no qemu.d: refused with instructions, nothing written.
    let t = copy_fixture("bdw-healthy");
    put(t.path(), "etc/libvirt/hooks/qemu", "#!/bin/sh\nexit 0\n");
    let o = gvtg(t.path(), &["preflight", "--install-hook"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is not overwritten"), "{}", text(&o));
    assert!(text(&o).contains("qemu.d"));
    assert_eq!(
        std::fs::read_to_string(t.path().join("etc/libvirt/hooks/qemu")).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert!(!t.path().join("etc/libvirt/hooks/qemu.d").exists());
    let rm = gvtg(t.path(), &["preflight", "--remove-hook"]);
    assert!(text(&rm).contains("no gvtg preflight hook installed"));
}

fn run_hook(root: &std::path::Path, name: &str, xml: &str) -> std::process::Output {
    use std::io::Write;
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_gvtg"))
        .args(["preflight", "--run-hook", name, "--root"])
        .arg(root)
        .env_remove("GVTG_ROOT")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

#[test]
fn hook_creates_auto_start_vgpus_and_refuses_unstartable_domains() {
    let t = copy_fixture("bdw-healthy");
    put(
        t.path(),
        &format!("etc/mdevctl.d/0000:00:02.0/{MISSING}"),
        "{\"mdev_type\": \"i915-GVTg_V4_4\", \"start\": \"auto\", \"attrs\": []}\n",
    );
    let o = run_hook(t.path(), "vm", &domain("vm", MISSING));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let create = t
        .path()
        .join("sys/class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V4_4/create");
    assert_eq!(std::fs::read_to_string(create).unwrap().trim(), MISSING);

    // No definition: nothing created, the start is refused with the reason on stderr.
    let other = "11111111-2222-4333-8444-555555555555";
    let o = run_hook(t.path(), "vm2", &domain("vm2", other));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("vgpu.uuid") && err.contains(other), "{err}");
}

/// The passthrough fixture's GTX 1080 (and its audio function) as a managed hostdev with a ROM
/// file under `dir` with `file_mode`.
fn passthrough_domain(root: &std::path::Path, file_mode: &str) {
    put(
        root,
        "etc/libvirt/qemu/gpu.xml",
        "<domain type='kvm'>\n  <name>gpu</name>\n  <memory unit='GiB'>8</memory>\n  <devices>\n    <hostdev mode='subsystem' type='pci' managed='yes'>\n      <source><address domain='0x0000' bus='0x0a' slot='0x00' function='0x0'/></source>\n      <rom file='/var/lib/libvirt/vbios/gtx1080.rom'/>\n    </hostdev>\n    <hostdev mode='subsystem' type='pci' managed='yes'>\n      <source><address domain='0x0000' bus='0x0a' slot='0x00' function='0x1'/></source>\n    </hostdev>\n  </devices>\n</domain>\n",
    );
    put(root, "var/lib/libvirt/vbios/gtx1080.rom", "rom");
    let side = std::fs::read_to_string(root.join("gvtg-tree.toml")).unwrap();
    let mut nodes = String::new();
    for d in ["var", "var/lib", "var/lib/libvirt", "var/lib/libvirt/vbios"] {
        nodes.push_str(&format!(
            "\n[[node]]\npath = \"{d}\"\nkind = \"dir\"\nmode = \"0755\"\nuid = 0\ngid = 0\n"
        ));
    }
    nodes.push_str(&format!(
        "\n[[node]]\npath = \"var/lib/libvirt/vbios/gtx1080.rom\"\nkind = \"file\"\nmode = \"{file_mode}\"\nuid = 0\ngid = 0\n"
    ));
    put(root, "gvtg-tree.toml", &format!("{side}{nodes}"));
}

#[test]
fn pci_hostdev_uses_the_passthrough_checks_and_the_rom_must_be_readable() {
    let t = copy_fixture("amd-nvidia-vfio-passthrough");
    passthrough_domain(t.path(), "0644");
    let o = gvtg(t.path(), &["preflight", "--domain", "gpu", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let get = |id: &str| {
        doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {doc}"))
            .clone()
    };
    let pci = get("pci.hostdev");
    assert_eq!(pci["status"], "pass", "{pci}");
    let summary = pci["summary"].as_str().unwrap();
    // Group 5 holds the two functions, both hostdevs; the kernel resets them by bus reset.
    assert!(
        summary.contains("0000:0a:00.0, bound to vfio-pci, IOMMU group 5 viable, reset bus"),
        "{summary}"
    );
    let rom = get("hostdev.rom");
    assert_eq!(rom["status"], "pass", "{rom}");
    assert!(
        rom["summary"]
            .as_str()
            .unwrap()
            .contains("readable by libvirt-qemu"),
        "{rom}"
    );

    // The ROM root-only: QEMU (libvirt-qemu) cannot read it, so the domain cannot start.
    let t = copy_fixture("amd-nvidia-vfio-passthrough");
    passthrough_domain(t.path(), "0600");
    let o = gvtg(t.path(), &["preflight", "--domain", "gpu"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("/var/lib/libvirt/vbios/gtx1080.rom exists but libvirt-qemu cannot read it"),
        "{out}"
    );
}
