//! `gvtg passthrough bind|unbind`: moving PCI functions to vfio-pci and back through the
//! kernel's sysfs ABI (Documentation/ABI/testing/sysfs-bus-pci):
//!
//! - bind: `echo vfio-pci > /sys/bus/pci/devices/ADDR/driver_override`, then
//!   `echo ADDR > /sys/bus/pci/devices/ADDR/driver/unbind` (when a driver holds it), then
//!   `echo ADDR > /sys/bus/pci/drivers_probe`: only vfio-pci may take the function now.
//! - unbind: unbind from vfio-pci, clear `driver_override` (the kernel clears it on an empty
//!   write), `drivers_probe` so the host driver takes it back.
//!
//! [`plan`] reads the host and decides (the device, its sibling functions and every other
//! endpoint of its IOMMU group; bridges stay), and refuses what the host needs: an IOMMU that is
//! off, the root filesystem's controller, another storage controller, the only network
//! controller, the boot VGA a console uses. [`execute`] writes through
//! [`super::sysfs_write::write_attr`] (one `write()`, short writes are errors, never a name the
//! kernel did not list), verifies the `driver` link on a live host, and puts back what it changed
//! when a step fails. Under `--root DIR` the writes land in the tree's files and nothing is
//! verified: no kernel acts on them.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::snapshot::{read_iommu_groups, read_pci, IommuGroup, PciDevice};
use super::sysfs_write::{listed, write_attr};
use super::{HostRoot, Probe};
use crate::checks::passthrough::{class_name, describe, host_drivers, resolve_in};

/// How long to wait for the kernel (a driver to bind, a `/dev/vfio/N` node to appear).
const WAIT: Duration = Duration::from_secs(3);

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Move the functions to vfio-pci.
    Bind,
    /// Give them back to their host drivers.
    Unbind,
}

impl Action {
    /// `bind` / `unbind`.
    pub fn word(self) -> &'static str {
        match self {
            Action::Bind => "bind",
            Action::Unbind => "unbind",
        }
    }
}

/// Options of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Only the named functions: not their siblings or group members.
    pub device_only: bool,
    /// Override the overridable refusals.
    pub force: bool,
}

/// Why the host needs something in the group (or why binding cannot work at all).
#[derive(Debug, Clone, Serialize)]
pub struct Refusal {
    /// Stable kind: `iommu-off`, `no-group`, `root-disk`, `storage`, `only-nic`, `active-nic`,
    /// `boot-vga`, `in-use`.
    pub kind: &'static str,
    /// The function concerned, if one.
    pub address: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    pub remedy: String,
    /// Whether `--force` overrides it.
    pub overridable: bool,
    /// Whether `--force` did.
    pub overridden: bool,
}

/// One attribute write, as `echo VALUE > PATH` would do it.
#[derive(Debug, Clone, Serialize)]
pub struct AttrWrite {
    /// Path relative to the root (`sys/bus/pci/drivers_probe`).
    #[serde(skip)]
    pub rel: String,
    /// Path as the host sees it.
    pub path: String,
    /// What is written (an empty string clears `driver_override`; a newline is written).
    pub value: String,
}

impl AttrWrite {
    fn new(rel: String, value: &str) -> Self {
        AttrWrite {
            path: HostRoot::display(&rel),
            rel,
            value: value.to_string(),
        }
    }

    /// The shell line that does the same: `echo vfio-pci > /sys/…/driver_override`.
    pub fn shell(&self) -> String {
        if self.value.is_empty() {
            format!("echo > {}", self.path)
        } else {
            format!("echo {} > {}", self.value, self.path)
        }
    }

    fn bytes(&self) -> Vec<u8> {
        if self.value.is_empty() {
            b"\n".to_vec()
        } else {
            self.value.as_bytes().to_vec()
        }
    }
}

/// Why a function is in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Named on the command line.
    Named,
    /// Another function of a named device's slot.
    Sibling,
    /// Another endpoint in a named device's IOMMU group.
    GroupMember,
}

impl Role {
    /// Words for the text output.
    pub fn word(self) -> &'static str {
        match self {
            Role::Named => "named",
            Role::Sibling => "sibling function",
            Role::GroupMember => "IOMMU group member",
        }
    }
}

/// A function the run writes to.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// PCI address.
    pub address: String,
    /// `vendor:device`.
    pub id: String,
    /// Class in words.
    pub class: &'static str,
    /// `describe()` line.
    #[serde(skip)]
    pub line: String,
    /// Why it is included.
    pub role: Role,
    /// Its IOMMU group.
    pub iommu_group: Option<u32>,
    /// Driver before the run.
    pub driver_before: Option<String>,
    /// `driver_override` before the run.
    pub driver_override_before: Option<String>,
    /// The writes, in order.
    pub writes: Vec<AttrWrite>,
    /// Driver after the run (read back).
    pub driver_after: Option<String>,
    /// Whether the result was checked against the kernel (None in a captured tree, a dry run or
    /// when the run stopped before).
    pub verified: Option<bool>,
    /// Whether every write of it went through.
    pub written: bool,
    /// Host drivers that may claim it (for "load its module" advice).
    #[serde(skip)]
    pub host_drivers: &'static [&'static str],
}

/// A function left alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// PCI address.
    pub address: String,
    /// Why.
    pub reason: String,
}

/// An IOMMU group the run touches and its VFIO node.
#[derive(Debug, Clone, Serialize)]
pub struct GroupNode {
    /// Group number.
    pub number: u32,
    /// `/dev/vfio/N`.
    pub node: String,
    /// Whether the node exists (after the run when it ran).
    pub present: bool,
}

/// What `bind`/`unbind` will do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// bind or unbind.
    pub action: Action,
    /// Whether this is the running host.
    pub live: bool,
    /// The functions named (resolved).
    pub named: Vec<String>,
    /// The functions written to, in order.
    pub devices: Vec<Target>,
    /// Functions left alone.
    pub skipped: Vec<Skipped>,
    /// The groups touched.
    pub groups: Vec<GroupNode>,
    /// Why not (or what `--force` overrode).
    pub refusals: Vec<Refusal>,
    /// Things to know (non-viable group under --device-only, captured tree, vfio-pci loading).
    pub notes: Vec<String>,
    /// vfio-pci is not loaded: `modprobe vfio-pci` runs first (live host).
    pub modprobe: bool,
}

