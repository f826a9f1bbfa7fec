//! Deterministic generator of large synthetic host trees (docs/large-tree.md).
//!
//! Shared by `examples/gen_large_tree.rs` (writes a tree for `scripts/bench`) and the criterion
//! benches (`benches/doctor.rs`). A tree is a fixture host's captured tree with its mdev parts
//! replaced by a generated, sysfs-shaped set: real directories under `sys/devices` and real
//! relative symlinks from `sys/class/mdev_bus`, `sys/bus/mdev/devices`, `sys/bus/pci/devices`
//! and `sys/kernel/iommu_groups`, so that tools reading the live `/sys` (mdevctl) see it too when
//! it is mounted over `/sys`. Everything derives from the [`Spec`] and its seed; nothing comes
//! from the clock or the environment.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Sizes of a generated tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// IOMMU groups of PCI devices (each mdev also gets its own group, as the kernel does).
    pub groups: usize,
    /// mdev parents; the first is the iGPU `0000:00:02.0` with i915 GVT-g types.
    pub parents: usize,
    /// mdev types per parent.
    pub types: usize,
    /// Existing mdevs, spread over all parents and types.
    pub mdevs: usize,
    /// Size the kernel log (`dev/kmsg`) grows to, in bytes.
    pub kmsg_bytes: usize,
    /// Lines of `modules.dep`.
    pub modules: usize,
    /// Seed of every generated UUID and choice.
    pub seed: u64,
}

impl Spec {
    /// The sizes issue #6 names: 256 IOMMU groups, 64 parents × 8 types, 2,000 mdevs, a 4 MB
    /// kernel log, 6,000 modules.
    pub const ISSUE6: Spec = Spec {
        groups: 256,
        parents: 64,
        types: 8,
        mdevs: 2000,
        kmsg_bytes: 4 << 20,
        modules: 6000,
        seed: 6,
    };

    /// Every count multiplied by `k` (types per parent stay: there are `k` times the parents).
    pub fn scaled(self, k: usize) -> Spec {
        Spec {
            groups: self.groups * k,
            parents: self.parents * k,
            types: self.types,
            mdevs: self.mdevs * k,
            kmsg_bytes: self.kmsg_bytes * k,
            modules: self.modules * k,
            seed: self.seed,
        }
    }
}

/// What a generated tree holds (the counts tools must agree on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// mdev parents under `sys/class/mdev_bus`.
    pub parents: usize,
    /// mdev types over all parents.
    pub types: usize,
    /// mdevs under `sys/bus/mdev/devices`.
    pub mdevs: usize,
    /// Groups under `sys/kernel/iommu_groups`.
    pub groups: usize,
    /// Records in `dev/kmsg`.
    pub kmsg_records: usize,
    /// Lines in `modules.dep`.
    pub modules: usize,
}

/// splitmix64: a small, well-known deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A version-4, variant-1 UUID in the kernel's lower-case form.
    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        let a = (a & !0xF000) | 0x4000; // version 4 in bits 12..16 of the third group
        let b = (b & !(0xC000 << 48)) | (0x8000 << 48); // variant 10xx
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }
}

/// Paths of the base tree that the generator replaces (and drops from its side file).
const REPLACED: &[&str] = &[
    "sys/class/mdev_bus",
    "sys/bus/mdev",
    "sys/kernel/iommu_groups",
];

fn err(path: &Path, what: &str, e: io::Error) -> String {
    format!("{}: {what}: {e}", path.display())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| err(dir, "cannot create", e))?;
    }
    fs::write(path, text).map_err(|e| err(path, "cannot write", e))
}

fn link(target: &str, path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| err(dir, "cannot create", e))?;
    }
    symlink(target, path).map_err(|e| err(path, "cannot link", e))
}

fn mkdir(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| err(path, "cannot create", e))
}

/// Copies `from` to `to` (regular files, directories, symlinks), skipping [`REPLACED`].
fn copy_tree(from: &Path, to: &Path, rel: &str) -> Result<(), String> {
    mkdir(to)?;
    let mut entries: Vec<_> = fs::read_dir(from)
        .map_err(|e| err(from, "cannot read", e))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(from, "cannot read", e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| format!("{}: name is not UTF-8", e.path().display()))?;
        let r = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        if REPLACED.contains(&r.as_str()) {
            continue;
        }
        let (src, dst) = (e.path(), to.join(name));
        let ty = e.file_type().map_err(|e| err(&src, "cannot stat", e))?;
        if ty.is_symlink() {
            let t = fs::read_link(&src).map_err(|e| err(&src, "cannot read link", e))?;
            symlink(&t, &dst).map_err(|e| err(&dst, "cannot link", e))?;
        } else if ty.is_dir() {
            copy_tree(&src, &dst, &r)?;
        } else if ty.is_file() {
            fs::copy(&src, &dst).map_err(|e| err(&src, "cannot copy", e))?;
        } else {
            return Err(format!("{}: not a file, directory or link", src.display()));
        }
    }
    Ok(())
}

