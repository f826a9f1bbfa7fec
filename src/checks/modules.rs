//! `modules.loaded` and `kvm.device`: the modules a vGPU needs, and KVM itself.
//!
//! On kernels after the ~5.19 rework nothing GVT-related happens until `kvmgt` is loaded: its
//! init calls `intel_gvt_set_ops()`, which registers the mdev parent. kvmgt refuses to open a
//! vGPU for a process without a KVM VM ("KVM is required to use Intel vGPU", kvmgt.c).

use super::{support, Check, Outcome, Prior, Status};
use crate::host::{Probe, Snapshot};

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "modules.loaded",
        title: "kvmgt, kvm, vfio and mdev modules loaded",
        requires: &[],
        explain: include_str!("../../checks/modules.loaded.md"),
        run: check_modules_loaded,
    },
    Check {
        id: "kvm.device",
        title: "/dev/kvm usable by the VM user",
        requires: &[],
        explain: include_str!("../../checks/kvm.device.md"),
        run: check_kvm_device,
    },
];

/// The modules a GVT-g VM needs, for this kernel: `vfio_mdev` existed until ~5.14
/// ("vfio/mdev: Remove CONFIG_VFIO_MDEV_DEVICE"), `mdev` since.
/// On a host without a GVT-capable iGPU only KVM and VFIO are judged (for the vendor's KVM
/// module): kvmgt cannot do anything there, and on 5.x kernels `modprobe kvmgt` even fails with
/// ENODEV on an unsupported iGPU.
fn required(s: &Snapshot) -> Vec<&'static str> {
    let old_mdev = matches!(
        s.modules.files.get("vfio_mdev"),
        Some(
            crate::host::snapshot::ModuleFile::File { .. }
                | crate::host::snapshot::ModuleFile::Builtin { .. }
        )
    );
    let amd = s.cpuinfo.ok().and_then(|c| c.vendor_id.as_deref()) == Some("AuthenticAMD");
    let gvt = !support::gvt_impossible(s);
    let mut v = vec![
        "kvm",
        if amd { "kvm_amd" } else { "kvm_intel" },
        "vfio",
        "vfio_iommu_type1",
    ];
    if gvt {
        v.insert(0, "kvmgt");
        v.push("mdev");
        if old_mdev {
            v.push("vfio_mdev");
        }
    }
    v
}

fn check_modules_loaded(s: &Snapshot, _: &Prior) -> Outcome {
    let loaded = match &s.modules.loaded {
        Probe::Ok(l) => l,
        Probe::Missing if s.modules.builtin.is_ok() || s.kconfig.is_ok() => {
            // No /proc/modules: a kernel without CONFIG_MODULES. Only built-ins count.
            return judge(s, &Default::default(), true);
        }
        other => {
            return Outcome::error(format!(
                "cannot list loaded modules: {}",
                other.describe_failure("/proc/modules")
            ))
        }
    };
    judge(s, loaded, false)
}

/// Kconfig symbol of each module, to tell "built in" from the build configuration when the
/// module index is unavailable (a kernel without module support ships none).
const KCONFIG_OF: &[(&str, &str)] = &[
    ("kvmgt", "DRM_I915_GVT_KVMGT"),
    ("kvm", "KVM"),
    ("kvm_intel", "KVM_INTEL"),
    ("vfio", "VFIO"),
    ("vfio_iommu_type1", "VFIO_IOMMU_TYPE1"),
    ("mdev", "VFIO_MDEV"),
    ("vfio_mdev", "VFIO_MDEV_DEVICE"),
];