impl Plan {
    /// Whether a refusal stands (not overridable, or not overridden).
    pub fn blocked(&self) -> bool {
        self.refusals.iter().any(|r| !r.overridden)
    }
}

/// What happened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Whether `modprobe vfio-pci` ran (and succeeded).
    pub modprobe_ran: bool,
    /// The error that stopped the run, if one.
    pub error: Option<String>,
    /// What was put back after the error.
    pub rolled_back: Vec<String>,
    /// Problems while putting back (the host may need a look).
    pub rollback_errors: Vec<String>,
}

fn pci_dev<'a>(pci: &'a [PciDevice], addr: &str) -> Option<&'a PciDevice> {
    pci.iter().find(|d| d.address == addr)
}

fn group_of(groups: &[IommuGroup], g: u32) -> Option<&IommuGroup> {
    groups.iter().find(|x| x.number == g)
}

const VFIO: &str = "vfio-pci";

/// Reads the host and plans `action` on the functions `specs` name (addresses, short
/// addresses, vendor:device ids). An error is a usage or read error (exit 2); refusals are in
/// the plan.
pub fn plan(
    root: &HostRoot,
    action: Action,
    specs: &[String],
    opts: Options,
) -> anyhow::Result<Plan> {
    let pci = match read_pci(root) {
        Probe::Ok(p) => p,
        other => anyhow::bail!(
            "{}",
            other.describe_failure(&HostRoot::display("sys/bus/pci/devices"))
        ),
    };
    let named = resolve_in(&pci, specs).map_err(|e| anyhow::anyhow!(e))?;
    let groups: Vec<IommuGroup> = read_iommu_groups(root, true).into_ok().unwrap_or_default();
    let mut p = Plan {
        action,
        live: root.is_live(),
        named: named.clone(),
        devices: Vec::new(),
        skipped: Vec::new(),
        groups: Vec::new(),
        refusals: Vec::new(),
        notes: Vec::new(),
        modprobe: false,
    };

    // The set of functions: the named ones, their slot siblings, their groups' other members.
    let mut chosen: Vec<(String, Role)> = named.iter().map(|a| (a.clone(), Role::Named)).collect();
    let mut group_nums: Vec<u32> = Vec::new();
    for a in &named {
        let d = pci_dev(&pci, a).expect("resolved from this list");
        let sibs: Vec<&PciDevice> = pci
            .iter()
            .filter(|o| o.slot() == d.slot() && o.address != d.address)
            .collect();
        if let Some(g) = d.iommu_group {
            if !group_nums.contains(&g) {
                group_nums.push(g);
            }
        }
        if opts.device_only {
            continue;
        }
        for s in sibs {
            if !chosen.iter().any(|(x, _)| *x == s.address) {
                chosen.push((s.address.clone(), Role::Sibling));
            }
            if let Some(g) = s.iommu_group {
                if !group_nums.contains(&g) {
                    group_nums.push(g);
                }
            }
        }
    }
    group_nums.sort();
    if !opts.device_only {
        for g in &group_nums {
            let members: Vec<String> = match group_of(&groups, *g).and_then(|x| x.devices.clone()) {
                Some(m) => m,
                None => pci
                    .iter()
                    .filter(|d| d.iommu_group == Some(*g))
                    .map(|d| d.address.clone())
                    .collect(),
            };
            for m in members {
                if !chosen.iter().any(|(x, _)| *x == m) {
                    chosen.push((m, Role::GroupMember));
                }
            }
        }
    }
    chosen.sort_by(|a, b| a.0.cmp(&b.0));

    // IOMMU off: vfio-pci (without the unsafe no-IOMMU mode) has nothing to attach to.
    // vfio's no-IOMMU mode registers software groups named "vfio-noiommu": they isolate nothing.
    if groups
        .iter()
        .all(|g| g.name.as_deref() == Some("vfio-noiommu"))
    {
        p.refusals.push(Refusal {
            kind: "iommu-off",
            address: None,
            message: "the IOMMU is off: /sys/kernel/iommu_groups holds no hardware group (empty, or only vfio-noiommu ones), so no device is in an IOMMU group and vfio-pci cannot give one to a VM".into(),
            remedy: "turn VT-d / AMD-Vi on in the firmware and boot with intel_iommu=on (Intel) or amd_iommu=on (AMD), then check with `gvtg doctor --passthrough ADDR` (passthrough.iommu). vfio's no-IOMMU mode (enable_unsafe_noiommu_mode) gives a VM unprotected DMA to all host memory: gvtg does not use it.".into(),
            overridable: false,
            overridden: false,
        });
    } else {
        for a in &named {
            let d = pci_dev(&pci, a).expect("resolved");
            if d.iommu_group.is_none() {
                p.refusals.push(Refusal {
                    kind: "no-group",
                    address: Some(a.clone()),
                    message: format!(
                        "{} is in no IOMMU group: the IOMMU does not translate it",
                        describe(d)
                    ),
                    remedy: "an Intel iGPU left out by intel_iommu=igfx_off gets a group once igfx_off is removed; otherwise see `gvtg doctor --passthrough ADDR` (passthrough.iommu, passthrough.group)".into(),
                    overridable: false,
                    overridden: false,
                });
            }
        }
    }

    for (addr, role) in &chosen {
        let Some(d) = pci_dev(&pci, addr) else {
            p.skipped.push(Skipped {
                address: addr.clone(),
                reason: "listed in the IOMMU group but not under /sys/bus/pci/devices".into(),
            });
            continue;
        };
        // PCI-to-PCI bridges (pcieport) stay: VFIO accepts them in a viable group, and vfio-pci
        // does not take a bridge header anyway. Other bridge classes (ISA/LPC, host) are
        // ordinary endpoints to the kernel and must be released like any other member.
        if d.is_pci_bridge() {
            p.skipped.push(Skipped {
                address: addr.clone(),
                reason: format!(
                    "{}: a PCI bridge stays with the host (VFIO does not need it released)",
                    describe(d)
                ),
            });
            continue;
        }
        let drv = d.driver.as_deref();
        let target = |writes: Vec<AttrWrite>| Target {
            address: d.address.clone(),
            id: d.id(),
            class: class_name(d.class),
            line: describe(d),
            role: *role,
            iommu_group: d.iommu_group,
            driver_before: d.driver.clone(),
            driver_override_before: d.driver_override.clone(),
            writes,
            driver_after: None,
            verified: None,
            written: false,
            host_drivers: host_drivers(d),
        };
        let base = format!("sys/bus/pci/devices/{addr}");
        let has_override = listed(root, &base, "driver_override").is_some();
        match action {
            Action::Bind => {
                if drv == Some(VFIO) {
                    p.skipped.push(Skipped {
                        address: addr.clone(),
                        reason: format!("{}: already on vfio-pci", describe(d)),
                    });
                    continue;
                }
                if drv == Some("pci-stub") && *role != Role::Named {
                    p.skipped.push(Skipped {
                        address: addr.clone(),
                        reason: format!("{}: stays on pci-stub, which VFIO accepts", describe(d)),
                    });
                    continue;
                }
                if !has_override {
                    anyhow::bail!(
                        "{} has no driver_override attribute (the kernel has it since 3.16; a captured tree must hold the file)",
                        HostRoot::display(&format!("{base}/driver_override"))
                    );
                }
                let mut w = vec![AttrWrite::new(format!("{base}/driver_override"), VFIO)];
                if let Some(x) = drv {
                    if listed(root, "sys/bus/pci/drivers", x).is_none() {
                        anyhow::bail!(
                            "{addr} is bound to {x}, which /sys/bus/pci/drivers does not list"
                        );
                    }
                    w.push(AttrWrite::new(format!("{base}/driver/unbind"), addr));
                }
                w.push(AttrWrite::new("sys/bus/pci/drivers_probe".into(), addr));
                p.devices.push(target(w));
            }
            Action::Unbind => {
                let overridden = d.driver_override.as_deref() == Some(VFIO);
                if drv != Some(VFIO) && !overridden {
                    p.skipped.push(Skipped {
                        address: addr.clone(),
                        reason: format!("{}: not on vfio-pci, nothing to give back", describe(d)),
                    });
                    continue;
                }
                let mut w = Vec::new();
                if drv == Some(VFIO) {
                    w.push(AttrWrite::new(format!("{base}/driver/unbind"), addr));
                }
                if has_override {
                    w.push(AttrWrite::new(format!("{base}/driver_override"), ""));
                }
                w.push(AttrWrite::new("sys/bus/pci/drivers_probe".into(), addr));
                p.devices.push(target(w));
            }
        }
    }

    let mut touched: Vec<u32> = p.devices.iter().filter_map(|t| t.iommu_group).collect();
    touched.extend(group_nums.iter().copied());
    touched.sort();
    touched.dedup();
    p.groups = touched
        .iter()
        .map(|g| GroupNode {
            number: *g,
            node: HostRoot::display(&format!("dev/vfio/{g}")),
            present: root.exists(&format!("dev/vfio/{g}")),
        })
        .collect();

    match action {
        Action::Bind => {
            host_needs(root, &pci, &mut p);
            if opts.device_only {
                device_only_notes(&pci, &groups, &mut p);
            }
            if !p.devices.is_empty() {
                p.notes.push("a driver_override lasts until reboot: to bind at every boot, configure vfio-pci.ids (`gvtg fix --passthrough`) or let driverctl keep the override (/etc/driverctl.d)".into());
            }
            if !p.devices.is_empty() && !root.exists("sys/bus/pci/drivers/vfio-pci") {
                p.modprobe = true;
                if !root.is_live() {
                    p.notes.push("vfio-pci is not loaded in this tree (no /sys/bus/pci/drivers/vfio-pci): on a live host `modprobe vfio-pci` runs first; here nothing is loaded".into());
                }
            }
        }
        Action::Unbind => {
            in_use(root, &mut p);
            for t in &p.devices {
                let kept = format!("etc/driverctl.d/pci-{}", t.address);
                if root.exists(&kept) {
                    p.notes.push(format!(
                        "driverctl keeps an override for {} in {}: it comes back at boot (`driverctl unset-override {}` removes it)",
                        t.address,
                        HostRoot::display(&kept),
                        t.address
                    ));
                }
            }
        }
    }
    for r in &mut p.refusals {
        r.overridden = r.overridable && opts.force;
    }
    if !root.is_live() {
        p.notes.push(format!(
            "not the live system: a captured tree at {}; the writes land in its files and no kernel acts on them, so nothing is verified",
            root.base().display()
        ));
    }
    Ok(p)
}

