//! Whole-GPU VFIO passthrough (`gvtg doctor --passthrough PCI`): a separate catalog, run after
//! the GVT-g checks, judging the functions named on the command line and their sibling
//! functions (the same bus/device: HDMI audio `.1`, USB-C `.2`/`.3`).
//!
//! The facts are the ones of shared/knowledge/gvt-g.md §6: an IOMMU is on only when the kernel
//! registered a unit (`/sys/class/iommu/dmar*` or `ivhd*`), not merely when the firmware has a
//! DMAR/IVRS table; `vfio-noiommu` groups are software groups and prove nothing; a group is
//! viable for VFIO only when every member is bound to vfio-pci (or pci-stub, or nothing) or is a
//! PCI bridge (drivers/vfio/group.c, `vfio_dev_driver_allowed`).

use super::{support, Check, Outcome, Prior, Status};
use serde::Serialize;

use crate::host::snapshot::PciDevice;
use crate::host::Snapshot;

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "passthrough.iommu",
        title: "IOMMU on for passthrough (VT-d / AMD-Vi)",
        requires: &[],
        explain: include_str!("../../checks/passthrough.iommu.md"),
        run: check_iommu,
    },
    Check {
        id: "passthrough.group",
        title: "IOMMU group viable for VFIO",
        requires: &["passthrough.iommu"],
        explain: include_str!("../../checks/passthrough.group.md"),
        run: check_group,
    },
    Check {
        id: "passthrough.binding",
        title: "vfio-pci claims the device at boot",
        requires: &[],
        explain: include_str!("../../checks/passthrough.binding.md"),
        run: check_binding,
    },
    Check {
        id: "passthrough.host-driver",
        title: "No host driver holds the device",
        requires: &[],
        explain: include_str!("../../checks/passthrough.host-driver.md"),
        run: check_host_driver,
    },
    Check {
        id: "passthrough.framebuffer",
        title: "No firmware framebuffer on the boot GPU",
        requires: &[],
        explain: include_str!("../../checks/passthrough.framebuffer.md"),
        run: check_framebuffer,
    },
    Check {
        id: "passthrough.kvm-msrs",
        title: "kvm.ignore_msrs for NVIDIA/Windows guests",
        requires: &[],
        explain: include_str!("../../checks/passthrough.kvm-msrs.md"),
        run: check_kvm_msrs,
    },
    Check {
        id: "passthrough.reset",
        title: "Device reset between VM runs",
        requires: &[],
        explain: include_str!("../../checks/passthrough.reset.md"),
        run: check_reset,
    },
    Check {
        id: "passthrough.vfio-nodes",
        title: "/dev/vfio group nodes usable by QEMU",
        requires: &["passthrough.iommu"],
        explain: include_str!("../../checks/passthrough.vfio-nodes.md"),
        run: check_vfio_nodes,
    },
    Check {
        id: "passthrough.looking-glass",
        title: "Looking Glass shared memory (IVSHMEM, kvmfr)",
        requires: &[],
        explain: include_str!("../../checks/passthrough.looking-glass.md"),
        run: super::looking_glass::check,
    },
];

/// Drivers that leave a function usable by VFIO (a group member may also have none).
const VFIO_OK: &[&str] = &["vfio-pci", "pci-stub"];

/// Short vendor name, with a trailing space (empty when unknown).
pub fn vendor_name(v: u16) -> &'static str {
    match v {
        0x10de => "NVIDIA ",
        0x1002 | 0x1022 => "AMD ",
        0x8086 => "Intel ",
        0x1b21 => "ASMedia ",
        0x1b36 | 0x1af4 => "Red Hat ",
        _ => "",
    }
}

/// What a class code is, in words.
pub fn class_name(class: u32) -> &'static str {
    match class >> 8 {
        0x0300 => "VGA controller",
        0x0302 => "3D controller",
        0x0380 => "display controller",
        0x0403 => "audio device",
        0x0c03 => "USB controller",
        0x0c80 => "serial bus controller",
        0x0604 => "PCI bridge",
        0x0600 => "host bridge",
        0x0601 => "ISA bridge",
        0x0c05 => "SMBus controller",
        c if c >> 8 == 0x01 => "storage controller",
        c if c >> 8 == 0x02 => "network controller",
        c if c >> 8 == 0x03 => "display controller",
        c if c >> 8 == 0x06 => "bridge",
        _ => "device",
    }
}

/// The host drivers that claim a function of this vendor and class.
pub fn host_drivers(d: &PciDevice) -> &'static [&'static str] {
    match (d.vendor, d.class >> 16, d.class >> 8) {
        (0x10de, 0x03, _) => &["nvidia", "nouveau"],
        (0x1002, 0x03, _) => &["amdgpu", "radeon"],
        (0x8086, 0x03, _) => &["i915", "xe"],
        (_, _, 0x0403) => &["snd_hda_intel"],
        (_, _, 0x0c03) => &["xhci_pci"],
        (0x10de, _, 0x0c80) => &["i2c_nvidia_gpu"],
        _ => &[],
    }
}

/// Whether `d` may stay in an IOMMU group handed to VFIO as it is: unbound, on vfio-pci or
/// pci-stub, or a PCI bridge (drivers/vfio/group.c, `vfio_dev_driver_allowed`). The one rule
/// the group check, the candidate listing and `gvtg preflight` share.
pub fn vfio_safe(d: &PciDevice) -> bool {
    d.driver.as_deref().is_none_or(|x| VFIO_OK.contains(&x)) || d.is_pci_bridge()
}

/// The members of IOMMU group `g` that keep it from being viable, `ignore` aside (functions that
/// go to the VM with the device: its siblings, or the domain's other hostdevs).
pub fn group_offenders(
    s: &Snapshot,
    g: u32,
    ignore: impl Fn(&PciDevice) -> bool,
) -> Vec<&PciDevice> {
    group_members(s, g)
        .iter()
        .filter_map(|a| by_addr(s, a))
        .filter(|d| !vfio_safe(d) && !ignore(d))
        .collect()
}

/// What the kernel can do to reset a function between VM runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reset {
    /// No `reset_method` file (kernel before 5.15).
    Unknown,
    /// `reset_method` is empty: no reset at all.
    None,
    /// The methods, in the kernel's order (`flr bus`).
    Methods(String),
}

/// [`Reset`] of `d`, and whether it is an AMD GPU without FLR (Polaris, Vega, Navi 1x: the AMD
/// reset bug).
pub fn reset_of(d: &PciDevice) -> (Reset, bool) {
    let r = match d.reset_method.as_deref() {
        None => Reset::Unknown,
        Some("") => Reset::None,
        Some(v) => Reset::Methods(v.to_string()),
    };
    let amd_no_flr = d.vendor == 0x1002
        && d.is_display()
        && matches!(&r, Reset::Methods(v) if !v.split_whitespace().any(|x| x == "flr"));
    (r, amd_no_flr)
}

/// Why `d` looks like the GPU the host's display runs on: a display function bound to its GPU
/// driver (not vfio-pci) that is the boot VGA device or the only display function on a GPU
/// driver. Detaching it (libvirt's `managed='yes'`) takes the screen from the desktop, and
/// unbinding a GPU a display server holds can hang the session.
pub fn drives_host_display(s: &Snapshot, d: &PciDevice) -> Option<String> {
    let drv = d.driver.as_deref()?;
    if !d.is_display() || !host_drivers(d).contains(&drv.replace('-', "_").as_str()) {
        return None;
    }
    if d.boot_vga == Some(true) {
        return Some(format!(
            "{} is the boot VGA device and {drv} drives it: the host's display most likely runs on it",
            d.address
        ));
    }
    let on_gpu_driver = all_pci(s)
        .iter()
        .filter(|x| {
            x.is_display()
                && x.driver
                    .as_deref()
                    .is_some_and(|y| host_drivers(x).contains(&y.replace('-', "_").as_str()))
        })
        .count();
    (on_gpu_driver == 1).then(|| {
        format!(
            "{} is the only display function on a GPU driver ({drv}): the host's display runs on it",
            d.address
        )
    })
}

fn all_pci(s: &Snapshot) -> &[PciDevice] {
    s.pci.ok().map(Vec::as_slice).unwrap_or_default()
}

fn by_addr<'a>(s: &'a Snapshot, addr: &str) -> Option<&'a PciDevice> {
    all_pci(s).iter().find(|d| d.address == addr)
}

/// The other functions of `d`'s bus/device.
pub fn siblings<'a>(s: &'a Snapshot, d: &PciDevice) -> Vec<&'a PciDevice> {
    all_pci(s)
        .iter()
        .filter(|o| o.slot() == d.slot() && o.address != d.address)
        .collect()
}

/// The display-class functions: what `--passthrough` without an argument lists.
pub fn candidates(s: &Snapshot) -> Vec<&PciDevice> {
    all_pci(s).iter().filter(|d| d.is_display()).collect()
}

/// The functions passed through: the named ones and their siblings, sorted by address.
pub fn members(s: &Snapshot) -> Vec<&PciDevice> {
    let mut v: Vec<&PciDevice> = Vec::new();
    for a in &s.passthrough {
        if let Some(d) = by_addr(s, a) {
            v.push(d);
            v.extend(siblings(s, d));
        }
    }
    v.sort_by(|a, b| a.address.cmp(&b.address));
    v.dedup_by(|a, b| a.address == b.address);
    v
}

/// `0000:01:00.0 (10de:1b80 VGA controller, vfio-pci)`.
pub fn describe(d: &PciDevice) -> String {
    format!(
        "{} ({} {}{}, {})",
        d.address,
        d.id(),
        vendor_name(d.vendor),
        class_name(d.class),
        d.driver.as_deref().unwrap_or("no driver")
    )
}

