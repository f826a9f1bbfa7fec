//! `cpu.generation`: is this CPU's platform one that has GVT-g at all?
//!
//! The CPU is only a hint (gpu.igd is authoritative): one model number covers several
//! generations, and a CPU without an iGPU reports the same family/model as one with it. But it
//! is what users know ("I have an i7-8700"), it is readable without root, and it tells an AMD
//! host or a guest VM apart at once.

use super::{Check, Outcome, Prior};
use crate::host::{Probe, Snapshot};
use crate::platform::{self, Route};

pub(super) const CHECKS: &[Check] = &[Check {
    id: "cpu.generation",
    title: "CPU platform has GVT-g",
    requires: &[],
    explain: include_str!("../../checks/cpu.generation.md"),
    run: check_cpu_generation,
}];

const SRIOV_ROUTE: &str = "GVT-g ends with Comet Lake. On this platform the route to shared graphics is SR-IOV: the out-of-tree i915-sriov-dkms module (kernel parameters `intel_iommu=on i915.enable_guc=3 i915.max_vfs=7`, then `echo N > /sys/bus/pci/devices/0000:00:02.0/sriov_numvfs`) or the xe driver with `xe.max_vfs`. Or pass the whole iGPU to one VM (GVT-d) (bind it to vfio-pci; needs VT-d).";

