//! `gvtg fix --passthrough PCI`: the whole-GPU VFIO passthrough part of the plan.
//!
//! Kernel arguments (`intel_iommu=on` when this kernel leaves VT-d off, `iommu=pt`) through the
//! same per-boot-loader code as the GVT-g fixes, with the argument that keeps the firmware
//! framebuffer off a boot GPU (`initcall_blacklist=sysfb_init` on 5.15+, `video=efifb:off`
//! before); `/etc/modprobe.d/vfio.conf` with
//! `options vfio-pci ids=…` (merged, never dropping an id) and a `softdep HOST pre: vfio-pci`
//! per host driver; `options kvm ignore_msrs=1` in `/etc/modprobe.d/kvm.conf`; vfio modules in
//! the initramfs plus its rebuild. A group that is not viable gets a note naming the devices
//! that keep it so, never the ACS override patch.

use anyhow::Result;

use super::{bad, edit, kernel_args, BootLoader, Builder, Initramfs};
use crate::checks::{self, Selection, Status};
use crate::host::{HostRoot, Snapshot};

/// The modprobe.d file the passthrough fixes own.
pub const VFIO_CONF: &str = "etc/modprobe.d/vfio.conf";
/// Where `options kvm ignore_msrs=1` goes.
pub const KVM_CONF: &str = "etc/modprobe.d/kvm.conf";
/// The dracut drop-in for the vfio modules.
pub const DRACUT_VFIO_FILE: &str = "etc/dracut.conf.d/gvtg-vfio.conf";
/// The modules vfio-pci needs early, in the order the initramfs lists them.
pub const VFIO_MODULES: &[&str] = &["vfio_pci", "vfio", "vfio_iommu_type1"];

/// Kernel arguments that switch the IOMMU off: dropped when passthrough is wanted.
fn iommu_off(a: &str) -> bool {
    matches!(a, "iommu=off" | "intel_iommu=off" | "amd_iommu=off")
}

/// The kernel arguments passthrough needs that the running command line lacks.
fn wanted_args(s: &Snapshot) -> (Vec<String>, Vec<String>) {
    let cmd = s.cmdline.ok();
    let last = |k: &str| cmd.and_then(|c| c.last_value(k)).map(|v| v.unwrap_or(""));
    let amd = s
        .cpuinfo
        .ok()
        .and_then(|c| c.vendor_id.as_deref())
        .is_some_and(|v| v == "AuthenticAMD");
    let mut add = Vec::new();
    if !amd {
        let on = last("intel_iommu").is_some_and(|v| v.split(',').any(|x| x == "on"));
        let default_on = s
            .kconfig
            .ok()
            .is_some_and(|(_, k)| k.enabled("INTEL_IOMMU_DEFAULT_ON"));
        if !on && !default_on {
            add.push("intel_iommu=on".to_string());
        }
    }
    if last("iommu") != Some("pt") {
        add.push("iommu=pt".to_string());
    }
    let off: Vec<String> = cmd
        .map(|c| {
            c.params
                .iter()
                .map(|p| p.raw.clone())
                .filter(|a| iommu_off(a))
                .collect()
        })
        .unwrap_or_default();
    (add, off)
}