/// Resolves `--passthrough` arguments (`0000:01:00.0`, `01:00.0` or `10de:1b80`) to full
/// addresses; the error names the candidates.
pub fn resolve(s: &Snapshot, specs: &[String]) -> Result<Vec<String>, String> {
    resolve_in(all_pci(s), specs)
}

/// [`resolve`] over a plain list of PCI functions (what `gvtg passthrough bind` reads).
pub fn resolve_in(pci: &[PciDevice], specs: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for spec in specs {
        let spec = spec.trim().to_ascii_lowercase();
        let full = if spec.matches(':').count() == 1 && spec.contains('.') {
            format!("0000:{spec}")
        } else {
            spec.clone()
        };
        let mut found: Vec<String> = pci
            .iter()
            .filter(|d| d.address == full)
            .map(|d| d.address.clone())
            .collect();
        if found.is_empty() && !spec.contains('.') {
            found = pci
                .iter()
                .filter(|d| d.id() == spec)
                .map(|d| d.address.clone())
                .collect();
        }
        if found.is_empty() {
            let c: Vec<String> = pci
                .iter()
                .filter(|d| d.is_display())
                .map(describe)
                .collect();
            return Err(format!(
                "no PCI function '{spec}' on this host (give an address like 0000:01:00.0 or 01:00.0, or a vendor:device id like 10de:1b80); candidates: {}",
                if c.is_empty() {
                    "none (no display-class PCI function)".to_string()
                } else {
                    c.join("; ")
                }
            ));
        }
        out.extend(found);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One PCI function in the candidate listing (`gvtg doctor --passthrough --json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Function {
    /// Full address (`0000:01:00.0`).
    pub address: String,
    /// `vendor:device` (`10de:1b80`).
    pub id: String,
    /// The 24-bit class code as hex (`0x030000`).
    pub class: String,
    /// The class in words (`VGA controller`).
    pub class_name: &'static str,
    /// Vendor name when known (`NVIDIA`).
    pub vendor_name: Option<&'static str>,
    /// Bound driver (None: unbound).
    pub driver: Option<String>,
    /// `reset_method` as the kernel lists it (None: no such file, kernel before 5.15; `""`: no
    /// reset method).
    pub reset_method: Option<String>,
}

/// A group member in the listing: a [`Function`] and whether it keeps the group from being
/// viable.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Member {
    /// The function.
    #[serde(flatten)]
    pub function: Function,
    /// A PCI bridge (allowed in a viable group).
    pub bridge: bool,
    /// Bound to a host driver and not the candidate's own function: VFIO refuses the group.
    pub blocks: bool,
}

/// One display-class function the listing offers for passthrough.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Candidate {
    /// The GPU function.
    #[serde(flatten)]
    pub function: Function,
    /// `boot_vga` (the firmware's primary display); None when the file is absent.
    pub boot_vga: Option<bool>,
    /// Its IOMMU group number; None when the IOMMU is off.
    pub iommu_group: Option<u32>,
    /// The other functions of its slot (HDMI audio, USB-C), passed through with it.
    pub siblings: Vec<Function>,
    /// The other members of its IOMMU group (siblings included).
    pub group_members: Vec<Member>,
    /// True when every other member is a bridge, a sibling, unbound or on vfio-pci/pci-stub;
    /// None without an IOMMU group.
    pub viable: Option<bool>,
}

fn function(d: &PciDevice) -> Function {
    let v = vendor_name(d.vendor).trim_end();
    Function {
        address: d.address.clone(),
        id: d.id(),
        class: format!("0x{:06x}", d.class),
        class_name: class_name(d.class),
        vendor_name: (!v.is_empty()).then_some(v),
        driver: d.driver.clone(),
        reset_method: d.reset_method.clone(),
    }
}

/// The candidate GPUs with their siblings and IOMMU groups: what both forms of the listing show.
pub fn candidate_list(s: &Snapshot) -> Vec<Candidate> {
    candidates(s)
        .into_iter()
        .map(|d| {
            let group_members: Vec<Member> = d
                .iommu_group
                .map(|g| {
                    group_members(s, g)
                        .into_iter()
                        .filter(|m| *m != d.address)
                        .map(|m| match by_addr(s, &m) {
                            Some(o) => Member {
                                function: function(o),
                                bridge: o.is_pci_bridge(),
                                blocks: o.slot() != d.slot() && !vfio_safe(o),
                            },
                            // A group member sysfs does not list as a PCI function.
                            None => Member {
                                function: Function {
                                    address: m,
                                    id: String::new(),
                                    class: String::new(),
                                    class_name: "device",
                                    vendor_name: None,
                                    driver: None,
                                    reset_method: None,
                                },
                                bridge: false,
                                blocks: false,
                            },
                        })
                        .collect()
                })
                .unwrap_or_default();
            Candidate {
                function: function(d),
                boot_vga: d.boot_vga,
                iommu_group: d.iommu_group,
                siblings: siblings(s, d).into_iter().map(function).collect(),
                viable: d
                    .iommu_group
                    .map(|_| !group_members.iter().any(|m| m.blocks)),
                group_members,
            }
        })
        .collect()
}

fn describe_fn(f: &Function) -> String {
    if f.id.is_empty() {
        return f.address.clone();
    }
    format!(
        "{} ({} {}{}, {})",
        f.address,
        f.id,
        f.vendor_name.map(|v| format!("{v} ")).unwrap_or_default(),
        f.class_name,
        f.driver.as_deref().unwrap_or("no driver")
    )
}

/// The ls-iommu-style listing printed by `gvtg doctor --passthrough` without an argument.
pub fn listing(s: &Snapshot) -> String {
    let mut out = String::new();
    let cands = candidate_list(s);
    if cands.is_empty() {
        out.push_str("No display-class PCI function on this host: nothing to pass through.\n");
        return out;
    }
    out.push_str(
        "Passthrough candidates (display-class PCI functions and their sibling functions):\n",
    );
    for c in &cands {
        out.push_str(&format!(
            "\n{}{}\n",
            describe_fn(&c.function),
            if c.boot_vga == Some(true) {
                " [boot VGA]"
            } else {
                ""
            }
        ));
        for sib in &c.siblings {
            out.push_str(&format!("  sibling  {}\n", describe_fn(sib)));
        }
        match c.iommu_group {
            None => out.push_str("  IOMMU group: none (the IOMMU is off)\n"),
            Some(g) => {
                out.push_str(&format!(
                    "  IOMMU group {g}: {}\n",
                    if c.group_members.is_empty() {
                        "the device alone".to_string()
                    } else if c.viable == Some(true) {
                        "with (bridges and its own functions only)".to_string()
                    } else {
                        "with (the marked devices stay on host drivers, so the group is not viable)"
                            .to_string()
                    }
                ));
                for m in &c.group_members {
                    out.push_str(&format!(
                        "    {}{}\n",
                        describe_fn(&m.function),
                        if m.blocks { "  <- host driver" } else { "" }
                    ));
                }
            }
        }
    }
    out.push_str(
        "\nChoose a GPU whose IOMMU group holds nothing but PCI bridges and its own functions (an\nHDMI audio .1, USB-C .2/.3): VFIO takes a whole group or nothing. Then check it (its sibling\nfunctions are included), by address or vendor:device id:\n    gvtg doctor --passthrough 0000:01:00.0\n    gvtg doctor --passthrough 10de:1b80\n",
    );
    out
}

/// The members of IOMMU group `g` from `/sys/kernel/iommu_groups`, else (a capture without that
/// directory) the PCI functions whose `iommu_group` link names it.
fn group_members(s: &Snapshot, g: u32) -> Vec<String> {
    s.iommu_groups
        .ok()
        .and_then(|gs| gs.iter().find(|x| x.number == g))
        .and_then(|x| x.devices.clone())
        .unwrap_or_else(|| {
            all_pci(s)
                .iter()
                .filter(|x| x.iommu_group == Some(g))
                .map(|x| x.address.clone())
                .collect()
        })
}

fn none_named() -> Outcome {
    Outcome::skip("no device named: run `gvtg doctor --passthrough PCI`")
}

// ---- passthrough.iommu -----------------------------------------------------------------------

fn check_iommu(s: &Snapshot, _: &Prior) -> Outcome {
    let cpu = s.cpuinfo.ok();
    let vendor = cpu.and_then(|c| c.vendor_id.clone()).unwrap_or_default();
    let amd = vendor == "AuthenticAMD";
    let (tech, table, table_present, virt) = if amd {
        ("AMD-Vi", "IVRS", s.ivrs_table, "svm")
    } else {
        ("Intel VT-d", "DMAR", s.dmar_table, "vmx")
    };
    let units: Vec<String> = s.iommu_class.ok().cloned().unwrap_or_default();
    let hw_units: Vec<&String> = units
        .iter()
        .filter(|u| u.starts_with("dmar") || u.starts_with("ivhd"))
        .collect();
    let groups = s.iommu_groups.ok().cloned().unwrap_or_default();
    let hw_groups = groups
        .iter()
        .filter(|g| g.name.as_deref() != Some("vfio-noiommu"))
        .count();
    let cmd = s.cmdline.ok();
    let param = |k: &str| -> Option<String> {
        cmd.and_then(|c| c.last_value(k))
            .map(|v| v.unwrap_or("").to_string())
    };
    let intel_param = param("intel_iommu");
    let amd_param = param("amd_iommu");
    let iommu_param = param("iommu");
    let default_on = s
        .kconfig
        .ok()
        .map(|(_, k)| k.enabled("INTEL_IOMMU_DEFAULT_ON"));

    let mut ev: Vec<(String, String)> = Vec::new();
    match cpu.and_then(|c| c.has_flag(virt)) {
        Some(f) => ev.push((
            "/proc/cpuinfo".into(),
            format!(
                "{vendor}, flag {virt} {}",
                if f { "present" } else { "absent" }
            ),
        )),
        None => ev.push(("/proc/cpuinfo".into(), "unreadable".into())),
    }
    if table_present {
        ev.push((
            format!("/sys/firmware/acpi/tables/{table}"),
            "present".into(),
        ));
    }
    for u in &units {
        ev.push((format!("/sys/class/iommu/{u}"), "registered".into()));
    }
    ev.push((
        "/sys/kernel/iommu_groups".into(),
        format!(
            "{hw_groups} hardware group(s){}",
            if groups.len() > hw_groups {
                format!(
                    ", {} vfio-noiommu software group(s) (do not count)",
                    groups.len() - hw_groups
                )
            } else {
                String::new()
            }
        ),
    ));
    for (k, v) in [
        ("intel_iommu", &intel_param),
        ("amd_iommu", &amd_param),
        ("iommu", &iommu_param),
    ] {
        if let Some(v) = v {
            ev.push(("/proc/cmdline".into(), format!("{k}={v}")));
        }
    }
    if let (false, Some(d), Some((path, _))) = (amd, default_on, s.kconfig.ok()) {
        ev.push((
            path.clone(),
            format!(
                "CONFIG_INTEL_IOMMU_DEFAULT_ON {}",
                if d { "y" } else { "is not set" }
            ),
        ));
    }

    let off_param = if iommu_param.as_deref() == Some("off") {
        true
    } else if amd {
        amd_param.as_deref() == Some("off")
    } else {
        intel_param
            .as_deref()
            .is_some_and(|v| v.split(',').any(|x| x == "off"))
    };
    let want = if amd {
        "iommu=pt"
    } else {
        "intel_iommu=on iommu=pt"
    };
    let pt = iommu_param.as_deref() == Some("pt");
    let in_vm = cpu.and_then(|c| c.has_flag("hypervisor")) == Some(true);
    // Inside a VM a missing vmx/svm flag only means no nested virtualization: the IOMMU verdict
    // below still holds for this (virtual) machine, and the VM note is added after it.
    let mut o = if !in_vm && cpu.and_then(|c| c.has_flag(virt)) == Some(false) {
        Outcome::fail(format!(
            "CPU virtualization is off (no {virt} flag): KVM cannot run, so nothing can be passed through"
        ))
        .fix(format!(
            "Enable {} in the firmware setup (BIOS/UEFI), then boot again.",
            if amd { "SVM (AMD-V)" } else { "VT-x" }
        ))
    } else if !hw_units.is_empty() && hw_groups > 0 {
        Outcome::pass(format!(
            "{tech} on: {} unit(s), {hw_groups} hardware IOMMU group(s){}",
            hw_units.len(),
            if pt {
                ", iommu=pt"
            } else {
                "; iommu=pt is recommended (host devices skip translation)"
            }
        ))
    } else if !hw_units.is_empty() {
        Outcome::fail(format!(
            "{tech} unit(s) registered but no hardware IOMMU group: devices are not translated"
        ))
        .fix("Check `sudo dmesg | grep -iE 'DMAR|AMD-Vi|IOMMU'` for the error that kept the groups from being created.")
    } else if !table_present {
        Outcome::fail(format!(
            "no {tech}: the firmware has no ACPI {table} table, so the IOMMU is disabled in the BIOS/UEFI or absent"
        ))
        .fix(format!(
            "Enable {} in the firmware setup (sometimes under \"Advanced > System Agent\" or \"North Bridge\"), then boot again.",
            if amd { "IOMMU / AMD-Vi" } else { "VT-d" }
        ))
    } else if off_param {
        Outcome::fail(format!("{tech} is switched off on the kernel command line")).fix(format!(
            "Remove `{}` from the kernel command line; {}",
            if iommu_param.as_deref() == Some("off") {
                "iommu=off"
            } else if amd {
                "amd_iommu=off"
            } else {
                "intel_iommu=off"
            },
            support::add_kernel_params(s, want)
        ))
    } else {
        let requested = if amd {
            true
        } else {
            intel_param
                .as_deref()
                .is_some_and(|v| v.split(',').any(|x| x == "on"))
                || default_on == Some(true)
        };
        if requested {
            Outcome::fail(format!(
                "the firmware has a {table} table and {tech} is requested, yet the kernel registered no IOMMU unit"
            ))
            .fix("Check `sudo dmesg | grep -iE 'DMAR|AMD-Vi|IOMMU'` for why initialisation failed (firmware bugs, CONFIG_INTEL_IOMMU/CONFIG_AMD_IOMMU not built).")
        } else {
            Outcome::fail(format!(
                "{tech} is in the firmware ({table} table) but the kernel leaves it off (this kernel's default is off)"
            ))
            .fix(support::add_kernel_params(s, want))
        }
    };
    if in_vm {
        let note = format!(
            "running inside a VM: passing a device through from here needs nested virtualization and a virtual IOMMU; on the real host it needs {tech}"
        );
        if o.status == Status::Pass {
            o.status = Status::Warn;
            o.summary = format!("{note}; here: {}", o.summary);
        } else {
            o.summary = format!("{} ({note})", o.summary);
        }
    }
    for (p, e) in ev {
        o.push(p, e);
    }
    o
}

// ---- passthrough.group -----------------------------------------------------------------------

fn check_group(s: &Snapshot, _: &Prior) -> Outcome {
    let ms = members(s);
    if ms.is_empty() {
        return none_named();
    }
    let nics = all_pci(s).iter().filter(|d| d.class >> 16 == 0x02).count();
    let acs = s
        .cmdline
        .ok()
        .and_then(|c| c.last_value("pcie_acs_override"))
        .map(|v| v.unwrap_or("").to_string());
    let mut o = Outcome::pass("");
    let mut bad: Vec<String> = Vec::new();
    let mut danger: Vec<String> = Vec::new();
    let mut seen: Vec<u32> = Vec::new();
    let mut summary: Vec<String> = Vec::new();
    for m in &ms {
        let Some(g) = m.iommu_group else {
            bad.push(format!("{} is in no IOMMU group", m.address));
            o.push(
                format!("/sys/bus/pci/devices/{}/iommu_group", m.address),
                "missing",
            );
            continue;
        };
        if seen.contains(&g) {
            continue;
        }
        seen.push(g);
        let gm = group_members(s, g);
        summary.push(format!("group {g}: {} device(s)", gm.len()));
        for a in &gm {
            let Some(d) = by_addr(s, a) else { continue };
            let ok = vfio_safe(d);
            o.push(
                format!("/sys/kernel/iommu_groups/{g}/devices/{a}"),
                format!("{}{}", describe(d), if ok { "" } else { ": not VFIO-safe" }),
            );
            if !ok {
                bad.push(format!(
                    "{} in group {g} is bound to {}",
                    a,
                    d.driver.as_deref().unwrap_or("?")
                ));
                if d.class >> 16 == 0x01 {
                    danger.push(format!(
                        "{a} is a storage controller (possibly the boot disk's): binding it to vfio-pci takes it from the host"
                    ));
                } else if d.class >> 16 == 0x02 && nics == 1 {
                    danger.push(format!(
                        "{a} is the host's only network controller: binding it to vfio-pci cuts the host off the network"
                    ));
                }
            }
        }
    }
    if let Some(v) = &acs {
        o.push("/proc/cmdline", format!("pcie_acs_override={v}"));
    }
    let acs_note = acs.as_ref().map(|_| {
        "pcie_acs_override is in use: these groups come from the ACS override patch, not from hardware isolation, so devices in an overridden group may still reach each other's memory by peer-to-peer DMA".to_string()
    });
    if bad.is_empty() {
        o.summary = format!(
            "viable: every member is on vfio-pci, pci-stub, no driver, or a PCI bridge ({})",
            summary.join(", ")
        );
        if let Some(n) = acs_note {
            o.status = Status::Warn;
            o.summary = format!("{}; {n}", o.summary);
            o.remedy = Some("Nothing blocks VFIO, but the isolation is assumed, not real: the devices that share the ports without ACS (often the chipset's USB, SATA and network controllers) and the guest can reach each other's memory. For real isolation move the GPU to a CPU-attached slot (a root port with its own group) and boot without pcie_acs_override; otherwise keep it only on a machine whose guests you trust like the host.".into());
        }
        return o;
    }
    o.status = Status::Fail;
    o.summary = format!("not viable: {}", bad.join("; "));
    let igfx_off = s.cmdline.ok().is_some_and(|c| {
        c.get("intel_iommu").iter().any(|p| {
            p.value
                .as_deref()
                .unwrap_or("")
                .split(',')
                .any(|x| x == "igfx_off")
        })
    });
    let igd_ungrouped = ms
        .iter()
        .any(|m| m.iommu_group.is_none() && m.vendor == 0x8086 && m.is_display());
    if igd_ungrouped && igfx_off {
        o.remedy = Some(format!(
            "`intel_iommu=igfx_off` leaves the iGPU out of VT-d, so it has no group and cannot be assigned (GVT-d): remove igfx_off. {}",
            support::add_kernel_params(s, "intel_iommu=on")
        ));
        return o;
    }
    if ms.iter().all(|m| m.iommu_group.is_none()) {
        o.remedy = Some(
            "No IOMMU group: the IOMMU does not translate these devices (see passthrough.iommu)."
                .into(),
        );
        return o;
    }
    let mut fix = String::from(
        "VFIO can use a group only when every device in it is released from its host driver. Either:\n    - bind the other members to vfio-pci as well (add their vendor:device ids to vfio-pci.ids) if the host can do without them; or\n    - move the card to another slot (CPU-attached x16 slots usually get their own group) or look for a firmware option that enables ACS on the chipset ports.",
    );
    for d in &danger {
        fix.push_str(&format!("\n    Careful: {d}."));
    }
    match acs_note {
        Some(n) => fix.push_str(&format!("\n{n}.")),
        None => fix.push_str("\nThe ACS override patch (pcie_acs_override=downstream,multifunction; not in mainline kernels) splits groups only by pretending the hardware isolates them: it removes the protection the groups exist for. Use it knowingly or not at all."),
    }
    o.remedy = Some(fix);
    o
}

// ---- passthrough.binding ---------------------------------------------------------------------

/// Every `vfio-pci.ids` value configured (cmdline and modprobe.d), with where it came from.
fn configured_ids(s: &Snapshot) -> Vec<(String, String)> {
    support::configured_param(s, "vfio_pci", "ids")
        .into_iter()
        .flat_map(|p| {
            let origin = p.origin;
            p.value
                .unwrap_or_default()
                .split(',')
                .map(|v| (v.trim().to_ascii_lowercase(), origin.clone()))
                .filter(|(v, _)| !v.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn softdeps(s: &Snapshot) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for (file, mf) in &s.modprobe {
        for e in &mf.entries {
            if let crate::parse::modprobe::Directive::Softdep { module, pre, .. } = &e.directive {
                if pre.iter().any(|p| p.replace('-', "_") == "vfio_pci") {
                    v.push((module.replace('-', "_"), format!("{file}:{}", e.line)));
                }
            }
        }
    }
    v
}

/// What `gvtg fix --passthrough` must add for vfio-pci to claim the named functions at boot:
/// (vendor:device ids of the members not yet in `vfio-pci.ids`, GPU and HDMI-audio host drivers
/// that claim them and are neither soft-depending on vfio-pci nor blacklisted). Unlike the
/// check, drivers this kernel lacks are included: a softdep on them is harmless, and it keeps a
/// driver installed later (nvidia from DKMS) from winning the race.
pub fn binding_needs(s: &Snapshot) -> (Vec<String>, Vec<String>) {
    let ms = members(s);
    let ids = configured_ids(s);
    let deps = softdeps(s);
    let mut want: Vec<String> = ms
        .iter()
        .map(|m| m.id())
        .filter(|id| !ids.iter().any(|(v, _)| v == id))
        .collect();
    // In address order (the GPU before its audio function), each id once.
    let mut seen_ids = std::collections::BTreeSet::new();
    want.retain(|id| seen_ids.insert(id.clone()));
    let mut hosts: Vec<String> = ms
        .iter()
        .flat_map(|m| host_drivers(m).iter().copied())
        .filter(|h| {
            [
                "nvidia",
                "nouveau",
                "amdgpu",
                "radeon",
                "snd_hda_intel",
                "i915",
                "xe",
            ]
            .contains(h)
        })
        .filter(|h| {
            !deps.iter().any(|(d, _)| d == h)
                && !crate::parse::modprobe::is_blacklisted(&s.modprobe, h)
        })
        .map(str::to_string)
        .collect();
    // First appearance kept (nvidia before nouveau), duplicates from sibling functions dropped.
    let mut seen = std::collections::BTreeSet::new();
    hosts.retain(|h| seen.insert(h.clone()));
    (want, hosts)
}

fn check_binding(s: &Snapshot, _: &Prior) -> Outcome {
    let ms = members(s);
    if ms.is_empty() {
        return none_named();
    }
    let ids = configured_ids(s);
    let deps = softdeps(s);
    let initramfs: Vec<&String> = s
        .initramfs_modules
        .iter()
        .filter(|(_, m)| m.iter().any(|x| x.replace('-', "_") == "vfio_pci"))
        .map(|(f, _)| f)
        .collect();
    let builtin = s
        .modules
        .builtin
        .ok()
        .is_some_and(|b| b.contains("vfio_pci"));
    let mut o = Outcome::pass("");
    let mut missing: Vec<&PciDevice> = Vec::new();
    let mut unbound: Vec<String> = Vec::new();
    for m in &ms {
        let src = ids.iter().find(|(v, _)| *v == m.id());
        o.push(
            format!("/sys/bus/pci/devices/{}/driver", m.address),
            format!(
                "{} ({}): {}; {}",
                m.id(),
                class_name(m.class),
                m.driver.as_deref().unwrap_or("no driver"),
                src.map_or_else(
                    || "not in vfio-pci.ids".to_string(),
                    |(_, o)| format!("in vfio-pci.ids ({o})")
                )
            ),
        );
        if let Some(ov) = &m.driver_override {
            o.push(
                format!("/sys/bus/pci/devices/{}/driver_override", m.address),
                format!(
                    "{ov}: set at run time (driverctl, `gvtg passthrough bind` or by hand); it binds early enough only when made persistent, as driverctl does from /etc/driverctl.d"
                ),
            );
        }
        // A function no driver wants (no driver now, none known for it) needs no id.
        if src.is_none() && (m.driver.is_some() || !host_drivers(m).is_empty()) {
            missing.push(m);
        }
        if m.driver.as_deref() != Some("vfio-pci") && (m.driver.is_some() || src.is_some()) {
            unbound.push(format!(
                "{} on {}",
                m.address,
                m.driver.as_deref().unwrap_or("no driver")
            ));
        }
    }
    for (f, line) in &deps {
        o.push(line.clone(), format!("softdep {f} pre: vfio-pci"));
    }
    for f in &initramfs {
        o.push((*f).clone(), "vfio-pci in the initramfs");
    }
    // Ordering: the host driver must not load first. A softdep on each host driver, vfio-pci in
    // the initramfs or built in, or the host drivers blacklisted, each settles it.
    let hosts: Vec<&str> = {
        let mut h: Vec<&str> = ms
            .iter()
            .flat_map(|m| host_drivers(m).iter().copied())
            .collect();
        h.sort();
        h.dedup();
        h
    };
    // Only drivers this kernel has can race vfio-pci (no `xe` on 5.15, no `nvidia` without DKMS).
    let exists = |h: &str| {
        s.module_present(h)
            || !matches!(
                s.modules.files.get(h),
                Some(crate::host::snapshot::ModuleFile::Absent)
            )
    };
    let hosts: Vec<&str> = hosts.into_iter().filter(|h| exists(h)).collect();
    let unordered: Vec<&str> = hosts
        .iter()
        .copied()
        .filter(|h| {
            !deps.iter().any(|(d, _)| d == h)
                && !crate::parse::modprobe::is_blacklisted(&s.modprobe, h)
        })
        .collect();
    let early = builtin || !initramfs.is_empty();
    if builtin {
        o.push("modules.builtin", "vfio_pci is built in");
    }
    let id_list: Vec<String> = {
        let mut v: Vec<String> = ms.iter().map(|m| m.id()).collect();
        v.sort();
        v.dedup();
        v
    };
    let conf_fix = format!(
        "Put in /etc/modprobe.d/vfio.conf:\n    options vfio-pci ids={}\n{}then: {} and reboot.",
        id_list.join(","),
        hosts
            .iter()
            .map(|h| format!("    softdep {h} pre: vfio-pci\n"))
            .collect::<String>(),
        support::regen_initramfs(s)
    );
    if !missing.is_empty() {
        // Bound now without ids: driver_override (driverctl) or by hand; not provably lasting.
        o.status = if unbound.is_empty() {
            Status::Warn
        } else {
            Status::Fail
        };
        o.summary = format!(
            "{} not in vfio-pci.ids: nothing binds {} to vfio-pci at boot{}",
            missing
                .iter()
                .map(|m| m.id())
                .collect::<Vec<_>>()
                .join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            if !unbound.is_empty() {
                ""
            } else if missing
                .iter()
                .all(|m| m.driver_override.as_deref() == Some("vfio-pci"))
            {
                " (bound now through driver_override=vfio-pci, which lasts until reboot unless driverctl keeps it in /etc/driverctl.d)"
            } else {
                " (bound now, by hand, a script or driverctl's driver_override)"
            }
        );
        o.remedy = Some(conf_fix);
    } else if !unbound.is_empty() {
        o.status = Status::Fail;
        o.summary = format!(
            "ids configured, but not bound to vfio-pci now: {} (reboot pending, or the host driver won the race)",
            unbound.join(", ")
        );
        o.remedy = Some(conf_fix);
    } else if !unordered.is_empty() && !early {
        o.status = Status::Warn;
        o.summary = format!(
            "bound to vfio-pci by vfio-pci.ids, but nothing orders vfio-pci before {}: on some boots the host driver may claim the device first",
            unordered.join(", ")
        );
        o.remedy = Some(conf_fix);
    } else {
        o.summary = format!(
            "{} function(s) bound to vfio-pci, ids {} configured{}",
            ms.len(),
            id_list.join(","),
            if early {
                ", vfio-pci loads early (initramfs/built in)"
            } else if hosts.is_empty() {
                ""
            } else {
                ", host drivers ordered after vfio-pci (softdep/blacklist)"
            }
        );
    }
    o
}

// ---- passthrough.host-driver -----------------------------------------------------------------

fn check_host_driver(s: &Snapshot, _: &Prior) -> Outcome {
    let ms = members(s);
    if ms.is_empty() {
        return none_named();
    }
    let mut o = Outcome::pass("");
    let mut held: Vec<(&PciDevice, String)> = Vec::new();
    for m in &ms {
        if let Some(d) = m.driver.as_deref().filter(|d| !VFIO_OK.contains(d)) {
            held.push((m, d.to_string()));
        }
    }
    let mut drivers: Vec<&str> = ms
        .iter()
        .flat_map(|m| host_drivers(m).iter().copied())
        .collect();
    drivers.sort();
    drivers.dedup();
    for d in &drivers {
        if crate::parse::modprobe::is_blacklisted(&s.modprobe, d) {
            o.push("/etc/modprobe.d", format!("blacklist {d}"));
        }
        if s.module_present(d) {
            o.push("/proc/modules", format!("{d} loaded"));
        }
    }
    if held.is_empty() {
        let addrs = ms
            .iter()
            .map(|m| m.address.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        o.summary = if drivers.is_empty() {
            format!("no host driver holds {addrs}")
        } else {
            format!("no host driver holds {addrs} ({})", drivers.join("/"))
        };
        return o;
    }
    o.status = Status::Fail;
    o.summary = format!(
        "held by the host: {}",
        held.iter()
            .map(|(m, d)| format!("{} by {d}", m.address))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let display: Vec<String> = ms
        .iter()
        .filter_map(|m| drives_host_display(s, m))
        .collect();
    if !display.is_empty() {
        o.summary = format!(
            "{}; {}: unbinding it while a display server holds it can hang the session, so give the host another GPU (or stop the desktop) first",
            o.summary,
            display.join("; ")
        );
    }
    let mut fix = String::from("Keep the host driver off these functions at boot:\n");
    let mut ids: Vec<String> = ms.iter().map(|m| m.id()).collect();
    ids.dedup();
    fix.push_str(&format!(
        "    echo 'options vfio-pci ids={}' | sudo tee /etc/modprobe.d/vfio.conf\n",
        ids.join(",")
    ));
    let mut names: Vec<String> = held.iter().map(|(_, d)| d.replace('-', "_")).collect();
    names.sort();
    names.dedup();
    for d in &names {
        fix.push_str(&format!(
            "    echo 'softdep {d} pre: vfio-pci' | sudo tee -a /etc/modprobe.d/vfio.conf\n"
        ));
    }
    // Blacklisting is right only when no other device of the host needs that driver.
    let shared: Vec<&String> = names
        .iter()
        .filter(|d| {
            all_pci(s).iter().any(|p| {
                p.driver.as_deref().map(|x| x.replace('-', "_")).as_deref() == Some(d.as_str())
                    && !ms.iter().any(|m| m.address == p.address)
            })
        })
        .collect();
    let blacklistable: Vec<&String> = names.iter().filter(|d| !shared.contains(d)).collect();
    if !blacklistable.is_empty() {
        fix.push_str(&format!(
            "Since no other device of this host uses it, you may also blacklist {}:\n",
            blacklistable
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for d in &blacklistable {
            fix.push_str(&format!(
                "    echo 'blacklist {d}' | sudo tee -a /etc/modprobe.d/vfio.conf\n"
            ));
        }
    }
    for d in &shared {
        fix.push_str(&format!(
            "Do not blacklist {d}: another device of this host uses it (the softdep is enough).\n"
        ));
    }
    fix.push_str(&format!(
        "then: {} and reboot.",
        support::regen_initramfs(s)
    ));
    o.remedy = Some(fix);
    o
}

// ---- passthrough.framebuffer -----------------------------------------------------------------

fn check_framebuffer(s: &Snapshot, _: &Prior) -> Outcome {
    let ms = members(s);
    if ms.is_empty() {
        return none_named();
    }
    let boot: Vec<&&PciDevice> = ms.iter().filter(|m| m.boot_vga == Some(true)).collect();
    if boot.is_empty() {
        return Outcome::pass(
            "not the boot VGA device: the firmware framebuffer (efifb/simpledrm/vesafb) is on another GPU",
        );
    }
    let mut o = Outcome::pass("");
    for b in &boot {
        o.push(format!("/sys/bus/pci/devices/{}/boot_vga", b.address), "1");
    }
    let disabled: Vec<String> = s.cmdline.ok().map(fb_off_args).unwrap_or_default();
    for d in &disabled {
        o.push("/proc/cmdline", d.clone());
    }
    let mut fb_lines: Vec<String> = Vec::new();
    if let Some(log) = s.kernel_log.ok() {
        let path = &log.path;
        let terms = [
            "efifb: framebuffer at",
            "simple-framebuffer",
            "simpledrm",
            "vesafb:",
        ];
        for r in log.containing(&terms) {
            let t = &r.text;
            if t.contains("efifb: framebuffer at")
                || t.contains("simple-framebuffer")
                || t.contains("simpledrm")
                || t.starts_with("vesafb:")
            {
                fb_lines.push(t.clone());
                o.push(format!("{path}:{}", r.line), t.clone());
            }
        }
    }
    if !disabled.is_empty() {
        o.summary = format!(
            "{} is the boot VGA device; the firmware framebuffer is kept off it ({})",
            boot[0].address,
            disabled.join(" ")
        );
        return o;
    }
    o.status = Status::Warn;
    if let Some((origin, args)) = fb_off_next_boot(s) {
        o.push(origin.clone(), format!("{} (next boot)", args.join(" ")));
        o.summary = format!(
            "{} is the boot VGA device; {origin} keeps the firmware framebuffer off it from the next boot on ({}): reboot for it to take effect",
            boot[0].address,
            args.join(" ")
        );
        return o;
    }
    o.summary = if fb_lines.is_empty() {
        format!(
            "{} is the boot VGA device: the firmware framebuffer (efifb/simpledrm) claims its memory unless told not to; the kernel log shows none, but nothing on the command line keeps it off",
            boot[0].address
        )
    } else {
        format!(
            "{} is the boot VGA device and a firmware framebuffer holds it ({}): vfio-pci cannot map its BAR (`BAR 0: can't reserve`) until it is released",
            boot[0].address,
            fb_lines[0]
        )
    };
    let arg = framebuffer_off_arg(s);
    o.remedy = Some(format!(
        "Keep the firmware framebuffer off the passed-through GPU (or make another GPU primary in the firmware setup):\n    {}\n{}",
        support::add_kernel_params(s, arg).replace('\n', "\n    "),
        if arg == "initcall_blacklist=sysfb_init" {
            "(`video=efifb:off` is not enough on 5.15 and later: sysfb registers the framebuffer for simpledrm/simplefb, which that option does not reach.)"
        } else {
            "(This kernel is older than 5.15, where efifb/vesafb own the framebuffer; from 5.15 on use `initcall_blacklist=sysfb_init`.)"
        }
    ));
    o
}

