//! [`Snapshot`]: everything the checks judge, read once from a [`HostRoot`].
//!
//! Collection never fails as a whole: every fact is a [`Probe`], so an unreadable kernel log or a
//! malformed qemu.conf becomes a verdict, and the rest of the doctor still runs. The checks are
//! pure functions of this struct (no I/O, no clock, no environment), which is what lets a captured
//! tree or a bug report replay to the same verdicts.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::probe::Probe;
use super::root::{HostRoot, NodeInfo};
use crate::kmod;
use crate::parse;

/// One PCI function from `/sys/bus/pci/devices`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PciDevice {
    /// Domain:bus:device.function, e.g. `0000:00:02.0`.
    pub address: String,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// 24-bit class code (0x030000 = VGA).
    pub class: u32,
    /// Bound driver, if any.
    pub driver: Option<String>,
    /// IOMMU group number, if the device is in one.
    pub iommu_group: Option<u32>,
    /// Whether the attributes below were read: always for display functions, for the others
    /// only with [`Scope::pci_details`] (else they are empty, not absent).
    pub details: bool,
    /// BAR sizes in bytes, from the `resource` file (index = BAR number; 0 = unused).
    pub bar_sizes: Vec<u64>,
    /// `boot_vga` (the firmware's primary display).
    pub boot_vga: Option<bool>,
    /// `sriov_totalvfs`, present only on SR-IOV capable functions.
    pub sriov_totalvfs: Option<u32>,
    /// Subsystem vendor:device, when known.
    pub subsystem: Option<(u16, u16)>,
    /// `reset_method` (Linux 5.15+): the reset methods the kernel will use, in order (`flr bus`);
    /// `None` when the file does not exist (older kernel), `Some("")` when the device has none.
    pub reset_method: Option<String>,
    /// `driver_override` (Linux 3.16+): the only driver allowed to bind the function, as set by
    /// driverctl or `gvtg passthrough bind`; `None` when unset (the kernel shows `(null)`) or the
    /// file does not exist.
    pub driver_override: Option<String>,
}

impl PciDevice {
    /// Intel display function on the root bus: integrated graphics (Arc/DG cards sit behind
    /// a root port; an Intel NIC at 00:02.0 is not a GPU: class decides).
    pub fn is_igd(&self) -> bool {
        self.vendor == 0x8086 && self.is_display() && self.address.split(':').nth(1) == Some("00")
    }

    /// Display controller class (0x03xx: VGA, XGA, 3D, other display).
    pub fn is_display(&self) -> bool {
        self.class >> 16 == 0x03
    }

    /// PCI-to-PCI bridge (class 0x0604xx).
    pub fn is_pci_bridge(&self) -> bool {
        self.class >> 8 == 0x0604
    }

    /// `domain:bus:device` without the function: functions sharing it are siblings.
    pub fn slot(&self) -> &str {
        self.address
            .rsplit_once('.')
            .map_or(self.address.as_str(), |(s, _)| s)
    }

    /// `vendor:device` as lower-case hex (`10de:1b80`), as `vfio-pci.ids=` takes it.
    pub fn id(&self) -> String {
        format!("{:04x}:{:04x}", self.vendor, self.device)
    }
}

/// One mdev type under a parent.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MdevType {
    /// Directory name (`i915-GVTg_V5_4`); what `create` is written under.
    pub id: String,
    /// The optional `name` file (6.1+ mdev core prints `GVTg_V5_4`).
    pub name: Option<String>,
    /// `description`, raw.
    pub description: Option<String>,
    /// `description` parsed as GVT-g fields, when it has them.
    pub gvt: Option<parse::mdev_desc::GvtDescription>,
    /// `available_instances`.
    pub available_instances: Probe<u32>,
    /// `device_api` (`vfio-pci`).
    pub device_api: Option<String>,
    /// UUIDs listed under `devices/`.
    pub devices: Vec<String>,
}

impl MdevType {
    /// A type known by its directory name alone.
    fn listed(id: &str) -> MdevType {
        MdevType {
            id: id.to_string(),
            name: None,
            description: None,
            gvt: None,
            available_instances: Probe::Missing,
            device_api: None,
            devices: Vec::new(),
        }
    }
}

/// One registered mdev parent (`/sys/class/mdev_bus/<parent>`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MdevParent {
    /// The parent's name (a PCI address for i915).
    pub name: String,
    /// Its types; `Missing` when there is no `mdev_supported_types`.
    pub types: Probe<Vec<MdevType>>,
    /// Whether the types' attributes were read; `false` when only their ids were listed (a
    /// parent that is not GVT-g's, outside [`Scope::all_mdev_types`]), and the other fields of
    /// each [`MdevType`] are empty.
    pub attributes: bool,
}

/// One existing mediated device (`/sys/bus/mdev/devices/<uuid>`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MdevDevice {
    /// The mdev's UUID.
    pub uuid: String,
    /// Type directory name, from the `mdev_type` link.
    pub mdev_type: Option<String>,
    /// Parent device, from the resolved `mdev_type` link (`.../<parent>/mdev_supported_types/T`).
    pub parent: Option<String>,
    /// IOMMU group number.
    pub iommu_group: Option<u32>,
    /// Bound driver.
    pub driver: Option<String>,
}

/// One IOMMU group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IommuGroup {
    /// Group number.
    pub number: u32,
    /// The `name` file when present: `vfio-noiommu` for software groups (emulated mdevs,
    /// no-IOMMU mode), which prove nothing about VT-d.
    pub name: Option<String>,
    /// Member devices; `None` when the snapshot did not list them ([`Scope::iommu_members`]).
    pub devices: Option<Vec<String>>,
}

/// A user account (from `/etc/passwd`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
}

/// A group (from `/etc/group`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// gid.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// A text file that was read, with where it came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TextFile {
    /// Path as the host sees it (`/etc/modprobe.d/i915.conf`).
    pub path: String,
    /// Content.
    pub text: String,
}

/// Kernel modules: loaded, built in, and what the module files say.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Modules {
    /// `/proc/modules` (names as the kernel prints them, with `_`).
    pub loaded: Probe<BTreeSet<String>>,
    /// Names from `lib/modules/REL/modules.builtin`.
    pub builtin: Probe<BTreeSet<String>>,
    /// Modules present under `/sys/module` (loaded or built in with parameters).
    pub sys_module: BTreeSet<String>,
    /// Where the module files of the running kernel were looked up.
    pub dir: String,
    /// Module lookups that matter: name → what the module index said.
    pub files: BTreeMap<String, ModuleFile>,
}

/// What the module index says about one module.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub enum ModuleFile {
    /// A module file, with the parameters its `.modinfo` declares.
    File {
        /// Path shown to the user.
        path: String,
        /// Parameter names from `.modinfo` (`parm=`/`parmtype=`).
        params: Vec<String>,
    },
    /// Built into the kernel; parameters from `modules.builtin.modinfo`.
    Builtin {
        /// Parameter names.
        params: Vec<String>,
    },
    /// Not in this kernel's module index.
    Absent,
    /// The index or the file could not be read.
    Unreadable(String),
}

/// The largest kernel command line read. The kernel's own limit (COMMAND_LINE_SIZE) is 2048
/// bytes on x86 and a few KiB elsewhere; anything near this is not a command line.
pub const CMDLINE_MAX: u64 = 64 * 1024;