/// The side file without `[[node]]`/`[[link]]` entries under [`REPLACED`].
fn filter_side_file(text: &str) -> String {
    let mut out = String::new();
    let mut blocks = text.split("\n[[");
    out.push_str(blocks.next().unwrap_or_default());
    for b in blocks {
        let path = b
            .lines()
            .find_map(|l| l.trim().strip_prefix("path = \""))
            .and_then(|p| p.strip_suffix('"'))
            .unwrap_or_default();
        if REPLACED.iter().any(|r| path.starts_with(&format!("{r}/"))) {
            continue;
        }
        out.push_str("\n[[");
        out.push_str(b);
    }
    out
}

const KMSG_NOISE: &[&str] = &[
    "usb 1-1.{n}: new high-speed USB device number {n} using xhci_hcd",
    "EXT4-fs (nvme0n1p2): re-mounted {n}. Quota mode: none.",
    "audit: type=1400 audit({n}.120:{n}): apparmor=\"STATUS\" operation=\"profile_replace\" name=\"libvirt-{n}\" pid={n} comm=\"apparmor_parser\"",
    "virbr0: port {n}(vnet{n}) entered forwarding state",
    "IPv6: ADDRCONF(NETDEV_CHANGE): vnet{n}: link becomes ready",
    "perf: interrupt took too long ({n} > 2500), lowering kernel.perf_event_max_sample_rate to 79750",
    "kvm: vcpu {n}: requested 128 ns lapic timer period limited to 200000 ns",
    "e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
];

/// Parent `i`'s PCI address: the iGPU first, then one device per slot on buses 0x10 and up.
fn parent_addr(i: usize) -> String {
    if i == 0 {
        "0000:00:02.0".into()
    } else {
        format!("0000:{:02x}:{:02x}.0", 0x10 + i / 32, i % 32)
    }
}

/// PCI address of the `j`-th device that is not an mdev parent (one IOMMU group each).
fn other_addr(j: usize) -> String {
    format!("0000:{:02x}:{:02x}.{}", 0x80 + j / 256, (j / 8) % 32, j % 8)
}

fn type_ids(parent: usize, types: usize) -> Vec<String> {
    (0..types)
        .map(|t| {
            if parent == 0 {
                format!("i915-GVTg_V{}_{}", 4 + t / 4, 1 << (t % 4))
            } else {
                format!("mtty-{}", t + 1)
            }
        })
        .collect()
}