/// The arguments of `c` that keep a firmware framebuffer off the boot GPU.
fn fb_off_args(c: &crate::parse::cmdline::Cmdline) -> Vec<String> {
    c.params
        .iter()
        .filter(|p| {
            let v = p.value.as_deref().unwrap_or("");
            (p.key == "video"
                && (v.starts_with("efifb:off")
                    || v.starts_with("vesafb:off")
                    || v.starts_with("simplefb:off")))
                || (p.key == "initcall_blacklist" && v.split(',').any(|x| x == "sysfb_init"))
        })
        .map(|p| p.raw.clone())
        .collect()
}

/// Where the next boot's command line (`/etc/default/grub`, `/etc/kernel/cmdline`: what `gvtg
/// fix` writes) keeps the framebuffer off when the running one does not, and the arguments.
fn fb_off_next_boot(s: &Snapshot) -> Option<(String, Vec<String>)> {
    if let Some(g) = s.grub_default.ok() {
        let mut args = Vec::new();
        for var in ["GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"] {
            if let Some(a) = g.get(var) {
                args.extend(fb_off_args(&crate::parse::cmdline::parse(&a.value)));
            }
        }
        if !args.is_empty() {
            return Some(("/etc/default/grub".into(), args));
        }
    }
    let k = s.kernel_cmdline_file.ok()?;
    let args = fb_off_args(&crate::parse::cmdline::parse(k));
    (!args.is_empty()).then(|| ("/etc/kernel/cmdline".into(), args))
}