/// Everything the doctor judges, read once.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// True when read from the running host.
    pub live: bool,
    /// uid the snapshot was taken as.
    pub euid: u32,
    /// `/proc/sys/kernel/osrelease`.
    pub osrelease: Probe<String>,
    /// `/etc/os-release` (falling back to `/usr/lib/os-release`), as key → value.
    pub os_release: Probe<BTreeMap<String, String>>,
    /// `/proc/cpuinfo`.
    pub cpuinfo: Probe<parse::cpuinfo::CpuInfo>,
    /// All PCI functions.
    pub pci: Probe<Vec<PciDevice>>,
    /// Kernel build configuration and where it came from.
    pub kconfig: Probe<(String, parse::kconfig::Kconfig)>,
    /// Kernel modules.
    pub modules: Modules,
    /// `/proc/cmdline`.
    pub cmdline: Probe<parse::cmdline::Cmdline>,
    /// Modules configured to load at boot: (file, names) from modules-load.d(5) directories and
    /// Debian's `/etc/modules`.
    pub modules_load: Vec<(String, Vec<String>)>,
    /// modprobe.d files in the order kmod reads them.
    pub modprobe: Vec<(String, parse::modprobe::ModprobeFile)>,
    /// modprobe.d entries that exist but could not be read (path as the host sees it, why): a
    /// link out of a captured tree, a FIFO, an oversized file.
    pub modprobe_unreadable: Vec<(String, String)>,
    /// `/etc/default/grub`.
    pub grub_default: Probe<parse::grub::GrubDefault>,
    /// `/etc/kernel/cmdline` (systemd-boot / kernel-install).
    pub kernel_cmdline_file: Probe<String>,
    /// Live i915 parameters from `/sys/module/i915/parameters`.
    pub i915_params: BTreeMap<String, Probe<String>>,
    /// `/sys/firmware/acpi/tables/DMAR` exists.
    pub dmar_table: bool,
    /// `/sys/firmware/acpi/tables/IVRS` exists (AMD-Vi).
    pub ivrs_table: bool,
    /// Entries of `/sys/class/iommu` (`dmar0`, `ivhd0`…).
    pub iommu_class: Probe<Vec<String>>,
    /// `/sys/kernel/iommu_groups`.
    pub iommu_groups: Probe<Vec<IommuGroup>>,
    /// `/sys/class/mdev_bus` parents.
    pub mdev_parents: Probe<Vec<MdevParent>>,
    /// `/sys/bus/mdev/devices`.
    pub mdev_devices: Probe<Vec<MdevDevice>>,
    /// `/dev/kvm`.
    pub dev_kvm: Probe<NodeInfo>,
    /// `/dev/vfio/*` nodes by name.
    pub dev_vfio: Probe<BTreeMap<String, NodeInfo>>,
    /// `/etc/libvirt/qemu.conf`, raw (parsed by the libvirt checks, which report errors).
    pub qemu_conf: Probe<TextFile>,
    /// Whether libvirt's QEMU driver looks installed (a qemu.conf or a libvirtd/virtqemud binary).
    pub libvirt_present: bool,
    /// `/etc/passwd`.
    pub users: Probe<Vec<User>>,
    /// `/etc/group`.
    pub groups: Probe<Vec<Group>>,
    /// udev rules mentioning vfio (`/etc/udev/rules.d`, `/usr/lib/udev/rules.d`, `/lib/udev/rules.d`).
    pub udev_vfio_rules: Vec<TextFile>,
    /// cgroup v2 controllers (`/sys/fs/cgroup/cgroup.controllers`), if that hierarchy is mounted.
    pub cgroup2_controllers: Probe<Vec<String>>,
    /// The kernel log: where it came from, its size in records, the records the checks look at.
    pub kernel_log: Probe<KernelLog>,
    /// Modules the initramfs is told to include: (file, names) from
    /// `/etc/initramfs-tools/modules`, `/etc/mkinitcpio.conf` `MODULES=(…)` and
    /// `/etc/dracut.conf.d/*.conf` `add_drivers`/`force_drivers`.
    pub initramfs_modules: Vec<(String, Vec<String>)>,
    /// `/sys/module/kvm/parameters/ignore_msrs` (`Y`/`N`).
    pub kvm_ignore_msrs: Probe<String>,
    /// PCI functions named by `gvtg doctor --passthrough` (full addresses). Not read from the
    /// host: the doctor sets it after collecting, and the passthrough checks judge these.
    pub passthrough: Vec<String>,
    /// Looking Glass: its shared-memory files, kvmfr nodes and the configuration naming them.
    pub looking_glass: LookingGlass,
}

/// The kernel log as the checks see it.
///
/// A host's log holds tens of thousands of records; the checks look for a few dozen messages
/// ([`crate::checks::log_terms`]). Only the records holding one of those terms are parsed and
/// kept; the others are counted.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KernelLog {
    /// Where the log was read, as the host sees it (`/dev/kmsg`).
    pub path: String,
    /// How many records the log holds.
    pub total: usize,
    /// The records holding a term of [`crate::checks::log_terms`] (all records if those terms
    /// could not be searched for), in log order.
    pub records: Vec<parse::kmsg::Record>,
}

impl KernelLog {
    /// Parses `bytes` read from `path`.
    pub fn parse(path: String, bytes: &[u8]) -> KernelLog {
        let (total, records) = match crate::checks::log_filter() {
            Some(f) => parse::kmsg::parse_filtered(bytes, f),
            None => {
                let r = parse::kmsg::parse(bytes);
                (r.len(), r)
            }
        };
        KernelLog {
            path,
            total,
            records,
        }
    }

    /// Reads the log from `src`, a captured file a piece at a time.
    pub fn read(path: String, src: super::root::LogSource) -> Probe<KernelLog> {
        let (mut file, filter) = match (src, crate::checks::log_filter()) {
            (super::root::LogSource::Bytes(b), _) => return Probe::Ok(Self::parse(path, &b)),
            (super::root::LogSource::File(f), Some(filter)) => (f, filter),
            // No filter (see `parse`): the whole log, parsed.
            (super::root::LogSource::File(f), None) => {
                return match super::root::read_file_bounded(f, super::root::MAX_READ) {
                    Ok(bytes) => Probe::Ok(Self::parse(path, &bytes)),
                    Err(e) => Probe::Invalid(format!("reading {path}: {e}")),
                };
            }
        };
        match parse::kmsg::parse_filtered_read(&mut file, filter, super::root::MAX_READ) {
            Ok((total, records)) => Probe::Ok(KernelLog {
                path,
                total,
                records,
            }),
            Err(e) => Probe::Invalid(format!("reading {path}: {e}")),
        }
    }

    /// The records whose text holds one of `terms`, in log order. Each term must be one of
    /// [`crate::checks::log_terms`]: records holding any other text were not kept.
    pub fn containing<'a>(
        &'a self,
        terms: &'a [&'a str],
    ) -> impl DoubleEndedIterator<Item = &'a parse::kmsg::Record> + 'a {
        debug_assert!(
            terms.iter().all(|t| crate::checks::log_terms().contains(t)),
            "kernel-log terms {terms:?} are not all in checks::log_terms()"
        );
        self.records
            .iter()
            .filter(move |r| terms.iter().any(|t| r.text.contains(t)))
    }
}

/// Modules the checks need to know about from the module files.
pub const MODULES_OF_INTEREST: &[&str] = &[
    "i915",
    "kvmgt",
    "kvm",
    "kvm_intel",
    "vfio",
    "vfio_iommu_type1",
    "mdev",
    "vfio_mdev",
    "vfio_pci",
    // Host drivers that may claim a GPU (or its sibling functions) meant for passthrough.
    "nvidia",
    "nouveau",
    "amdgpu",
    "radeon",
    "xe",
    "snd_hda_intel",
    "xhci_pci",
    "i2c_nvidia_gpu",
    // Looking Glass's shared-memory module (out of tree, DKMS).
    "kvmfr",
];

/// What a snapshot reads beyond what every check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// List the members of every IOMMU group (`/sys/kernel/iommu_groups/N/devices`): the
    /// passthrough checks, preflight's PCI host devices and `fix --passthrough` judge groups by
    /// their members; the GVT-g checks only count groups. A host with thousands of vGPUs has
    /// thousands of groups, and listing them is most of what reading its sysfs costs.
    pub iommu_members: bool,
    /// Read the attributes of every mdev type (name, description, available instances, API,
    /// instances), not only those of the GVT-g parent's types (the parent named after the iGPU,
    /// or whose types are `i915-…`), which is all the doctor judges; other parents' types are
    /// listed by id.
    pub all_mdev_types: bool,
    /// Read every PCI function's BARs, subsystem ids, boot VGA flag, SR-IOV, reset method and
    /// `driver_override`, not only the display functions' (the GVT-g checks judge the other
    /// functions by ids, class, driver and IOMMU group alone).
    pub pci_details: bool,
    /// Read each mdev's `mdev_type` and `driver` links. Without them an mdev found under its
    /// parent's directory has its parent and IOMMU group only (what the doctor judges: which
    /// `/dev/vfio/N` a VM opens); its type and driver are `None`.
    pub mdev_links: bool,
}