/// Generates the tree at `out` (which must not exist) from the captured tree `base` (a
/// fixture's `root/`).
pub fn generate(base: &Path, out: &Path, spec: &Spec) -> Result<Summary, String> {
    if out.exists() {
        return Err(format!("{}: already exists", out.display()));
    }
    if spec.parents == 0 || spec.types == 0 {
        return Err("at least one parent and one type are needed".into());
    }
    let mut rng = Rng(spec.seed);
    copy_tree(base, out, "")?;
    let side = base.join("gvtg-tree.toml");
    if side.is_file() {
        let text = fs::read_to_string(&side).map_err(|e| err(&side, "cannot read", e))?;
        write(&out.join("gvtg-tree.toml"), &filter_side_file(&text))?;
    }
    let sys = out.join("sys");
    let devroot = "devices/pci0000:00";

    // PCI devices: the parents (sysfs-shaped, linked from bus/pci) and the others.
    let mut pci: Vec<String> = (0..spec.parents).map(parent_addr).collect();
    pci.extend((0..spec.groups.saturating_sub(spec.parents)).map(other_addr));
    for (n, addr) in pci.iter().enumerate() {
        let dir = sys.join(devroot).join(addr);
        let bus_link = sys.join("bus/pci/devices").join(addr);
        if !bus_link.exists() {
            let (vendor, device, class) = if n < spec.parents {
                ("0x1b36", "0x000d", "0x078000")
            } else {
                ("0x8086", "0x7ae0", "0x0c0330")
            };
            write(&dir.join("vendor"), &format!("{vendor}\n"))?;
            write(&dir.join("device"), &format!("{device}\n"))?;
            write(&dir.join("class"), &format!("{class}\n"))?;
            link(&format!("../../../{devroot}/{addr}"), &bus_link)?;
        }
        if n < spec.groups {
            let g = sys.join(format!("kernel/iommu_groups/{n}"));
            write(&g.join("type"), "DMA-FQ\n")?;
            link(
                &format!("../../../../{devroot}/{addr}"),
                &g.join("devices").join(addr),
            )?;
        }
    }

    // mdev parents and types.
    let mut all_types = 0;
    for p in 0..spec.parents {
        let addr = parent_addr(p);
        let pdir = sys.join(devroot).join(&addr);
        link(
            &format!("../../{devroot}/{addr}"),
            &sys.join("class/mdev_bus").join(&addr),
        )?;
        for (t, id) in type_ids(p, spec.types).iter().enumerate() {
            let tdir = pdir.join("mdev_supported_types").join(id);
            let (name, desc) = if p == 0 {
                let k = 1 << (t % 4);
                (
                    format!("GVTg_V{}_{k}", 4 + t / 4),
                    format!(
                        "low_gm_size: {}MB\nhigh_gm_size: {}MB\nfence_size: 4\nresolution: {}\nweight: {}\n",
                        128 / k.min(2),
                        384 / k,
                        if k <= 2 { "1920x1200" } else { "1024x768" },
                        16 / k
                    ),
                )
            } else {
                (
                    format!("Serial port x{}", t + 1),
                    format!("virtual serial ports: {}", t + 1),
                )
            };
            write(&tdir.join("name"), &format!("{name}\n"))?;
            write(&tdir.join("description"), &desc)?;
            write(&tdir.join("device_api"), "vfio-pci\n")?;
            write(
                &tdir.join("available_instances"),
                &format!("{}\n", rng.below(64)),
            )?;
            write(&tdir.join("create"), "")?;
            mkdir(&tdir.join("devices"))?;
            all_types += 1;
        }
    }
    mkdir(&sys.join("bus/mdev/devices"))?;

    // mdevs: each under its parent's directory, with its own IOMMU group.
    for m in 0..spec.mdevs {
        let uuid = rng.uuid();
        let p = rng.below(spec.parents);
        let ids = type_ids(p, spec.types);
        let id = &ids[rng.below(ids.len())];
        let addr = parent_addr(p);
        let ddir = sys.join(devroot).join(&addr).join(&uuid);
        let group = spec.groups + m;
        link(
            &format!("../mdev_supported_types/{id}"),
            &ddir.join("mdev_type"),
        )?;
        link(
            &format!("../../../../kernel/iommu_groups/{group}"),
            &ddir.join("iommu_group"),
        )?;
        link(
            "../../../../bus/mdev/drivers/vfio_mdev",
            &ddir.join("driver"),
        )?;
        write(&ddir.join("remove"), "")?;
        link(
            &format!("../../../{devroot}/{addr}/{uuid}"),
            &sys.join("bus/mdev/devices").join(&uuid),
        )?;
        link(
            &format!("../../../{uuid}"),
            &sys.join(devroot)
                .join(&addr)
                .join("mdev_supported_types")
                .join(id)
                .join("devices")
                .join(&uuid),
        )?;
        let g = sys.join(format!("kernel/iommu_groups/{group}"));
        write(&g.join("type"), "DMA-FQ\n")?;
        link(
            &format!("../../../../{devroot}/{addr}/{uuid}"),
            &g.join("devices").join(&uuid),
        )?;
    }
    mkdir(&sys.join("bus/mdev/drivers/vfio_mdev"))?;

    // The kernel log: the base records, then noise records up to the size.
    let kmsg_path = out.join("dev/kmsg");
    let mut kmsg = fs::read_to_string(&kmsg_path).unwrap_or_default();
    let mut seq = kmsg.lines().filter(|l| !l.starts_with(' ')).count();
    let mut records = seq;
    let mut ts: u64 = 10_000_000;
    while kmsg.len() < spec.kmsg_bytes {
        let n = rng.below(1000);
        let msg = KMSG_NOISE[rng.below(KMSG_NOISE.len())].replace("{n}", &n.to_string());
        ts += 1 + rng.next() % 5_000_000;
        let _ = writeln!(kmsg, "6,{seq},{ts},-;{msg}");
        seq += 1;
        records += 1;
    }
    write(&kmsg_path, &kmsg)?;

    // modules.dep: synthetic modules first, then the base lines, so that looking up the real
    // modules scans the synthetic ones.
    let mut modules = 0;
    let libmod = out.join("lib/modules");
    if let Ok(rd) = fs::read_dir(&libmod) {
        for rel in rd.flatten() {
            let dep = rel.path().join("modules.dep");
            let Ok(base_dep) = fs::read_to_string(&dep) else {
                continue;
            };
            let base_lines = base_dep.lines().count();
            let extra = spec.modules.saturating_sub(base_lines);
            let mut text = String::with_capacity(extra * 96 + base_dep.len());
            for i in 0..extra {
                let _ = write!(
                    text,
                    "kernel/drivers/synthetic/g{:03}/mod{i:05}.ko:",
                    i / 64
                );
                for _ in 0..rng.below(3).min(i) {
                    let d = rng.below(i);
                    let _ = write!(
                        text,
                        " kernel/drivers/synthetic/g{:03}/mod{d:05}.ko",
                        d / 64
                    );
                }
                text.push('\n');
            }
            text.push_str(&base_dep);
            write(&dep, &text)?;
            modules = extra + base_lines;
        }
    }
    Ok(Summary {
        parents: spec.parents,
        types: all_types,
        mdevs: spec.mdevs,
        groups: spec.groups + spec.mdevs,
        kmsg_records: records,
        modules,
    })
}

/// The fixture host a large tree starts from.
pub fn default_base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bdw-healthy/root")
}