/// The running kernel's (major, minor), from `osrelease`.
fn kernel_version(s: &Snapshot) -> Option<(u32, u32)> {
    let r = s.osrelease.ok()?;
    let mut it = r.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The kernel argument that keeps the firmware framebuffer off the boot GPU on this kernel:
/// `initcall_blacklist=sysfb_init` from 5.15 on (and when the version is unknown), where sysfb
/// registers a simple-framebuffer for simpledrm/simplefb that `video=efifb:off` does not reach;
/// before 5.15, `video=vesafb:off` when the kernel log shows vesafb (BIOS boot), else
/// `video=efifb:off`.
pub fn framebuffer_off_arg(s: &Snapshot) -> &'static str {
    match kernel_version(s) {
        Some(v) if v < (5, 15) => {
            let vesa = s.kernel_log.ok().is_some_and(|log| {
                log.containing(&["vesafb:"])
                    .any(|r| r.text.starts_with("vesafb:"))
            });
            if vesa {
                "video=vesafb:off"
            } else {
                "video=efifb:off"
            }
        }
        _ => "initcall_blacklist=sysfb_init",
    }
}

/// Whether `gvtg fix --passthrough` should add [`framebuffer_off_arg`]: a named function is the
/// boot VGA device and neither the running nor the next boot's command line keeps the firmware
/// framebuffer off it.
pub fn framebuffer_needs_arg(s: &Snapshot) -> bool {
    members(s).iter().any(|m| m.boot_vga == Some(true))
        && s.cmdline
            .ok()
            .map(fb_off_args)
            .unwrap_or_default()
            .is_empty()
        && fb_off_next_boot(s).is_none()
}

