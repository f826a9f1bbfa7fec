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
