//! `mdev.parent`, `mdev.types` and `vfio.permissions`: the kernel's mdev sysfs ABI
//! (Documentation/driver-api/vfio-mediated-device.rst) as GVT-g fills it, and the VFIO group
//! nodes QEMU must open.
//!
//! Aperture arithmetic (gvt/gvt.h, gvt/vgpu.c, gvt/aperture_gm.c): the host keeps 128 MB of low
//! (mappable aperture) GM, 384 MB of high GM and 4 fences. Types are generated in the order
//! _8, _4, _2, _1 and generation stops at the first whose low GM does not fit into
//! aperture − 128 MB; `available_instances` is the minimum over low GM, high GM and fences.

use super::{support, Check, Outcome, Prior, Status};
use crate::host::snapshot::{MdevParent, MdevType};
use crate::host::{Probe, Snapshot};

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "mdev.parent",
        title: "iGPU registered as an mdev parent",
        requires: &[],
        explain: include_str!("../../checks/mdev.parent.md"),
        run: check_mdev_parent,
    },
    Check {
        id: "mdev.types",
        title: "vGPU types available",
        requires: &["mdev.parent"],
        explain: include_str!("../../checks/mdev.types.md"),
        run: check_mdev_types,
    },
    Check {
        id: "vfio.permissions",
        title: "/dev/vfio group nodes usable by QEMU",
        requires: &[],
        explain: include_str!("../../checks/vfio.permissions.md"),
        run: check_vfio_permissions,
    },
];

/// GVT-g's type table: (suffix n, low GM MB, high GM MB) from `intel_vgpu_configs`.
pub const GVT_TYPES: [(u32, u64, u64); 4] =
    [(8, 64, 384), (4, 128, 512), (2, 256, 1024), (1, 512, 2048)];
/// Low GM kept by the host (`HOST_LOW_GM_SIZE`).
pub const HOST_LOW_GM_MB: u64 = 128;

/// The i915 parent: the one named after the iGPU's address, else any whose types are i915's.
pub fn gvt_parent(s: &Snapshot) -> Option<&MdevParent> {
    let parents = s.mdev_parents.ok()?;
    let igd = s.intel_igds().first().map(|d| d.address.clone());
    parents
        .iter()
        .find(|p| Some(&p.name) == igd.as_ref())
        .or_else(|| {
            parents.iter().find(|p| {
                p.types
                    .ok()
                    .is_some_and(|t| t.iter().any(|t| t.id.starts_with("i915-")))
            })
        })
}

fn check_mdev_parent(s: &Snapshot, prior: &Prior) -> Outcome {
    if let Some(p) = gvt_parent(s) {
        let n = p.types.ok().map(|t| t.len()).unwrap_or(0);
        return Outcome::pass(format!(
            "{} is registered under /sys/class/mdev_bus with {n} type(s)",
            p.name
        ))
        .with(format!("/sys/class/mdev_bus/{}", p.name), "present");
    }
    let others: Vec<String> = s
        .mdev_parents
        .ok()
        .map(|ps| ps.iter().map(|p| p.name.clone()).collect())
        .unwrap_or_default();
    // Explain with the first earlier fact that accounts for it, in causal order.
    let causes: [(&str, &str); 6] = [
        ("gpu.igd", "the iGPU is missing or cannot do GVT-g"),
        ("cpu.generation", "the platform has no GVT-g"),
        ("kernel.support", "the kernel lacks GVT-g"),
        ("i915.enable-gvt", "i915.enable_gvt is not on"),
        (
            "modules.loaded",
            "kvmgt (or a module it needs) is not loaded",
        ),
        ("i915.guc", "GuC submission stopped GVT-g"),
    ];
    let mut explained: Vec<String> = causes
        .iter()
        .filter(|(id, _)| *id != "modules.loaded" && prior.failed(id))
        .map(|(id, why)| format!("{why} ({id})"))
        .collect();
    // modules.loaded also fails for modules the parent does not need (kvm_intel); only a
    // missing kvmgt explains a missing parent.
    if !s.module_present("kvmgt") && s.modules.loaded.is_ok() && !support::gvt_impossible(s) {
        explained.push("kvmgt is not loaded (modules.loaded)".into());
    }
    let mut o = if explained.is_empty() {
        let mut o = Outcome::fail("no mdev parent for the iGPU, and no earlier check explains why");
        let hint = s.kernel_log.ok().and_then(|log| {
            log.containing(&["Unsupported device. GVT-g is disabled", "gvt:", "kvmgt"])
                .next()
                .map(|r| (log.path.clone(), r.text.clone()))
        });
        if let Some((p, t)) = hint {
            o.push(p, t);
        }
        o.fix("Look at `sudo dmesg | grep -Ei 'gvt|kvmgt|i915'`. Common causes not visible here: i915 loaded from the initramfs before modprobe.d changed (regenerate it), kvmgt loaded before i915 finished probing (reload: `sudo modprobe -r kvmgt && sudo modprobe kvmgt`), or a kernel too old for this platform (Coffee Lake needs ≥ 5.1).")
    } else {
        Outcome::fail(format!("no mdev parent for the iGPU because {}", explained.join("; ")))
            .fix("Fix the checks named above; the parent appears when i915 (with enable_gvt=1) and kvmgt are both loaded on a supported iGPU.")
    };
    match &s.mdev_parents {
        Probe::Missing => o.push(
            "/sys/class/mdev_bus",
            "does not exist (no mdev parent registered at all)",
        ),
        Probe::Ok(_) if !others.is_empty() => o.push(
            "/sys/class/mdev_bus",
            format!("other parents only: {}", others.join(", ")),
        ),
        Probe::Ok(_) => o.push("/sys/class/mdev_bus", "empty"),
        other => o.push(
            "/sys/class/mdev_bus",
            other.describe_failure("/sys/class/mdev_bus"),
        ),
    }
    o
}