/// `--device-only`: the group stays non-viable while other members keep their host drivers.
fn device_only_notes(pci: &[PciDevice], groups: &[IommuGroup], p: &mut Plan) {
    for t in p.devices.clone() {
        let sibs: Vec<String> = pci
            .iter()
            .filter(|o| o.slot() == t.address.rsplit_once('.').map_or("", |x| x.0))
            .filter(|o| o.address != t.address)
            .map(describe)
            .collect();
        if !sibs.is_empty() {
            p.notes.push(format!(
                "{} has sibling function(s) {}: on real hardware they share its IOMMU group and VFIO needs them released too",
                t.address,
                sibs.join(", ")
            ));
        }
        let Some(g) = t.iommu_group else { continue };
        let others: Vec<String> = group_of(groups, g)
            .and_then(|x| x.devices.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| !p.devices.iter().any(|d| d.address == *a))
            .filter_map(|a| pci_dev(pci, &a))
            .filter(|d| {
                !d.is_pci_bridge()
                    && d.driver
                        .as_deref()
                        .is_some_and(|x| x != VFIO && x != "pci-stub")
            })
            .map(describe)
            .collect();
        if !others.is_empty() {
            p.notes.push(format!(
                "--device-only: IOMMU group {g} is not viable while {} stay(s) on a host driver; QEMU will refuse it (\"group {g} is not viable\") until every endpoint in it is on vfio-pci, pci-stub or no driver",
                others.join(", ")
            ));
        }
    }
}

