//! `iommu.state`: is a hardware IOMMU (VT-d) translating, and how do we know?
//!
//! Information for GVT-g, which does not need VT-d: vGPUs are emulated-IOMMU VFIO devices
//! (`vfio_register_emulated_iommu_dev`) whose software groups are named `vfio-noiommu`. So a
//! non-empty `/sys/kernel/iommu_groups` proves nothing; `/sys/class/iommu/dmar*` (registered by
//! `intel_iommu_init`) does. VT-d matters for whole-GPU passthrough and SR-IOV VFs.

use super::{support, Check, Outcome, Prior};
use crate::host::Snapshot;

pub(super) const CHECKS: &[Check] = &[Check {
    id: "iommu.state",
    title: "IOMMU state (informational for GVT-g)",
    requires: &[],
    explain: include_str!("../../checks/iommu.state.md"),
    run: check_iommu_state,
}];

fn check_iommu_state(s: &Snapshot, _: &Prior) -> Outcome {
    let units: Vec<String> = s.iommu_class.ok().cloned().unwrap_or_default();
    let dmar_units: Vec<&String> = units.iter().filter(|u| u.starts_with("dmar")).collect();
    let amd_units: Vec<&String> = units.iter().filter(|u| u.starts_with("ivhd")).collect();
    let groups = s.iommu_groups.ok().cloned().unwrap_or_default();
    let hw_groups = groups
        .iter()
        .filter(|g| g.name.as_deref() != Some("vfio-noiommu"))
        .count();
    let sw_groups = groups.len() - hw_groups;
    let cmd = s.cmdline.ok();
    let intel_param = cmd
        .map(|c| c.get("intel_iommu"))
        .unwrap_or_default()
        .last()
        .and_then(|p| p.value.clone());
    let iommu_param = cmd
        .map(|c| c.get("iommu"))
        .unwrap_or_default()
        .last()
        .and_then(|p| p.value.clone());
    let default_on = s
        .kconfig
        .ok()
        .map(|(_, k)| k.enabled("INTEL_IOMMU_DEFAULT_ON"));

    let mut o = if !dmar_units.is_empty() || !amd_units.is_empty() {
        Outcome::pass(format!(
            "IOMMU on ({} unit(s): {}); {hw_groups} hardware IOMMU group(s). Not needed for GVT-g; needed for passthrough and SR-IOV",
            units.len(),
            units.join(", ")
        ))
    } else if s.dmar_table || s.ivrs_table {
        let mut o = Outcome::pass(format!(
            "IOMMU present in firmware ({} table) but not enabled by the kernel. Fine for GVT-g; passthrough and SR-IOV need it on",
            if s.dmar_table { "ACPI DMAR" } else { "ACPI IVRS" }
        ));
        if intel_param
            .as_deref()
            .is_some_and(|v| v.split(',').any(|x| x == "on"))
        {
            o.status = super::Status::Warn;
            o.summary = "intel_iommu=on is on the command line and the firmware has a DMAR table, yet no DMAR unit registered: check dmesg for DMAR errors".into();
        } else {
            o = o.fix(format!(
                "Only for passthrough/SR-IOV: {}",
                support::add_kernel_params(
                    s,
                    if s.dmar_table {
                        "intel_iommu=on iommu=pt"
                    } else {
                        "amd_iommu=on iommu=pt"
                    }
                )
            ));
        }
        o
    } else {
        Outcome::pass(
            "no IOMMU (no ACPI DMAR/IVRS table, no /sys/class/iommu units): fine for GVT-g; passthrough and SR-IOV would need VT-d enabled in firmware",
        )
    };
    if s.dmar_table {
        o.push("/sys/firmware/acpi/tables/DMAR", "present");
    }
    if s.ivrs_table {
        o.push("/sys/firmware/acpi/tables/IVRS", "present");
    }
    for u in &units {
        o.push(format!("/sys/class/iommu/{u}"), "registered");
    }
    if sw_groups > 0 {
        o.push(
            "/sys/kernel/iommu_groups",
            format!("{sw_groups} software group(s) named vfio-noiommu (emulated mdevs): no proof of VT-d"),
        );
    }
    if let Some(v) = intel_param {
        o.push("/proc/cmdline", format!("intel_iommu={v}"));
        if v.split(',').any(|x| x == "igfx_off") {
            o.push(
                "/proc/cmdline",
                "igfx_off: the iGPU is left out of VT-d translation (harmless for GVT-g)",
            );
        }
    }
    if let Some(v) = iommu_param {
        o.push("/proc/cmdline", format!("iommu={v}"));
    }
    if let (Some(d), Some((path, _))) = (default_on, s.kconfig.ok()) {
        o.push(
            path.clone(),
            format!(
                "CONFIG_INTEL_IOMMU_DEFAULT_ON {}",
                if d { "y" } else { "is not set" }
            ),
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::testing::snapshot_with;

    #[test]
    fn noiommu_groups_do_not_count() {
        let s = snapshot_with(|t| {
            t.file("sys/kernel/iommu_groups/0/name", "vfio-noiommu\n");
            t.dir("sys/kernel/iommu_groups/0/devices");
        });
        let o = check_iommu_state(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Pass);
        assert!(o.summary.starts_with("no IOMMU"), "{}", o.summary);
        assert!(o.evidence.iter().any(|e| e.excerpt.contains("no proof")));
    }

    #[test]
    fn dmar_units_mean_on() {
        let s = snapshot_with(|t| {
            t.dir("sys/class/iommu/dmar0");
            t.file("sys/firmware/acpi/tables/DMAR", "");
        });
        let o = check_iommu_state(&s, &Prior { done: &[] });
        assert!(o.summary.starts_with("IOMMU on"), "{}", o.summary);
    }

    #[test]
    fn on_requested_but_not_active_warns() {
        let s = snapshot_with(|t| {
            t.file("sys/firmware/acpi/tables/DMAR", "");
            t.file("proc/cmdline", "intel_iommu=on\n");
        });
        assert_eq!(
            check_iommu_state(&s, &Prior { done: &[] }).status,
            Status::Warn
        );
    }
}
