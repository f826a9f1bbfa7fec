//! `gvtg --root DIR passthrough bind|unbind …` as users and scripts meet it, on fake sysfs trees:
//! exit codes (0 done, 1 a write failed and was put back, 2 usage, 3 refused), the dry-run
//! lines, the JSON document, and the files the writes land in. Nothing in a plain directory
//! acts like the kernel, so a tree is never verified (tests/real_kernel_passthrough.rs does that
//! on a real kernel).

mod common;

use std::path::Path;
use std::process::Output;

use common::gvtg;
use serde_json::Value;

const GPU: &str = "0000:01:00.0";
const AUDIO: &str = "0000:01:00.1";
const NIC: &str = "0000:00:19.0";

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn link(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&p);
    std::os::unix::fs::symlink(target, p).unwrap();
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

/// A PCI function with its driver (dir + `unbind`), `driver_override` = "(null)" and group.
fn dev(root: &Path, addr: &str, id: (u16, u16), class: u32, driver: Option<&str>, group: u32) {
    let b = format!("sys/bus/pci/devices/{addr}");
    write(root, &format!("{b}/vendor"), &format!("0x{:04x}\n", id.0));
    write(root, &format!("{b}/device"), &format!("0x{:04x}\n", id.1));
    write(root, &format!("{b}/class"), &format!("0x{class:06x}\n"));
    write(root, &format!("{b}/driver_override"), "(null)\n");
    if let Some(d) = driver {
        write(root, &format!("sys/bus/pci/drivers/{d}/unbind"), "");
        link(root, &format!("{b}/driver"), &format!("../../drivers/{d}"));
    }
    link(
        root,
        &format!("{b}/iommu_group"),
        &format!("../../../../kernel/iommu_groups/{group}"),
    );
    write(
        root,
        &format!("sys/kernel/iommu_groups/{group}/devices/{addr}"),
        "",
    );
}

/// A GPU with HDMI audio behind a root port (group 1), the only NIC (group 2), vfio-pci loaded.
fn host() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    dev(
        r,
        "0000:00:01.0",
        (0x8086, 0x1901),
        0x060400,
        Some("pcieport"),
        1,
    );
    dev(r, GPU, (0x10de, 0x1b80), 0x030000, Some("nouveau"), 1);
    dev(
        r,
        AUDIO,
        (0x10de, 0x10f0),
        0x040300,
        Some("snd_hda_intel"),
        1,
    );
    dev(r, NIC, (0x8086, 0x15b8), 0x020000, Some("e1000e"), 2);
    write(r, "sys/bus/pci/drivers_probe", "");
    write(r, "sys/bus/pci/drivers/vfio-pci/unbind", "");
    write(r, "proc/mounts", "/dev/nvme0n1p2 / ext4 rw 0 0\n");
    d
}