impl Scope {
    /// Everything.
    pub const ALL: Scope = Scope {
        iommu_members: true,
        all_mdev_types: true,
        pci_details: true,
        mdev_links: true,
    };
    /// What the GVT-g checks need.
    pub const GVT: Scope = Scope {
        iommu_members: false,
        all_mdev_types: false,
        pci_details: false,
        mdev_links: false,
    };
}

impl Snapshot {
    /// Reads the host ([`Scope::ALL`]). Never fails: every problem is recorded in the probe
    /// concerned.
    pub fn collect(root: &HostRoot) -> Snapshot {
        Self::collect_scoped(root, Scope::ALL)
    }

    /// Reads the parts of the host `scope` names, and everything else every check needs.
    pub fn collect_scoped(root: &HostRoot, scope: Scope) -> Snapshot {
        // A host with many vGPUs has thousands of mdevs and IOMMU groups, each a few sysfs
        // reads, and a kernel log of megabytes. A second thread lists the mdevs and their
        // parents, reads the groups, then mdevs; this one the rest, then mdevs too, until none
        // is left.
        let work: std::sync::OnceLock<(Probe<()>, MdevWork<'_>)> = std::sync::OnceLock::new();
        let setup = || {
            let names = root.read_dir("sys/bus/mdev/devices");
            let w = MdevWork::new(
                root,
                names.ok().cloned().unwrap_or_default(),
                scope.mdev_links,
            );
            (names.map(|_| ()), w)
        };
        std::thread::scope(|t| {
            let other = t.spawn(|| {
                let (_, w) = work.get_or_init(setup);
                let groups = read_iommu_groups(root, scope.iommu_members);
                (groups, w.help(root))
            });
            let mut snap = Self::collect_rest(root, scope);
            let (names, w) = work.get_or_init(setup);
            let mine = w.help(root);
            let (groups, theirs) = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            snap.mdev_devices = names.clone().map(|()| Chunks::merge([mine, theirs]));
            snap.iommu_groups = groups;
            snap
        })
    }

    /// Everything but the mdevs and IOMMU groups (left [`Probe::Missing`]).
    fn collect_rest(root: &HostRoot, scope: Scope) -> Snapshot {
        let osrelease = root.read_attr("proc/sys/kernel/osrelease");
        let release = osrelease.ok().cloned();

        let os_release = match root.read("etc/os-release") {
            Probe::Missing => root.read("usr/lib/os-release"),
            other => other,
        }
        .map(|t| parse_os_release(&t));

        let cpuinfo = root.read("proc/cpuinfo").map(|t| parse::cpuinfo::parse(&t));
        let pci = read_pci_scoped(root, scope.pci_details);
        let mdev_parents = if scope.all_mdev_types {
            read_mdev_parents(root)
        } else {
            let igds: Vec<&str> = pci
                .ok()
                .map(|d| {
                    d.iter()
                        .filter(|d| d.is_igd())
                        .map(|d| d.address.as_str())
                        .collect()
                })
                .unwrap_or_default();
            read_mdev_parents_where(root, |parent, ids| {
                igds.contains(&parent) || ids.iter().any(|t| t.starts_with("i915-"))
            })
        };
        let kconfig = read_kconfig(root, release.as_deref());
        let modules = read_modules(root, release.as_deref());
        let cmdline = root
            .read_max("proc/cmdline", CMDLINE_MAX)
            .map(|t| parse::cmdline::parse(&t));
        let (modprobe, modprobe_unreadable) = read_modprobe(root);
        let modules_load = read_modules_load(root);
        let grub_default = root
            .read("etc/default/grub")
            .map(|t| parse::grub::parse(&t));
        let kernel_cmdline_file = root.read_max("etc/kernel/cmdline", CMDLINE_MAX);

        let mut i915_params = BTreeMap::new();
        for p in ["enable_gvt", "enable_guc"] {
            i915_params.insert(
                p.to_string(),
                root.read_attr(&format!("sys/module/i915/parameters/{p}")),
            );
        }

        let dev_vfio = root.read_dir("dev/vfio").map(|names| {
            names
                .into_iter()
                .filter_map(|n| {
                    let node = root.node(&format!("dev/vfio/{n}")).into_ok()?;
                    Some((n, node))
                })
                .collect()
        });
        // Side-file-only nodes under dev/vfio (a capture may hold no files there at all).
        let dev_vfio = merge_side_nodes(root, "dev/vfio/", dev_vfio);

        // NixOS generates qemu.conf under /var/lib/libvirt rather than /etc/libvirt.
        let qemu_conf = match root.read("etc/libvirt/qemu.conf") {
            Probe::Missing => root.read("var/lib/libvirt/qemu.conf").map(|text| TextFile {
                path: "/var/lib/libvirt/qemu.conf".into(),
                text,
            }),
            other => other.map(|text| TextFile {
                path: "/etc/libvirt/qemu.conf".into(),
                text,
            }),
        };

        let udev_rules = read_udev_rules(root);
        let udev_vfio_rules = udev_rules
            .iter()
            .filter(|r| r.text.contains("vfio"))
            .cloned()
            .collect();

        let kernel_log = root
            .kernel_log_source()
            .and_then(|(path, src)| KernelLog::read(path, src));

        Snapshot {
            live: root.is_live(),
            euid: root.euid(),
            osrelease,
            os_release,
            cpuinfo,
            pci,
            kconfig,
            modules,
            cmdline,
            modules_load,
            modprobe,
            modprobe_unreadable,
            grub_default,
            kernel_cmdline_file,
            i915_params,
            dmar_table: root.exists("sys/firmware/acpi/tables/DMAR"),
            ivrs_table: root.exists("sys/firmware/acpi/tables/IVRS"),
            iommu_class: root.read_dir("sys/class/iommu"),
            iommu_groups: Probe::Missing,
            mdev_devices: Probe::Missing,
            mdev_parents,
            dev_kvm: root.node("dev/kvm"),
            dev_vfio,
            libvirt_present: [
                "etc/libvirt/qemu.conf",
                "usr/sbin/libvirtd",
                "usr/sbin/virtqemud",
                "var/lib/libvirt/qemu.conf",
            ]
            .iter()
            .any(|p| root.exists(p)),
            qemu_conf,
            users: root.read("etc/passwd").map(|t| parse_passwd(&t)),
            groups: root.read("etc/group").map(|t| parse_group(&t)),
            udev_vfio_rules,
            cgroup2_controllers: root
                .read("sys/fs/cgroup/cgroup.controllers")
                .map(|t| t.split_whitespace().map(str::to_string).collect()),
            kernel_log,
            initramfs_modules: read_initramfs_modules(root),
            kvm_ignore_msrs: root.read_attr("sys/module/kvm/parameters/ignore_msrs"),
            passthrough: Vec::new(),
            looking_glass: read_looking_glass(root, &udev_rules),
        }
    }

    /// The display-class Intel PCI functions on bus 0 (integrated graphics), first the one at
    /// 00:02.0. An Intel NIC or other function at 00:02.0 is not a GPU: class decides.
    pub fn intel_igds(&self) -> Vec<&PciDevice> {
        let mut v: Vec<&PciDevice> = self
            .pci
            .ok()
            .map(|d| d.iter().filter(|d| d.is_igd()).collect())
            .unwrap_or_default();
        v.sort_by_key(|d| !d.address.ends_with(":02.0"));
        v
    }

    /// Whether a module is loaded or built in (`-`/`_` insensitive).
    pub fn module_present(&self, name: &str) -> bool {
        let n = name.replace('-', "_");
        self.modules.loaded.ok().is_some_and(|l| l.contains(&n))
            || self.modules.builtin.ok().is_some_and(|b| b.contains(&n))
    }
}

fn merge_side_nodes(
    root: &HostRoot,
    prefix: &str,
    found: Probe<BTreeMap<String, NodeInfo>>,
) -> Probe<BTreeMap<String, NodeInfo>> {
    let side: Vec<(String, NodeInfo)> = root
        .side()
        .nodes_under(prefix)
        .map(|(p, n)| (p.trim_start_matches(prefix).to_string(), n.clone()))
        .filter(|(name, _)| !name.is_empty() && !name.contains('/'))
        .collect();
    if side.is_empty() {
        return found;
    }
    let mut map = found.into_ok().unwrap_or_default();
    map.extend(side);
    Probe::Ok(map)
}

/// `KEY=value` pairs of an os-release file, quotes removed. Lines whose key is not a shell
/// variable name (`[A-Za-z_][A-Za-z0-9_]*`, os-release(5)) are not assignments and are skipped.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    let is_name = |k: &str| {
        k.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            if !is_name(k) {
                return None;
            }
            Some((
                k.to_string(),
                v.trim_matches(|c| c == '"' || c == '\'').to_string(),
            ))
        })
        .collect()
}