// ---- passthrough.kvm-msrs --------------------------------------------------------------------

fn check_kvm_msrs(s: &Snapshot, _: &Prior) -> Outcome {
    let conf = support::configured_param(s, "kvm", "ignore_msrs");
    let configured = conf
        .last()
        .and_then(|p| p.value.as_deref())
        .and_then(support::kernel_bool);
    let live = s.kvm_ignore_msrs.ok().and_then(|v| support::kernel_bool(v));
    let mut o = Outcome::pass("");
    for p in &conf {
        o.push(
            p.origin.clone(),
            format!("kvm.ignore_msrs={}", p.value.as_deref().unwrap_or("")),
        );
    }
    if let Some(v) = s.kvm_ignore_msrs.ok() {
        o.push("/sys/module/kvm/parameters/ignore_msrs", v.clone());
    }
    let fix = format!(
        "For NVIDIA drivers and Windows guests (they read MSRs KVM does not emulate and the guest crashes or blue-screens):\n    echo 'options kvm ignore_msrs=1 report_ignored_msrs=0' | sudo tee /etc/modprobe.d/kvm.conf\nthen: {} and reboot (or, for now: echo 1 | sudo tee /sys/module/kvm/parameters/ignore_msrs).",
        support::regen_initramfs(s)
    );
    match (live, configured) {
        (Some(true), _) => {
            o.summary = "kvm.ignore_msrs=1 is active: guests' reads of unemulated MSRs are ignored, not faulted".into();
        }
        (_, Some(true)) => {
            o.status = Status::Warn;
            o.summary =
                "kvm.ignore_msrs=1 is configured but not active yet (reload kvm or reboot)".into();
        }
        _ => {
            o.status = Status::Warn;
            o.summary = "kvm.ignore_msrs is not set: advice for NVIDIA and Windows guests, which may crash on unemulated MSRs".into();
            o.remedy = Some(fix);
        }
    }
    o
}

