//! `gvtg fix` on fixture trees copied to a temp dir: the plan (dry run changes nothing), the
//! applied result per distribution and boot loader, idempotence (a second `--yes` changes
//! nothing), the doctor on the fixed tree, and `--undo` (identical to the start, byte for byte,
//! modes included).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

mod common;
use common::*;

/// Path → (mode, bytes).
type Tree = BTreeMap<String, (u32, Vec<u8>)>;

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap()
}

fn write(root: &Path, rel: &str, s: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, s).unwrap();
}

/// Dry run, apply, apply again, doctor, undo. Returns (dry-run output, apply output, the fixed
/// tree, the doctor's JSON on the fixed tree).
fn roundtrip(root: &Path) -> (String, String, Tree, serde_json::Value) {
    roundtrip_with(root, &[])
}

/// [`roundtrip`] with extra arguments for `fix` and the doctor (`--passthrough 10de:1b80`).
fn roundtrip_with(root: &Path, extra: &[&str]) -> (String, String, Tree, serde_json::Value) {
    let with = |base: &[&'static str]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let run = |base: &[&'static str]| {
        let v = with(base);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        gvtg(root, &v)
    };
    let orig = tree(root);
    let dry = run(&["fix"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert_same(&tree(root), &orig, "the dry run changed the tree");
    let dry = text(&dry);
    assert!(dry.contains("Dry run: nothing was changed"), "{dry}");

    let a = run(&["fix", "--yes"]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    let fixed = tree(root);

    let again = run(&["fix", "--yes"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("Nothing to change."),
        "{}",
        text(&again)
    );
    assert_same(&tree(root), &fixed, "a second --yes changed something");

    let doc = run(&["doctor", "--json"]);
    let doctor: serde_json::Value = serde_json::from_slice(&doc.stdout).unwrap();

    let u = gvtg(root, &["fix", "--undo"]);
    assert_eq!(u.status.code(), Some(0), "{}", text(&u));
    let after = tree(root);
    for (k, v) in &orig {
        assert_eq!(after.get(k), Some(v), "{k} differs after undo");
    }
    assert_eq!(
        after.len(),
        orig.len(),
        "undo left extra paths: {:?}",
        after
            .keys()
            .filter(|k| !orig.contains_key(*k))
            .collect::<Vec<_>>()
    );
    assert!(
        !root.join("var/lib/gvtg/journal").exists(),
        "undo must clear the journal"
    );
    let u2 = gvtg(root, &["fix", "--undo"]);
    assert!(text(&u2).contains("Nothing to undo"));
    (dry, text(&a), fixed, doctor)
}

fn status(doctor: &serde_json::Value, id: &str) -> String {
    doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .map(|r| r["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {id} in {doctor}"))
}

fn file(t: &Tree, rel: &str) -> String {
    String::from_utf8(
        t.get(rel)
            .unwrap_or_else(|| panic!("{rel} missing"))
            .1
            .clone(),
    )
    .unwrap()
}

#[test]
fn debian_grub_fixes_the_real_mistakes() {
    let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    let r = d.path();
    fs::set_permissions(
        r.join("etc/libvirt/qemu.conf"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let grub0 = read(r, "etc/default/grub");
    let qemu0 = read(r, "etc/libvirt/qemu.conf");
    let (dry, applied, fixed, doctor) = roundtrip(r);
    assert!(
        dry.contains("--- a/etc/default/grub\n+++ b/etc/default/grub\n"),
        "{dry}"
    );
    assert!(
        dry.contains(
            "-i915.enable_gvt=1\n\\ No newline at end of file\n+options i915 enable_gvt=1"
        ),
        "{dry}"
    );
    assert!(
        applied.contains("would run (not on a captured tree): update-grub"),
        "{applied}"
    );
    assert!(
        applied.contains("would run (not on a captured tree): update-initramfs -u"),
        "{applied}"
    );
    assert!(!applied.contains("grub-mkconfig"));

    // GRUB: the misnamed variable is merged into GRUB_CMDLINE_LINUX_DEFAULT; nothing else moves.
    let misnamed = "GRUB_CMDLINE_DEFAULT=\"quiet splash i915.enable_gvt=1 kvm.ignore_msrs=1 intel_iommu=igfx_off i915.enable_guc=0\"";
    let want = grub0
        .replace(
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"",
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash i915.enable_gvt=1 kvm.ignore_msrs=1 intel_iommu=igfx_off i915.enable_guc=0\"",
        )
        .replace(misnamed, &format!("# {misnamed} (merged into GRUB_CMDLINE_LINUX_DEFAULT by gvtg fix)"));
    assert_eq!(file(&fixed, "etc/default/grub"), want);
    // modprobe.d: the one line converted.
    assert_eq!(
        file(&fixed, "etc/modprobe.d/i915.conf"),
        "options i915 enable_gvt=1"
    );
    // qemu.conf: only the first list grows; removing the insertion gives the original back.
    let q = file(&fixed, "etc/libvirt/qemu.conf");
    let ins = ",\n    \"/dev/full\",\n    \"/dev/zero\",\n    \"/dev/random\",\n    \"/dev/urandom\",\n    \"/dev/ptmx\",\n    \"/dev/kvm\",\n    \"/dev/userfaultfd\"";
    assert_eq!(q.matches(ins).count(), 1);
    assert_eq!(q.replacen(ins, "", 1), qemu0);
    assert_eq!(fixed["etc/libvirt/qemu.conf"].0, 0o600, "mode kept");
    // Already configured to load at boot: no second modules-load.d file.
    assert!(!fixed.contains_key("etc/modules-load.d/gvtg.conf"));
    // The doctor on the fixed tree.
    assert_eq!(status(&doctor, "libvirt.qemu-conf"), "pass");
    assert_eq!(
        status(&doctor, "i915.enable-gvt"),
        "warn",
        "configured for the next boot"
    );
    let gvt = doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "i915.enable-gvt")
        .unwrap()
        .to_string();
    assert!(!gvt.contains("ignores this line"), "{gvt}");
    assert!(!gvt.contains("GRUB_CMDLINE_DEFAULT is never used"), "{gvt}");
    assert!(!fixed.contains_key("etc/udev/rules.d/60-gvtg-vfio.rules"));
}

#[test]
fn fedora_grubby_and_dracut() {
    let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    let r = d.path();
    write(
        r,
        "etc/os-release",
        "NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=41\nPRETTY_NAME=\"Fedora Linux 41\"\n",
    );
    fs::remove_file(r.join("etc/modules-load.d/gvt.conf")).unwrap();
    let p = r.join("proc/modules");
    let m: String = read(r, "proc/modules")
        .lines()
        .filter(|l| !l.starts_with("kvmgt "))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(p, m).unwrap();
    let (_, applied, fixed, doctor) = roundtrip(r);
    assert_eq!(
        status(&doctor, "i915.enable-gvt"),
        "warn",
        "configured for the next boot"
    );
    assert!(applied.contains("would run (not on a captured tree): grubby --update-kernel=ALL --args=i915.enable_gvt=1"), "{applied}");
    assert!(!applied.contains("update-grub"), "{applied}");
    assert!(!applied.contains("grub2-mkconfig"), "{applied}");
    assert!(
        applied.contains("would run (not on a captured tree): dracut -f"),
        "{applied}"
    );
    assert!(file(&fixed, "etc/default/grub")
        .contains("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash i915.enable_gvt=1"));
    assert_eq!(file(&fixed, "etc/modules-load.d/gvtg.conf"), "kvmgt\n");
    assert_eq!(
        file(&fixed, "etc/dracut.conf.d/gvtg.conf"),
        "add_drivers+=\" kvmgt \"\n"
    );
    assert_eq!(fixed["etc/dracut.conf.d/"].0, 0o755);
}

#[test]
fn arch_grub_and_mkinitcpio() {
    let d = copy_fixture("skl-no-enable-gvt");
    let r = d.path();
    let conf = "# vim:set ft=sh\nMODULES=(i915)\n\nBINARIES=()\nHOOKS=(base udev autodetect modconf block filesystems fsck)\n";
    write(r, "etc/mkinitcpio.conf", conf);
    fs::remove_file(r.join("etc/modules-load.d/kvmgt.conf")).unwrap();
    let m: String = read(r, "proc/modules")
        .lines()
        .filter(|l| !l.starts_with("kvmgt "))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(r.join("proc/modules"), m).unwrap();
    let grub0 = read(r, "etc/default/grub");
    let (_, applied, fixed, doctor) = roundtrip(r);
    assert_eq!(
        status(&doctor, "i915.enable-gvt"),
        "warn",
        "configured for the next boot"
    );
    assert!(
        applied
            .contains("would run (not on a captured tree): grub-mkconfig -o /boot/grub/grub.cfg"),
        "{applied}"
    );
    assert!(
        applied.contains("would run (not on a captured tree): mkinitcpio -P"),
        "{applied}"
    );
    assert_eq!(
        file(&fixed, "etc/mkinitcpio.conf"),
        conf.replace("MODULES=(i915)", "MODULES=(i915 kvmgt)")
    );
    let g = file(&fixed, "etc/default/grub");
    let changed: Vec<(&str, &str)> = grub0
        .lines()
        .zip(g.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(
        changed[0].1.starts_with("GRUB_CMDLINE_LINUX_DEFAULT=")
            && changed[0].1.ends_with(" i915.enable_gvt=1\""),
        "{changed:?}"
    );
    assert_eq!(grub0.lines().count(), g.lines().count());
}

#[test]
fn grub_d_override_is_named() {
    let d = copy_fixture("skl-no-enable-gvt");
    let r = d.path();
    write(
        r,
        "etc/default/grub.d/50-cloudimg-settings.cfg",
        "GRUB_CMDLINE_LINUX_DEFAULT=\"console=tty1 console=ttyS0\"\n",
    );
    let t = text(&gvtg(r, &["fix"]));
    assert!(
        t.contains(
            "/etc/default/grub.d/50-cloudimg-settings.cfg also sets GRUB_CMDLINE_LINUX_DEFAULT"
        ),
        "{t}"
    );
}

#[test]
fn systemd_boot_kernel_cmdline() {
    let d = copy_fixture("skl-no-enable-gvt");
    let r = d.path();
    fs::remove_file(r.join("etc/default/grub")).unwrap();
    write(r, "etc/kernel/cmdline", "root=UUID=0a1b rw quiet\n");
    let (_, applied, fixed, doctor) = roundtrip(r);
    assert_eq!(
        status(&doctor, "i915.enable-gvt"),
        "warn",
        "configured for the next boot"
    );
    assert_eq!(
        file(&fixed, "etc/kernel/cmdline"),
        "root=UUID=0a1b rw quiet i915.enable_gvt=1\n"
    );
    assert!(
        applied.contains("would run (not on a captured tree): kernel-install add "),
        "{applied}"
    );
    assert!(!applied.contains("grub"), "{applied}");
}

#[test]
fn proxmox_boot_tool() {
    let d = copy_fixture("skl-no-enable-gvt");
    let r = d.path();
    write(
        r,
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n",
    );
    fs::remove_file(r.join("etc/default/grub")).unwrap();
    write(
        r,
        "etc/kernel/cmdline",
        "root=ZFS=rpool/ROOT/pve-1 boot=zfs\n",
    );
    write(r, "usr/sbin/proxmox-boot-tool", "#!/bin/sh\n");
    let (_, applied, fixed, doctor) = roundtrip(r);
    assert_eq!(
        status(&doctor, "i915.enable-gvt"),
        "warn",
        "configured for the next boot"
    );
    assert_eq!(
        file(&fixed, "etc/kernel/cmdline"),
        "root=ZFS=rpool/ROOT/pve-1 boot=zfs i915.enable_gvt=1\n"
    );
    assert!(
        applied.contains("would run (not on a captured tree): proxmox-boot-tool refresh"),
        "{applied}"
    );
}

#[test]
fn kernelstub_and_guc_removal() {
    let d = copy_fixture("kbl-enable-guc-3");
    let r = d.path();
    let (_, applied, fixed, doctor) = roundtrip(r);
    assert_eq!(status(&doctor, "i915.enable-gvt"), "pass");
    assert!(file(&fixed, "etc/default/grub")
        .contains("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash i915.enable_gvt=1\"\n"));
    assert!(applied.contains("update-grub"), "{applied}");

    let d = copy_fixture("kbl-enable-guc-3");
    let r = d.path();
    write(
        r,
        "etc/kernelstub/configuration",
        "{\"user\": {\"kernel_options\": [\"quiet\", \"splash\", \"i915.enable_guc=3\"]}}\n",
    );
    let out = gvtg(r, &["fix", "--yes"]);
    let t = text(&out);
    assert!(
        t.contains("would run (not on a captured tree): kernelstub -d i915.enable_guc=3"),
        "{t}"
    );
    assert!(!t.contains("etc/default/grub"), "{t}");
    // Once kernelstub's configuration no longer has it, nothing is left to do.
    write(
        r,
        "etc/kernelstub/configuration",
        "{\"user\": {\"kernel_options\": [\"quiet\", \"splash\"]}}\n",
    );
    let t = text(&gvtg(r, &["fix", "--yes"]));
    assert!(!t.contains("kernelstub -d"), "{t}");
}

#[test]
fn guc_in_modprobe_d_is_removed_and_never_converted() {
    let d = copy_fixture("kbl-enable-guc-3");
    let r = d.path();
    write(
        r,
        "etc/modprobe.d/i915.conf",
        "# tuning\noptions i915 enable_guc=3 enable_fbc=1\n",
    );
    write(r, "etc/modprobe.d/guide.conf", "i915.enable_guc=3\n");
    let (_, applied, fixed, _) = roundtrip(r);
    assert_eq!(
        file(&fixed, "etc/modprobe.d/i915.conf"),
        "# tuning\noptions i915 enable_fbc=1\n"
    );
    assert_eq!(
        file(&fixed, "etc/modprobe.d/guide.conf"),
        "i915.enable_guc=3\n",
        "an ignored GuC line stays ignored"
    );
    assert!(applied.contains("update-initramfs -u"), "{applied}");
}

#[test]
fn nixos_prints_a_snippet_that_nix_parses() {
    let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    let r = d.path();
    write(
        r,
        "etc/os-release",
        "NAME=NixOS\nID=nixos\nPRETTY_NAME=\"NixOS 24.11 (Vicuna)\"\n",
    );
    write(r, "etc/NIXOS", "");
    fs::remove_file(r.join("etc/modules-load.d/gvt.conf")).unwrap();
    let orig = tree(r);
    let out = gvtg(r, &["fix", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_same(&tree(r), &orig, "NixOS: nothing is edited");
    let t = text(&out);
    let snip = snippet(&t, "# gvtg fix: Intel GVT-g");
    for want in [
        "virtualisation.kvmgt.enable = true;",
        "boot.kernelParams = [ \"i915.enable_gvt=1\" ];",
        "boot.extraModprobeConfig",
        "boot.kernelModules = [ \"kvmgt\" ];",
        "virtualisation.libvirtd.qemu.verbatimConfig",
        "\"/dev/vtcm15\",",
        "\"/dev/userfaultfd\",",
    ] {
        assert!(snip.contains(want), "{want} not in\n{snip}");
    }
    let parsed = nix_parse(d.path(), snip);
    assert!(parsed.contains("kvmgt = {"), "{parsed}");
    // Every option at once, a vGPU type included.
    let all = gvtg::fix::nixos::snippet(&gvtg::fix::nixos::Wants {
        gvt: true,
        params: true,
        modules: vec!["kvmgt".into(), "vfio_iommu_type1".into(), "mdev".into()],
        udev: true,
        acl: Some(vec!["/dev/null".into(), "/dev/kvm".into()]),
        vgpu: Some("i915-GVTg_V5_4".into()),
        ..Default::default()
    })
    .unwrap();
    let parsed = nix_parse(d.path(), &all);
    for want in [
        "vgpus = { i915-GVTg_V5_4 = { uuid = [",
        "extraRules = \"SUBSYSTEM==\\\"vfio\\\"",
        "kernelModules = [ (\"kvmgt\") (\"vfio_iommu_type1\") (\"mdev\") ]",
    ] {
        assert!(parsed.contains(want), "{want} not in {parsed}");
    }
}

/// `nix-instantiate --parse` (offline: a throwaway store and `--store dummy://`); fails, never
/// skips, when nix-instantiate is missing.
fn nix_parse(dir: &Path, snip: &str) -> String {
    let nixfile = dir.join("snippet.nix");
    fs::write(&nixfile, snip).unwrap();
    let store = tempfile::tempdir().unwrap();
    let p = Command::new("nix-instantiate")
        .args(["--parse", "--store", "dummy://"])
        .arg(&nixfile)
        .env("NIX_STORE_DIR", store.path().join("store"))
        .env("NIX_STATE_DIR", store.path().join("state"))
        .env("NIX_LOG_DIR", store.path().join("log"))
        .output()
        .expect("nix-instantiate is required (Debian: apt-get install nix-bin; scripts/test installs it)");
    assert!(
        p.status.success(),
        "nix-instantiate --parse failed:\n{}\n{snip}",
        String::from_utf8_lossy(&p.stderr)
    );
    String::from_utf8_lossy(&p.stdout).into_owned()
}

/// The NixOS snippet `gvtg fix` printed under `header` (from the header to the closing brace).
fn snippet<'a>(t: &'a str, header: &str) -> &'a str {
    let start = t.find(header).expect("snippet");
    let end = start + t[start..].find("\n}\n").expect("snippet end") + 3;
    &t[start..end]
}

#[test]
fn healthy_host_needs_nothing() {
    let d = copy_fixture("bdw-healthy");
    let out = gvtg(d.path(), &["fix", "--yes"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("Nothing to change."), "{}", text(&out));
    assert!(!d.path().join("var/lib/gvtg/journal").exists());
}

#[test]
fn a_failure_halfway_rolls_back() {
    let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    let r = d.path();
    let orig = tree(r);
    for step in ["after-backup", "after-temp-write", "after-rename"] {
        let out = Command::new(env!("CARGO_BIN_EXE_gvtg"))
            .args(["fix", "--yes", "--root"])
            .arg(r)
            .env("GVTG_FAILPOINT", step)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{step}: {}", text(&out));
        assert!(text(&out).contains("rolled back"), "{step}: {}", text(&out));
        let now = tree(r);
        let real: BTreeMap<_, _> = now
            .into_iter()
            .filter(|(k, _)| !k.contains(".gvtg-tmp-"))
            .collect();
        assert_same(&real, &orig, step);
        let u = gvtg(r, &["fix", "--undo"]);
        assert_eq!(u.status.code(), Some(0));
        assert_same(&tree(r), &orig, &format!("{step}: undo"));
    }
}

#[test]
fn hosts_where_gvt_is_blocked_get_no_boot_changes() {
    for (host, why) in [
        ("guest-vm", "gpu.igd"),
        ("kbl-gvtd-vfio-pci", "vfio-pci"),
        ("cfl-kernel-without-kvmgt", "kernel.support"),
        ("amd-host", "not possible on this hardware"),
    ] {
        let d = copy_fixture(host);
        let orig = tree(d.path());
        let out = gvtg(d.path(), &["fix", "--yes"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{host}: {t}");
        assert!(t.contains(why), "{host}: {t}");
        assert!(t.contains("Nothing to change."), "{host}: {t}");
        assert_same(&tree(d.path()), &orig, host);
    }
}

#[test]
fn owner_and_group_are_kept() {
    let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    let r = d.path();
    let q = r.join("etc/libvirt/qemu.conf");
    if std::os::unix::fs::chown(&q, Some(4321), Some(8765)).is_err() {
        eprintln!("not root: skipping the owner check");
        return;
    }
    let a = gvtg(r, &["fix", "--yes"]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(&q).unwrap();
    assert_eq!((m.uid(), m.gid()), (4321, 8765), "after apply");
    assert!(read(r, "etc/libvirt/qemu.conf").contains("\"/dev/userfaultfd\""));
    let u = gvtg(r, &["fix", "--undo"]);
    assert_eq!(u.status.code(), Some(0));
    let m = fs::metadata(&q).unwrap();
    assert_eq!((m.uid(), m.gid()), (4321, 8765), "after undo");
}

#[test]
fn a_concurrent_fix_fails_at_once() {
    let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    let r = d.path();
    fs::create_dir_all(r.join("run")).unwrap();
    let f = fs::File::create(r.join("run/gvtg.lock")).unwrap();
    let _held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).unwrap();
    let orig = tree(r);
    let out = gvtg(r, &["fix", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("another gvtg fix is running"),
        "{}",
        text(&out)
    );
    assert_same(&tree(r), &orig, "locked");
}

#[test]
fn vfio_nodes_get_the_udev_rule() {
    let d = copy_fixture("debian-stock-qemu-conf");
    let r = d.path();
    let q = read(r, "etc/libvirt/qemu.conf");
    write(
        r,
        "etc/libvirt/qemu.conf",
        &format!("{q}dynamic_ownership = 0\n"),
    );
    let (dry, applied, fixed, _) = roundtrip(r);
    assert!(
        dry.contains("+++ b/etc/udev/rules.d/90-gvtg-vfio.rules"),
        "{dry}"
    );
    assert_eq!(
        file(&fixed, "etc/udev/rules.d/90-gvtg-vfio.rules"),
        "SUBSYSTEM==\"vfio\", OWNER=\"root\", GROUP=\"kvm\", MODE=\"0660\"\n"
    );
    assert!(fixed.contains_key("etc/udev/rules.d/"), "directory created");
    assert!(
        applied.contains("would run (not on a captured tree): udevadm control --reload"),
        "{applied}"
    );
    // Debian's libvirt-qemu has kvm as its primary group: no usermod.
    assert!(!applied.contains("usermod"), "{applied}");

    // A QEMU user outside group kvm is added to it.
    let d = copy_fixture("debian-stock-qemu-conf");
    let r = d.path();
    let q = read(r, "etc/libvirt/qemu.conf");
    write(
        r,
        "etc/libvirt/qemu.conf",
        &format!("{q}dynamic_ownership = 0\n"),
    );
    let p = read(r, "etc/passwd").replace(":64055:108:", ":64055:64055:");
    write(r, "etc/passwd", &p);
    let out = gvtg(r, &["fix", "--yes"]);
    assert!(
        text(&out).contains("would run (not on a captured tree): usermod -aG kvm libvirt-qemu"),
        "{}",
        text(&out)
    );
}

/// On a terminal without --yes, `gvtg fix` asks once; only "y" applies. `script` (util-linux)
/// gives the child a pseudo-terminal.
#[test]
fn a_terminal_is_asked_once() {
    use std::io::Write as _;
    for (answer, applies) in [("n", false), ("", false), ("y", true)] {
        let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
        let r = d.path();
        let orig = tree(r);
        let cmd = format!(
            "{} fix --color never --root {}",
            env!("CARGO_BIN_EXE_gvtg"),
            r.display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("GVTG_ROOT")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("script (util-linux) is needed for the terminal test");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let t = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(t.matches("Apply these changes? [y/N]").count(), 1, "{t}");
        if applies {
            assert!(t.contains("Applied."), "{t}");
            assert_ne!(tree(r), orig);
        } else {
            assert!(
                t.contains("Dry run: nothing was changed"),
                "{answer:?}: {t}"
            );
            assert_same(&tree(r), &orig, answer);
        }
    }
}

#[test]
fn symlinks_and_escapes_are_refused() {
    let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    let r = d.path();
    let outside = tempfile::tempdir().unwrap();
    fs::copy(r.join("etc/default/grub"), outside.path().join("grub")).unwrap();
    fs::remove_file(r.join("etc/default/grub")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("grub"), r.join("etc/default/grub")).unwrap();
    let before = fs::read(outside.path().join("grub")).unwrap();
    let out = gvtg(r, &["fix", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("/etc/default/grub resolves to"), "{t}");
    assert!(t.contains("outside the captured tree"), "{t}");
    assert_eq!(fs::read(outside.path().join("grub")).unwrap(), before);
    assert!(fs::symlink_metadata(r.join("etc/default/grub"))
        .unwrap()
        .file_type()
        .is_symlink());
    // The other fixes still apply.
    assert!(read(r, "etc/libvirt/qemu.conf").contains("\"/dev/userfaultfd\""));
}

#[test]
fn a_symlink_inside_the_tree_is_not_replaced() {
    let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    let r = d.path();
    fs::rename(r.join("etc/default/grub"), r.join("etc/default/grub.real")).unwrap();
    std::os::unix::fs::symlink("grub.real", r.join("etc/default/grub")).unwrap();
    let orig = tree(r);
    let out = gvtg(r, &["fix", "--yes"]);
    let t = text(&out);
    assert!(t.contains("/etc/default/grub is a symbolic link"), "{t}");
    let now = tree(r);
    assert_eq!(now["etc/default/grub"], orig["etc/default/grub"]);
    assert_eq!(now["etc/default/grub.real"], orig["etc/default/grub.real"]);
}

#[test]
fn undo_refuses_to_overwrite_hand_edits_unless_forced() {
    let d = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    let r = d.path();
    let orig = tree(r);
    let a = gvtg(r, &["fix", "--yes"]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    // The user edits a file gvtg changed.
    let edited = format!("{}# my own line\n", read(r, "etc/modprobe.d/i915.conf"));
    write(r, "etc/modprobe.d/i915.conf", &edited);
    let u = gvtg(r, &["fix", "--undo"]);
    assert_eq!(u.status.code(), Some(2), "{}", text(&u));
    assert!(
        text(&u).contains("/etc/modprobe.d/i915.conf"),
        "{}",
        text(&u)
    );
    assert!(text(&u).contains("--force"), "{}", text(&u));
    // Nothing was restored: the edit is still there, and so is gvtg's other change.
    assert_eq!(read(r, "etc/modprobe.d/i915.conf"), edited);
    assert_ne!(tree(r), orig);
    let f = gvtg(r, &["fix", "--undo", "--force"]);
    assert_eq!(f.status.code(), Some(0), "{}", text(&f));
    assert_same(&tree(r), &orig, "forced undo");
}

/// The passthrough fixture with its binding configuration taken away: no `vfio-pci.ids` on the
/// command line, no /etc/modprobe.d/vfio.conf (softdeps), no vfio modules in the initramfs.
fn unbound_amd_nvidia() -> tempfile::TempDir {
    let d = copy_fixture("amd-nvidia-vfio-passthrough");
    let r = d.path();
    let cmd = read(r, "proc/cmdline").replace(" vfio-pci.ids=10de:1b80,10de:10f0", "");
    write(r, "proc/cmdline", &cmd);
    fs::remove_file(r.join("etc/modprobe.d/vfio.conf")).unwrap();
    let mk = read(r, "etc/mkinitcpio.conf").replace(
        "MODULES=(vfio_pci vfio vfio_iommu_type1)",
        "MODULES=(amdgpu)",
    );
    write(r, "etc/mkinitcpio.conf", &mk);
    d
}

#[test]
fn passthrough_binding_is_written_to_vfio_conf() {
    let d = unbound_amd_nvidia();
    let r = d.path();
    let before = gvtg(r, &["doctor", "--json", "--passthrough", "10de:1b80"]);
    let before: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(status(&before, "passthrough.binding"), "warn");

    let (dry, applied, fixed, doctor) = roundtrip_with(r, &["--passthrough", "10de:1b80"]);
    for want in [
        "# /etc/modprobe.d/vfio.conf (passthrough.binding)",
        "+++ b/etc/modprobe.d/vfio.conf",
        "+options vfio-pci ids=10de:1b80,10de:10f0",
        "+softdep nvidia pre: vfio-pci",
        "+softdep nouveau pre: vfio-pci",
        "+softdep snd_hda_intel pre: vfio-pci",
        "+MODULES=(amdgpu vfio_pci vfio vfio_iommu_type1)",
        "mkinitcpio -P",
        "gvtg fix --passthrough 10de:1b80 --yes",
    ] {
        assert!(dry.contains(want), "{want} not in\n{dry}");
    }
    // AMD: amd_iommu is never needed, iommu=pt is already on the command line.
    for never in ["amd_iommu", "pcie_acs_override", "i915.enable_gvt", "kvmgt"] {
        assert!(!dry.contains(never), "{never} in\n{dry}");
    }
    assert!(
        applied.contains("changed /etc/modprobe.d/vfio.conf"),
        "{applied}"
    );
    assert_eq!(
        file(&fixed, "etc/modprobe.d/vfio.conf"),
        "options vfio-pci ids=10de:1b80,10de:10f0\nsoftdep nvidia pre: vfio-pci\nsoftdep nouveau pre: vfio-pci\nsoftdep snd_hda_intel pre: vfio-pci\n"
    );
    // The fixture's functions are bound to vfio-pci now, so the configuration alone passes.
    assert_eq!(status(&doctor, "passthrough.binding"), "pass", "{doctor}");
}

#[test]
fn passthrough_ids_are_merged_never_dropped() {
    let d = unbound_amd_nvidia();
    let r = d.path();
    write(
        r,
        "etc/modprobe.d/vfio.conf",
        "# mine\noptions vfio-pci ids=1002:67df,10de:10f0 disable_vga=1\nsoftdep nouveau pre: vfio-pci\n",
    );
    let (_, _, fixed, doctor) = roundtrip_with(r, &["--passthrough", "0a:00.0"]);
    assert_eq!(
        file(&fixed, "etc/modprobe.d/vfio.conf"),
        "# mine\noptions vfio-pci ids=1002:67df,10de:10f0,10de:1b80 disable_vga=1\nsoftdep nouveau pre: vfio-pci\nsoftdep nvidia pre: vfio-pci\nsoftdep snd_hda_intel pre: vfio-pci\n"
    );
    assert_eq!(status(&doctor, "passthrough.binding"), "pass", "{doctor}");
}

#[test]
fn passthrough_non_viable_group_is_a_note_never_acs_override() {
    let d = copy_fixture("pch-group-shared-usb");
    let r = d.path();
    let out = gvtg(r, &["fix", "--passthrough", "0000:03:00.0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("IOMMU group not viable (passthrough.group: not viable: 0000:02:00.0 in group 4 is bound to xhci_hcd)"),
        "{t}"
    );
    assert!(!t.to_lowercase().contains("acs"), "{t}");
}

#[test]
fn passthrough_kernel_args_kvm_and_initramfs_tools() {
    // An Intel host whose kernel leaves VT-d off and no passthrough arguments at all.
    let d = copy_fixture("pch-group-shared-usb");
    let r = d.path();
    let g = read(r, "etc/default/grub").replace(
        "quiet splash intel_iommu=on iommu=pt vfio-pci.ids=10de:1b81,10de:10f0",
        "quiet splash iommu=off",
    );
    write(r, "etc/default/grub", &g);
    let cmd = read(r, "proc/cmdline").replace(
        "intel_iommu=on iommu=pt vfio-pci.ids=10de:1b81,10de:10f0",
        "iommu=off",
    );
    write(r, "proc/cmdline", &cmd);
    let (dry, _, fixed, _) = roundtrip_with(r, &["--passthrough", "0000:03:00.0"]);
    let grub = file(&fixed, "etc/default/grub");
    assert!(
        grub.contains(
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash i915.enable_gvt=1 intel_iommu=on iommu=pt\""
        ),
        "{grub}"
    );
    assert!(!grub.contains("iommu=off"), "{grub}");
    assert!(
        file(&fixed, "etc/modprobe.d/vfio.conf")
            .contains("options vfio-pci ids=10de:1b81,10de:10f0"),
        "{dry}"
    );
    let m = file(&fixed, "etc/initramfs-tools/modules");
    for want in ["vfio\n", "vfio_iommu_type1\n", "vfio_pci\n"] {
        assert!(m.contains(want), "{want} not in {m}");
    }
    assert_eq!(
        file(&fixed, "etc/modprobe.d/kvm.conf"),
        "options kvm ignore_msrs=1\n"
    );
    assert!(
        dry.contains("update-grub") && dry.contains("update-initramfs -u"),
        "{dry}"
    );
    assert!(!dry.contains("pcie_acs_override"), "{dry}");
}

#[test]
fn passthrough_dracut_drop_in() {
    let d = unbound_amd_nvidia();
    let r = d.path();
    fs::remove_file(r.join("etc/mkinitcpio.conf")).unwrap();
    fs::create_dir_all(r.join("etc/dracut.conf.d")).unwrap();
    let (dry, _, fixed, _) = roundtrip_with(r, &["--passthrough", "10de:1b80"]);
    assert_eq!(
        file(&fixed, "etc/dracut.conf.d/gvtg-vfio.conf"),
        "force_drivers+=\" vfio vfio_iommu_type1 vfio_pci \"\n"
    );
    assert!(dry.contains("dracut -f"), "{dry}");
}

#[test]
fn passthrough_nixos_snippet_parses() {
    let d = unbound_amd_nvidia();
    let r = d.path();
    write(r, "etc/os-release", "NAME=NixOS\nID=nixos\n");
    write(r, "etc/NIXOS", "");
    let cmd = read(r, "proc/cmdline").replace(" iommu=pt", "");
    write(r, "proc/cmdline", &cmd);
    let orig = tree(r);
    let out = gvtg(r, &["fix", "--passthrough", "10de:1b80", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_same(&tree(r), &orig, "NixOS: nothing is edited");
    let t = text(&out);
    let snip = snippet(&t, "# gvtg fix: VFIO passthrough");
    for want in [
        "boot.kernelParams = [ \"iommu=pt\" ];",
        "boot.initrd.kernelModules = [ \"vfio_pci\" \"vfio\" \"vfio_iommu_type1\" ];",
        "boot.extraModprobeConfig = ''",
        "    options vfio-pci ids=10de:1b80,10de:10f0\n",
        "    softdep nvidia pre: vfio-pci\n",
    ] {
        assert!(snip.contains(want), "{want} not in\n{snip}");
    }
    let parsed = nix_parse(r, snip);
    assert!(
        parsed.contains("kernelModules = [ (\"vfio_pci\")"),
        "{parsed}"
    );
}

#[test]
fn passthrough_on_a_host_driver_says_reboot_pending() {
    // The GPU on nouveau and its audio on snd_hda_intel now: the configuration is fixed, the
    // binding happens at the next boot, and the check says so.
    let d = unbound_amd_nvidia();
    let r = d.path();
    let t = read(r, "gvtg-tree.toml");
    let t = t
        .replacen(
            "../../../../bus/pci/drivers/vfio-pci",
            "../../../../bus/pci/drivers/nouveau",
            1,
        )
        .replacen(
            "../../../../bus/pci/drivers/vfio-pci",
            "../../../../bus/pci/drivers/snd_hda_intel",
            1,
        );
    write(r, "gvtg-tree.toml", &t);
    let (dry, _, _, doctor) = roundtrip_with(r, &["--passthrough", "10de:1b80"]);
    assert!(
        dry.contains("+options vfio-pci ids=10de:1b80,10de:10f0"),
        "{dry}"
    );
    let b = check(&doctor, "passthrough.binding");
    assert_eq!(b["status"], "fail", "{b}");
    let summary = b["summary"].as_str().unwrap();
    assert!(
        summary.contains("ids configured, but not bound to vfio-pci now")
            && summary.contains("reboot pending"),
        "{summary}"
    );
}

/// The passthrough checks `gvtg fix --passthrough` acts on.
const FIXABLE_PASSTHROUGH: &[&str] = &[
    "passthrough.binding",
    "passthrough.framebuffer",
    "passthrough.kvm-msrs",
    "passthrough.looking-glass",
];

/// On every passthrough fixture host (a `--passthrough` in its `args`), `gvtg fix --passthrough
/// … --yes` and then `gvtg doctor --passthrough …` leave each fixable check passing, or waiting
/// only for the reboot (the running command line and modules change only then); a second fix
/// plans nothing.
#[test]
fn passthrough_fixtures_end_to_end() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut hosts = 0;
    let mut acted = Vec::new();
    for e in fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        let Ok(args) = fs::read_to_string(e.path().join("args")) else {
            continue;
        };
        let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        if !args.iter().any(|a| a == "--passthrough") {
            continue;
        }
        hosts += 1;
        let d = copy_fixture(&name);
        let r = d.path();
        let with = |base: &[&str]| -> Vec<String> {
            base.iter()
                .map(|s| s.to_string())
                .chain(args.iter().cloned())
                .collect()
        };
        let call = |base: &[&str]| {
            let v = with(base);
            let v: Vec<&str> = v.iter().map(String::as_str).collect();
            gvtg(r, &v)
        };
        let before: serde_json::Value =
            serde_json::from_slice(&call(&["doctor", "--json"]).stdout).unwrap();
        let a = call(&["fix", "--yes"]);
        assert_eq!(a.status.code(), Some(0), "{name}: {}", text(&a));
        let again = call(&["fix"]);
        assert!(
            text(&again).contains("Nothing to change."),
            "{name}: a second fix plans more:\n{}",
            text(&again)
        );
        let after: serde_json::Value =
            serde_json::from_slice(&call(&["doctor", "--json"]).stdout).unwrap();
        for id in FIXABLE_PASSTHROUGH {
            let c = check(&after, id);
            let st = c["status"].as_str().unwrap();
            let summary = c["summary"].as_str().unwrap();
            let pending = ["next boot", "not active yet", "reboot pending"]
                .iter()
                .any(|p| summary.contains(p));
            // SKIP: Looking Glass not set up on that host.
            assert!(
                st == "pass" || (st == "skip" && *id == "passthrough.looking-glass") || pending,
                "{name}: {id} is {st} after the fix: {summary}"
            );
            if status(&before, id) != "pass" {
                acted.push(format!("{name} {id}"));
            }
        }
    }
    assert!(hosts >= 3, "only {hosts} passthrough fixtures found");
    // The fixtures exercise real fixes (the GVT-d host's boot framebuffer among them).
    assert!(
        acted
            .iter()
            .any(|a| a == "kbl-gvtd-vfio-pci passthrough.framebuffer"),
        "{acted:?}"
    );
}

#[test]
fn passthrough_boot_framebuffer_gets_the_kernel_argument() {
    let d = copy_fixture("kbl-gvtd-vfio-pci");
    let r = d.path();
    let (dry, _, fixed, doctor) = roundtrip_with(r, &["--passthrough", "0000:00:02.0"]);
    assert!(
        dry.contains("# /etc/default/grub (passthrough.framebuffer)"),
        "{dry}"
    );
    // Ubuntu 5.15: sysfb/simpledrm era, so the initcall, not video=efifb:off.
    assert!(
        file(&fixed, "etc/default/grub")
            .contains("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt initcall_blacklist=sysfb_init\""),
        "{}",
        file(&fixed, "etc/default/grub")
    );
    assert_eq!(status(&doctor, "passthrough.framebuffer"), "warn");
    // A kernel before 5.15 gets video=efifb:off instead.
    let d = copy_fixture("kbl-gvtd-vfio-pci");
    let r = d.path();
    write(r, "proc/sys/kernel/osrelease", "5.4.0-150-generic\n");
    let out = text(&gvtg(r, &["fix", "--passthrough", "0000:00:02.0"]));
    assert!(out.contains("iommu=pt video=efifb:off\""), "{out}");
    assert!(!out.contains("sysfb_init"), "{out}");
}

const LG_SHMEM: &str = "<domain type='kvm'>\n  <name>win11</name>\n  <devices>\n    <shmem name='looking-glass'>\n      <model type='ivshmem-plain'/>\n      <size unit='M'>64</size>\n    </shmem>\n  </devices>\n</domain>\n";

const LG_KVMFR: &str = "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n  <name>win11</name>\n  <qemu:commandline>\n    <qemu:arg value='-device'/>\n    <qemu:arg value='{\"driver\":\"ivshmem-plain\",\"id\":\"shmem0\",\"memdev\":\"looking-glass\"}'/>\n    <qemu:arg value='-object'/>\n    <qemu:arg value='memory-backend-file,id=looking-glass,mem-path=/dev/kvmfr0,size=128M,share=yes'/>\n  </qemu:commandline>\n</domain>\n";

/// The passthrough fixture with Looking Glass on kvmfr set up halfway: the module loaded with a
/// 32 MiB device the domain maps at 128 MiB, the node root-only, nothing at boot, no ACL.
fn amd_nvidia_kvmfr() -> tempfile::TempDir {
    let d = copy_fixture("amd-nvidia-vfio-passthrough");
    let r = d.path();
    write(r, "etc/libvirt/qemu/win11.xml", LG_KVMFR);
    let m = read(r, "proc/modules");
    write(
        r,
        "proc/modules",
        &format!("{m}kvmfr 16384 0 - Live 0x0000000000000000 (OE)\n"),
    );
    write(
        r,
        "etc/modprobe.d/looking-glass.conf",
        "# Looking Glass\noptions kvmfr static_size_mb=32\n",
    );
    let t = read(r, "gvtg-tree.toml");
    write(
        r,
        "gvtg-tree.toml",
        &format!("{t}\n[[node]]\npath = \"dev/kvmfr0\"\nkind = \"char\"\nmode = \"0600\"\nuid = 0\ngid = 0\nrdev = \"242:0\"\n"),
    );
    d
}

#[test]
fn looking_glass_shm_gets_the_tmpfiles_line() {
    let d = copy_fixture("amd-nvidia-vfio-passthrough");
    let r = d.path();
    write(r, "etc/libvirt/qemu/win11.xml", LG_SHMEM);
    let before = gvtg(r, &["doctor", "--json", "--passthrough", "10de:1b80"]);
    let before: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(status(&before, "passthrough.looking-glass"), "warn");
    let (dry, _, fixed, doctor) = roundtrip_with(r, &["--passthrough", "10de:1b80"]);
    assert!(
        dry.contains("# /etc/tmpfiles.d/10-looking-glass.conf (passthrough.looking-glass)"),
        "{dry}"
    );
    assert!(
        dry.contains("systemd-tmpfiles --create /etc/tmpfiles.d/10-looking-glass.conf"),
        "{dry}"
    );
    // The client runs as alex, the fixture's only regular account; QEMU is in group kvm.
    assert_eq!(
        file(&fixed, "etc/tmpfiles.d/10-looking-glass.conf"),
        "f /dev/shm/looking-glass 0660 alex kvm -\n"
    );
    assert_eq!(
        status(&doctor, "passthrough.looking-glass"),
        "pass",
        "{doctor}"
    );
}

#[test]
fn looking_glass_kvmfr_size_boot_udev_and_acl() {
    let d = amd_nvidia_kvmfr();
    let r = d.path();
    let before = gvtg(r, &["doctor", "--json", "--passthrough", "10de:1b80"]);
    let before: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(status(&before, "passthrough.looking-glass"), "fail");
    let (dry, _, fixed, doctor) = roundtrip_with(r, &["--passthrough", "10de:1b80"]);
    // The size is changed on the line that sets it, in place.
    assert_eq!(
        file(&fixed, "etc/modprobe.d/looking-glass.conf"),
        "# Looking Glass\noptions kvmfr static_size_mb=128\n"
    );
    assert_eq!(file(&fixed, "etc/modules-load.d/kvmfr.conf"), "kvmfr\n");
    assert_eq!(
        file(&fixed, "etc/udev/rules.d/99-kvmfr.rules"),
        "SUBSYSTEM==\"kvmfr\", OWNER=\"alex\", GROUP=\"kvm\", MODE=\"0660\"\n"
    );
    // qemu.conf had no cgroup_device_acl: the defaults are written out with the node.
    let q = file(&fixed, "etc/libvirt/qemu.conf");
    let acl = &q[q.find("\ncgroup_device_acl = [").expect("an ACL")..];
    for e in ["/dev/null", "/dev/kvm", "/dev/userfaultfd", "/dev/kvmfr0"] {
        assert!(acl.contains(&format!("\"{e}\"")), "{e} missing in {acl}");
    }
    assert!(
        dry.contains("udevadm trigger --subsystem-match=kvmfr"),
        "{dry}"
    );
    // The node changes owner when udev runs the rule (or at the next boot): a warning that says
    // so, the rest in place.
    let c = check(&doctor, "passthrough.looking-glass");
    assert_eq!(c["status"], "warn", "{c}");
    let summary = c["summary"].as_str().unwrap();
    assert!(summary.contains("the udev rule fixes it"), "{summary}");
    assert!(!summary.contains("cgroup_device_acl"), "{summary}");
    assert!(!summary.contains("static_size_mb"), "{summary}");
}

#[test]
fn looking_glass_nixos_snippet_parses() {
    let d = amd_nvidia_kvmfr();
    let r = d.path();
    write(r, "etc/os-release", "NAME=NixOS\nID=nixos\n");
    write(r, "etc/NIXOS", "");
    let out = gvtg(r, &["fix", "--passthrough", "10de:1b80"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    let snip = snippet(&t, "# gvtg fix: VFIO passthrough");
    for want in [
        "boot.extraModulePackages = [ config.boot.kernelPackages.kvmfr ];",
        "boot.kernelModules = [ \"kvmfr\" ];",
        "    options kvmfr static_size_mb=128\n",
        "    SUBSYSTEM==\"kvmfr\", OWNER=\"alex\", GROUP=\"kvm\", MODE=\"0660\"\n",
        "      \"/dev/kvmfr0\",",
        "virtualisation.libvirtd.qemu.verbatimConfig",
    ] {
        assert!(snip.contains(want), "{want} not in\n{snip}");
    }
    nix_parse(r, snip);
}

#[test]
fn passthrough_boot_framebuffer_on_nixos_is_in_the_snippet() {
    let d = copy_fixture("kbl-gvtd-vfio-pci");
    let r = d.path();
    write(r, "etc/os-release", "NAME=NixOS\nID=nixos\n");
    write(r, "etc/NIXOS", "");
    let out = gvtg(r, &["fix", "--passthrough", "0000:00:02.0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("boot.kernelParams = [ \"initcall_blacklist=sysfb_init\" ];"),
        "{t}"
    );
}