/// Adds the passthrough actions for the functions in [`Snapshot::passthrough`].
pub(super) fn plan(b: &mut Builder, root: &HostRoot, s: &Snapshot) -> Result<()> {
    let results = checks::run(
        s,
        &Selection {
            passthrough: true,
            ..Default::default()
        },
    );
    let loader = super::boot_loader(root, s);
    let initrd = super::initramfs(root, s);

    // A group that is not viable cannot be fixed by configuration: name the devices instead.
    if let Some((_, o)) = results
        .iter()
        .find(|(c, o)| c.id == "passthrough.group" && o.status == Status::Fail)
    {
        b.plan.notes.push(format!(
            "IOMMU group not viable (passthrough.group: {}): VFIO takes the whole group, so move the GPU to a slot with its own group or pass the other devices through too",
            o.summary
        ));
    }

    let (mut args, off) = wanted_args(s);
    // The boot GPU's firmware framebuffer: the argument this kernel needs (5.15+ or not).
    let fb = checks::passthrough::framebuffer_needs_arg(s)
        .then(|| checks::passthrough::framebuffer_off_arg(s).to_string());
    let iommu_args = !args.is_empty() || !off.is_empty();
    if let Some(a) = &fb {
        args.push(a.clone());
    }
    let want_binding = bad(&results, "passthrough.binding", true);
    let (ids, hosts) = if want_binding {
        checks::passthrough::binding_needs(s)
    } else {
        (Vec::new(), Vec::new())
    };
    let want_msrs = results.iter().any(|(c, o)| {
        c.id == "passthrough.kvm-msrs" && o.status == Status::Warn && o.remedy.is_some()
    });
    let early = s
        .modules
        .builtin
        .ok()
        .is_some_and(|m| m.contains("vfio_pci"))
        || s.initramfs_modules
            .iter()
            .any(|(_, m)| m.iter().any(|x| x.replace('-', "_") == "vfio_pci"));
    let want_initrd = want_binding && !early;

    let lg = checks::looking_glass::needs(s);

    if loader == BootLoader::NixOs {
        // nixpkgs packages kvmfr: the snippet installs it, so "not installed" is no note here.
        b.plan.notes.extend(
            lg.notes
                .iter()
                .filter(|n| !(lg.kvmfr_missing && n.starts_with("kvmfr is not installed")))
                .cloned(),
        );
        if let Some(t) = &lg.tmpfiles {
            b.nix.lg_tmpfiles.push(t.clone());
        }
        if lg.kvmfr_load || lg.kvmfr_missing || lg.kvmfr_size_mb.is_some() {
            b.nix.lg_kvmfr = true;
        }
        if let Some(v) = lg.kvmfr_size_value() {
            b.nix
                .pt_modprobe
                .push(format!("options kvmfr static_size_mb={v}"));
        }
        if let Some(u) = &lg.kvmfr_udev {
            b.nix.lg_udev.push(u.clone());
        }
        if !lg.acl.is_empty() {
            let mut l = super::acl_list(s);
            l.extend(
                lg.acl
                    .iter()
                    .filter(|e| !l.contains(e))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            b.nix.lg_acl = l;
        }
        b.nix.pt_params = args;
        b.nix.pt_initrd = want_initrd;
        if !ids.is_empty() {
            b.nix
                .pt_modprobe
                .push(format!("options vfio-pci ids={}", ids.join(",")));
        }
        for h in &hosts {
            b.nix.pt_modprobe.push(format!("softdep {h} pre: vfio-pci"));
        }
        if want_msrs {
            b.nix.pt_modprobe.push("options kvm ignore_msrs=1".into());
        }
        if !off.is_empty() {
            b.plan.notes.push(format!(
                "remove {} from boot.kernelParams in configuration.nix",
                off.join(" ")
            ));
        }
        if !b.nix.pt_params.is_empty() || b.nix.pt_initrd || !b.nix.pt_modprobe.is_empty() {
            b.plan.reboot = true;
        }
        return Ok(());
    }

    let mut changed = false;
    if !args.is_empty() || !off.is_empty() {
        let reason = match (iommu_args, fb.is_some()) {
            (true, true) => "passthrough.iommu, passthrough.framebuffer",
            (false, true) => "passthrough.framebuffer",
            _ => "passthrough.iommu",
        };
        changed |= kernel_args(b, root, s, &args, iommu_off, &off, reason);
    }
    let mut modprobe = false;
    if !ids.is_empty() {
        modprobe |= b.try_edit(VFIO_CONF, "passthrough.binding", |t| {
            edit::vfio_ids(t, &ids)
        });
    }
    for h in &hosts {
        modprobe |= b.try_edit(VFIO_CONF, "passthrough.binding", |t| {
            edit::ensure_line(t, &format!("softdep {h} pre: vfio-pci"))
        });
    }
    if want_msrs {
        modprobe |= b.try_edit(KVM_CONF, "passthrough.kvm-msrs", |t| {
            edit::ensure_line(t, "options kvm ignore_msrs=1")
        });
    }
    let mods: Vec<String> = VFIO_MODULES.iter().map(|m| m.to_string()).collect();
    let mut initrd_changed = modprobe;
    if want_initrd {
        initrd_changed |= match initrd {
            Initramfs::InitramfsTools => {
                let mut c = false;
                for m in ["vfio", "vfio_iommu_type1", "vfio_pci"] {
                    c |= b.try_edit("etc/initramfs-tools/modules", "passthrough.binding", |t| {
                        edit::ensure_line(t, m)
                    });
                }
                c
            }
            Initramfs::Mkinitcpio => {
                b.try_edit("etc/mkinitcpio.conf", "passthrough.binding", |t| {
                    edit::mkinitcpio_modules(t, &mods)
                })
            }
            Initramfs::Dracut => b.try_edit(DRACUT_VFIO_FILE, "passthrough.binding", |t| {
                edit::ensure_line(t, "force_drivers+=\" vfio vfio_iommu_type1 vfio_pci \"")
            }),
            Initramfs::None => {
                b.plan.notes.push(
                    "no initramfs generator recognised: make sure vfio, vfio_iommu_type1 and vfio_pci load before the GPU's host driver".into(),
                );
                false
            }
        };
    }
    b.plan.notes.extend(lg.notes.iter().cloned());
    let lg_modprobe = looking_glass(b, s, &lg);
    initrd_changed |= lg_modprobe;
    if initrd_changed {
        b.rebuild_initramfs(initrd);
    }
    if changed || initrd_changed {
        b.plan.reboot = true;
        b.plan.follow_ups.push(format!(
            "after the reboot: `gvtg doctor --passthrough {}` (vfio-pci should hold every function)",
            s.passthrough.join(",")
        ));
    }
    Ok(())
}

/// The Looking Glass edits ([`checks::looking_glass::needs`]): the tmpfiles.d line, kvmfr at boot
/// with its size, the kvmfr udev rule and the qemu.conf ACL. True when a modprobe.d file changed.
fn looking_glass(b: &mut Builder, s: &Snapshot, lg: &checks::looking_glass::Needs) -> bool {
    use checks::looking_glass as l;
    const WHY: &str = "passthrough.looking-glass";
    if let Some(t) = &lg.tmpfiles {
        if b.try_edit(l::TMPFILES_FILE, WHY, |x| edit::tmpfiles_line(x, t)) {
            b.command(
                vec![
                    "systemd-tmpfiles".into(),
                    "--create".into(),
                    format!("/{}", l::TMPFILES_FILE),
                ],
                "create /dev/shm/looking-glass with its owner and mode now",
            );
        }
    }
    // Not for a module this kernel lacks: modules-load.d would fail at every boot.
    if lg.kvmfr_load && !lg.kvmfr_missing {
        b.try_edit(l::KVMFR_LOAD, WHY, |x| edit::ensure_line(x, "kvmfr"));
        b.plan.reboot = true;
    }
    let mut modprobe = false;
    if let Some(m) = lg.kvmfr_size_value() {
        // Change the line that sets it now (the last one wins), when it is under /etc.
        let last = checks::support::configured_param(s, "kvmfr", "static_size_mb")
            .into_iter()
            .rev()
            .find_map(|p| {
                let (f, n) = p.origin.rsplit_once(':')?;
                let n: usize = n.parse().ok()?;
                f.starts_with("/etc/")
                    .then(|| (f.trim_start_matches('/').to_string(), n))
            });
        modprobe |= match last {
            Some((rel, n)) => b.try_edit(&rel, WHY, |x| {
                edit::set_module_option(x, n, "static_size_mb", &m)
            }),
            None => b.try_edit(l::KVMFR_MODPROBE, WHY, |x| {
                edit::ensure_line(x, &format!("options kvmfr static_size_mb={m}"))
            }),
        };
        if modprobe {
            b.plan.follow_ups.push(
                "reload kvmfr for its new size (no VM using it): sudo modprobe -r kvmfr && sudo modprobe kvmfr".into(),
            );
        }
    }
    if let Some(u) = &lg.kvmfr_udev {
        if b.try_edit(l::KVMFR_UDEV, WHY, |x| edit::ensure_line(x, u)) {
            b.command(
                vec!["udevadm".into(), "control".into(), "--reload".into()],
                "load the new udev rule",
            );
            b.command(
                vec![
                    "udevadm".into(),
                    "trigger".into(),
                    "--subsystem-match=kvmfr".into(),
                    "--action=change".into(),
                ],
                "apply it to existing /dev/kvmfr nodes",
            );
        }
    }
    if !lg.acl.is_empty() {
        let rel = s
            .qemu_conf
            .ok()
            .map_or("etc/libvirt/qemu.conf".to_string(), |f| {
                f.path.trim_start_matches('/').to_string()
            });
        if b.try_edit(&rel, WHY, |x| edit::qemu_acl_with(x, &lg.acl)) {
            let f = "sudo systemctl restart libvirtd   (or virtqemud)".to_string();
            if !b.plan.follow_ups.contains(&f) {
                b.plan.follow_ups.push(f);
            }
        }
    }
    modprobe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_switches_are_recognised() {
        assert!(iommu_off("iommu=off"));
        assert!(iommu_off("intel_iommu=off"));
        assert!(!iommu_off("iommu=pt"));
        assert!(!iommu_off("pcie_acs_override=downstream"));
    }
}