// ---- passthrough.reset -----------------------------------------------------------------------

fn check_reset(s: &Snapshot, _: &Prior) -> Outcome {
    let ms = members(s);
    if ms.is_empty() {
        return none_named();
    }
    let mut o = Outcome::pass("");
    let mut none: Vec<&PciDevice> = Vec::new();
    let mut unknown = 0;
    let mut known: Vec<String> = Vec::new();
    let mut amd_no_flr = false;
    for m in &ms {
        let path = format!("/sys/bus/pci/devices/{}/reset_method", m.address);
        let (r, amd) = reset_of(m);
        amd_no_flr |= amd;
        match r {
            Reset::Unknown => {
                unknown += 1;
                o.push(path, "absent (kernel before 5.15): unknown");
            }
            Reset::None => {
                none.push(m);
                o.push(path, "empty: no reset method");
            }
            Reset::Methods(v) => {
                known.push(format!("{} {v}", m.address));
                o.push(path, v);
            }
        }
    }
    if !none.is_empty() {
        o.status = Status::Warn;
        o.summary = format!(
            "no reset method for {}: the device cannot be reset between VM runs, so a second VM start (or a guest reboot) may find it hung",
            none.iter().map(|m| m.address.as_str()).collect::<Vec<_>>().join(", ")
        );
        o.remedy = Some("Pass the device to one long-lived VM and avoid restarting it; or move it to a slot whose bridge supports a secondary bus reset.".into());
    } else if unknown == ms.len() {
        return Outcome::skip(
            "unknown: no reset_method file (kernels before 5.15 lack it); check `lspci -vv` for FLReset+ in DevCap",
        );
    } else {
        o.summary = format!("reset available: {}", known.join(", "));
    }
    if amd_no_flr {
        o.at_least(Status::Warn);
        o.summary = format!(
            "{}; AMD GPU without FLR: Polaris, Vega and Navi 1x have the AMD reset bug (the card does not come back after a guest shutdown)",
            o.summary
        );
        o.remedy = Some("Install the vendor-reset module (github.com/gnif/vendor-reset, DKMS), load it at boot (echo vendor-reset | sudo tee /etc/modules-load.d/vendor-reset.conf), and on 5.15+ select it: echo device_specific | sudo tee /sys/bus/pci/devices/ADDR/reset_method.".into());
    }
    o
}

// ---- passthrough.vfio-nodes ------------------------------------------------------------------