/// Refusals for what the host needs in the functions being bound.
fn host_needs(root: &HostRoot, pci: &[PciDevice], p: &mut Plan) {
    let bound: Vec<String> = p.devices.iter().map(|t| t.address.clone()).collect();
    let rootfs = root_filesystem(root);
    for t in &p.devices {
        let Some(d) = pci_dev(pci, &t.address) else {
            continue;
        };
        match d.class >> 16 {
            0x01 => {
                let disks = disks_on(root, &d.address);
                let holds_root = rootfs
                    .chain
                    .iter()
                    .any(|l| l.contains(&format!("/{}/", d.address)));
                let on = if disks.is_empty() {
                    "no disk seen under /sys/block".to_string()
                } else {
                    format!("disks {}", disks.join(", "))
                };
                if holds_root {
                    p.refusals.push(Refusal {
                        kind: "root-disk",
                        address: Some(d.address.clone()),
                        message: format!(
                            "{} is a storage controller holding the root filesystem ({} on {}; {on}): binding it to vfio-pci takes the running system's disk away",
                            describe(d),
                            rootfs.source,
                            rootfs.chain.first().map(String::as_str).unwrap_or("?")
                        ),
                        remedy: "never pass through the controller of the host's root disk; give the VM its own controller or disk (virtio-blk/virtio-scsi)".into(),
                        overridable: false,
                        overridden: false,
                    });
                } else {
                    p.refusals.push(Refusal {
                        kind: "storage",
                        address: Some(d.address.clone()),
                        message: format!(
                            "{} is a storage controller ({on}), possibly holding the boot disk or other host data; {}",
                            describe(d),
                            rootfs.verdict
                        ),
                        remedy: "unmount its filesystems and stop using its disks first; --force binds it anyway".into(),
                        overridable: true,
                        overridden: false,
                    });
                }
            }
            0x02 => {
                let others: Vec<&PciDevice> = pci
                    .iter()
                    .filter(|o| o.class >> 16 == 0x02 && !bound.contains(&o.address))
                    .collect();
                let ifs = interfaces(root, &d.address);
                let shown = if ifs.is_empty() {
                    "no interface".to_string()
                } else {
                    ifs.iter()
                        .map(|(n, s)| format!("{n} {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                if others.is_empty() {
                    p.refusals.push(Refusal {
                        kind: "only-nic",
                        address: Some(d.address.clone()),
                        message: format!(
                            "{} is the host's only network controller ({shown}): binding it to vfio-pci cuts the host off the network",
                            describe(d)
                        ),
                        remedy: "keep a network controller for the host (another NIC, or a USB adapter) or give the VM a virtio-net device instead; --force binds it anyway".into(),
                        overridable: true,
                        overridden: false,
                    });
                } else if ifs.iter().any(|(_, s)| s == "up")
                    && !others
                        .iter()
                        .any(|o| interfaces(root, &o.address).iter().any(|(_, s)| s == "up"))
                {
                    p.refusals.push(Refusal {
                        kind: "active-nic",
                        address: Some(d.address.clone()),
                        message: format!(
                            "{} carries the host's only interface that is up ({shown}): binding it to vfio-pci cuts the host off the network",
                            describe(d)
                        ),
                        remedy: "bring up another interface for the host first; --force binds it anyway".into(),
                        overridable: true,
                        overridden: false,
                    });
                }
            }
            _ => {}
        }
        if d.boot_vga == Some(true) {
            let users = console_users(root, d);
            if !users.is_empty() {
                p.refusals.push(Refusal {
                    kind: "boot-vga",
                    address: Some(d.address.clone()),
                    message: format!(
                        "{} is the boot VGA and in use ({}): binding it to vfio-pci takes the host's screen away; the console freezes and a running display server on it crashes",
                        describe(d),
                        users.join("; ")
                    ),
                    remedy: "stop the display manager and free the console first (or use a second GPU for the VM); --force binds it anyway".into(),
                    overridable: true,
                    overridden: false,
                });
            }
        }
    }
}

/// What uses the boot VGA: its own driver (fbcon on its DRM framebuffer, a display server), a
/// firmware framebuffer (efifb "EFI VGA", vesafb "VESA VGA", simplefb/simpledrm) or its driver's
/// DRM framebuffer in /proc/fb, and then a bound framebuffer console. A framebuffer of another
/// GPU's driver does not count.
fn console_users(root: &HostRoot, d: &PciDevice) -> Vec<String> {
    let mut v = Vec::new();
    let drv = d
        .driver
        .as_deref()
        .filter(|x| *x != VFIO && *x != "pci-stub");
    if let Some(x) = drv {
        v.push(format!("driven by {x}"));
    }
    if let Some(fb) = root.read("proc/fb").into_ok() {
        let fbs: Vec<&str> = fb
            .lines()
            .map(str::trim)
            .filter(|l| {
                let name = l.split_once(' ').map_or("", |x| x.1);
                ["EFI VGA", "VESA VGA", "simple", "efifb", "vesafb"]
                    .iter()
                    .any(|f| name.contains(f))
                    || drv.is_some_and(|x| name.starts_with(x))
            })
            .collect();
        if !fbs.is_empty() {
            v.push(format!("framebuffer {}", fbs.join(", ")));
        }
    }
    if v.is_empty() {
        return v;
    }
    for c in root
        .read_dir("sys/class/vtconsole")
        .into_ok()
        .unwrap_or_default()
    {
        let base = format!("sys/class/vtconsole/{c}");
        let name = root.read_attr(&format!("{base}/name")).into_ok();
        let bound = root.read_attr(&format!("{base}/bind")).into_ok();
        if let (Some(n), Some("1")) = (name, bound.as_deref()) {
            if n.contains("frame buffer") {
                v.push(format!("console {c}: {n}"));
            }
        }
    }
    v
}

/// Network interfaces of a function with their operstate.
fn interfaces(root: &HostRoot, addr: &str) -> Vec<(String, String)> {
    root.read_dir(&format!("sys/bus/pci/devices/{addr}/net"))
        .into_ok()
        .unwrap_or_default()
        .into_iter()
        .map(|n| {
            let s = root
                .read_attr(&format!("sys/bus/pci/devices/{addr}/net/{n}/operstate"))
                .into_ok()
                .unwrap_or_else(|| "unknown".into());
            (n, s)
        })
        .collect()
}

/// Block devices whose sysfs path runs through `addr`.
fn disks_on(root: &HostRoot, addr: &str) -> Vec<String> {
    let needle = format!("/{addr}/");
    root.read_dir("sys/block")
        .into_ok()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| {
            root.read_link(&format!("sys/block/{n}"))
                .into_ok()
                .is_some_and(|t| t.contains(&needle))
        })
        .collect()
}

/// Where the root filesystem lives.
#[derive(Debug, Default)]
struct RootFs {
    /// `/dev/nvme0n1p2`, `rootfs`…
    source: String,
    /// The sysfs device paths of its block device and what it stacks on (dm slaves).
    chain: Vec<String>,
    /// A sentence for the storage refusal.
    verdict: String,
}

fn root_filesystem(root: &HostRoot) -> RootFs {
    let mounts = root.read("proc/mounts").into_ok().unwrap_or_default();
    let Some((source, fstype)) = mounts.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 3 && f[1] == "/").then(|| (f[0].to_string(), f[2].to_string()))
    }) else {
        return RootFs {
            verdict: "whether it holds the root filesystem is unknown (/proc/mounts unreadable)"
                .into(),
            ..RootFs::default()
        };
    };
    let mut kname = None;
    if let Some(dev) = source.strip_prefix("/dev/") {
        if super::sysfs_write::is_safe_component(dev.rsplit('/').next().unwrap_or("")) {
            kname = match root.read_link(&format!("dev/{dev}")).into_ok() {
                Some(t) => t.rsplit('/').next().map(str::to_string),
                None => dev.rsplit('/').next().map(str::to_string),
            };
        }
    }
    if kname.as_deref() == Some("root") || kname.is_none() && root.is_live() {
        // /dev/root names no real node: the device number of `/` does.
        kname = live_root_kname(root);
    }
    let mut chain = Vec::new();
    let mut todo: Vec<String> = kname.into_iter().collect();
    while let Some(k) = todo.pop() {
        if chain.len() > 16 || !super::sysfs_write::is_safe_component(&k) {
            break;
        }
        if let Some(t) = root.read_link(&format!("sys/class/block/{k}")).into_ok() {
            chain.push(t);
        }
        // A partition's slaves are its disk's; a dm/md device lists what it stacks on.
        for s in root
            .read_dir(&format!("sys/class/block/{k}/slaves"))
            .into_ok()
            .unwrap_or_default()
        {
            todo.push(s);
        }
    }
    let verdict = if chain.is_empty() {
        if source.starts_with("/dev/") {
            format!("whether it holds the root filesystem ({source}) cannot be told from sysfs")
        } else {
            format!("the root filesystem is {source} ({fstype}), on no disk")
        }
    } else {
        format!("the root filesystem ({source}) is on another controller")
    };
    RootFs {
        source,
        chain,
        verdict,
    }
}