fn type_line(t: &MdevType) -> String {
    let avail = match &t.available_instances {
        Probe::Ok(n) => n.to_string(),
        other => other.describe_failure("available_instances"),
    };
    let desc = t
        .gvt
        .as_ref()
        .map(|g| {
            format!(
                " low_gm {}MB, high_gm {}MB, {}",
                g.low_gm_mb.map(|v| v.to_string()).unwrap_or("?".into()),
                g.high_gm_mb.map(|v| v.to_string()).unwrap_or("?".into()),
                g.resolution.clone().unwrap_or_default()
            )
        })
        .unwrap_or_default();
    format!("available_instances {avail}{desc}")
}

fn check_mdev_types(s: &Snapshot, _: &Prior) -> Outcome {
    let Some(parent) = gvt_parent(s) else {
        return Outcome::skip("no GVT-g mdev parent");
    };
    let base = format!("/sys/class/mdev_bus/{}/mdev_supported_types", parent.name);
    let types = match &parent.types {
        Probe::Ok(t) => t,
        Probe::Missing => return Outcome::fail(format!(
            "{} has no mdev_supported_types directory",
            parent.name
        ))
        .with(base, "missing")
        .fix("GVT-g did not initialise on this device: check i915.enable-gvt and the kernel log."),
        other => return Outcome::error(other.describe_failure(&base)),
    };
    let aperture = s
        .intel_igds()
        .first()
        .and_then(|d| super::gpu::aperture_mb(d));
    let arithmetic = |a: u64| {
        let usable = a.saturating_sub(HOST_LOW_GM_MB);
        let fit: Vec<String> = GVT_TYPES
            .iter()
            .take_while(|(_, low, _)| *low <= usable)
            .map(|(n, low, _)| format!("_{n} ×{}", (usable / low).min(7)))
            .collect();
        format!(
            "aperture {a} MB − 128 MB kept by the host = {usable} MB for guests: {}",
            if fit.is_empty() {
                "no type fits".to_string()
            } else {
                fit.join(", ")
            }
        )
    };
    let raise = "Raise the iGPU aperture in the firmware setup (often \"Aperture Size\" under Graphics/Northbridge settings: 512 MB or 1024 MB; \"DVMT Pre-Allocated\" is a different setting). Or use a smaller type: _8 needs 64 MB of aperture, _4 128 MB, _2 256 MB, _1 512 MB.";
    let enospc = s.kernel_log.ok().and_then(|log| {
        log.containing(&[
            "failed to create intel vgpu: -28",
            "fail to allocate resource",
            "fail to alloc",
        ])
        .next_back()
        .map(|r| (log.path.clone(), r.text.clone()))
    });
    let total: u32 = types
        .iter()
        .filter_map(|t| t.available_instances.ok().copied())
        .sum();
    let existing: Vec<&String> = types.iter().flat_map(|t| t.devices.iter()).collect();
    let has_big = types
        .iter()
        .any(|t| t.id.ends_with("_2") || t.id.ends_with("_1"));

    let mut o = if types.is_empty() {
        Outcome::fail(format!(
            "{} offers no vGPU types: the aperture leaves less than 64 MB for guests",
            parent.name
        ))
        .fix(raise)
    } else if total == 0 && !existing.is_empty() {
        Outcome::warn(format!(
            "no instances left: {} vGPU(s) already exist ({}); creating another fails with ENOSPC",
            existing.len(),
            existing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ))
        .fix(format!("Remove unused vGPUs (`echo 1 | sudo tee /sys/bus/mdev/devices/UUID/remove`) or use smaller types. {raise}"))
    } else if total == 0 {
        Outcome::fail(format!(
            "{} lists types but every available_instances is 0 while no vGPU exists",
            parent.name
        ))
        .fix(format!(
            "The host's own use of the aperture leaves nothing for guests. {raise}"
        ))
    } else if !has_big && types.iter().any(|t| t.gvt.is_some()) {
        Outcome::warn(format!(
            "only small vGPU types exist ({}): the aperture is small",
            types
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .fix(raise)
    } else {
        Outcome::pass(format!(
            "{} type(s), {total} instance(s) available{}",
            types.len(),
            if existing.is_empty() {
                String::new()
            } else {
                format!(", {} in use", existing.len())
            }
        ))
    };
    if let Some(a) = aperture {
        o.push(
            format!("/sys/bus/pci/devices/{}/resource", parent.name),
            arithmetic(a),
        );
    }
    for t in types {
        o.push(format!("{base}/{}", t.id), type_line(t));
    }
    if let Some((p, line)) = enospc {
        if o.status != Status::Pass {
            o.push(p, line);
        }
    }
    o
}

fn check_vfio_permissions(s: &Snapshot, _: &Prior) -> Outcome {
    // Every group a VM would open: existing mdevs and PCI functions bound to vfio-pci.
    let mut groups: Vec<(u32, String)> = Vec::new();
    let mut no_group: Vec<String> = Vec::new();
    if let Some(ms) = s.mdev_devices.ok() {
        for m in ms {
            match m.iommu_group {
                Some(g) => groups.push((g, format!("mdev {}", m.uuid))),
                None => no_group.push(m.uuid.clone()),
            }
        }
    }
    if let Some(ds) = s.pci.ok() {
        for d in ds
            .iter()
            .filter(|d| d.driver.as_deref() == Some("vfio-pci"))
        {
            if let Some(g) = d.iommu_group {
                groups.push((g, format!("PCI {} (vfio-pci)", d.address)));
            }
        }
    }
    if groups.is_empty() && no_group.is_empty() {
        return Outcome::pass("no mdev or vfio-pci devices exist yet: nothing to open");
    }
    let nodes = s.dev_vfio.ok().cloned().unwrap_or_default();
    let support::QemuAccess {
        identity: id,
        dynamic_ownership: dynamic,
        ids,
        ..
    } = support::qemu_access(s);
    let udev_rule = s.udev_vfio_rules.iter().find(|r| {
        r.text
            .lines()
            .any(|l| l.contains("vfio") && (l.contains("GROUP=") || l.contains("MODE=")))
    });

    let mut o = Outcome::pass("");
    let mut bad = Vec::new();
    for (g, what) in &groups {
        let name = g.to_string();
        let node = nodes
            .get(&name)
            .or_else(|| nodes.get(&format!("noiommu-{g}")));
        let path = format!("/dev/vfio/{name}");
        match node {
            None => {
                bad.push(format!("{path} missing for {what}"));
                o.push(path, "does not exist");
            }
            Some(n) => {
                let desc = format!("{} ({what})", support::describe_node(s, n));
                let usable = ids.as_ref().map(|(u, gs)| support::can_rw(n, *u, gs));
                if usable == Some(false) && !(s.libvirt_present && dynamic) {
                    bad.push(format!("{path} not usable by {}", id.user));
                }
                o.push(path, desc);
            }
        }
    }
    for u in &no_group {
        bad.push(format!("mdev {u} has no iommu_group"));
        o.push(
            format!("/sys/bus/mdev/devices/{u}/iommu_group"),
            "missing: no VFIO driver bound to the mdev",
        );
    }
    if let Some(r) = udev_rule {
        o.push(r.path.clone(), "udev rule for vfio nodes present");
    }
    let rule = "echo 'SUBSYSTEM==\"vfio\", OWNER=\"root\", GROUP=\"kvm\", MODE=\"0660\"' | sudo tee /etc/udev/rules.d/90-gvtg-vfio.rules && sudo udevadm control --reload && sudo udevadm trigger --subsystem-match=vfio";
    if bad.is_empty() {
        o.summary = format!(
            "{} group node(s) ready{}",
            groups.len(),
            if s.libvirt_present && dynamic {
                " (libvirt's dynamic_ownership gives them to the QEMU user when a VM starts)"
            } else {
                ""
            }
        );
    } else {
        o.status = Status::Fail;
        o.summary = bad.join("; ");
        let mut fix = String::new();
        if !no_group.is_empty() {
            fix.push_str("An mdev without iommu_group has no VFIO driver: load kvmgt (and vfio_mdev on kernels before ~5.14), then recreate the vGPU; libvirt otherwise fails with \"failed to access '/sys/bus/mdev/devices/UUID/iommu_group'\".\n");
        }
        if bad.iter().any(|b| b.contains("missing")) {
            fix.push_str("A missing /dev/vfio/N means the vfio modules are not loaded: sudo modprobe -a vfio vfio_iommu_type1.\n");
        }
        if bad.iter().any(|b| b.contains("not usable")) {
            fix.push_str(&format!(
                "Give the QEMU user ({}) access, at every boot, with a udev rule (what NixOS's kvmgt module installs), and add it to group kvm:\n    {rule}\n    sudo usermod -aG kvm {}",
                id.user, id.user
            ));
        }
        o.remedy = Some(fix.trim_end().to_string());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{snapshot_with, Tree};

    fn gvt_parent_tree(t: &mut Tree, types: &[(&str, u32)], aperture_mb: u64) {
        let b = "sys/bus/pci/devices/0000:00:02.0";
        t.file(&format!("{b}/vendor"), "0x8086\n");
        t.file(&format!("{b}/device"), "0x5912\n");
        t.file(&format!("{b}/class"), "0x030000\n");
        let start = 0xe000_0000u64;
        t.file(
            &format!("{b}/resource"),
            &format!(
                "0x00000000f6000000 0x00000000f6ffffff 0x0\n0x0 0x0 0x0\n0x{start:016x} 0x{:016x} 0x0\n",
                start + (aperture_mb << 20) - 1
            ),
        );
        for (id, avail) in types {
            let d = format!("sys/class/mdev_bus/0000:00:02.0/mdev_supported_types/{id}");
            t.file(&format!("{d}/available_instances"), &format!("{avail}\n"));
            t.file(&format!("{d}/device_api"), "vfio-pci\n");
            t.file(&format!("{d}/description"), "low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4\n");
            t.dir(&format!("{d}/devices"));
        }
    }

    #[test]
    fn small_aperture_warns_with_arithmetic() {
        let s = snapshot_with(|t| {
            gvt_parent_tree(t, &[("i915-GVTg_V5_4", 1), ("i915-GVTg_V5_8", 2)], 256);
        });
        assert_eq!(
            check_mdev_parent(&s, &Prior { done: &[] }).status,
            Status::Pass
        );
        let o = check_mdev_types(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(
            o.evidence
                .iter()
                .any(|e| e.excerpt.contains("128 MB for guests: _8 ×2, _4 ×1")),
            "{o:?}"
        );
    }

    #[test]
    fn exhausted_instances() {
        let s = snapshot_with(|t| {
            gvt_parent_tree(
                t,
                &[
                    ("i915-GVTg_V5_4", 0),
                    ("i915-GVTg_V5_8", 0),
                    ("i915-GVTg_V5_2", 0),
                    ("i915-GVTg_V5_1", 0),
                ],
                1024,
            );
            t.dir("sys/class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_1/devices/5a4ccd5b-6d0c-4b7e-9c38-1c2e5f5d1a01");
        });
        let o = check_mdev_types(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("no instances left"));
    }

    #[test]
    fn mdev_without_group_fails() {
        let s = snapshot_with(|t| {
            t.dir("sys/bus/mdev/devices/5a4ccd5b-6d0c-4b7e-9c38-1c2e5f5d1a01");
        });
        let o = check_vfio_permissions(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Fail);
        assert!(o.remedy.unwrap().contains("iommu_group"));
    }

    #[test]
    fn nothing_to_open_passes() {
        let s = snapshot_with(|_| {});
        assert_eq!(
            check_vfio_permissions(&s, &Prior { done: &[] }).status,
            Status::Pass
        );
    }
}
