//! `kernel.support`: was the *running* kernel built with GVT-g?
//!
//! Two independent witnesses, so a missing /boot/config (Arch keeps none) or a stripped module
//! tree still gives a verdict: the build configuration (`CONFIG_DRM_I915_GVT_KVMGT` selects
//! `DRM_I915_GVT` and `VFIO_MDEV`, drivers/gpu/drm/i915/Kconfig) and the module files themselves
//! (i915's `.modinfo` declares `enable_gvt` only when built with CONFIG_DRM_I915_GVT, i915_params.c;
//! kvmgt must exist).

use super::{support, Check, Outcome, Prior};
use crate::host::snapshot::ModuleFile;
use crate::host::{Probe, Snapshot};
use crate::parse::kconfig::KValue;

pub(super) const CHECKS: &[Check] = &[Check {
    id: "kernel.support",
    title: "Running kernel built with GVT-g (KVMGT)",
    requires: &[],
    explain: include_str!("../../checks/kernel.support.md"),
    run: check_kernel_support,
}];

fn kv(v: Option<&KValue>) -> &'static str {
    match v {
        Some(KValue::Yes) => "y",
        Some(KValue::Module) => "m",
        Some(KValue::NotSet) => "is not set",
        Some(_) => "set",
        None => "absent",
    }
}

fn check_kernel_support(s: &Snapshot, _: &Prior) -> Outcome {
    let release = match &s.osrelease {
        Probe::Ok(r) => r.clone(),
        other => {
            return Outcome::error(format!(
                "cannot tell the running kernel: {}",
                other.describe_failure("/proc/sys/kernel/osrelease")
            ))
        }
    };
    let mut problems: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut ev: Vec<(String, String)> =
        vec![("/proc/sys/kernel/osrelease".into(), release.clone())];

    match &s.kconfig {
        Probe::Ok((path, kc)) => {
            for key in [
                "DRM_I915_GVT_KVMGT",
                "DRM_I915_GVT",
                "VFIO_MDEV",
                "VFIO",
                "KVM_INTEL",
            ] {
                let v = kc.get(key);
                ev.push((path.clone(), format!("CONFIG_{key} {}", kv(v))));
            }
            if !kc.enabled("DRM_I915_GVT_KVMGT") {
                problems.push("CONFIG_DRM_I915_GVT_KVMGT is not enabled".into());
            }
            if !kc.enabled("DRM_I915") {
                problems.push("CONFIG_DRM_I915 (the i915 driver) is not enabled".into());
            }
            if !kc.enabled("VFIO_MDEV")
                && !kc.enabled("VFIO_MDEV_DEVICE")
                && kc.enabled("DRM_I915_GVT_KVMGT")
            {
                // KVMGT selects VFIO_MDEV on current kernels; on ≤5.13 it depended on both.
                problems.push("CONFIG_VFIO_MDEV is not enabled".into());
            }
        }
        other => unknown.push(format!(
            "kernel config unreadable ({}; /proc/config.gz too)",
            other.describe_failure(&format!("/boot/config-{release}"))
        )),
    }

    let files = &s.modules.files;
    match files.get("kvmgt") {
        Some(ModuleFile::File { path, .. }) => {
            ev.push((path.clone(), "kvmgt module present".into()))
        }
        Some(ModuleFile::Builtin { .. }) => ev.push((
            format!("{}/modules.builtin", s.modules.dir),
            "kvmgt built in".into(),
        )),
        Some(ModuleFile::Absent) => problems.push(format!(
            "no kvmgt module in {} (modules.dep / modules.builtin)",
            s.modules.dir
        )),
        Some(ModuleFile::Unreadable(e)) => unknown.push(format!("module index unreadable: {e}")),
        None => {}
    }
    match files.get("i915") {
        Some(ModuleFile::File { path, params }) => {
            if params.iter().any(|p| p == "enable_gvt") {
                ev.push((
                    path.clone(),
                    "parm: enable_gvt (i915 built with CONFIG_DRM_I915_GVT)".into(),
                ));
            } else {
                problems.push(format!(
                    "{path} has no enable_gvt parameter (built without CONFIG_DRM_I915_GVT)"
                ));
            }
        }
        Some(ModuleFile::Builtin { params }) => {
            if params.iter().any(|p| p == "enable_gvt") {
                ev.push((
                    format!("{}/modules.builtin.modinfo", s.modules.dir),
                    "i915 built in, parm enable_gvt".into(),
                ));
            } else {
                problems.push("built-in i915 has no enable_gvt parameter".into());
            }
        }
        Some(ModuleFile::Absent) => problems.push(format!("no i915 module in {}", s.modules.dir)),
        Some(ModuleFile::Unreadable(e)) if !unknown.iter().any(|u| u.contains(e.as_str())) => {
            unknown.push(format!("i915 module unreadable: {e}"));
        }
        Some(ModuleFile::Unreadable(_)) => {}
        None => {}
    }

    let distro_hint = match support::distro(s) {
        support::Distro::NixOs => {
            "NixOS's default kernel has it: `virtualisation.kvmgt.enable = true;`"
        }
        support::Distro::Proxmox => "Proxmox kernels build it as a module (kvmgt)",
        _ => "Debian, Ubuntu, Fedora and Arch stock kernels build it as the module kvmgt",
    };
    let mut o = if !problems.is_empty() {
        Outcome::fail(format!("kernel {release}: {}", problems.join("; "))).fix(format!(
            "Boot a kernel built with CONFIG_DRM_I915_GVT_KVMGT=m (which selects DRM_I915_GVT and VFIO_MDEV). {distro_hint}. A custom kernel needs those options plus CONFIG_VFIO, CONFIG_VFIO_IOMMU_TYPE1 and CONFIG_KVM_INTEL."
        ))
    } else if !unknown.is_empty() && !ev.iter().any(|(_, e)| e.contains("enable_gvt")) {
        Outcome::warn(format!(
            "kernel {release}: could not confirm GVT-g support: {}",
            unknown.join("; ")
        ))
    } else {
        let mut o = Outcome::pass(format!(
            "kernel {release} has KVMGT and i915 with enable_gvt"
        ));
        if !unknown.is_empty() {
            o.summary.push_str(&format!(" ({})", unknown.join("; ")));
        }
        o
    };
    for (p, e) in ev {
        o.push(p, e);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::testing::snapshot_with;

    #[test]
    fn config_without_kvmgt_fails() {
        let s = snapshot_with(|t| {
            t.file("proc/sys/kernel/osrelease", "6.1.0-custom\n");
            t.file(
                "boot/config-6.1.0-custom",
                "CONFIG_DRM_I915=m\n# CONFIG_DRM_I915_GVT_KVMGT is not set\nCONFIG_VFIO=m\n",
            );
        });
        let o = check_kernel_support(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(
            o.summary
                .contains("CONFIG_DRM_I915_GVT_KVMGT is not enabled"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn unknown_release_is_an_error() {
        let s = snapshot_with(|_| {});
        assert_eq!(
            check_kernel_support(&s, &Prior { done: &[] }).status,
            Status::Error
        );
    }
}
