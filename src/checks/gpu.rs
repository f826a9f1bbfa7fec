//! `gpu.igd`: the Intel integrated GPU on the PCI bus, which platform its device id belongs to,
//! and which driver holds it. Authoritative over the CPU guess: i915 matches device ids
//! (`i915_pci.c pciidlist`), not CPU models.

use super::{support, Check, Outcome, Prior};
use crate::host::snapshot::PciDevice;
use crate::host::{Probe, Snapshot};
use crate::platform::{self, Route};

pub(super) const CHECKS: &[Check] = &[Check {
    id: "gpu.igd",
    title: "Intel iGPU present and GVT-g capable",
    requires: &[],
    explain: include_str!("../../checks/gpu.igd.md"),
    run: check_gpu_igd,
}];

/// The aperture (GMADR) is BAR2 of the iGPU; it bounds the low graphics memory vGPUs get.
pub fn aperture_mb(d: &PciDevice) -> Option<u64> {
    d.bar_sizes
        .get(2)
        .copied()
        .filter(|s| *s > 0)
        .map(|s| s >> 20)
}

/// `[8086:5912] class 030000, driver i915` (or `, no driver`).
fn ids_class_driver(d: &PciDevice) -> String {
    format!(
        "[{:04x}:{:04x}] class {:06x}{}",
        d.vendor,
        d.device,
        d.class,
        d.driver
            .as_deref()
            .map(|x| format!(", driver {x}"))
            .unwrap_or_else(|| ", no driver".into())
    )
}

fn describe(d: &PciDevice) -> String {
    format!("{} {}", d.address, ids_class_driver(d))
}