fn check_vfio_nodes(s: &Snapshot, _: &Prior) -> Outcome {
    let ms = members(s);
    if ms.is_empty() {
        return none_named();
    }
    let nodes = s.dev_vfio.ok().cloned().unwrap_or_default();
    let support::QemuAccess {
        identity: id,
        conf,
        dynamic_ownership: dynamic,
        ids,
    } = support::qemu_access(s);
    let mut o = Outcome::pass("");
    let mut bad: Vec<String> = Vec::new();
    let mut waiting: Vec<String> = Vec::new();
    let mut ready: Vec<String> = Vec::new();
    let mut groups: Vec<u32> = ms.iter().filter_map(|m| m.iommu_group).collect();
    groups.sort();
    groups.dedup();
    match nodes.get("vfio") {
        Some(n) => o.push(
            "/dev/vfio/vfio",
            format!("{:04o} (the container; 0666 is normal)", n.mode),
        ),
        None => bad.push("/dev/vfio/vfio missing (vfio not loaded)".into()),
    }
    for g in &groups {
        let path = format!("/dev/vfio/{g}");
        let bound = group_members(s, *g).iter().all(|a| {
            by_addr(s, a).is_none_or(|d| {
                d.driver.as_deref() == Some("vfio-pci") || d.driver.is_none() || d.is_pci_bridge()
            })
        });
        match nodes.get(&g.to_string()) {
            None if bound => {
                bad.push(format!(
                    "{path} missing although the group is bound to vfio-pci"
                ));
                o.push(path, "does not exist");
            }
            None => {
                waiting.push(path.clone());
                o.push(
                    path,
                    "does not exist yet: appears once every member is bound to vfio-pci",
                );
            }
            Some(n) => {
                let usable = ids.as_ref().map(|(u, gs)| support::can_rw(n, *u, gs));
                o.push(path.clone(), support::describe_node(s, n));
                if usable == Some(false) && !(s.libvirt_present && dynamic) {
                    bad.push(format!("{path} not usable by {}", id.user));
                } else {
                    ready.push(path);
                }
            }
        }
    }
    if let Some(acl) = conf.as_ref().and_then(|c| c.get_list("cgroup_device_acl")) {
        let lacks: Vec<&str> = ["/dev/kvm", "/dev/null", "/dev/ptmx", "/dev/urandom"]
            .into_iter()
            .filter(|e| !acl.contains(e))
            .collect();
        if !lacks.is_empty() {
            bad.push(format!(
                "qemu.conf cgroup_device_acl lacks {} (see libvirt.qemu-conf)",
                lacks.join(", ")
            ));
        }
        o.push(
            "/etc/libvirt/qemu.conf",
            "cgroup_device_acl set: libvirt adds /dev/vfio/vfio and /dev/vfio/N per domain itself",
        );
    }
    if bad.is_empty() {
        o.summary = if ready.is_empty() && waiting.is_empty() {
            "no group node: the device is in no IOMMU group (passthrough.iommu, passthrough.group)"
                .to_string()
        } else if ready.is_empty() {
            format!(
                "no group node yet ({}): bind the device to vfio-pci first (passthrough.binding)",
                waiting.join(", ")
            )
        } else {
            format!(
                "{} ready{}{}",
                ready.join(", "),
                if s.libvirt_present && dynamic {
                    " (libvirt's dynamic_ownership gives the node to the QEMU user when the VM starts)"
                } else {
                    ""
                },
                if waiting.is_empty() {
                    String::new()
                } else {
                    format!("; not yet: {}", waiting.join(", "))
                }
            )
        };
        return o;
    }
    o.status = Status::Fail;
    o.summary = bad.join("; ");
    let mut fix = String::new();
    if bad.iter().any(|b| b.contains("missing")) {
        fix.push_str("A missing node means vfio is not loaded or the group is not bound: sudo modprobe -a vfio vfio_iommu_type1 vfio-pci.\n");
    }
    if bad.iter().any(|b| b.contains("not usable")) {
        fix.push_str(&format!(
            "Outside libvirt's dynamic_ownership, give the QEMU user ({}) the node with a udev rule:\n    echo 'SUBSYSTEM==\"vfio\", OWNER=\"root\", GROUP=\"kvm\", MODE=\"0660\"' | sudo tee /etc/udev/rules.d/90-gvtg-vfio.rules && sudo udevadm control --reload && sudo udevadm trigger --subsystem-match=vfio\n    sudo usermod -aG kvm {}\n",
            id.user, id.user
        ));
    }
    if bad.iter().any(|b| b.contains("cgroup_device_acl")) {
        fix.push_str("Keep libvirt's default entries in cgroup_device_acl (gvtg explain libvirt.qemu-conf), then restart libvirtd.\n");
    }
    o.remedy = Some(fix.trim_end().to_string());
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{snapshot_with, Tree};

    const NONE: Prior = Prior { done: &[] };

    /// A PCI function with its IOMMU group (group dir + link), driver and optional extras.
    fn dev(t: &mut Tree, addr: &str, id: (u16, u16), class: u32, driver: Option<&str>, group: u32) {
        t.pci_function(addr, id, class, driver, group);
    }

    fn nvidia(t: &mut Tree, gpu_driver: &str, audio_driver: &str) {
        dev(
            t,
            "0000:01:00.0",
            (0x10de, 0x1b80),
            0x030000,
            Some(gpu_driver),
            1,
        );
        dev(
            t,
            "0000:01:00.1",
            (0x10de, 0x10f0),
            0x040300,
            Some(audio_driver),
            1,
        );
        dev(
            t,
            "0000:00:01.0",
            (0x1022, 0x1453),
            0x060400,
            Some("pcieport"),
            1,
        );
        t.file(
            "proc/cpuinfo",
            "vendor_id\t: AuthenticAMD\nflags\t\t: fpu svm\n",
        );
        t.file("sys/firmware/acpi/tables/IVRS", "");
        t.dir("sys/class/iommu/ivhd0");
    }

    fn with(mut s: Snapshot, addrs: &[&str]) -> Snapshot {
        s.passthrough = addrs.iter().map(|a| a.to_string()).collect();
        s
    }

    #[test]
    fn resolve_by_address_short_address_and_id() {
        let s = snapshot_with(|t| nvidia(t, "vfio-pci", "vfio-pci"));
        assert_eq!(resolve(&s, &["01:00.0".into()]).unwrap(), ["0000:01:00.0"]);
        assert_eq!(
            resolve(&s, &["0000:01:00.1".into()]).unwrap(),
            ["0000:01:00.1"]
        );
        assert_eq!(
            resolve(&s, &["10DE:1B80".into()]).unwrap(),
            ["0000:01:00.0"]
        );
        let e = resolve(&s, &["02:00.0".into()]).unwrap_err();
        assert!(e.contains("0000:01:00.0 (10de:1b80"), "{e}");
    }

    #[test]
    fn members_include_siblings_and_listing_shows_group() {
        let s = with(
            snapshot_with(|t| nvidia(t, "vfio-pci", "vfio-pci")),
            &["0000:01:00.0"],
        );
        let m: Vec<&str> = members(&s).iter().map(|d| d.address.as_str()).collect();
        assert_eq!(m, ["0000:01:00.0", "0000:01:00.1"]);
        let l = listing(&s);
        assert!(
            l.contains("sibling  0000:01:00.1 (10de:10f0 NVIDIA audio device"),
            "{l}"
        );
        assert!(
            l.contains(
                "IOMMU group 1: with (bridges and its own functions only)\n    0000:00:01.0"
            ),
            "{l}"
        );
        assert!(l.contains("gvtg doctor --passthrough 0000:01:00.0"), "{l}");
    }

    #[test]
    fn iommu_on_amd_passes_and_table_only_fails() {
        let s = snapshot_with(|t| nvidia(t, "vfio-pci", "vfio-pci"));
        assert_eq!(check_iommu(&s, &NONE).status, Status::Pass);
        let s = snapshot_with(|t| {
            t.file(
                "proc/cpuinfo",
                "vendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\n",
            );
            t.file("sys/firmware/acpi/tables/DMAR", "");
            t.file("sys/kernel/iommu_groups/0/name", "vfio-noiommu\n");
            t.dir("sys/kernel/iommu_groups/0/devices");
        });
        let o = check_iommu(&s, &NONE);
        assert_eq!(o.status, Status::Fail);
        assert!(o.remedy.unwrap().contains("intel_iommu=on iommu=pt"));
        assert!(o
            .evidence
            .iter()
            .any(|e| e.excerpt.contains("do not count")));
    }

    #[test]
    fn inside_a_vm_the_iommu_verdict_still_counts() {
        // A guest without a virtual IOMMU: a failure (not a warning), with the VM named.
        let s = snapshot_with(|t| {
            t.file(
                "proc/cpuinfo",
                "vendor_id\t: GenuineIntel\nflags\t\t: fpu hypervisor\n",
            );
        });
        let o = check_iommu(&s, &NONE);
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.starts_with("no Intel VT-d"), "{}", o.summary);
        assert!(o.summary.contains("running inside a VM"), "{}", o.summary);
        // A guest with a virtual IOMMU: a warning that says what works here.
        let s = snapshot_with(|t| {
            nvidia(t, "vfio-pci", "vfio-pci");
            t.file(
                "proc/cpuinfo",
                "vendor_id\t: AuthenticAMD\nflags\t\t: fpu hypervisor\n",
            );
        });
        let o = check_iommu(&s, &NONE);
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(o.summary.contains("; here: AMD-Vi on"), "{}", o.summary);
    }

    #[test]
    fn host_driver_summary_has_no_empty_parentheses() {
        // A NIC passed through has no host driver in the table to name.
        let s = with(
            snapshot_with(|t| {
                dev(t, "0000:05:00.0", (0x8086, 0x10d3), 0x020000, None, 7);
            }),
            &["0000:05:00.0"],
        );
        let o = check_host_driver(&s, &NONE);
        assert_eq!(o.summary, "no host driver holds 0000:05:00.0");
    }

    #[test]
    fn iommu_off_on_the_command_line_fails() {
        let s = snapshot_with(|t| {
            t.file(
                "proc/cpuinfo",
                "vendor_id\t: GenuineIntel\nflags\t\t: fpu vmx\n",
            );
            t.file("sys/firmware/acpi/tables/DMAR", "");
            t.file("proc/cmdline", "iommu=off\n");
        });
        let o = check_iommu(&s, &NONE);
        assert_eq!(o.status, Status::Fail);
        assert!(o.remedy.unwrap().starts_with("Remove `iommu=off`"));
    }

    #[test]
    fn group_with_usb_on_xhci_is_not_viable() {
        let s = with(
            snapshot_with(|t| {
                nvidia(t, "vfio-pci", "vfio-pci");
                dev(
                    t,
                    "0000:02:00.0",
                    (0x1022, 0x43d5),
                    0x0c0330,
                    Some("xhci_hcd"),
                    1,
                );
            }),
            &["0000:01:00.0"],
        );
        let o = check_group(&s, &NONE);
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary
                .contains("0000:02:00.0 in group 1 is bound to xhci_hcd"),
            "{}",
            o.summary
        );
        assert!(o.remedy.unwrap().contains("pretending"));
        let ok = with(
            snapshot_with(|t| nvidia(t, "vfio-pci", "vfio-pci")),
            &["0000:01:00.0"],
        );
        assert_eq!(check_group(&ok, &NONE).status, Status::Pass);
    }

    #[test]
    fn acs_override_is_reported_and_sole_nic_is_dangerous() {
        let s = with(
            snapshot_with(|t| {
                nvidia(t, "vfio-pci", "vfio-pci");
                dev(
                    t,
                    "0000:03:00.0",
                    (0x8086, 0x15b8),
                    0x020000,
                    Some("e1000e"),
                    1,
                );
                t.file("proc/cmdline", "pcie_acs_override=downstream\n");
            }),
            &["0000:01:00.0"],
        );
        let o = check_group(&s, &NONE);
        let r = o.remedy.unwrap();
        assert!(r.contains("only network controller"), "{r}");
        assert!(r.contains("pcie_acs_override is in use"), "{r}");
        // Viable through the override: a warning with the caveat and the way to real isolation.
        let s = with(
            snapshot_with(|t| {
                nvidia(t, "vfio-pci", "vfio-pci");
                t.file(
                    "proc/cmdline",
                    "pcie_acs_override=downstream,multifunction\n",
                );
            }),
            &["0000:01:00.0"],
        );
        let o = check_group(&s, &NONE);
        assert_eq!(o.status, Status::Warn);
        assert!(
            o.summary.contains("not from hardware isolation"),
            "{}",
            o.summary
        );
        assert!(o.remedy.unwrap().contains("CPU-attached slot"));
    }

    #[test]
    fn binding_needs_ids_and_ordering() {
        let s = with(
            snapshot_with(|t| nvidia(t, "nvidia", "snd_hda_intel")),
            &["0000:01:00.0"],
        );
        let o = check_binding(&s, &NONE);
        assert_eq!(o.status, Status::Fail);
        let r = o.remedy.unwrap();
        assert!(r.contains("ids=10de:10f0,10de:1b80"), "{r}");
        assert!(r.contains("softdep nvidia pre: vfio-pci"), "{r}");
        let s = with(
            snapshot_with(|t| {
                nvidia(t, "vfio-pci", "vfio-pci");
                t.file("proc/cmdline", "vfio-pci.ids=10de:1b80,10de:10f0\n");
            }),
            &["0000:01:00.0"],
        );
        assert_eq!(check_binding(&s, &NONE).status, Status::Warn);
        let s = with(
            snapshot_with(|t| {
                nvidia(t, "vfio-pci", "vfio-pci");
                t.file(
                    "etc/modprobe.d/vfio.conf",
                    "options vfio-pci ids=10de:1b80,10de:10f0\nsoftdep nvidia pre: vfio-pci\nsoftdep nouveau pre: vfio-pci\nsoftdep snd_hda_intel pre: vfio-pci\n",
                );
            }),
            &["0000:01:00.0"],
        );
        let o = check_binding(&s, &NONE);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        // Bound now but in no ids: only a warning.
        let s = with(
            snapshot_with(|t| nvidia(t, "vfio-pci", "vfio-pci")),
            &["0000:01:00.0"],
        );
        let o = check_binding(&s, &NONE);
        assert_eq!(o.status, Status::Warn);
        assert!(
            o.summary
                .ends_with("(bound now, by hand, a script or driverctl's driver_override)"),
            "{}",
            o.summary
        );
        // A driver_override (driverctl, `gvtg passthrough bind`) is shown and called temporary;
        // the kernel's "(null)" is no override.
        let s = with(
            snapshot_with(|t| {
                nvidia(t, "vfio-pci", "vfio-pci");
                t.file(
                    "sys/bus/pci/devices/0000:01:00.0/driver_override",
                    "vfio-pci\n",
                );
                t.file(
                    "sys/bus/pci/devices/0000:01:00.1/driver_override",
                    "vfio-pci\n",
                );
                t.file(
                    "sys/bus/pci/devices/0000:00:01.0/driver_override",
                    "(null)\n",
                );
            }),
            &["0000:01:00.0"],
        );
        assert_eq!(
            s.pci
                .ok()
                .unwrap()
                .iter()
                .find(|d| d.address == "0000:00:01.0")
                .unwrap()
                .driver_override,
            None
        );
        let o = check_binding(&s, &NONE);
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("bound now through driver_override=vfio-pci, which lasts until reboot unless driverctl keeps it in /etc/driverctl.d"), "{}", o.summary);
        assert!(
            o.evidence.iter().any(|e| e.path
                == "/sys/bus/pci/devices/0000:01:00.1/driver_override"
                && e.excerpt.contains("/etc/driverctl.d")),
            "{:?}",
            o.evidence
        );
    }

    #[test]
    fn host_driver_bound_fails_and_shared_driver_is_not_blacklisted() {
        let s = with(
            snapshot_with(|t| {
                nvidia(t, "vfio-pci", "snd_hda_intel");
                dev(
                    t,
                    "0000:00:1f.3",
                    (0x1022, 0x1457),
                    0x040300,
                    Some("snd_hda_intel"),
                    4,
                );
            }),
            &["0000:01:00.0"],
        );
        let o = check_host_driver(&s, &NONE);
        assert_eq!(o.status, Status::Fail);
        let r = o.remedy.unwrap();
        assert!(r.contains("Do not blacklist snd_hda_intel"), "{r}");
        let s = with(
            snapshot_with(|t| nvidia(t, "nvidia", "vfio-pci")),
            &["0000:01:00.0"],
        );
        let o = check_host_driver(&s, &NONE);
        assert!(o.remedy.unwrap().contains("blacklist nvidia"));
        // The only GPU on a GPU driver: the host's screen.
        assert!(
            o.summary
                .contains("0000:01:00.0 is the only display function on a GPU driver (nvidia)"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn boot_vga_with_efifb_warns_unless_disabled() {
        let tree = |t: &mut Tree, cmd: &str| {
            nvidia(t, "vfio-pci", "vfio-pci");
            t.file("sys/bus/pci/devices/0000:01:00.0/boot_vga", "1\n");
            t.file("proc/cmdline", cmd);
            t.file(
                "dev/kmsg",
                "6,1,100,-;efifb: framebuffer at 0xe0000000, using 3072k, total 3072k\n",
            );
        };
        let s = with(snapshot_with(|t| tree(t, "ro\n")), &["0000:01:00.0"]);
        let o = check_framebuffer(&s, &NONE);
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("efifb: framebuffer at"), "{}", o.summary);
        let s = with(
            snapshot_with(|t| tree(t, "ro initcall_blacklist=sysfb_init\n")),
            &["0000:01:00.0"],
        );
        assert_eq!(check_framebuffer(&s, &NONE).status, Status::Pass);
        // 5.15+: the initcall; before: efifb (vesafb when the log shows a BIOS boot).
        let s = with(
            snapshot_with(|t| {
                tree(t, "ro\n");
                t.file("proc/sys/kernel/osrelease", "6.1.0-13-amd64\n");
            }),
            &["0000:01:00.0"],
        );
        assert_eq!(framebuffer_off_arg(&s), "initcall_blacklist=sysfb_init");
        assert!(framebuffer_needs_arg(&s));
        let s = with(
            snapshot_with(|t| {
                tree(t, "ro\n");
                t.file("proc/sys/kernel/osrelease", "5.10.0-28-amd64\n");
            }),
            &["0000:01:00.0"],
        );
        assert_eq!(framebuffer_off_arg(&s), "video=efifb:off");
        assert!(check_framebuffer(&s, &NONE)
            .remedy
            .unwrap()
            .contains("older than 5.15"));
        // Configured for the next boot only: a warning that says so, no remedy, no fix.
        let s = with(
            snapshot_with(|t| {
                tree(t, "ro\n");
                t.file(
                    "etc/default/grub",
                    "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet initcall_blacklist=sysfb_init\"\n",
                );
            }),
            &["0000:01:00.0"],
        );
        let o = check_framebuffer(&s, &NONE);
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("from the next boot on"), "{}", o.summary);
        assert!(o.remedy.is_none());
        assert!(!framebuffer_needs_arg(&s));
    }

    #[test]
    fn kvm_msrs() {
        let s = snapshot_with(|_| {});
        assert_eq!(check_kvm_msrs(&s, &NONE).status, Status::Warn);
        let s = snapshot_with(|t| {
            t.file("sys/module/kvm/parameters/ignore_msrs", "Y\n");
        });
        assert_eq!(check_kvm_msrs(&s, &NONE).status, Status::Pass);
        let s = snapshot_with(|t| {
            t.file("etc/modprobe.d/kvm.conf", "options kvm ignore_msrs=1\n");
            t.file("sys/module/kvm/parameters/ignore_msrs", "N\n");
        });
        let o = check_kvm_msrs(&s, &NONE);
        assert!(o.summary.contains("not active yet"), "{}", o.summary);
    }

    #[test]
    fn reset_methods() {
        let s = with(
            snapshot_with(|t| {
                nvidia(t, "vfio-pci", "vfio-pci");
                t.file("sys/bus/pci/devices/0000:01:00.0/reset_method", "flr bus\n");
                t.file("sys/bus/pci/devices/0000:01:00.1/reset_method", "\n");
            }),
            &["0000:01:00.0"],
        );
        let o = check_reset(&s, &NONE);
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("no reset method for 0000:01:00.1"));
        let s = with(
            snapshot_with(|t| nvidia(t, "vfio-pci", "vfio-pci")),
            &["0000:01:00.0"],
        );
        assert_eq!(check_reset(&s, &NONE).status, Status::Skip);
        let s = with(
            snapshot_with(|t| {
                dev(
                    t,
                    "0000:0a:00.0",
                    (0x1002, 0x67df),
                    0x030000,
                    Some("vfio-pci"),
                    2,
                );
                t.file("sys/bus/pci/devices/0000:0a:00.0/reset_method", "bus\n");
            }),
            &["0000:0a:00.0"],
        );
        assert!(check_reset(&s, &NONE)
            .remedy
            .unwrap()
            .contains("vendor-reset"));
    }

    #[test]
    fn vfio_nodes_missing_when_bound() {
        let s = with(
            snapshot_with(|t| nvidia(t, "vfio-pci", "vfio-pci")),
            &["0000:01:00.0"],
        );
        let o = check_vfio_nodes(&s, &NONE);
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("/dev/vfio/1 missing"), "{}", o.summary);
        let s = with(
            snapshot_with(|t| nvidia(t, "nvidia", "snd_hda_intel")),
            &["0000:01:00.0"],
        );
        let o = check_vfio_nodes(&s, &NONE);
        assert!(o
            .evidence
            .iter()
            .any(|e| e.excerpt.contains("appears once")));
    }

    #[test]
    fn vfio_nodes_need_no_acl_entry_but_the_acl_keeps_its_defaults() {
        // libvirt adds /dev/vfio/N of every <hostdev> to the devices cgroup itself: a replaced
        // ACL without it is fine, one without /dev/kvm is not. dynamic_ownership = 0 leaves the
        // node to its udev owner.
        let tree = |t: &mut Tree, conf: &str| {
            nvidia(t, "vfio-pci", "vfio-pci");
            t.file("etc/libvirt/qemu.conf", conf);
            t.file("dev/vfio/vfio", "");
            t.file("dev/vfio/1", "");
            t.node("dev/vfio/vfio", "char", 0o666, 0, 0, Some((10, 196)));
            t.node("dev/vfio/1", "char", 0o600, 0, 0, Some((243, 0)));
            t.file(
                "etc/passwd",
                "root:x:0:0::/root:/bin/sh\nlibvirt-qemu:x:64055:108::/:/bin/false\n",
            );
            t.file("etc/group", "root:x:0:\nkvm:x:108:\n");
        };
        let s = with(
            snapshot_with(|t| {
                tree(
                    t,
                    "user = \"libvirt-qemu\"\ncgroup_device_acl = [ \"/dev/null\", \"/dev/full\", \"/dev/zero\", \"/dev/random\", \"/dev/urandom\", \"/dev/ptmx\", \"/dev/kvm\", \"/dev/userfaultfd\" ]\n",
                )
            }),
            &["0000:01:00.0"],
        );
        let o = check_vfio_nodes(&s, &NONE);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.evidence.iter().any(|e| e
            .excerpt
            .contains("libvirt adds /dev/vfio/vfio and /dev/vfio/N")));
        let s = with(
            snapshot_with(|t| {
                tree(
                    t,
                    "user = \"libvirt-qemu\"\ncgroup_device_acl = [ \"/dev/null\", \"/dev/ptmx\", \"/dev/urandom\", \"/dev/vfio/1\" ]\n",
                )
            }),
            &["0000:01:00.0"],
        );
        let o = check_vfio_nodes(&s, &NONE);
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary.contains("cgroup_device_acl lacks /dev/kvm"),
            "{}",
            o.summary
        );
        let s = with(
            snapshot_with(|t| tree(t, "user = \"libvirt-qemu\"\ndynamic_ownership = 0\n")),
            &["0000:01:00.0"],
        );
        let o = check_vfio_nodes(&s, &NONE);
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary.contains("/dev/vfio/1 not usable by libvirt-qemu"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn igfx_off_explains_an_ungrouped_igpu() {
        let s = with(
            snapshot_with(|t| {
                let b = "sys/bus/pci/devices/0000:00:02.0";
                t.file(&format!("{b}/vendor"), "0x8086\n");
                t.file(&format!("{b}/device"), "0x5912\n");
                t.file(&format!("{b}/class"), "0x030000\n");
                t.file("proc/cmdline", "intel_iommu=on,igfx_off\n");
            }),
            &["0000:00:02.0"],
        );
        let o = check_group(&s, &NONE);
        assert_eq!(o.status, Status::Fail);
        assert!(o.remedy.unwrap().contains("remove igfx_off"));
    }

    #[test]
    fn nothing_named_skips() {
        let s = snapshot_with(|_| {});
        for c in CHECKS
            .iter()
            .filter(|c| c.id != "passthrough.iommu" && c.id != "passthrough.kvm-msrs")
        {
            assert_eq!((c.run)(&s, &NONE).status, Status::Skip, "{}", c.id);
        }
    }
}