/// The kernel name of the block device `/` is on, from its device number (live host only).
fn live_root_kname(root: &HostRoot) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if !root.is_live() {
        return None;
    }
    let dev = std::fs::metadata("/").ok()?.dev();
    let (maj, min) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let t = root
        .read_link(&format!("sys/dev/block/{maj}:{min}"))
        .into_ok()?;
    t.rsplit('/').next().map(str::to_string)
}

/// Unbinding a device a VM holds blocks in the kernel until the VM lets go: refuse.
fn in_use(root: &HostRoot, p: &mut Plan) {
    let nodes: Vec<String> = p
        .groups
        .iter()
        .filter(|g| g.present)
        .map(|g| g.node.clone())
        .collect();
    match crate::cmd::vgpu::node_holders(root, &nodes) {
        Ok(h) if !h.is_empty() => p.refusals.push(Refusal {
            kind: "in-use",
            address: None,
            message: format!(
                "held open by {}: unbinding would wait in the kernel until that process lets go",
                h.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            remedy: "shut the VM down (or detach the device from it) first".into(),
            overridable: false,
            overridden: false,
        }),
        Ok(_) => {}
        Err(why) => p
            .notes
            .push(format!("whether a VM holds the group is {why}")),
    }
}

/// `modprobe vfio-pci`, found on PATH or in the sbin directories.
fn modprobe_vfio_pci() -> Result<(), String> {
    let prog = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(std::path::PathBuf::from))
        .map(|d| d.join("modprobe"))
        .find(|p| p.is_file())
        .ok_or("modprobe not found (package kmod)")?;
    let o = std::process::Command::new(&prog)
        .arg(VFIO)
        .output()
        .map_err(|e| format!("running {}: {e}", prog.display()))?;
    if !o.status.success() {
        return Err(format!(
            "`modprobe vfio-pci` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(())
}

fn wait_for(f: impl FnMut() -> bool) -> bool {
    wait_up_to(WAIT, f)
}

fn wait_up_to(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn driver_now(root: &HostRoot, addr: &str) -> Option<String> {
    root.link_name(&format!("sys/bus/pci/devices/{addr}/driver"))
        .into_ok()
}

/// Does the plan (it must not be blocked). Fills in `driver_after`, `verified` and the group
/// nodes; on a failure puts back what it changed and says so in the outcome.
pub fn execute(root: &HostRoot, p: &mut Plan) -> Outcome {
    let mut out = Outcome::default();
    if p.blocked() {
        out.error = Some("refused".into());
        return out;
    }
    let live = root.is_live();
    if p.action == Action::Bind && p.modprobe && live {
        if let Err(e) = modprobe_vfio_pci() {
            out.error = Some(format!(
                "{e}: vfio-pci must be loaded before binding (is the module installed? CONFIG_VFIO_PCI); nothing was written"
            ));
            return out;
        }
        if !wait_for(|| root.exists("sys/bus/pci/drivers/vfio-pci")) {
            out.error = Some("`modprobe vfio-pci` succeeded but /sys/bus/pci/drivers/vfio-pci did not appear; nothing was written".into());
            return out;
        }
        out.modprobe_ran = true;
    }
    for i in 0..p.devices.len() {
        let t = &p.devices[i];
        let mut failed: Option<String> = None;
        for w in &t.writes {
            if let Err(e) = write_attr(root, &w.rel, &w.bytes()) {
                failed = Some(format!("{}: {e}", w.shell()));
                break;
            }
        }
        let addr = t.address.clone();
        p.devices[i].written = failed.is_none();
        if failed.is_none() && live {
            match p.action {
                Action::Bind => {
                    let ok = wait_for(|| driver_now(root, &addr).as_deref() == Some(VFIO));
                    let now = driver_now(root, &addr);
                    p.devices[i].verified = Some(ok);
                    if !ok {
                        failed = Some(format!(
                            "{addr}: vfio-pci did not take it (driver now: {}); the kernel log (dmesg) says why",
                            now.as_deref().unwrap_or("none")
                        ));
                    }
                    p.devices[i].driver_after = now;
                }
                Action::Unbind => {
                    // drivers_probe probes synchronously; a driver with asynchronous probing
                    // may take a moment longer.
                    wait_up_to(Duration::from_secs(1), || driver_now(root, &addr).is_some());
                    let now = driver_now(root, &addr);
                    let ok = now.as_deref() != Some(VFIO);
                    p.devices[i].verified = Some(ok);
                    if !ok {
                        failed = Some(format!(
                            "{addr}: still on vfio-pci after the unbind: vfio-pci claimed it again, most likely through vfio-pci.ids (kernel command line or /etc/modprobe.d); remove the id, or bind the host driver by hand (echo {addr} > /sys/bus/pci/drivers/DRIVER/bind)"
                        ));
                    }
                    p.devices[i].driver_after = now;
                }
            }
        } else if failed.is_none() {
            p.devices[i].driver_after = driver_now(root, &addr);
        }
        if let Some(e) = failed {
            out.error = Some(e);
            rollback(root, p, i, &mut out);
            break;
        }
    }
    for g in &mut p.groups {
        let rel = format!("dev/vfio/{}", g.number);
        g.present = if live && p.action == Action::Bind && out.error.is_none() {
            wait_for(|| root.exists(&rel))
        } else {
            root.exists(&rel)
        };
    }
    out
}

/// Puts back devices `0..=upto` after a failure, last first: off vfio-pci (for a bind), the
/// override as it was, reprobed.
fn rollback(root: &HostRoot, p: &mut Plan, upto: usize, out: &mut Outcome) {
    for i in (0..=upto).rev() {
        let t = &p.devices[i];
        let addr = t.address.clone();
        let base = format!("sys/bus/pci/devices/{addr}");
        let mut steps: Vec<AttrWrite> = Vec::new();
        let now = driver_now(root, &addr);
        match p.action {
            Action::Bind => {
                if now.as_deref() == Some(VFIO) && t.driver_before.as_deref() != Some(VFIO) {
                    steps.push(AttrWrite::new(format!("{base}/driver/unbind"), &addr));
                }
                steps.push(AttrWrite::new(
                    format!("{base}/driver_override"),
                    t.driver_override_before.as_deref().unwrap_or(""),
                ));
            }
            Action::Unbind => {
                steps.push(AttrWrite::new(
                    format!("{base}/driver_override"),
                    t.driver_override_before.as_deref().unwrap_or(""),
                ));
                if let Some(x) = now.as_deref().filter(|x| *x != VFIO) {
                    if listed(root, "sys/bus/pci/drivers", x).is_some() {
                        steps.push(AttrWrite::new(format!("{base}/driver/unbind"), &addr));
                    }
                }
            }
        }
        if now.is_none() || steps.iter().any(|s| s.rel.ends_with("/unbind")) {
            steps.push(AttrWrite::new("sys/bus/pci/drivers_probe".into(), &addr));
        }
        let mut ok = true;
        for s in &steps {
            if let Err(e) = write_attr(root, &s.rel, &s.bytes()) {
                ok = false;
                out.rollback_errors.push(format!("{}: {e}", s.shell()));
                break;
            }
        }
        let after = driver_now(root, &addr);
        if ok {
            out.rolled_back.push(format!(
                "{addr}: back on {}",
                after.as_deref().unwrap_or("no driver")
            ));
        }
        p.devices[i].driver_after = after;
    }
}

/// The path shown for `--root` trees in messages.
pub fn root_shown(root: &HostRoot) -> String {
    if root.is_live() {
        "/".into()
    } else {
        root.base().display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Tree;

    /// A PCI function in group `group`, with `driver` (its driver dir and `unbind` file made),
    /// a `driver_override` file ("(null)") and the bus's `drivers_probe`.
    fn dev(t: &mut Tree, addr: &str, id: (u16, u16), class: u32, driver: Option<&str>, group: u32) {
        t.pci_function(addr, id, class, driver, group);
        t.file(
            &format!("sys/bus/pci/devices/{addr}/driver_override"),
            "(null)\n",
        );
        if let Some(d) = driver {
            t.file(&format!("sys/bus/pci/drivers/{d}/unbind"), "");
        }
        t.file("sys/bus/pci/drivers_probe", "");
        t.dir("sys/bus/pci/drivers/vfio-pci");
    }

    /// A GPU + HDMI audio behind a root port, all in group 1; a NIC alone in group 2; an SATA
    /// controller with sda (the root disk) and an SMBus controller in group 3.
    fn host(t: &mut Tree) {
        dev(
            t,
            "0000:00:01.0",
            (0x8086, 0x1901),
            0x060400,
            Some("pcieport"),
            1,
        );
        dev(
            t,
            "0000:01:00.0",
            (0x10de, 0x1b80),
            0x030000,
            Some("nouveau"),
            1,
        );
        dev(
            t,
            "0000:01:00.1",
            (0x10de, 0x10f0),
            0x040300,
            Some("snd_hda_intel"),
            1,
        );
        dev(
            t,
            "0000:00:19.0",
            (0x8086, 0x15b8),
            0x020000,
            Some("e1000e"),
            2,
        );
        t.file(
            "sys/bus/pci/devices/0000:00:19.0/net/eno1/operstate",
            "up\n",
        );
        dev(
            t,
            "0000:00:1f.2",
            (0x8086, 0xa102),
            0x010601,
            Some("ahci"),
            3,
        );
        dev(
            t,
            "0000:00:1f.3",
            (0x8086, 0xa123),
            0x0c0500,
            Some("i801_smbus"),
            3,
        );
        t.link(
            "sys/block/sda",
            "../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda",
        );
        t.link(
            "sys/class/block/sda2",
            "../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2",
        );
        t.file(
            "proc/mounts",
            "sysfs /sys sysfs rw 0 0\n/dev/sda2 / ext4 rw 0 0\n",
        );
    }

    fn plan_on(t: &Tree, action: Action, specs: &[&str], opts: Options) -> Plan {
        let r = HostRoot::at(t.path()).unwrap();
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        plan(&r, action, &specs, opts).unwrap()
    }

    fn kinds(p: &Plan) -> Vec<&str> {
        p.refusals.iter().map(|r| r.kind).collect()
    }

    #[test]
    fn bind_takes_the_group_and_skips_the_bridge() {
        let mut t = Tree::new();
        host(&mut t);
        let p = plan_on(&t, Action::Bind, &["01:00.0"], Options::default());
        let addrs: Vec<(&str, Role)> = p
            .devices
            .iter()
            .map(|d| (d.address.as_str(), d.role))
            .collect();
        assert_eq!(
            addrs,
            [
                ("0000:01:00.0", Role::Named),
                ("0000:01:00.1", Role::Sibling)
            ]
        );
        assert!(p.skipped[0].address == "0000:00:01.0" && p.skipped[0].reason.contains("bridge"));
        let lines: Vec<String> = p.devices[0].writes.iter().map(AttrWrite::shell).collect();
        assert_eq!(
            lines,
            [
                "echo vfio-pci > /sys/bus/pci/devices/0000:01:00.0/driver_override",
                "echo 0000:01:00.0 > /sys/bus/pci/devices/0000:01:00.0/driver/unbind",
                "echo 0000:01:00.0 > /sys/bus/pci/drivers_probe",
            ]
        );
        assert!(p.refusals.is_empty(), "{:?}", p.refusals);
        assert!(!p.modprobe);
        assert_eq!(p.groups[0].node, "/dev/vfio/1");
        assert!(p.notes.iter().any(|n| n.contains("not the live system")));
    }

    #[test]
    fn executing_in_a_tree_writes_the_files() {
        let mut t = Tree::new();
        host(&mut t);
        let r = HostRoot::at(t.path()).unwrap();
        let mut p = plan(&r, Action::Bind, &["10de:1b80".into()], Options::default()).unwrap();
        let o = execute(&r, &mut p);
        assert!(o.error.is_none(), "{o:?}");
        let read = |rel: &str| std::fs::read_to_string(t.path().join(rel)).unwrap();
        assert_eq!(
            read("sys/bus/pci/devices/0000:01:00.1/driver_override"),
            "vfio-pci"
        );
        assert_eq!(
            read("sys/bus/pci/drivers/snd_hda_intel/unbind"),
            "0000:01:00.1"
        );
        assert_eq!(read("sys/bus/pci/drivers/nouveau/unbind"), "0000:01:00.0");
        assert_eq!(read("sys/bus/pci/drivers_probe"), "0000:01:00.1");
        assert_eq!(p.devices[0].verified, None, "a tree is never verified");
    }

    #[test]
    fn a_failing_write_puts_back_what_was_done() {
        let mut t = Tree::new();
        host(&mut t);
        // The audio function's override attribute is gone: its first write fails.
        std::fs::remove_file(
            t.path()
                .join("sys/bus/pci/devices/0000:01:00.1/driver_override"),
        )
        .unwrap();
        let r = HostRoot::at(t.path()).unwrap();
        let specs = ["0000:01:00.0".to_string()];
        let e = plan(&r, Action::Bind, &specs, Options::default()).unwrap_err();
        assert!(e.to_string().contains("driver_override"), "{e}");
        // Planned while it existed, removed before the write.
        std::fs::write(
            t.path()
                .join("sys/bus/pci/devices/0000:01:00.1/driver_override"),
            "",
        )
        .unwrap();
        let mut p = plan(&r, Action::Bind, &specs, Options::default()).unwrap();
        std::fs::remove_file(
            t.path()
                .join("sys/bus/pci/devices/0000:01:00.1/driver_override"),
        )
        .unwrap();
        let o = execute(&r, &mut p);
        assert!(
            o.error
                .as_deref()
                .unwrap()
                .contains("0000:01:00.1/driver_override"),
            "{o:?}"
        );
        assert_eq!(o.rolled_back.len(), 1, "{o:?}");
        assert_eq!(
            std::fs::read_to_string(
                t.path()
                    .join("sys/bus/pci/devices/0000:01:00.0/driver_override")
            )
            .unwrap(),
            "\n",
            "the GPU's override is cleared again"
        );
    }

    #[test]
    fn storage_group_holding_root_is_refused_even_with_force() {
        let mut t = Tree::new();
        host(&mut t);
        let p = plan_on(
            &t,
            Action::Bind,
            &["00:1f.3"],
            Options {
                force: true,
                ..Options::default()
            },
        );
        assert_eq!(kinds(&p), ["root-disk"]);
        assert!(!p.refusals[0].overridden && p.blocked());
        assert!(
            p.refusals[0].message.contains("/dev/sda2"),
            "{}",
            p.refusals[0].message
        );
        assert!(
            p.refusals[0].message.contains("disks sda"),
            "{}",
            p.refusals[0].message
        );
    }

    #[test]
    fn storage_without_root_is_overridable() {
        let mut t = Tree::new();
        host(&mut t);
        t.file("proc/mounts", "rootfs / rootfs rw 0 0\n");
        let p = plan_on(&t, Action::Bind, &["00:1f.2"], Options::default());
        assert_eq!(kinds(&p), ["storage"]);
        assert!(
            p.refusals[0]
                .message
                .contains("rootfs (rootfs), on no disk"),
            "{:?}",
            p.refusals
        );
        assert!(p.blocked());
        let p = plan_on(
            &t,
            Action::Bind,
            &["00:1f.2"],
            Options {
                force: true,
                ..Options::default()
            },
        );
        assert!(!p.blocked() && p.refusals[0].overridden);
    }

    #[test]
    fn the_only_nic_is_refused_and_a_second_one_lifts_it() {
        let mut t = Tree::new();
        host(&mut t);
        let p = plan_on(&t, Action::Bind, &["0000:00:19.0"], Options::default());
        assert_eq!(kinds(&p), ["only-nic"]);
        assert!(
            p.refusals[0].message.contains("eno1 up"),
            "{:?}",
            p.refusals
        );
        dev(
            &mut t,
            "0000:03:00.0",
            (0x8086, 0x1533),
            0x020000,
            Some("igb"),
            4,
        );
        let p = plan_on(&t, Action::Bind, &["0000:00:19.0"], Options::default());
        assert_eq!(
            kinds(&p),
            ["active-nic"],
            "the other NIC has no interface up"
        );
        t.file(
            "sys/bus/pci/devices/0000:03:00.0/net/enp3s0/operstate",
            "up\n",
        );
        let p = plan_on(&t, Action::Bind, &["0000:00:19.0"], Options::default());
        assert!(p.refusals.is_empty(), "{:?}", p.refusals);
    }

    #[test]
    fn boot_vga_in_use_needs_force() {
        let mut t = Tree::new();
        host(&mut t);
        t.file("sys/bus/pci/devices/0000:01:00.0/boot_vga", "1\n");
        t.file("proc/fb", "0 nouveaudrmfb\n");
        let p = plan_on(&t, Action::Bind, &["01:00.0"], Options::default());
        assert_eq!(kinds(&p), ["boot-vga"]);
        assert!(p.refusals[0].message.contains("driven by nouveau"));
        assert!(p.refusals[0].message.contains("framebuffer 0 nouveaudrmfb"));
        // Without a driver, only a firmware framebuffer makes it in use; another GPU's is not.
        std::fs::remove_file(t.path().join("sys/bus/pci/devices/0000:01:00.0/driver")).unwrap();
        t.file("proc/fb", "0 amdgpudrmfb\n");
        t.file(
            "sys/class/vtconsole/vtcon1/name",
            "(M) frame buffer device\n",
        );
        t.file("sys/class/vtconsole/vtcon1/bind", "1\n");
        let p = plan_on(&t, Action::Bind, &["01:00.0"], Options::default());
        assert!(p.refusals.is_empty(), "{:?}", p.refusals);
        t.file("proc/fb", "0 EFI VGA\n");
        let p = plan_on(&t, Action::Bind, &["01:00.0"], Options::default());
        assert_eq!(kinds(&p), ["boot-vga"]);
        assert!(
            p.refusals[0]
                .message
                .contains("(framebuffer 0 EFI VGA; console vtcon1: (M) frame buffer device)"),
            "{}",
            p.refusals[0].message
        );
        let p = plan_on(
            &t,
            Action::Bind,
            &["01:00.0"],
            Options {
                force: true,
                ..Options::default()
            },
        );
        assert!(!p.blocked());
    }

    #[test]
    fn iommu_off_refuses_and_force_does_not_help() {
        let mut t = Tree::new();
        host(&mut t);
        std::fs::remove_dir_all(t.path().join("sys/kernel/iommu_groups")).unwrap();
        let p = plan_on(
            &t,
            Action::Bind,
            &["01:00.0"],
            Options {
                force: true,
                ..Options::default()
            },
        );
        assert_eq!(kinds(&p), ["iommu-off"]);
        assert!(p.blocked());
        assert!(p.refusals[0].remedy.contains("no-IOMMU mode"));
        // Only no-IOMMU software groups: still off.
        t.file("sys/kernel/iommu_groups/7/name", "vfio-noiommu\n");
        t.dir("sys/kernel/iommu_groups/7/devices");
        let p = plan_on(&t, Action::Bind, &["01:00.0"], Options::default());
        assert_eq!(kinds(&p), ["iommu-off"]);
    }

    #[test]
    fn device_only_explains_the_group() {
        let mut t = Tree::new();
        host(&mut t);
        let p = plan_on(
            &t,
            Action::Bind,
            &["01:00.0"],
            Options {
                device_only: true,
                ..Options::default()
            },
        );
        assert_eq!(p.devices.len(), 1);
        let notes = p.notes.join("\n");
        assert!(
            notes.contains("sibling function(s) 0000:01:00.1"),
            "{notes}"
        );
        assert!(
            notes.contains("IOMMU group 1 is not viable while 0000:01:00.1"),
            "{notes}"
        );
    }

    #[test]
    fn modprobe_is_planned_when_vfio_pci_is_absent() {
        let mut t = Tree::new();
        host(&mut t);
        std::fs::remove_dir(t.path().join("sys/bus/pci/drivers/vfio-pci")).unwrap();
        let p = plan_on(&t, Action::Bind, &["01:00.0"], Options::default());
        assert!(p.modprobe);
        assert!(p.notes.iter().any(|n| n.contains("modprobe vfio-pci")));
    }

    #[test]
    fn unbind_clears_the_override_and_reprobes() {
        let mut t = Tree::new();
        host(&mut t);
        std::fs::remove_file(t.path().join("sys/bus/pci/devices/0000:01:00.0/driver")).unwrap();
        t.file("sys/bus/pci/drivers/vfio-pci/unbind", "");
        t.link(
            "sys/bus/pci/devices/0000:01:00.0/driver",
            "../../drivers/vfio-pci",
        );
        t.file(
            "sys/bus/pci/devices/0000:01:00.0/driver_override",
            "vfio-pci\n",
        );
        let p = plan_on(&t, Action::Unbind, &["01:00.0"], Options::default());
        assert_eq!(
            p.devices.len(),
            1,
            "the audio function is on its host driver: {:?}",
            p.skipped
        );
        let lines: Vec<String> = p.devices[0].writes.iter().map(AttrWrite::shell).collect();
        assert_eq!(
            lines,
            [
                "echo 0000:01:00.0 > /sys/bus/pci/devices/0000:01:00.0/driver/unbind",
                "echo > /sys/bus/pci/devices/0000:01:00.0/driver_override",
                "echo 0000:01:00.0 > /sys/bus/pci/drivers_probe",
            ]
        );
        assert!(p
            .skipped
            .iter()
            .any(|s| s.address == "0000:01:00.1" && s.reason.contains("not on vfio-pci")));
        assert!(p.notes.iter().all(|n| !n.contains("driverctl")));
        t.file("etc/driverctl.d/pci-0000:01:00.0", "vfio-pci\n");
        let p = plan_on(&t, Action::Unbind, &["01:00.0"], Options::default());
        assert!(
            p.notes.iter().any(|n| n.contains(
                "driverctl keeps an override for 0000:01:00.0 in /etc/driverctl.d/pci-0000:01:00.0"
            )),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn unknown_device_is_a_usage_error() {
        let mut t = Tree::new();
        host(&mut t);
        let r = HostRoot::at(t.path()).unwrap();
        let e = plan(&r, Action::Bind, &["05:00.0".into()], Options::default()).unwrap_err();
        assert!(e.to_string().contains("no PCI function '05:00.0'"), "{e}");
    }
}