fn judge(s: &Snapshot, loaded: &std::collections::BTreeSet<String>, no_modules: bool) -> Outcome {
    let mut builtin = s.modules.builtin.ok().cloned().unwrap_or_default();
    if let Some((_, kc)) = s.kconfig.ok() {
        for (m, sym) in KCONFIG_OF {
            if matches!(kc.get(sym), Some(crate::parse::kconfig::KValue::Yes)) {
                builtin.insert(m.to_string());
            }
        }
    }
    let mut missing = Vec::new();
    let mut present = Vec::new();
    for m in required(s) {
        if loaded.contains(m) {
            present.push(format!("{m} (loaded)"));
        } else if builtin.contains(m) {
            present.push(format!("{m} (built in)"));
        } else {
            missing.push(m);
        }
    }
    // Which of the missing ones are configured to load at boot (modules-load.d, /etc/modules)?
    let at_boot: Vec<(String, String)> = s
        .modules_load
        .iter()
        .flat_map(|(path, names)| {
            names
                .iter()
                .map(move |n| (path.clone(), n.replace('-', "_")))
        })
        .collect();
    let gvt_applies = required(s).contains(&"kvmgt");
    let mut o = if missing.is_empty() {
        Outcome::pass(format!(
            "all present: {}{}",
            present.join(", "),
            if gvt_applies {
                ""
            } else {
                " (kvmgt and mdev not judged: GVT-g is impossible on this hardware)"
            }
        ))
    } else {
        let kvmgt_missing = missing.contains(&"kvmgt");
        let mut o = Outcome::fail(format!(
            "not loaded: {}{}",
            missing.join(", "),
            if kvmgt_missing {
                " (without kvmgt, i915 registers no mdev parent)"
            } else {
                ""
            }
        ));
        let names = missing.join(" ");
        let persist = if support::distro(s) == support::Distro::NixOs {
            format!(
                "and persist them in configuration.nix: boot.kernelModules = [ {} ];",
                missing
                    .iter()
                    .map(|m| format!("\"{m}\""))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        } else {
            format!(
                "and load them at every boot:\n    printf '%s\\n' {names} | sudo tee /etc/modules-load.d/gvtg.conf"
            )
        };
        let mut fix = if no_modules {
            format!(
                "This kernel has no loadable-module support; rebuild it with {} built in.",
                names
            )
        } else {
            format!("Load them now:\n    sudo modprobe -a {names}\n{persist}")
        };
        if missing.contains(&"kvm_intel")
            && s.cpuinfo.ok().and_then(|c| c.has_flag("vmx")) == Some(false)
        {
            fix.push_str("\nkvm_intel will not load without VT-x: enable Intel Virtualization Technology in the firmware setup.");
        }
        if kvmgt_missing
            && s.kernel_log.ok().is_some_and(|log| {
                log.containing(&["could not insert 'kvmgt'"])
                    .next()
                    .is_some()
            })
        {
            fix.push_str("\nThe log shows `modprobe kvmgt` failing with ENODEV: on 5.x kernels that means i915 did not initialise GVT-g (see i915.enable-gvt and gpu.igd).");
        }
        o = o.fix(fix);
        o
    };
    o.push(
        if no_modules {
            "/proc/modules (absent: no module support)"
        } else {
            "/proc/modules"
        },
        if present.is_empty() {
            "none of them".to_string()
        } else {
            present.join(", ")
        },
    );
    if !gvt_applies {
        let extra: Vec<String> = ["kvmgt", "mdev", "i915"]
            .iter()
            .filter(|m| loaded.contains(**m) || builtin.contains(**m))
            .map(|m| format!("{m} (loaded)"))
            .collect();
        if !extra.is_empty() {
            o.push(
                "/proc/modules",
                format!(
                    "also present, not judged (GVT-g is impossible on this hardware): {}",
                    extra.join(", ")
                ),
            );
        }
    }
    for m in &missing {
        if let Some((p, _)) = at_boot.iter().find(|(_, n)| n == m) {
            o.push(
                p.clone(),
                format!("{m} is configured to load at boot (not loaded now: reboot or modprobe)"),
            );
        }
    }
    if gvt_applies
        && missing.is_empty()
        && !at_boot.iter().any(|(_, n)| n == "kvmgt")
        && !builtin.contains("kvmgt")
        && o.status == Status::Pass
    {
        o.status = Status::Warn;
        o.summary.push_str(
            "; but kvmgt is not listed in modules-load.d, so it will be gone after a reboot",
        );
        o = o.fix("echo kvmgt | sudo tee /etc/modules-load.d/gvtg.conf");
    }
    for (p, n) in &at_boot {
        if n == "vfio_mdev" && !required(s).contains(&"vfio_mdev") {
            o.push(p.clone(), "vfio-mdev no longer exists (merged into mdev/vfio around 5.14–5.16); systemd-modules-load will log an error for it");
        }
    }
    o
}

fn check_kvm_device(s: &Snapshot, _: &Prior) -> Outcome {
    let node = match &s.dev_kvm {
        Probe::Ok(n) => n.clone(),
        Probe::Missing => {
            let mut o = Outcome::fail("/dev/kvm does not exist: KVM is not available, and kvmgt refuses vGPUs without it ('KVM is required to use Intel vGPU')")
                .fix("Load KVM: `sudo modprobe kvm_intel` (if it fails, enable VT-x in the firmware setup; inside a VM, enable nested virtualization on the host).");
            if s.cpuinfo.ok().and_then(|c| c.has_flag("vmx")) == Some(false) {
                o.push("/proc/cpuinfo", "no vmx flag");
            }
            return o;
        }
        other => {
            return Outcome::error(format!(
                "cannot stat /dev/kvm: {}",
                other.describe_failure("/dev/kvm")
            ))
        }
    };
    let desc = format!("/dev/kvm {}", support::describe_node(s, &node));
    if node.kind != crate::host::sidefile::NodeKind::Char {
        return Outcome::fail(format!(
            "/dev/kvm is not a character device ({:?})",
            node.kind
        ))
        .with("/dev/kvm", desc);
    }
    if !s.libvirt_present {
        let ok = node.mode & 0o006 == 0o006 || node.mode & 0o060 == 0o060;
        let o = if ok {
            Outcome::pass(format!(
                "{desc}: usable by members of group {}",
                support::group_name(s, node.gid)
            ))
        } else {
            Outcome::warn(format!("{desc}: only root can open it"))
                .fix("Install the distribution's udev rules for KVM (usually shipped with qemu or systemd: group kvm, mode 0660) and add the user who runs QEMU to group kvm: sudo usermod -aG kvm USER")
        };
        return o.with("/dev/kvm", desc);
    }
    let id = support::qemu_identity(s);
    let Some((uid, gid, mut supp)) = support::resolve_user(s, &id.user) else {
        return Outcome::warn(format!(
            "{desc}; the QEMU user '{}' ({}) does not exist in /etc/passwd, so access cannot be judged",
            id.user, id.source
        ))
        .with("/dev/kvm", desc);
    };
    supp.push(gid);
    if let Some(g) = support::resolve_group(s, &id.group) {
        supp.push(g);
    }
    if support::can_rw(&node, uid, &supp) {
        Outcome::pass(format!("{desc}: QEMU user {} can open it", id.user)).with("/dev/kvm", desc)
    } else {
        Outcome::fail(format!("{desc}: the QEMU user {} ({}) cannot open it", id.user, id.source))
            .with("/dev/kvm", desc)
            .fix(format!(
                "sudo usermod -aG {} {}   (and make sure /dev/kvm is 0660 root:kvm, from the distribution's udev rules)",
                support::group_name(s, node.gid),
                id.user
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::snapshot_with;

    #[test]
    fn missing_kvmgt_fails_with_modprobe_fix() {
        let s = snapshot_with(|t| {
            t.file("proc/modules", "kvm_intel 380928 0 - Live 0x0000000000000000\nkvm 1142784 1 kvm_intel, Live 0x0000000000000000\nvfio 45056 0 - Live 0x0\nvfio_iommu_type1 45056 0 - Live 0x0\nmdev 20480 0 - Live 0x0\n");
        });
        let o = check_modules_loaded(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("kvmgt"));
        assert!(o.remedy.unwrap().contains("modprobe -a kvmgt"));
    }

    #[test]
    fn all_loaded_but_not_persisted_warns() {
        let s = snapshot_with(|t| {
            t.file("proc/modules", "kvmgt 1 0 - Live 0x0\nkvm_intel 1 0 - Live 0x0\nkvm 1 1 kvm_intel, Live 0x0\nvfio 1 0 - Live 0x0\nvfio_iommu_type1 1 0 - Live 0x0\nmdev 1 0 - Live 0x0\n");
        });
        let o = check_modules_loaded(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        let s = snapshot_with(|t| {
            t.file("proc/modules", "kvmgt 1 0 - Live 0x0\nkvm_intel 1 0 - Live 0x0\nkvm 1 1 kvm_intel, Live 0x0\nvfio 1 0 - Live 0x0\nvfio_iommu_type1 1 0 - Live 0x0\nmdev 1 0 - Live 0x0\n");
            t.file("etc/modules-load.d/gvt.conf", "# gvt\nkvmgt\n");
        });
        assert_eq!(
            check_modules_loaded(&s, &Prior { done: &[] }).status,
            Status::Pass
        );
    }

    #[test]
    fn kvm_node_access() {
        let side = "format = 1\n[[node]]\npath = \"dev/kvm\"\nkind = \"char\"\nmode = \"0660\"\nuid = 0\ngid = 108\nrdev = \"10:232\"\n";
        let s = snapshot_with(|t| {
            t.file("gvtg-tree.toml", side);
            t.file(
                "etc/libvirt/qemu.conf",
                "#user = \"libvirt-qemu\"\n#group = \"libvirt-qemu\"\n",
            );
            t.file("etc/passwd", "root:x:0:0::/root:/bin/sh\nlibvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin\n");
            t.file("etc/group", "kvm:x:108:\nlibvirt-qemu:x:64055:\n");
        });
        let o = check_kvm_device(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.remedy.unwrap().contains("usermod -aG kvm libvirt-qemu"));
        let s = snapshot_with(|t| {
            t.file("gvtg-tree.toml", side);
            t.file("etc/libvirt/qemu.conf", "#user = \"libvirt-qemu\"\n");
            t.file("etc/passwd", "libvirt-qemu:x:64055:64055::/:/bin/false\n");
            t.file("etc/group", "kvm:x:108:libvirt-qemu\n");
        });
        assert_eq!(
            check_kvm_device(&s, &Prior { done: &[] }).status,
            Status::Pass
        );
    }
}