fn parse_passwd(text: &str) -> Vec<User> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || l.starts_with('#') {
                return None;
            }
            Some(User {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 || l.starts_with('#') {
                return None;
            }
            Some(Group {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Every PCI function under `/sys/bus/pci/devices`, with all its attributes.
pub fn read_pci(root: &HostRoot) -> Probe<Vec<PciDevice>> {
    read_pci_scoped(root, true)
}

/// Every PCI function; its [`PciDevice::details`] only for display functions unless `details`.
fn read_pci_scoped(root: &HostRoot, details: bool) -> Probe<Vec<PciDevice>> {
    let hex = |dir: &super::root::HostDir<'_>, name: &str| -> Option<u64> {
        let s = dir.read_attr(name).into_ok()?;
        u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
    };
    root.read_dir("sys/bus/pci/devices").map(|names| {
        names
            .into_iter()
            .filter_map(|addr| {
                // Opened from the root: the entry is a link up and over to
                // `devices/pci0000:00/…`, which a lookup beneath `bus/pci/devices` refuses.
                let dir = root.dir(&format!("sys/bus/pci/devices/{addr}"));
                let vendor = u16::try_from(hex(&dir, "vendor")?).ok()?;
                let device = u16::try_from(hex(&dir, "device")?).ok()?;
                let class = hex(&dir, "class")
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(0);
                let driver = dir.link_name("driver").into_ok();
                let iommu_group = dir
                    .link_name("iommu_group")
                    .into_ok()
                    .and_then(|g| g.parse().ok());
                if !details && class >> 16 != 0x03 {
                    return Some(PciDevice {
                        address: addr,
                        vendor,
                        device,
                        class,
                        driver,
                        iommu_group,
                        details: false,
                        bar_sizes: Vec::new(),
                        boot_vga: None,
                        sriov_totalvfs: None,
                        subsystem: None,
                        reset_method: None,
                        driver_override: None,
                    });
                }
                let bar_sizes = dir
                    .read("resource")
                    .into_ok()
                    .map(|t| parse_resource(&t))
                    .unwrap_or_default();
                let sv = hex(&dir, "subsystem_vendor").and_then(|v| u16::try_from(v).ok());
                let sd = hex(&dir, "subsystem_device").and_then(|v| u16::try_from(v).ok());
                Some(PciDevice {
                    driver,
                    iommu_group,
                    details: true,
                    boot_vga: dir.read_attr("boot_vga").into_ok().map(|v| v == "1"),
                    sriov_totalvfs: dir
                        .read_attr("sriov_totalvfs")
                        .into_ok()
                        .and_then(|v| v.parse().ok()),
                    subsystem: sv.zip(sd),
                    reset_method: dir.read_attr("reset_method").into_ok(),
                    driver_override: dir
                        .read_attr("driver_override")
                        .into_ok()
                        .filter(|v| !v.is_empty() && v != "(null)"),
                    address: addr,
                    vendor,
                    device,
                    class,
                    bar_sizes,
                })
            })
            .collect()
    })
}

/// sysfs `resource`: one line per resource, `start end flags` in hex; size = end - start + 1.
pub fn parse_resource(text: &str) -> Vec<u64> {
    text.lines()
        .take(6)
        .map(|l| {
            let mut it = l
                .split_whitespace()
                .map(|x| u64::from_str_radix(x.trim_start_matches("0x"), 16).unwrap_or(0));
            let (s, e) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            if e > s {
                e - s + 1
            } else {
                0
            }
        })
        .collect()
}

/// The configuration symbols any check reads. A distribution config has ~10,000 lines; keeping
/// only these makes parsing it a small fraction of the doctor's time.
pub const KCONFIG_WANTED: &[&str] = &[
    "DRM_I915",
    "DRM_I915_GVT",
    "DRM_I915_GVT_KVMGT",
    "VFIO",
    "VFIO_MDEV",
    "VFIO_MDEV_DEVICE",
    "VFIO_IOMMU_TYPE1",
    "VFIO_PCI",
    "VFIO_GROUP",
    "VFIO_DEVICE_CDEV",
    "IOMMUFD",
    "KVM",
    "KVM_INTEL",
    "KVM_AMD",
    "INTEL_IOMMU",
    "INTEL_IOMMU_DEFAULT_ON",
    "INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF",
    "AMD_IOMMU",
    "MODULES",
];

/// Whether `name` is one of [`KCONFIG_WANTED`] (a distribution config has ~10,000 lines).
fn is_wanted(name: &[u8]) -> bool {
    // Every wanted name is 3 to 33 bytes and starts with one of these letters.
    (3..=33).contains(&name.len())
        && matches!(name.first(), Some(b'A' | b'D' | b'I' | b'K' | b'M' | b'V'))
        && KCONFIG_WANTED.iter().any(|w| w.as_bytes() == name)
}

/// Parses only the lines of [`KCONFIG_WANTED`] symbols (`CONFIG_X=…` or `# CONFIG_X is not set`),
/// keeping their line numbers.
fn parse_kconfig_wanted(text: &str) -> parse::kconfig::Kconfig {
    let mut kept = String::new();
    let mut map = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    // `str::lines` by hand: one SIMD newline search over the text, bytes compared in place.
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    for (n, end) in ends.enumerate() {
        let line = bytes.get(start..end).unwrap_or_default();
        start = end + 1;
        let rest = match line.first() {
            Some(b'C') => line.strip_prefix(b"CONFIG_"),
            Some(b'#') => line.strip_prefix(b"# CONFIG_"),
            _ => None,
        };
        let Some(rest) = rest else { continue };
        let len = rest
            .iter()
            .position(|&b| b == b'=' || b == b' ')
            .unwrap_or(rest.len());
        let name = rest.get(..len).unwrap_or_default();
        if is_wanted(name) {
            // Whole lines of a `str`, cut at ASCII bytes: still UTF-8.
            let line = String::from_utf8_lossy(line);
            kept.push_str(line.strip_suffix('\r').unwrap_or(&line));
            kept.push('\n');
            map.push(n + 1);
        }
    }
    let mut kc = parse::kconfig::parse(&kept);
    for (_, (_, line)) in kc.values.iter_mut() {
        if let Some(real) = map.get(line.saturating_sub(1)) {
            *line = *real;
        }
    }
    kc
}

fn read_kconfig(
    root: &HostRoot,
    release: Option<&str>,
) -> Probe<(String, parse::kconfig::Kconfig)> {
    if let Some(rel) = release {
        let p = format!("boot/config-{rel}");
        match root.read(&p) {
            Probe::Ok(t) => return Probe::Ok((HostRoot::display(&p), parse_kconfig_wanted(&t))),
            Probe::Missing => {}
            Probe::Denied => return Probe::Denied,
            Probe::Invalid(m) => return Probe::Invalid(m),
        }
        // Some distros (Arch) keep it at /lib/modules/REL/build/.config or only in /proc/config.gz.
    }
    match root.read_bytes("proc/config.gz") {
        Probe::Ok(gz) => {
            use std::io::Read;
            let mut out = String::new();
            let mut d = flate2::read::GzDecoder::new(&gz[..]).take(super::root::MAX_READ);
            match d.read_to_string(&mut out) {
                Ok(_) => Probe::Ok(("/proc/config.gz".into(), parse_kconfig_wanted(&out))),
                Err(e) => Probe::Invalid(format!("/proc/config.gz: {e}")),
            }
        }
        Probe::Missing => Probe::Missing,
        Probe::Denied => Probe::Denied,
        Probe::Invalid(m) => Probe::Invalid(m),
    }
}

fn read_modules(root: &HostRoot, release: Option<&str>) -> Modules {
    let loaded = root.read("proc/modules").map(|t| {
        parse::proc_modules::parse(&t)
            .into_iter()
            .map(|m| m.name.replace('-', "_"))
            .collect::<BTreeSet<_>>()
    });
    let sys_module = root
        .read_dir("sys/module")
        .into_ok()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let Some(rel) = release else {
        return Modules {
            loaded,
            builtin: Probe::Invalid("kernel release unknown".into()),
            sys_module,
            dir: "/lib/modules/?".into(),
            files: BTreeMap::new(),
        };
    };
    let dir = format!("lib/modules/{rel}");
    let builtin = root.read(&format!("{dir}/modules.builtin")).map(|t| {
        t.lines()
            .filter_map(|l| {
                let base = l.trim().rsplit('/').next()?;
                let name = base.split(".ko").next()?;
                (!name.is_empty()).then(|| name.replace('-', "_"))
            })
            .collect::<BTreeSet<_>>()
    });
    let mut files = BTreeMap::new();
    match kmod::depmod::locate_modules(root.base(), rel, MODULES_OF_INTEREST) {
        Ok(mut found) => {
            for name in MODULES_OF_INTEREST {
                let entry = match found.remove(*name) {
                    None => ModuleFile::Absent,
                    Some(kmod::Located::Builtin { fields }) => ModuleFile::Builtin {
                        params: param_names(&fields),
                    },
                    Some(kmod::Located::File {
                        path, rel: relpath, ..
                    }) => {
                        // Only the modules whose parameters we judge are opened: reading i915.ko
                        // (a multi-MB ELF, maybe xz-compressed) is the costliest read we do.
                        if *name == "i915" {
                            match kmod::modinfo_file(&path) {
                                Ok(mi) => ModuleFile::File {
                                    path: format!("/{dir}/{relpath}"),
                                    params: mi.params().into_iter().map(|p| p.name).collect(),
                                },
                                Err(e) => ModuleFile::Unreadable(format!("{e:#}")),
                            }
                        } else {
                            ModuleFile::File {
                                path: format!("/{dir}/{relpath}"),
                                params: Vec::new(),
                            }
                        }
                    }
                };
                files.insert(name.to_string(), entry);
            }
        }
        Err(e) => {
            for name in MODULES_OF_INTEREST {
                files.insert(name.to_string(), ModuleFile::Unreadable(format!("{e:#}")));
            }
        }
    }
    Modules {
        loaded,
        builtin,
        sys_module,
        dir: format!("/{dir}"),
        files,
    }
}

fn param_names(fields: &[(String, String)]) -> Vec<String> {
    let mut v: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "parm" || k == "parmtype")
        .filter_map(|(_, v)| v.split_once(':').map(|(n, _)| n.to_string()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The modprobe.d files kmod would read, and those present but unreadable.
#[allow(clippy::type_complexity)]
fn read_modprobe(
    root: &HostRoot,
) -> (
    Vec<(String, parse::modprobe::ModprobeFile)>,
    Vec<(String, String)>,
) {
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for dir in [
        "etc/modprobe.d",
        "run/modprobe.d",
        "usr/local/lib/modprobe.d",
        "lib/modprobe.d",
        "usr/lib/modprobe.d",
    ] {
        if let Probe::Ok(names) = root.read_dir(dir) {
            for n in names {
                let rel = format!("{dir}/{n}");
                match root.read(&rel) {
                    Probe::Ok(text) => files.push((format!("/{dir}"), n, text)),
                    Probe::Missing => {}
                    Probe::Denied => {
                        unreadable.push((HostRoot::display(&rel), "permission denied".into()))
                    }
                    Probe::Invalid(m) => unreadable.push((HostRoot::display(&rel), m)),
                }
            }
        }
    }
    (parse::modprobe::merge_order(files), unreadable)
}

/// modules-load.d(5): `*.conf` in etc/, run/, usr/local/lib/, usr/lib/ (a name in an earlier
/// directory hides the same name later), plus Debian's `/etc/modules`. Lines are module names;
/// `#` and `;` start comments.
fn read_modules_load(root: &HostRoot) -> Vec<(String, Vec<String>)> {
    let names_of = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split(['#', ';']).next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    };
    let dirs = [
        "etc/modules-load.d",
        "run/modules-load.d",
        "usr/local/lib/modules-load.d",
        "usr/lib/modules-load.d",
        "lib/modules-load.d",
    ];
    let mut out: Vec<(String, Vec<String>)> = read_config_dirs(root, &dirs, ".conf")
        .into_iter()
        .map(|f| (f.path, names_of(&f.text)))
        .collect();
    if let Probe::Ok(t) = root.read("etc/modules") {
        out.push(("/etc/modules".to_string(), names_of(&t)));
    }
    out
}

/// Modules listed for the initramfs (see [`Snapshot::initramfs_modules`]).
fn read_initramfs_modules(root: &HostRoot) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    if let Probe::Ok(t) = root.read("etc/initramfs-tools/modules") {
        let names = t
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        out.push(("/etc/initramfs-tools/modules".to_string(), names));
    }
    if let Probe::Ok(t) = root.read("etc/mkinitcpio.conf") {
        let names = t
            .lines()
            .filter_map(|l| l.trim().strip_prefix("MODULES=("))
            .flat_map(|l| l.split(')').next().unwrap_or("").split_whitespace())
            .map(|w| w.trim_matches(['"', '\'']).to_string())
            .collect();
        out.push(("/etc/mkinitcpio.conf".to_string(), names));
    }
    if let Probe::Ok(files) = root.read_dir("etc/dracut.conf.d") {
        for f in files.iter().filter(|f| f.ends_with(".conf")) {
            let rel = format!("etc/dracut.conf.d/{f}");
            if let Probe::Ok(t) = root.read(&rel) {
                let names: Vec<String> = t
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with("add_drivers") || l.starts_with("force_drivers"))
                    .filter_map(|l| l.split_once('='))
                    .flat_map(|(_, v)| v.split_whitespace())
                    .map(|w| w.trim_matches(['"', '\'', '+']).to_string())
                    .filter(|w| !w.is_empty())
                    .collect();
                out.push((HostRoot::display(&rel), names));
            }
        }
    }
    out
}

/// Every IOMMU group under `/sys/kernel/iommu_groups`, by number.
/// Members are listed only when `members` is true.
pub fn read_iommu_groups(root: &HostRoot, members: bool) -> Probe<Vec<IommuGroup>> {
    let all = root.dir("sys/kernel/iommu_groups");
    root.read_dir("sys/kernel/iommu_groups").map(|names| {
        let mut groups: Vec<IommuGroup> = names
            .into_iter()
            .filter_map(|n| {
                let number = n.parse().ok()?;
                // Most groups have no `name`: one look settles that without opening the group.
                if !members && all.lacks(&format!("{n}/name")) {
                    return Some(IommuGroup {
                        number,
                        name: None,
                        devices: None,
                    });
                }
                let dir = all.subdir(&n);
                Some(IommuGroup {
                    number,
                    name: dir.read_attr("name").into_ok(),
                    devices: members.then(|| dir.read_dir("devices").into_ok().unwrap_or_default()),
                })
            })
            .collect();
        groups.sort_by_key(|g| g.number);
        groups
    })
}

/// Reads every mdev parent and its types under `/sys/class/mdev_bus`.
pub fn read_mdev_parents(root: &HostRoot) -> Probe<Vec<MdevParent>> {
    read_mdev_parents_where(root, |_, _| true)
}

/// Every mdev parent and its type ids; the types' attributes only for the parents for which
/// `attributes(parent, type ids)` is true.
fn read_mdev_parents_where(
    root: &HostRoot,
    attributes: impl Fn(&str, &[String]) -> bool,
) -> Probe<Vec<MdevParent>> {
    root.read_dir("sys/class/mdev_bus").map(|names| {
        // First every parent's type ids; then the attributes of the types that need them, on
        // two threads when there are many.
        let listed: Vec<(String, Probe<Vec<String>>, bool)> = names
            .into_iter()
            .map(|parent| {
                let ids =
                    root.read_dir(&format!("sys/class/mdev_bus/{parent}/mdev_supported_types"));
                let full = match &ids {
                    Probe::Ok(ids) => attributes(&parent, ids),
                    _ => true,
                };
                (parent, ids, full)
            })
            .collect();
        let dirs: Vec<Option<super::root::HostDir<'_>>> = listed
            .iter()
            .map(|(parent, ids, full)| {
                (*full && ids.is_ok())
                    .then(|| root.dir(&format!("sys/class/mdev_bus/{parent}/mdev_supported_types")))
            })
            .collect();
        let jobs: Vec<(usize, &str)> = listed
            .iter()
            .enumerate()
            .filter(|(i, _)| dirs.get(*i).is_some_and(Option::is_some))
            .flat_map(|(i, (_, ids, _))| {
                ids.ok()
                    .into_iter()
                    .flatten()
                    .map(move |id| (i, id.as_str()))
            })
            .collect();
        let mut read = par_map(
            jobs.len(),
            || (),
            |(), k| {
                let (i, id) = jobs[k];
                dirs[i].as_ref().map(|all| read_mdev_type(all, id))
            },
        )
        .into_iter()
        .flatten();
        listed
            .into_iter()
            .map(|(parent, ids, full)| {
                let types = ids.map(|ids| {
                    if full {
                        ids.iter().filter_map(|_| read.next()).collect()
                    } else {
                        ids.iter().map(|id| MdevType::listed(id)).collect()
                    }
                });
                MdevParent {
                    name: parent,
                    types,
                    attributes: full,
                }
            })
            .collect()
    })
}

/// One mdev type's attributes, from its parent's `mdev_supported_types`.
fn read_mdev_type(all: &super::root::HostDir<'_>, id: &str) -> MdevType {
    // On the live host each attribute is opened by its `TYPE/attr` name relative to `all`: one
    // open and one close fewer per type than opening the type's directory first. A captured
    // tree's type directory is resolved beneath the tree first, as every directory there is.
    let opened;
    let (dir, prefix) = if all.root().is_live() {
        (all, format!("{id}/"))
    } else {
        opened = all.subdir(id);
        (&opened, String::new())
    };
    let at = |attr: &str| format!("{prefix}{attr}");
    let description = dir.read(&at("description")).into_ok();
    MdevType {
        name: dir.read_attr(&at("name")).into_ok(),
        gvt: description.as_deref().and_then(parse::mdev_desc::parse),
        description,
        available_instances: dir.read_attr(&at("available_instances")).and_then(|v| {
            match v.parse() {
                Ok(n) => Probe::Ok(n),
                Err(_) => Probe::Invalid(format!("available_instances is {v:?}, not a number")),
            }
        }),
        device_api: dir.read_attr(&at("device_api")).into_ok(),
        devices: dir.read_dir(&at("devices")).into_ok().unwrap_or_default(),
        id: id.to_string(),
    }
}

/// Items at or above which [`par_map`] uses a second thread: below, starting it costs more
/// than it saves (a host has one GVT-g parent with a handful of types).
const PAR_MIN: usize = 64;

/// `f(state, k)` for every `k < n`, in order of `k`. From [`PAR_MIN`] items on, a second thread
/// shares the work ([`Chunks`]), each thread with its own `init()` state.
fn par_map<S, R: Send>(
    n: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> R + Sync,
) -> Vec<R> {
    if n < PAR_MIN {
        let mut s = init();
        return (0..n).map(|k| f(&mut s, k)).collect();
    }
    let chunks = Chunks::new(n);
    let work = || chunks.run(&mut init(), &f);
    let (mine, theirs) = std::thread::scope(|t| {
        let other = t.spawn(work);
        let mine = work();
        (
            mine,
            other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    });
    Chunks::merge([mine, theirs])
}

/// Items `0..n` handed out 32 at a time from a shared counter to every thread that calls
/// [`Chunks::run`], until none is left; [`Chunks::merge`] puts the results back in item order.
struct Chunks {
    n: usize,
    next: std::sync::atomic::AtomicUsize,
}

impl Chunks {
    /// Items taken at a time: enough to keep the shared counter out of the way.
    const SIZE: usize = 32;

    fn new(n: usize) -> Self {
        Chunks {
            n,
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// `f(state, k)` for the items this thread takes, with their numbers.
    fn run<S, R>(&self, state: &mut S, f: impl Fn(&mut S, usize) -> R) -> Vec<(usize, R)> {
        let mut out = Vec::new();
        loop {
            let start = self
                .next
                .fetch_add(Self::SIZE, std::sync::atomic::Ordering::Relaxed);
            if start >= self.n {
                return out;
            }
            for k in start..(start + Self::SIZE).min(self.n) {
                out.push((k, f(state, k)));
            }
        }
    }

    /// The results of every thread's [`Chunks::run`], in item order.
    fn merge<R>(parts: impl IntoIterator<Item = Vec<(usize, R)>>) -> Vec<R> {
        let mut all: Vec<(usize, R)> = parts.into_iter().flatten().collect();
        all.sort_unstable_by_key(|(k, _)| *k);
        all.into_iter().map(|(_, r)| r).collect()
    }
}

/// Reads every existing mdev under `/sys/bus/mdev/devices`.
pub fn read_mdev_devices(root: &HostRoot) -> Probe<Vec<MdevDevice>> {
    root.read_dir("sys/bus/mdev/devices").map(|names| {
        let work = MdevWork::new(root, names, true);
        par_map(
            work.names.len(),
            || MdevReader::new(root),
            |reader, k| work.read(reader, k),
        )
    })
}

/// The mdevs of `names` (a listing of `/sys/bus/mdev/devices`), read by every thread that
/// calls [`MdevWork::help`] until none is left ([`Chunks`]), then put back in listing order by
/// [`Chunks::merge`].
///
/// An mdev's directory sits under its parent's device directory, which
/// `/sys/class/mdev_bus/P` links to. Each parent is opened and listed once; an mdev found there
/// is then read through its parent with short links only, instead of following its long bus
/// link (`../../../devices/pci0000:00/0000:00:02.0/UUID`, which on a captured tree's disk
/// file system is a symlink stored out of line, one block read per mdev). Anything else is
/// read the general way ([`MdevReader`]).
struct MdevWork<'a> {
    names: Vec<String>,
    chunks: Chunks,
    /// Parents (name, opened device directory).
    parents: Vec<(String, super::root::HostDir<'a>)>,
    /// UUID → index in `parents` of the parent whose directory holds it.
    home: std::collections::HashMap<String, usize>,
    /// Read the `mdev_type` and `driver` links ([`Scope::mdev_links`]).
    links: bool,
}

impl<'a> MdevWork<'a> {
    fn new(root: &'a HostRoot, names: Vec<String>, links: bool) -> Self {
        let mut parents = Vec::new();
        let mut home = std::collections::HashMap::new();
        if !names.is_empty() {
            let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
            for p in root
                .read_dir("sys/class/mdev_bus")
                .into_ok()
                .unwrap_or_default()
            {
                let rel = format!("sys/class/mdev_bus/{p}");
                let dir = root.dir(&rel);
                if !dir.is_open() {
                    continue;
                }
                let i = parents.len();
                for e in root.read_dir(&rel).into_ok().unwrap_or_default() {
                    if wanted.contains(e.as_str()) {
                        home.entry(e).or_insert(i);
                    }
                }
                parents.push((p, dir));
            }
        }
        MdevWork {
            chunks: Chunks::new(names.len()),
            names,
            parents,
            home,
            links,
        }
    }

    fn help(&self, root: &HostRoot) -> Vec<(usize, MdevDevice)> {
        self.chunks
            .run(&mut MdevReader::new(root), |reader, k| self.read(reader, k))
    }

    /// The `k`th mdev.
    fn read(&self, reader: &mut MdevReader<'_>, k: usize) -> MdevDevice {
        let uuid = self.names.get(k).map_or("", String::as_str);
        self.read_under_parent(uuid)
            .unwrap_or_else(|| reader.read(uuid.to_string()))
    }

    /// `uuid` read through the parent directory that holds it; `None` when it is not under
    /// a parent, or its type link does not name that parent.
    fn read_under_parent(&self, uuid: &str) -> Option<MdevDevice> {
        let (parent, pdir) = self.parents.get(*self.home.get(uuid)?)?;
        let dir = pdir.subdir(uuid);
        if !dir.is_open() {
            return None;
        }
        let group = || {
            dir.link_name("iommu_group")
                .into_ok()
                .and_then(|g| g.parse().ok())
        };
        if !self.links {
            return Some(MdevDevice {
                iommu_group: group(),
                driver: None,
                uuid: uuid.to_string(),
                mdev_type: None,
                parent: Some(parent.clone()),
            });
        }
        let t = dir.read_link("mdev_type").into_ok()?;
        let full = if t.starts_with('/') {
            t
        } else {
            format!("sys/class/mdev_bus/{parent}/{uuid}/{t}")
        };
        let (p, mdev_type) = mdev_type_parts(&full);
        if p.as_ref() != Some(parent) {
            return None;
        }
        Some(MdevDevice {
            iommu_group: group(),
            driver: dir.link_name("driver").into_ok(),
            uuid: uuid.to_string(),
            mdev_type,
            parent: p,
        })
    }
}

/// Reads mdevs one by one, remembering what their parents share.
struct MdevReader<'a> {
    root: &'a HostRoot,
    bus: super::root::HostDir<'a>,
    /// Whether `sys/class/mdev_bus/P` exists, asked once per parent rather than once per mdev.
    parent_known: BTreeMap<String, bool>,
    /// The parents' device directories, opened once each: a device is then opened with a
    /// one-component lookup instead of the walk along its bus link.
    parent_dirs: BTreeMap<String, super::root::HostDir<'a>>,
}

impl<'a> MdevReader<'a> {
    fn new(root: &'a HostRoot) -> Self {
        MdevReader {
            root,
            bus: root.dir("sys/bus/mdev/devices"),
            parent_known: BTreeMap::new(),
            parent_dirs: BTreeMap::new(),
        }
    }

    fn read(&mut self, uuid: String) -> MdevDevice {
        let base = format!("sys/bus/mdev/devices/{uuid}");
        let link = self.bus.read_link(&uuid).into_ok();
        // The device's real directory, `../../../devices/pci0000:00/0000:00:02.0/UUID`.
        let real = link
            .as_deref()
            .filter(|l| !l.starts_with('/'))
            .and_then(|l| l.rsplit_once('/'))
            .filter(|(_, name)| *name == uuid)
            .map(|(dir, _)| normalize(&format!("sys/bus/mdev/devices/{dir}")))
            .filter(|d| !d.starts_with(".."));
        let opened = real.and_then(|d| {
            let p = self
                .parent_dirs
                .entry(d.clone())
                .or_insert_with(|| self.root.dir(&d));
            p.is_open().then(|| p.subdir(&uuid)).filter(|s| s.is_open())
        });
        let dir = opened.unwrap_or_else(|| self.bus.subdir(&uuid));
        let type_link = dir.read_link("mdev_type").into_ok();
        // The kernel links `mdev_type` relative to the device's real directory (which
        // sits under its parent): `../mdev_supported_types/mtty-2`; captured trees may
        // hold the long form `.../0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4`.
        // Resolve it against where the device really is, then read the parent off it.
        let dev_dir = match link {
            Some(l) => format!("sys/bus/mdev/devices/{l}"),
            None => base.clone(),
        };
        let (mut parent, mut mdev_type) = match &type_link {
            Some(t) => {
                let full = if t.starts_with('/') {
                    t.clone()
                } else {
                    format!("{dev_dir}/{t}")
                };
                mdev_type_parts(&full)
            }
            None => (None, None),
        };
        // A captured tree may hold the device as a plain directory under
        // sys/bus/mdev/devices, where a relative link resolves to nonsense. The parent's
        // own listing is authoritative: the type whose `devices/` holds this UUID.
        let known = parent.as_ref().is_some_and(|p| {
            *self
                .parent_known
                .entry(p.clone())
                .or_insert_with(|| self.root.exists(&format!("sys/class/mdev_bus/{p}")))
        });
        if !known {
            if let Some((p, t)) = find_listing_parent(self.root, &uuid) {
                parent = Some(p);
                mdev_type = Some(t);
            }
        }
        MdevDevice {
            iommu_group: dir
                .link_name("iommu_group")
                .into_ok()
                .and_then(|g| g.parse().ok()),
            driver: dir.link_name("driver").into_ok(),
            uuid,
            mdev_type,
            parent,
        }
    }
}

/// The (parent, type) whose `mdev_supported_types/TYPE/devices/` lists `uuid`.
fn find_listing_parent(root: &HostRoot, uuid: &str) -> Option<(String, String)> {
    for p in root.read_dir("sys/class/mdev_bus").into_ok()? {
        let base = format!("sys/class/mdev_bus/{p}/mdev_supported_types");
        for t in root.read_dir(&base).into_ok().unwrap_or_default() {
            if root.exists(&format!("{base}/{t}/devices/{uuid}")) {
                return Some((p, t));
            }
        }
    }
    None
}

/// `path` with `.` and `..` resolved textually; a `..` above the start is kept as `..`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// (parent, type) from a path ending in `PARENT/mdev_supported_types/TYPE`, after resolving
/// `.` and `..` textually.
fn mdev_type_parts(path: &str) -> (Option<String>, Option<String>) {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let n = parts.len();
    let ty = parts.last().map(|s| s.to_string());
    let parent =
        (n >= 3 && parts[n - 2] == "mdev_supported_types").then(|| parts[n - 3].to_string());
    (parent, ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udev_rules_by_name_in_udev_order() {
        let s = crate::testing::snapshot_with(|t| {
            t.file("etc/udev/rules.d/70-vfio.rules", "# emptied by the admin\n");
            t.file(
                "usr/lib/udev/rules.d/70-vfio.rules",
                "SUBSYSTEM==\"vfio\", MODE=\"0666\"\n",
            );
            t.file(
                "lib/udev/rules.d/71-vfio.rules",
                "SUBSYSTEM==\"vfio\", GROUP=\"kvm\"\n",
            );
            t.file(
                "usr/lib/udev/rules.d/71-vfio.rules",
                "SUBSYSTEM==\"vfio\", GROUP=\"kvm\"\n",
            );
            t.file(
                "etc/udev/rules.d/99-kvmfr.rules",
                "SUBSYSTEM==\"kvmfr\", OWNER=\"me\"\n",
            );
        });
        let paths: Vec<&str> = s.udev_vfio_rules.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/usr/lib/udev/rules.d/71-vfio.rules"]);
        let lg: Vec<&str> = s
            .looking_glass
            .udev
            .iter()
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(lg, ["/etc/udev/rules.d/99-kvmfr.rules"]);
    }

    #[test]
    fn kconfig_keeps_every_wanted_symbol_and_only_those() {
        for w in KCONFIG_WANTED {
            assert!(is_wanted(w.as_bytes()), "{w}");
        }
        let text = "# comment\r\nCONFIG_KVM=m\r\n# CONFIG_VFIO is not set\nCONFIG_KVMX=y\n\
CONFIG_KVM_INTEL\nCONFIG_DRM_I915_GVT_KVMGT=m";
        let kc = parse_kconfig_wanted(text);
        let got: Vec<(&str, usize)> = kc
            .values
            .iter()
            .map(|(k, (_, line))| (k.as_str(), *line))
            .collect();
        assert_eq!(got, [("DRM_I915_GVT_KVMGT", 6), ("KVM", 2), ("VFIO", 3)]);
        assert!(kc.enabled("KVM") && !kc.enabled("VFIO"));
    }

    #[test]
    fn os_release_skips_lines_that_are_not_assignments() {
        // Found by the os_release fuzz target: `="https:/"` gave an empty key.
        let m = parse_os_release("NAME=\"Ubuntu\"\n=\"https:/\"\n9X=1\nA-B=2\n_OK=3\n");
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            [
                ("NAME".to_string(), "Ubuntu".to_string()),
                ("_OK".to_string(), "3".to_string())
            ]
        );
    }

    #[test]
    fn mdev_type_link_forms() {
        let want = (Some("mtty".to_string()), Some("mtty-2".to_string()));
        assert_eq!(
            mdev_type_parts("sys/bus/mdev/devices/../../../devices/virtual/mtty/mtty/U/../mdev_supported_types/mtty-2"),
            want
        );
        assert_eq!(
            mdev_type_parts("sys/bus/mdev/devices/U/../../../devices/pci0000:00/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4").0,
            Some("0000:00:02.0".to_string())
        );
    }

    #[test]
    fn resource_sizes() {
        let r = "0x00000000f6000000 0x00000000f6ffffff 0x0000000000140204\n0x0000000000000000 0x0000000000000000 0x0000000000000000\n0x00000000e0000000 0x00000000efffffff 0x000000000014220c\n";
        assert_eq!(parse_resource(r), vec![16 << 20, 0, 256 << 20]);
    }

    #[test]
    fn kconfig_filter_keeps_wanted_symbols_with_real_line_numbers() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/kconfig/config-6.1.0-56-amd64"
        ))
        .unwrap();
        let full = parse::kconfig::parse(&text);
        let kc = parse_kconfig_wanted(&text);
        for k in KCONFIG_WANTED {
            assert_eq!(kc.get(k), full.get(k), "{k}");
            assert_eq!(
                kc.values.get(*k).map(|v| v.1),
                full.values.get(*k).map(|v| v.1),
                "{k} line"
            );
        }
        assert!(kc.enabled("DRM_I915_GVT_KVMGT"));
        assert!(kc.values.len() <= KCONFIG_WANTED.len());
    }

    #[test]
    fn mdev_parent_falls_back_to_the_parents_listing() {
        let u = "5a4ccd5b-6d0c-4b7e-9c38-1c2e5f5d1a01";
        let mut t = crate::testing::Tree::new();
        t.dir(&format!(
            "sys/class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4/devices/{u}"
        ));
        // A plain directory where the real host has a symlink: the kernel's relative link
        // would resolve to sys/bus/mdev/devices/mdev_supported_types/…
        t.link(
            &format!("sys/bus/mdev/devices/{u}/mdev_type"),
            "../mdev_supported_types/i915-GVTg_V5_4",
        );
        let d = t.snapshot().mdev_devices.into_ok().unwrap();
        assert_eq!(d[0].parent.as_deref(), Some("0000:00:02.0"));
        assert_eq!(d[0].mdev_type.as_deref(), Some("i915-GVTg_V5_4"));
    }

    #[test]
    fn passwd_and_group() {
        let u = parse_passwd("root:x:0:0:root:/root:/bin/bash\nlibvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\nbroken\n");
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].uid, 64055);
        let g = parse_group("kvm:x:108:libvirt-qemu,alice\nempty:x:5:\n");
        assert_eq!(g[0].members, vec!["libvirt-qemu", "alice"]);
        assert!(g[1].members.is_empty());
    }

    #[test]
    fn missing_tree_gives_probes_not_errors() {
        let d = tempfile::tempdir().unwrap();
        let s = Snapshot::collect(&HostRoot::at(d.path()).unwrap());
        assert!(s.cpuinfo.is_missing());
        assert!(s.mdev_parents.is_missing());
        assert!(s.intel_igds().is_empty());
    }
}