fn check_cpu_generation(s: &Snapshot, _: &Prior) -> Outcome {
    let ci = match &s.cpuinfo {
        Probe::Ok(c) => c,
        other => {
            return Outcome::error(format!(
                "cannot judge the CPU: {}",
                other.describe_failure("/proc/cpuinfo")
            ))
        }
    };
    let name = ci.model_name.as_deref();
    let mut ev = Vec::new();
    if let Some(v) = &ci.vendor_id {
        ev.push(format!("vendor_id: {v}"));
    }
    if let (Some(f), Some(m)) = (ci.family, ci.model) {
        ev.push(format!(
            "cpu family: {f}, model: {m} ({m:#x}){}",
            ci.stepping
                .map(|s| format!(", stepping: {s}"))
                .unwrap_or_default()
        ));
    }
    if let Some(n) = name {
        ev.push(format!("model name: {n}"));
    }
    let with_ev = |mut o: Outcome| {
        for e in &ev {
            o.push("/proc/cpuinfo", e.clone());
        }
        o
    };
    let guest = ci.has_flag("hypervisor") == Some(true);
    let vendor_amd =
        ci.vendor_id.as_deref() == Some("AuthenticAMD") || name.is_some_and(|n| n.contains("AMD "));
    let vendor_intel = ci.vendor_id.as_deref() == Some("GenuineIntel")
        || name.is_some_and(|n| n.contains("Intel"));

    if vendor_amd {
        return with_ev(
            Outcome::fail(format!(
                "AMD CPU{}: GVT-g is a feature of Intel integrated graphics and does not exist here",
                if guest { " (seen from inside a VM)" } else { "" }
            ))
            .fix("Nothing to fix for GVT-g. To give a whole GPU to a VM instead (VFIO passthrough), use whole-GPU VFIO passthrough (the device bound to vfio-pci; needs VT-d or AMD-Vi)."),
        );
    }
    if !vendor_intel {
        return with_ev(match &ci.vendor_id {
            Some(v) => Outcome::fail(format!("{v} CPU: GVT-g exists only on Intel platforms")),
            None => Outcome::warn(
                "insufficient data: /proc/cpuinfo names no vendor or model (a partial or non-x86 cpuinfo)",
            ),
        });
    }
    // A partial paste (`grep model /proc/cpuinfo`) lacks the family line. Every Intel Core,
    // Pentium, Celeron and Xeon since the Pentium Pro is family 6, so a named Intel part with
    // a model number is judged as family 6, and the summary says it was assumed.
    let assumed_family =
        ci.family.is_none() && ci.model.is_some() && name.is_some_and(|n| n.contains("Intel"));
    let (Some(family), Some(model)) = (ci.family.or(assumed_family.then_some(6)), ci.model) else {
        return with_ev(Outcome::warn(
            "insufficient data: /proc/cpuinfo has no cpu family/model; gpu.igd decides",
        ));
    };
    let Some((plat, label)) = platform::platform_from_cpu(family, model, name) else {
        return with_ev(Outcome::warn(format!(
            "unknown Intel CPU (family {family}, model {model:#x}); gpu.igd decides from the iGPU id"
        )));
    };
    let guest_note = if guest {
        "; the hypervisor flag shows this is a guest VM: judge the host, not the guest"
    } else {
        ""
    };
    let no_vmx = !guest && ci.has_flag("vmx") == Some(false);

    let mut o = if plat.is_server() {
        Outcome::fail(format!(
            "Intel CPU (family {family}, model {model:#x}) is a server part without integrated graphics{guest_note}"
        ))
            .fix("GVT-g needs an Intel CPU with integrated graphics (Broadwell to Comet Lake). For a discrete GPU, use whole-GPU VFIO passthrough (the device bound to vfio-pci; needs VT-d or AMD-Vi).")
    } else if name.is_some_and(platform::name_says_no_igpu) {
        Outcome::fail(format!(
            "{label}: this model has no integrated graphics (F-series or Xeon without iGPU){guest_note}"
        ))
        .fix("GVT-g needs the iGPU. Use a CPU with graphics, or whole-GPU passthrough of a discrete card (bind it to vfio-pci; needs VT-d).")
    } else {
        match plat.route() {
            Route::GvtG(v) => {
                let base = format!("Intel {label}: GVT-g supported (vGPU types GVTg_V{v}_*)");
                if guest {
                    Outcome::warn(format!("{base}{guest_note}")).fix(
                        "Run gvtg on the host. Inside a guest, i915 logs 'GVT-g is disabled for guest'.",
                    )
                } else {
                    Outcome::pass(base)
                }
            }
            Route::SrIov => Outcome::fail(format!(
                "Intel {label}: no GVT-g on this platform (the kernel's list ends with Comet Lake){guest_note}"
            ))
            .fix(SRIOV_ROUTE),
            Route::None => Outcome::fail(format!(
                "Intel {label}: no GVT-g and no SR-IOV on this platform{guest_note}"
            ))
            .fix("Only whole-GPU passthrough (GVT-d) remains (bind it to vfio-pci; needs VT-d)."),
        }
    };
    if guest && o.status == super::Status::Fail {
        // A guest's CPU model is whatever the hypervisor presents; say so, but a fail on
        // what we can see is still a fail for running GVT-g *here*.
        o.summary
            .push_str(" (guest CPU model as presented by the hypervisor)");
    }
    if no_vmx {
        o.summary
            .push_str("; no vmx flag: VT-x is off in firmware or absent, so KVM cannot run");
        o.at_least(super::Status::Warn);
        let fix = o.remedy.take().unwrap_or_default();
        o.remedy = Some(format!(
            "{fix}{}Enable Intel Virtualization Technology (VT-x) in the firmware setup.",
            if fix.is_empty() { "" } else { "\n" }
        ));
    }
    if assumed_family {
        o.summary
            .push_str(" (partial /proc/cpuinfo: no family line, family 6 assumed)");
    }
    with_ev(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Status;
    use crate::testing::snapshot_with;

    fn run(cpuinfo: &str) -> Outcome {
        let s = snapshot_with(|t| {
            t.file("proc/cpuinfo", cpuinfo);
        });
        check_cpu_generation(&s, &Prior { done: &[] })
    }

    #[test]
    fn verdicts_on_real_cpuinfo() {
        use crate::testing::sample;
        for (file, status, needle) in [
            ("cpuinfo/broadwell-i5-5200U.txt", Status::Pass, "GVTg_V4"),
            (
                "cpuinfo/broadwell-i7-5500U-lkml-mailwrapped.txt",
                Status::Pass,
                "Broadwell",
            ),
            (
                "cpuinfo/skylake-i7-6700-desktop.txt",
                Status::Pass,
                "Skylake",
            ),
            ("cpuinfo/kabylake-r-i7-8550U.txt", Status::Pass, "GVTg_V5"),
            (
                "cpuinfo/cometlake-u-i7-10510U-model142.txt",
                Status::Pass,
                "Comet Lake",
            ),
            (
                "cpuinfo/cometlake-s-i7-10700K.txt",
                Status::Pass,
                "Comet Lake",
            ),
            (
                "cpuinfo/apollolake-celeron-J3455.txt",
                Status::Pass,
                "Apollo Lake",
            ),
            (
                "cpuinfo/xeon-e-2278G-coffeelake.txt",
                Status::Pass,
                "supported",
            ),
            ("cpuinfo/skylake-i7-6600U.txt", Status::Warn, "guest"),
            (
                "cpuinfo/haswell-i7-4770-desktop.txt",
                Status::Fail,
                "Haswell",
            ),
            (
                "cpuinfo/geminilake-celeron-N4100.txt",
                Status::Fail,
                "Gemini Lake",
            ),
            ("cpuinfo/icelake-i7-1065G7.txt", Status::Fail, "Ice Lake"),
            (
                "cpuinfo/jasperlake-celeron-N5100.txt",
                Status::Fail,
                "Jasper",
            ),
            (
                "cpuinfo/tigerlake-i7-1165G7.txt",
                Status::Fail,
                "Tiger Lake",
            ),
            (
                "cpuinfo/alderlake-s-i5-12400.txt",
                Status::Fail,
                "Alder Lake",
            ),
            (
                "cpuinfo/raptorlake-i7-13700.txt",
                Status::Fail,
                "Raptor Lake",
            ),
            (
                "cpuinfo/rocketlake-i7-11700F-no-igpu.txt",
                Status::Fail,
                "no integrated graphics",
            ),
            (
                "cpuinfo/xeon-e3-1230v5-no-igpu.txt",
                Status::Fail,
                "no integrated graphics",
            ),
            (
                "cpuinfo/xeon-gold-6248-cascadelake.txt",
                Status::Fail,
                "server",
            ),
            ("cpuinfo/xeon-e5620-westmere.txt", Status::Fail, "server"),
            (
                "cpuinfo/amd-ryzen7-2700X-baremetal.txt",
                Status::Fail,
                "AMD",
            ),
            (
                "cpuinfo/amd-ryzen7-2700X-in-vm.txt",
                Status::Fail,
                "inside a VM",
            ),
            ("cpuinfo/sandybridge-i7-2600.txt", Status::Fail, "no vmx"),
            ("cpuinfo/skylake-i5-6200U-grep.txt", Status::Pass, "Skylake"),
        ] {
            let o = run(&sample(file));
            assert_eq!(o.status, status, "{file}: {}", o.summary);
            assert!(o.summary.contains(needle), "{file}: {}", o.summary);
        }
    }

    #[test]
    fn tiger_lake_names_the_sriov_route() {
        let o = run(&crate::testing::sample("cpuinfo/tigerlake-h-i7-11850H.txt"));
        assert!(o.remedy.unwrap().contains("SR-IOV"));
    }

    #[test]
    fn missing_cpuinfo_is_an_error_not_a_panic() {
        let s = snapshot_with(|_| {});
        let o = check_cpu_generation(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Error);
    }
}
