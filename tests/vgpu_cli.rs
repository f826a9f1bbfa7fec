//! `gvtg --root DIR vgpu …` as users and scripts meet it, on fake sysfs trees built the way
//! mdevctl's tests build them: a `create` regular file receives the UUID, and nothing turns it
//! into a device, so a tree root is never waited on.

mod common;

use std::path::Path;

use common::gvtg;

const U: &str = "a297db4a-f4c2-11e6-90f6-d3b88d6c9525";
const TYPES: &str = "sys/class/mdev_bus/mtty/mdev_supported_types";

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn mtty_tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (t, n, name) in [
        ("mtty-1", 24, "Single port serial"),
        ("mtty-2", 0, "Dual port serial"),
    ] {
        write(
            d.path(),
            &format!("{TYPES}/{t}/available_instances"),
            &format!("{n}\n"),
        );
        write(d.path(), &format!("{TYPES}/{t}/name"), &format!("{name}\n"));
        write(d.path(), &format!("{TYPES}/{t}/device_api"), "vfio-pci\n");
        write(d.path(), &format!("{TYPES}/{t}/create"), "");
    }
    d
}

#[test]
fn create_in_a_tree_writes_create_and_does_not_wait() {
    let d = mtty_tree();
    let o = gvtg(d.path(), &["vgpu", "create", "mtty-1", "--uuid", U]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(&format!("written {U}")));
    assert_eq!(
        std::fs::read_to_string(d.path().join(format!("{TYPES}/mtty-1/create"))).unwrap(),
        U
    );
}

#[test]
fn errors_exit_2_and_say_why() {
    let d = mtty_tree();
    let err = |args: &[&str]| {
        let o = gvtg(d.path(), args);
        assert_eq!(o.status.code(), Some(2));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(err(&["vgpu", "create", "mtty-2", "--uuid", U]).contains("available_instances is 0"));
    assert!(err(&["vgpu", "create", "../mtty-1", "--uuid", U]).contains("not an mdev type name"));
    assert!(err(&["vgpu", "create", "mtty-3"])
        .contains("the kernel lists: mtty-1 (mtty), mtty-2 (mtty)"));
    assert!(err(&["vgpu", "create", "mtty-1", "--parent", ".."]).contains("not an mdev parent"));
    assert!(err(&["vgpu", "remove", U]).contains("no such mdev"));
    assert_eq!(
        std::fs::read_to_string(d.path().join(format!("{TYPES}/mtty-1/create"))).unwrap(),
        ""
    );
}

#[test]
fn types_text_and_json() {
    let d = mtty_tree();
    let o = gvtg(d.path(), &["vgpu", "types"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("mtty-1") && text.contains("available  24"),
        "{text}"
    );
    let o = gvtg(d.path(), &["vgpu", "types", "--json", "--parent", "mtty"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["parents"][0]["types"][1]["name"], "Dual port serial");
    let empty = tempfile::tempdir().unwrap();
    let o = gvtg(empty.path(), &["vgpu", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"schema_version": 1, "mdevs": []}));
}

#[test]
fn xml_and_qemu_args() {
    let d = tempfile::tempdir().unwrap();
    let o = gvtg(d.path(), &["vgpu", "xml", U, "--display"]);
    let x = String::from_utf8_lossy(&o.stdout);
    assert!(x.contains("display='on' ramfb='on'") && x.contains(&format!("uuid='{U}'")));
    let o = gvtg(d.path(), &["vgpu", "qemu-args", U]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("-device\nvfio-pci,sysfsdev=/sys/bus/mdev/devices/{U}\n")
    );
    let o = gvtg(d.path(), &["vgpu", "xml", "nope"]);
    assert_eq!(o.status.code(), Some(2));
}