/// A `/dev/shm/looking-glass*` file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShmFile {
    /// Path as the host sees it (`/dev/shm/looking-glass`).
    pub path: String,
    /// Type, mode and owner.
    pub node: NodeInfo,
    /// Size in bytes; None when only the side file describes it (a captured placeholder).
    pub size: Option<u64>,
}

/// What Looking Glass (IVSHMEM shared memory between guest and host) uses and how it is set up.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct LookingGlass {
    /// `/dev/shm/looking-glass*`.
    pub shm: Vec<ShmFile>,
    /// `/dev/kvmfr*` nodes by name (`kvmfr0`).
    pub kvmfr_nodes: BTreeMap<String, NodeInfo>,
    /// `/sys/module/kvmfr/parameters/static_size_mb` (the live sizes, comma-separated MiB).
    pub kvmfr_live_sizes: Option<String>,
    /// systemd-tmpfiles.d files mentioning looking-glass (`/etc`, `/run`, `/usr/lib`).
    pub tmpfiles: Vec<TextFile>,
    /// udev rules mentioning kvmfr.
    pub udev: Vec<TextFile>,
    /// libvirt domain definitions (`/etc/libvirt/qemu/*.xml`) mentioning looking-glass, kvmfr
    /// or an ivshmem device.
    pub domains: Vec<TextFile>,
}

