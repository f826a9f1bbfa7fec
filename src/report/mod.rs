//! `gvtg report`: copy the allowlisted files the doctor reads into a captured tree (format 1,
//! docs/captured-tree.md), redact it, and pack it with the doctor's verdicts into one `.tar.gz`
//! (docs/report.md). [`archive::unpack`] is the safe reverse used by `gvtg doctor --from`.

pub mod archive;
pub mod elf;
pub mod redact;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::host::root::NodeInfo;
use crate::host::sidefile::{NodeKind, SIDE_FILE};
use crate::host::{HostRoot, Probe};
use redact::Redactor;

/// How a copied file is treated by redaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Kernel/hardware facts the checks parse (cpuinfo, sysfs, module index): copied verbatim.
    Verbatim,
    /// Free text (configuration, kernel log, command line): every class is redacted.
    Text,
    /// libvirt domain XML: secrets, then text.
    Xml,
    Passwd,
    Group,
}

/// The tree being built, and what went into it.
pub struct Collector<'a> {
    src: &'a HostRoot,
    dst: PathBuf,
    red: Option<Redactor>,
    nodes: BTreeMap<String, NodeInfo>,
    links: BTreeMap<String, String>,
    kernel_log: Option<String>,
    /// Files the host has but would not let us read (permission denied), root-relative.
    pub denied: Vec<String>,
}

/// Directories the doctor reads modprobe.d(5) and modules-load.d(5) files from.
const MODPROBE_DIRS: &[&str] = &[
    "etc/modprobe.d",
    "run/modprobe.d",
    "usr/local/lib/modprobe.d",
    "lib/modprobe.d",
    "usr/lib/modprobe.d",
    "etc/modules-load.d",
    "run/modules-load.d",
    "usr/local/lib/modules-load.d",
    "usr/lib/modules-load.d",
    "lib/modules-load.d",
];

const UDEV_DIRS: &[&str] = &[
    "etc/udev/rules.d",
    "run/udev/rules.d",
    "usr/lib/udev/rules.d",
    "lib/udev/rules.d",
];

const PCI_ATTRS: &[&str] = &[
    "vendor",
    "device",
    "class",
    "resource",
    "boot_vga",
    "subsystem_vendor",
    "subsystem_device",
    "sriov_totalvfs",
    "reset_method",
    "driver_override",
];

impl<'a> Collector<'a> {
    /// A collector writing the tree into `dst` (created), redacting unless `red` is None.
    pub fn new(src: &'a HostRoot, dst: &Path, red: Option<Redactor>) -> Result<Self> {
        std::fs::create_dir_all(dst)?;
        Ok(Collector {
            src,
            dst: dst.to_path_buf(),
            red,
            nodes: BTreeMap::new(),
            links: BTreeMap::new(),
            kernel_log: None,
            denied: Vec::new(),
        })
    }

    fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let p = self.dst.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    }

    fn mkdir(&mut self, rel: &str) -> Result<()> {
        std::fs::create_dir_all(self.dst.join(rel))?;
        Ok(())
    }

    fn redacted(&mut self, kind: Kind, bytes: Vec<u8>) -> Vec<u8> {
        let Some(r) = self.red.as_mut() else {
            return bytes;
        };
        if kind == Kind::Verbatim {
            return bytes;
        }
        let t = String::from_utf8_lossy(&bytes);
        match kind {
            Kind::Text => r.text(&t),
            Kind::Xml => r.xml(&t),
            Kind::Passwd => r.passwd(&t),
            Kind::Group => r.group(&t),
            Kind::Verbatim => unreachable!(),
        }
        .into_bytes()
    }

    /// Copies one regular file if the host has it. Returns whether it did.
    fn file(&mut self, rel: &str, kind: Kind) -> Result<bool> {
        // A captured tree refuses non-regular files itself; on the live host, skip anything that
        // is not a regular file (a FIFO planted in modprobe.d must not hang the report).
        if self.src.is_live() && !std::fs::metadata(self.src.path(rel)).is_ok_and(|m| m.is_file()) {
            return Ok(false);
        }
        match self.src.read_bytes(rel) {
            Probe::Ok(b) => {
                let b = self.redacted(kind, b);
                self.write(rel, &b)?;
                Ok(true)
            }
            Probe::Denied => {
                self.denied.push(rel.to_string());
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Copies every regular file directly in `dir` accepted by `keep`.
    fn files_in(&mut self, dir: &str, kind: Kind, keep: impl Fn(&str) -> bool) -> Result<()> {
        if let Probe::Ok(names) = self.src.read_dir(dir) {
            self.mkdir(dir)?;
            for n in names.iter().filter(|n| keep(n)) {
                self.file(&format!("{dir}/{n}"), kind)?;
            }
        }
        Ok(())
    }

    /// Records a symlink in the side file if `rel` is one (or the source's side file says so).
    fn link(&mut self, rel: &str) -> bool {
        let is_link = self.src.side().link(rel).is_some()
            || std::fs::symlink_metadata(self.src.path(rel))
                .is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return false;
        }
        match self.src.read_link(rel) {
            Probe::Ok(t) => {
                self.links.insert(rel.to_string(), t);
                true
            }
            _ => false,
        }
    }

    /// An entry whose existence matters (a listing member): a link when it is one, else an
    /// empty directory.
    fn entry(&mut self, rel: &str) -> Result<()> {
        if !self.link(rel) {
            self.mkdir(rel)?;
        }
        Ok(())
    }

    /// Records a device node (or any node that is not a regular file) in the side file.
    fn node(&mut self, rel: &str) {
        if let Probe::Ok(n) = self.src.node(rel) {
            self.nodes.insert(rel.to_string(), n);
        }
    }

    /// Collects everything the doctor reads.
    pub fn collect(&mut self) -> Result<()> {
        let src = self.src;
        for f in ["proc/cpuinfo", "proc/modules", "proc/sys/kernel/osrelease"] {
            self.file(f, Kind::Verbatim)?;
        }
        self.file("proc/cmdline", Kind::Text)?;
        let release = src.read_attr("proc/sys/kernel/osrelease").into_ok();
        let valid_release = release
            .as_deref()
            .filter(|r| !r.is_empty() && !r.contains('/') && *r != "." && *r != "..");
        // Kernel configuration: boot/config-REL, else proc/config.gz.
        let have_boot_config = match valid_release {
            Some(r) => self.file(&format!("boot/config-{r}"), Kind::Verbatim)?,
            None => false,
        };
        if !have_boot_config {
            self.file("proc/config.gz", Kind::Verbatim)?;
        }
        if let Some(r) = valid_release {
            self.modules(r)?;
        }
        self.sysfs()?;

        if !self.file("etc/os-release", Kind::Verbatim)? {
            self.file("usr/lib/os-release", Kind::Verbatim)?;
        }
        self.file("etc/passwd", Kind::Passwd)?;
        self.file("etc/group", Kind::Group)?;
        for f in [
            "etc/default/grub",
            "etc/kernel/cmdline",
            "etc/modules",
            "etc/libvirt/qemu.conf",
            "var/lib/libvirt/qemu.conf",
            // Initramfs module lists (passthrough.binding reads them).
            "etc/initramfs-tools/modules",
            "etc/mkinitcpio.conf",
        ] {
            self.file(f, Kind::Text)?;
        }
        self.files_in("etc/dracut.conf.d", Kind::Text, |n| n.ends_with(".conf"))?;
        for f in ["usr/sbin/libvirtd", "usr/sbin/virtqemud"] {
            if src.exists(f) {
                self.write(f, b"")?; // presence marker, not the binary
            }
        }
        for d in MODPROBE_DIRS {
            self.files_in(d, Kind::Text, |_| true)?;
        }
        for d in UDEV_DIRS {
            if let Probe::Ok(names) = src.read_dir(d) {
                self.mkdir(d)?;
                for n in names.iter().filter(|n| n.ends_with(".rules")) {
                    let rel = format!("{d}/{n}");
                    if src.read(&rel).into_ok().is_some_and(|t| t.contains("vfio")) {
                        self.file(&rel, Kind::Text)?;
                    }
                }
            }
        }
        // libvirt domains that use mdev or PCI host devices.
        if let Probe::Ok(names) = src.read_dir("etc/libvirt/qemu") {
            for n in names.iter().filter(|n| n.ends_with(".xml")) {
                let rel = format!("etc/libvirt/qemu/{n}");
                if let Some(t) = src.read(&rel).into_ok() {
                    let t2 = t.replace('"', "'");
                    if t2.contains("type='mdev'") || t2.contains("type='pci'") {
                        self.file(&rel, Kind::Xml)?;
                    }
                }
            }
        }
        // Looking Glass (passthrough.looking-glass): tmpfiles.d lines, kvmfr udev rules, domains
        // naming its memory, kvmfr's live sizes; the shared memory itself only as a node.
        for (dirs, ext, needle) in [
            (
                &["etc/tmpfiles.d", "run/tmpfiles.d", "usr/lib/tmpfiles.d"][..],
                ".conf",
                "looking-glass",
            ),
            (UDEV_DIRS, ".rules", "kvmfr"),
        ] {
            for d in dirs {
                if let Probe::Ok(names) = src.read_dir(d) {
                    for n in names.iter().filter(|n| n.ends_with(ext)) {
                        let rel = format!("{d}/{n}");
                        if src.read(&rel).into_ok().is_some_and(|t| t.contains(needle)) {
                            self.mkdir(d)?;
                            self.file(&rel, Kind::Text)?;
                        }
                    }
                }
            }
        }
        if let Probe::Ok(names) = src.read_dir("etc/libvirt/qemu") {
            for n in names.iter().filter(|n| n.ends_with(".xml")) {
                let rel = format!("etc/libvirt/qemu/{n}");
                if src.read(&rel).into_ok().is_some_and(|t| {
                    t.contains("looking-glass") || t.contains("kvmfr") || t.contains("ivshmem")
                }) {
                    self.file(&rel, Kind::Xml)?;
                }
            }
        }
        self.file("sys/module/kvmfr/parameters/static_size_mb", Kind::Verbatim)?;
        if let Probe::Ok(names) = src.read_dir("dev/shm") {
            for n in names.iter().filter(|n| n.starts_with("looking-glass")) {
                self.node(&format!("dev/shm/{n}"));
            }
        }
        if let Probe::Ok(names) = src.read_dir("dev") {
            for n in names.iter().filter(|n| n.starts_with("kvmfr")) {
                self.node(&format!("dev/{n}"));
            }
        }
        // Device nodes.
        self.node("dev/kvm");
        if let Probe::Ok(names) = src.read_dir("dev/vfio") {
            for n in names {
                self.node(&format!("dev/vfio/{n}"));
            }
        }
        // Kernel log.
        let log = src.kernel_log();
        if matches!(log, Probe::Denied) {
            self.denied.push("dev/kmsg".into());
        }
        if let Probe::Ok((path, bytes)) = log {
            let rel = path.trim_start_matches('/').to_string();
            let rel = if src.is_live() {
                "dev/kmsg".to_string()
            } else {
                rel
            };
            let b = self.redacted(Kind::Text, bytes);
            self.write(&rel, &b)?;
            self.nodes.remove(&rel);
            if rel != "dev/kmsg" {
                self.kernel_log = Some(rel);
            }
        }
        self.side_file()
    }

    fn modules(&mut self, release: &str) -> Result<()> {
        let src = self.src;
        let dir = format!("lib/modules/{release}");
        for f in [
            "modules.dep",
            "modules.builtin",
            "modules.builtin.modinfo",
            "modules.alias",
        ] {
            self.file(&format!("{dir}/{f}"), Kind::Verbatim)?;
        }
        let Ok(found) = crate::kmod::depmod::locate_modules(
            src.base(),
            release,
            crate::host::snapshot::MODULES_OF_INTEREST,
        ) else {
            return Ok(());
        };
        for l in found.values() {
            if let crate::kmod::depmod::Located::File { rel, .. } = l {
                let relpath = match rel.strip_prefix('/') {
                    Some(abs) => abs.to_string(),
                    None => format!("{dir}/{rel}"),
                };
                if relpath.split('/').any(|c| c == "..") {
                    continue;
                }
                if let Probe::Ok(bytes) = src.read_bytes(&relpath) {
                    // A module we cannot parse is carried as-is would be large; carry nothing,
                    // the doctor then reports it unreadable as it would have.
                    match elf::stand_in(&relpath, &bytes) {
                        Ok(s) => self.write(&relpath, &s)?,
                        Err(_) if bytes.len() < 64 * 1024 => self.write(&relpath, &bytes)?,
                        Err(_) => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn sysfs(&mut self) -> Result<()> {
        let src = self.src;
        if let Probe::Ok(addrs) = src.read_dir("sys/bus/pci/devices") {
            self.mkdir("sys/bus/pci/devices")?;
            for a in addrs {
                let base = format!("sys/bus/pci/devices/{a}");
                self.mkdir(&base)?;
                for attr in PCI_ATTRS {
                    self.file(&format!("{base}/{attr}"), Kind::Verbatim)?;
                }
                for l in ["driver", "iommu_group"] {
                    self.link(&format!("{base}/{l}"));
                }
            }
        }
        if let Probe::Ok(parents) = src.read_dir("sys/class/mdev_bus") {
            self.mkdir("sys/class/mdev_bus")?;
            for p in parents {
                let base = format!("sys/class/mdev_bus/{p}");
                self.mkdir(&base)?;
                let types = format!("{base}/mdev_supported_types");
                if let Probe::Ok(ts) = src.read_dir(&types) {
                    self.mkdir(&types)?;
                    for t in ts {
                        let tb = format!("{types}/{t}");
                        self.mkdir(&tb)?;
                        for f in ["available_instances", "description", "device_api", "name"] {
                            self.file(&format!("{tb}/{f}"), Kind::Verbatim)?;
                        }
                        if let Probe::Ok(devs) = src.read_dir(&format!("{tb}/devices")) {
                            self.mkdir(&format!("{tb}/devices"))?;
                            for d in devs {
                                self.entry(&format!("{tb}/devices/{d}"))?;
                            }
                        }
                    }
                }
            }
        }
        if let Probe::Ok(uuids) = src.read_dir("sys/bus/mdev/devices") {
            self.mkdir("sys/bus/mdev/devices")?;
            for u in uuids {
                let base = format!("sys/bus/mdev/devices/{u}");
                if !self.link(&base) {
                    self.mkdir(&base)?;
                }
                for l in ["mdev_type", "iommu_group", "driver"] {
                    self.link(&format!("{base}/{l}"));
                }
            }
        }
        if let Probe::Ok(groups) = src.read_dir("sys/kernel/iommu_groups") {
            self.mkdir("sys/kernel/iommu_groups")?;
            for g in groups {
                let base = format!("sys/kernel/iommu_groups/{g}");
                self.mkdir(&base)?;
                self.file(&format!("{base}/name"), Kind::Verbatim)?;
                if let Probe::Ok(devs) = src.read_dir(&format!("{base}/devices")) {
                    self.mkdir(&format!("{base}/devices"))?;
                    for d in devs {
                        self.entry(&format!("{base}/devices/{d}"))?;
                    }
                }
            }
        }
        if let Probe::Ok(names) = src.read_dir("sys/class/iommu") {
            self.mkdir("sys/class/iommu")?;
            for n in names {
                self.entry(&format!("sys/class/iommu/{n}"))?;
            }
        }
        for t in ["DMAR", "IVRS"] {
            let rel = format!("sys/firmware/acpi/tables/{t}");
            if src.exists(&rel) {
                self.write(&rel, b"")?; // marker: the table's bytes are not needed
            }
        }
        if let Probe::Ok(mods) = src.read_dir("sys/module") {
            for m in mods {
                self.mkdir(&format!("sys/module/{m}"))?;
            }
        }
        self.files_in("sys/module/i915/parameters", Kind::Verbatim, |_| true)?;
        self.file("sys/module/kvm/parameters/ignore_msrs", Kind::Verbatim)?;
        self.file("sys/fs/cgroup/cgroup.controllers", Kind::Verbatim)?;
        Ok(())
    }

    /// Writes `gvtg-tree.toml`; empty directories are declared there too, so the tree survives
    /// a trip through git (`fixtures/_gen/from-report.sh`).
    fn side_file(&mut self) -> Result<()> {
        let mut empty = Vec::new();
        find_empty_dirs(&self.dst, &self.dst, &mut empty)?;
        for e in empty {
            self.nodes.entry(e).or_insert(NodeInfo {
                kind: NodeKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                rdev: None,
            });
        }
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut t = String::from(
            "# Written by `gvtg report` (docs/captured-tree.md, docs/report.md).\nformat = 1\n",
        );
        t.push_str(&format!("captured_euid = {}\n", self.src.euid()));
        if let Some(k) = &self.kernel_log {
            t.push_str(&format!("kernel_log = {}\n", q(k)));
        }
        for (p, n) in &self.nodes {
            let kind = match n.kind {
                NodeKind::Char => "char",
                NodeKind::Block => "block",
                NodeKind::Dir => "dir",
                NodeKind::File => "file",
                NodeKind::Fifo => "fifo",
                NodeKind::Socket => "socket",
            };
            t.push_str(&format!(
                "\n[[node]]\npath = {}\nkind = \"{kind}\"\nmode = \"{:04o}\"\nuid = {}\ngid = {}\n",
                q(p),
                n.mode,
                n.uid,
                n.gid
            ));
            if let Some((a, b)) = n.rdev {
                t.push_str(&format!("rdev = \"{a}:{b}\"\n"));
            }
        }
        for (p, target) in &self.links {
            t.push_str(&format!(
                "\n[[link]]\npath = {}\ntarget = {}\n",
                q(p),
                q(target)
            ));
        }
        // Never ship a side file gvtg itself would refuse.
        crate::host::sidefile::SideFile::parse(&t).context("internal: side file")?;
        self.write(SIDE_FILE, t.as_bytes())
    }

    /// The redactor, when redacting.
    pub fn redactor(&self) -> Option<&Redactor> {
        self.red.as_ref()
    }
}

fn find_empty_dirs(top: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let mut any = false;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        any = true;
        if e.file_type()?.is_dir() {
            find_empty_dirs(top, &e.path(), out)?;
        }
    }
    if !any && dir != top {
        if let Ok(rel) = dir.strip_prefix(top) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}