#[test]
fn dry_run_prints_the_writes_and_writes_nothing() {
    let d = host();
    let o = gvtg(d.path(), &["passthrough", "bind", "01:00.0", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let text = out(&o);
    let want = format!(
        "Dry run: nothing is written. The writes, in order:\n\
         echo vfio-pci > /sys/bus/pci/devices/{GPU}/driver_override\n\
         echo {GPU} > /sys/bus/pci/devices/{GPU}/driver/unbind\n\
         echo {GPU} > /sys/bus/pci/drivers_probe\n\
         echo vfio-pci > /sys/bus/pci/devices/{AUDIO}/driver_override\n\
         echo {AUDIO} > /sys/bus/pci/devices/{AUDIO}/driver/unbind\n\
         echo {AUDIO} > /sys/bus/pci/drivers_probe\n"
    );
    assert!(text.ends_with(&want), "{text}");
    assert!(
        text.contains(&format!(
            "{AUDIO} (10de:10f0 NVIDIA audio device, snd_hda_intel)  [sibling function]"
        )),
        "{text}"
    );
    assert!(text.contains("left alone: 0000:00:01.0"), "{text}");
    assert!(
        text.contains("note: not the live system: a captured tree at"),
        "{text}"
    );
    assert_eq!(
        read(
            d.path(),
            &format!("sys/bus/pci/devices/{GPU}/driver_override")
        ),
        "(null)\n"
    );
    assert_eq!(read(d.path(), "sys/bus/pci/drivers_probe"), "");
}

#[test]
fn bind_in_a_tree_writes_its_files_and_says_it_is_not_verified() {
    let d = host();
    let o = gvtg(d.path(), &["passthrough", "bind", "10de:1b80"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(
        text.contains(&format!(
            "{GPU}: written (3 writes; captured tree, not verified)"
        )),
        "{text}"
    );
    assert_eq!(
        read(
            d.path(),
            &format!("sys/bus/pci/devices/{AUDIO}/driver_override")
        ),
        "vfio-pci"
    );
    assert_eq!(read(d.path(), "sys/bus/pci/drivers/nouveau/unbind"), GPU);
    assert_eq!(
        read(d.path(), "sys/bus/pci/drivers/snd_hda_intel/unbind"),
        AUDIO
    );
    assert_eq!(read(d.path(), "sys/bus/pci/drivers_probe"), AUDIO);
}

#[test]
fn json_says_what_was_done() {
    let d = host();
    let o = gvtg(d.path(), &["passthrough", "bind", GPU, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["action"], "bind");
    assert_eq!(j["result"], "done");
    assert_eq!(j["live"], false);
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["named"], serde_json::json!([GPU]));
    let devs = j["devices"].as_array().unwrap();
    assert_eq!(devs.len(), 2);
    assert_eq!(devs[1]["address"], AUDIO);
    assert_eq!(devs[1]["role"], "sibling");
    assert_eq!(devs[1]["driver_before"], "snd_hda_intel");
    assert_eq!(devs[1]["written"], true);
    assert_eq!(devs[1]["verified"], Value::Null);
    assert_eq!(
        devs[0]["writes"][0],
        serde_json::json!({"path": format!("/sys/bus/pci/devices/{GPU}/driver_override"), "value": "vfio-pci"})
    );
    assert_eq!(j["groups"][0]["node"], "/dev/vfio/1");
    assert_eq!(j["skipped"][0]["address"], "0000:00:01.0");
    assert_eq!(j["refusals"], serde_json::json!([]));
}

#[test]
fn the_only_nic_is_refused_with_exit_3_and_force_overrides_it() {
    let d = host();
    let o = gvtg(d.path(), &["passthrough", "bind", NIC]);
    assert_eq!(o.status.code(), Some(3), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(text.contains("refused (only-nic): 0000:00:19.0 (8086:15b8 Intel network controller, e1000e) is the host's only network controller"), "{text}");
    assert!(text.contains("(--force overrides this)"), "{text}");
    assert!(text.ends_with("Nothing was written.\n"), "{text}");
    assert_eq!(read(d.path(), "sys/bus/pci/drivers_probe"), "");

    let o = gvtg(d.path(), &["passthrough", "bind", NIC, "--json"]);
    assert_eq!(o.status.code(), Some(3));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["result"], "refused");
    assert_eq!(j["refusals"][0]["kind"], "only-nic");
    assert_eq!(j["refusals"][0]["overridable"], true);
    assert_eq!(j["refusals"][0]["overridden"], false);

    let o = gvtg(d.path(), &["passthrough", "bind", NIC, "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(out(&o).contains("WARNING (--force, only-nic)"));
    assert_eq!(read(d.path(), "sys/bus/pci/drivers_probe"), NIC);
}

#[test]
fn iommu_off_is_refused_even_with_force() {
    let d = host();
    std::fs::remove_dir_all(d.path().join("sys/kernel/iommu_groups")).unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["passthrough", "bind", GPU];
        args.extend_from_slice(extra);
        let o = gvtg(d.path(), &args);
        assert_eq!(o.status.code(), Some(3), "{}{}", out(&o), err(&o));
        let text = out(&o);
        assert!(
            text.contains("refused (iommu-off): the IOMMU is off"),
            "{text}"
        );
        assert!(text.contains("(--force does not override this)"), "{text}");
        assert!(text.contains("no-IOMMU mode"), "{text}");
    }
}

#[test]
fn the_root_disk_controller_is_refused_even_with_force() {
    let d = host();
    let r = d.path();
    dev(
        r,
        "0000:02:00.0",
        (0x144d, 0xa808),
        0x010802,
        Some("nvme"),
        3,
    );
    link(
        r,
        "sys/class/block/nvme0n1p2",
        "../../devices/pci0000:00/0000:00:1d.0/0000:02:00.0/nvme/nvme0/nvme0n1/nvme0n1p2",
    );
    let o = gvtg(r, &["passthrough", "bind", "02:00.0", "--force", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}{}", out(&o), err(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["refusals"][0]["kind"], "root-disk");
    assert_eq!(j["refusals"][0]["overridable"], false);
    let msg = j["refusals"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("holding the root filesystem (/dev/nvme0n1p2"),
        "{msg}"
    );
}

#[test]
fn a_failed_write_exits_1_and_puts_back_what_it_changed() {
    let d = host();
    // drivers_probe as a directory: the third write fails after two went through.
    std::fs::remove_file(d.path().join("sys/bus/pci/drivers_probe")).unwrap();
    std::fs::create_dir(d.path().join("sys/bus/pci/drivers_probe")).unwrap();
    let o = gvtg(d.path(), &["passthrough", "bind", GPU, "--device-only"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let text = out(&o);
    assert!(
        text.contains(&format!("error: echo {GPU} > /sys/bus/pci/drivers_probe:")),
        "{text}"
    );
    assert!(text.contains(&format!("put back: {GPU}")), "{text}");
    assert!(
        text.contains("IOMMU group 1 is not viable while 0000:01:00.1"),
        "--device-only explains the group: {text}"
    );
    assert_eq!(
        read(
            d.path(),
            &format!("sys/bus/pci/devices/{GPU}/driver_override")
        ),
        "\n",
        "the override is cleared again"
    );
}

#[test]
fn unbind_clears_the_override() {
    let d = host();
    let r = d.path();
    link(
        r,
        &format!("sys/bus/pci/devices/{GPU}/driver"),
        "../../drivers/vfio-pci",
    );
    write(
        r,
        &format!("sys/bus/pci/devices/{GPU}/driver_override"),
        "vfio-pci\n",
    );
    let o = gvtg(r, &["passthrough", "unbind", GPU, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).ends_with(&format!(
            "echo {GPU} > /sys/bus/pci/devices/{GPU}/driver/unbind\n\
         echo > /sys/bus/pci/devices/{GPU}/driver_override\n\
         echo {GPU} > /sys/bus/pci/drivers_probe\n"
        )),
        "{}",
        out(&o)
    );
    let o = gvtg(r, &["passthrough", "unbind", GPU, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["action"], "unbind");
    assert_eq!(j["devices"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(read(r, "sys/bus/pci/drivers/vfio-pci/unbind"), GPU);
    assert_eq!(
        read(r, &format!("sys/bus/pci/devices/{GPU}/driver_override")),
        "\n"
    );
    // The audio function was never on vfio-pci: nothing to give back.
    let o = gvtg(r, &["passthrough", "unbind", AUDIO, "--device-only"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("Nothing to unbind"), "{}", out(&o));
}

#[test]
fn usage_errors_exit_2() {
    let d = host();
    let o = gvtg(d.path(), &["passthrough", "bind", "05:00.0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("no PCI function '05:00.0'"), "{}", err(&o));
    assert!(
        err(&o).contains("candidates: 0000:01:00.0 (10de:1b80"),
        "{}",
        err(&o)
    );
    let o = gvtg(d.path(), &["passthrough", "bind"]);
    assert_eq!(o.status.code(), Some(2));
    let o = gvtg(d.path(), &["passthrough", "unbind", GPU, "--force"]);
    assert_eq!(o.status.code(), Some(2), "unbind has no --force");
}