fn check_gpu_igd(s: &Snapshot, _: &Prior) -> Outcome {
    let devices = match &s.pci {
        Probe::Ok(d) => d,
        other => {
            return Outcome::error(format!(
                "cannot list PCI devices: {}",
                other.describe_failure("/sys/bus/pci/devices")
            ))
        }
    };
    let igds = s.intel_igds();
    let Some(igd) = igds.first() else {
        let mut o = Outcome::fail("no Intel integrated GPU on the PCI bus")
            .fix("GVT-g needs the Intel iGPU. If the CPU has one, enable it in the firmware setup (often \"iGPU\", \"Integrated Graphics\" or \"iGPU Multi-Monitor\" = Enabled, primary display = Auto/IGD). CPUs without graphics (F-series, most Xeons) cannot use GVT-g; for a discrete GPU use whole-GPU VFIO passthrough (the device bound to vfio-pci; needs VT-d or AMD-Vi).");
        if let Some(d) = devices.iter().find(|d| d.address.ends_with("00:02.0")) {
            o.push(
                format!("/sys/bus/pci/devices/{}", d.address),
                format!(
                    "{} — not a display controller, so not an iGPU",
                    ids_class_driver(d)
                ),
            );
        }
        for d in devices.iter().filter(|d| d.is_display()) {
            o.push(
                format!("/sys/bus/pci/devices/{}/class", d.address),
                format!("display controller: {}", describe(d)),
            );
        }
        return o;
    };
    let path = format!("/sys/bus/pci/devices/{}", igd.address);
    let mut ev = vec![(format!("{path}/device"), describe(igd))];
    if let Some(mb) = aperture_mb(igd) {
        ev.push((
            format!("{path}/resource"),
            format!("BAR2 (aperture): {mb} MB"),
        ));
    }
    let finish = |mut o: Outcome| {
        for (p, e) in &ev {
            o.push(p.clone(), e.clone());
        }
        o
    };
    let plat = platform::platform_from_pci_id(igd.device);
    let name = plat.map(|p| p.name()).unwrap_or("unknown platform");
    let ids = format!("8086:{:04x}", igd.device);

    // Who holds the device matters before the platform: a GVT-d setup hides the iGPU from i915.
    if igd.driver.as_deref() == Some("vfio-pci") {
        {
            let mut o = Outcome::fail(format!(
                "the iGPU {ids} ({name}) is bound to vfio-pci (whole-GPU passthrough, GVT-d), so i915 cannot offer vGPUs"
            ));
            let mut fix = format!("To use GVT-g, give the iGPU back to i915: remove `{ids}` from `vfio-pci.ids=` on the kernel command line and from `options vfio-pci ids=` in /etc/modprobe.d, remove any `blacklist i915`, then {} and reboot.", support::regen_initramfs(s));
            for src in support::configured_param(s, "vfio-pci", "ids") {
                if src.value.as_deref().is_some_and(|v| {
                    v.to_ascii_lowercase()
                        .contains(&format!("{:04x}", igd.device))
                }) {
                    o.push(
                        src.origin.clone(),
                        format!("vfio-pci ids={}", src.value.unwrap_or_default()),
                    );
                }
            }
            fix.push_str(" To keep GVT-d instead, keep it bound to vfio-pci.");
            return finish(o.fix(fix));
        }
    }
    let mut o = match plat.map(|p| p.route()) {
        Some(Route::GvtG(v)) => Outcome::pass(format!(
            "Intel {name} iGPU {ids} at {}: GVT-g capable (GVTg_V{v}_* types)",
            igd.address
        )),
        Some(Route::SrIov) => Outcome::fail(format!(
            "Intel {name} iGPU {ids}: no GVT-g on this platform (i915 logs 'Unsupported device. GVT-g is disabled')"
        ))
        .fix("Route for this platform: SR-IOV with i915-sriov-dkms (`intel_iommu=on i915.enable_guc=3 i915.max_vfs=7`) or the xe driver (`xe.max_vfs`), or whole-GPU passthrough (the iGPU bound to vfio-pci)."),
        Some(Route::None) if plat == Some(platform::Platform::Discrete) => Outcome::fail(format!(
            "{ids} is an Intel discrete GPU, not an iGPU: GVT-g does not apply"
        )),
        Some(Route::None) => Outcome::fail(format!(
            "Intel {name} iGPU {ids}: no GVT-g and no SR-IOV on this platform"
        ))
        .fix("Only whole-GPU passthrough (GVT-d) is possible (bind it to vfio-pci; needs VT-d)."),
        None => Outcome::warn(format!(
            "Intel display device {ids} at {} is not in gvtg's table (newer or unusual part); the kernel log's 'Unsupported device' line decides",
            igd.address
        )),
    };
    if o.status == super::Status::Pass {
        match igd.driver.as_deref() {
            Some("i915") => {}
            None => {
                o = Outcome::fail(format!(
                    "Intel {name} iGPU {ids} has no driver bound: i915 is not loaded, blacklisted or failed to probe"
                ))
                .fix(format!("Make sure i915 loads: remove `blacklist i915` / `modprobe.blacklist=i915` / `nomodeset` where present, then `sudo modprobe i915` (or reboot) and check `dmesg | grep i915`. After changing modprobe.d: {}.", support::regen_initramfs(s)));
                for (file, mf) in &s.modprobe {
                    for e in &mf.entries {
                        if let crate::parse::modprobe::Directive::Blacklist { module } =
                            &e.directive
                        {
                            if module == "i915" {
                                o.push(format!("{file}:{}", e.line), "blacklist i915");
                            }
                        }
                    }
                }
            }
            Some(other) => {
                o = Outcome::fail(format!(
                    "Intel {name} iGPU {ids} is driven by {other}, not i915: GVT-g is part of i915"
                ))
                .fix(format!("Bind the iGPU to i915 (remove the setting that hands it to {other}, e.g. `xe.force_probe=` or a driver_override) and reboot."));
            }
        }
    }
    finish(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::testing::{snapshot_with, Tree};

    fn pci(t: &mut Tree, addr: &str, vendor: u16, device: u16, class: u32, driver: Option<&str>) {
        let b = format!("sys/bus/pci/devices/{addr}");
        t.file(&format!("{b}/vendor"), &format!("0x{vendor:04x}\n"));
        t.file(&format!("{b}/device"), &format!("0x{device:04x}\n"));
        t.file(&format!("{b}/class"), &format!("0x{class:06x}\n"));
        if let Some(d) = driver {
            t.link(
                &format!("{b}/driver"),
                &format!("../../../bus/pci/drivers/{d}"),
            );
        }
    }

    fn run(s: &Snapshot) -> Outcome {
        check_gpu_igd(s, &Prior { done: &[] })
    }

    #[test]
    fn kaby_lake_on_i915_passes() {
        let s = snapshot_with(|t| {
            pci(t, "0000:00:02.0", 0x8086, 0x5912, 0x030000, Some("i915"));
        });
        let o = run(&s);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("Kaby Lake"));
    }

    #[test]
    fn intel_nic_at_02_is_not_a_gpu() {
        let s = snapshot_with(|t| {
            pci(t, "0000:00:02.0", 0x8086, 0x15b8, 0x020000, Some("e1000e"));
            pci(t, "0000:01:00.0", 0x10de, 0x1b80, 0x030000, Some("nvidia"));
        });
        let o = run(&s);
        assert_eq!(o.status, Status::Fail);
        assert!(o
            .evidence
            .iter()
            .any(|e| e.excerpt.contains("not a display controller")));
    }

    #[test]
    fn display_class_0380_counts() {
        let s = snapshot_with(|t| {
            pci(t, "0000:00:02.0", 0x8086, 0x1916, 0x038000, Some("i915"));
        });
        assert_eq!(run(&s).status, Status::Pass);
    }

    #[test]
    fn vfio_pci_claim_and_unsupported_platforms() {
        let s = snapshot_with(|t| {
            pci(
                t,
                "0000:00:02.0",
                0x8086,
                0x1912,
                0x030000,
                Some("vfio-pci"),
            );
        });
        let o = run(&s);
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("vfio-pci"));
        let s = snapshot_with(|t| {
            pci(t, "0000:00:02.0", 0x8086, 0x9a49, 0x030000, Some("i915"));
        });
        assert!(run(&s).remedy.unwrap().contains("SR-IOV"));
        let s = snapshot_with(|t| {
            pci(t, "0000:00:02.0", 0x8086, 0x3185, 0x030000, Some("i915"));
        });
        assert!(run(&s).summary.contains("Gemini Lake"));
        let s = snapshot_with(|t| {
            pci(t, "0000:00:02.0", 0x8086, 0x3e92, 0x030000, None);
        });
        assert!(run(&s).summary.contains("no driver"));
    }
}