/// The udev rules files udev reads (udev(7)): `*.rules` in /etc, /run, /usr/lib and /lib (so a
/// merged /usr, where /lib is /usr/lib, yields each file once).
fn read_udev_rules(root: &HostRoot) -> Vec<TextFile> {
    let dirs = [
        "etc/udev/rules.d",
        "run/udev/rules.d",
        "usr/lib/udev/rules.d",
        "lib/udev/rules.d",
    ];
    read_config_dirs(root, &dirs, ".rules")
}

/// The `*{suffix}` files of `dirs`, in order, a name in an earlier directory hiding the same
/// name in a later one (the rule of modules-load.d(5) and udev(7)), read as text.
fn read_config_dirs(root: &HostRoot, dirs: &[&str], suffix: &str) -> Vec<TextFile> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for dir in dirs {
        let Probe::Ok(names) = root.read_dir(dir) else {
            continue;
        };
        let d = root.dir(dir);
        for n in names.into_iter().filter(|n| n.ends_with(suffix)) {
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Probe::Ok(text) = d.read(&n) {
                out.push(TextFile {
                    path: HostRoot::display(&format!("{dir}/{n}")),
                    text,
                });
            }
        }
    }
    out
}

/// Reads [`Snapshot::looking_glass`]. Small files only; the shared memory itself is never read.
/// `udev_rules`: [`read_udev_rules`].
fn read_looking_glass(root: &HostRoot, udev_rules: &[TextFile]) -> LookingGlass {
    let mut lg = LookingGlass::default();
    let mut shm_names: BTreeSet<String> = root
        .read_dir("dev/shm")
        .into_ok()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with("looking-glass"))
        .collect();
    shm_names.extend(
        root.side()
            .nodes_under("dev/shm/")
            .map(|(p, _)| p.trim_start_matches("dev/shm/").to_string())
            .filter(|n| n.starts_with("looking-glass") && !n.contains('/')),
    );
    for n in shm_names {
        let rel = format!("dev/shm/{n}");
        let Some(node) = root.node(&rel).into_ok() else {
            continue;
        };
        let size = if root.side().node(&rel).is_some() {
            None
        } else {
            std::fs::metadata(root.path(&rel)).ok().map(|m| m.len())
        };
        lg.shm.push(ShmFile {
            path: HostRoot::display(&rel),
            node,
            size,
        });
    }
    let kvmfr = root.read_dir("dev").map(|names| {
        names
            .into_iter()
            .filter(|n| n.starts_with("kvmfr"))
            .filter_map(|n| Some((n.clone(), root.node(&format!("dev/{n}")).into_ok()?)))
            .collect::<BTreeMap<_, _>>()
    });
    lg.kvmfr_nodes = merge_side_nodes(root, "dev/", kvmfr)
        .into_ok()
        .unwrap_or_default()
        .into_iter()
        .filter(|(n, _)| n.starts_with("kvmfr"))
        .collect();
    lg.kvmfr_live_sizes = root
        .read_attr("sys/module/kvmfr/parameters/static_size_mb")
        .into_ok();
    let texts = |dirs: &[&str], ext: &str, needles: &[&str]| -> Vec<TextFile> {
        let mut out = Vec::new();
        for dir in dirs {
            if let Probe::Ok(mut names) = root.read_dir(dir) {
                names.sort();
                for n in names.iter().filter(|n| n.ends_with(ext)) {
                    let rel = format!("{dir}/{n}");
                    if let Probe::Ok(text) = root.read(&rel) {
                        if needles.iter().any(|k| text.contains(k)) {
                            out.push(TextFile {
                                path: HostRoot::display(&rel),
                                text,
                            });
                        }
                    }
                }
            }
        }
        out
    };
    lg.tmpfiles = texts(
        &["etc/tmpfiles.d", "run/tmpfiles.d", "usr/lib/tmpfiles.d"],
        ".conf",
        &["looking-glass"],
    );
    lg.udev = udev_rules
        .iter()
        .filter(|r| r.text.contains("kvmfr"))
        .cloned()
        .collect();
    lg.domains = texts(
        &["etc/libvirt/qemu"],
        ".xml",
        &["looking-glass", "kvmfr", "ivshmem"],
    );
    lg
}
