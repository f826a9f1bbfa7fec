//! `gvtg vgpu`: mdev types and instances through the kernel's sysfs ABI
//! (Documentation/driver-api/vfio-mediated-device.rst), persisted the way mdevctl does, and the
//! libvirt/QEMU configuration that uses them.
//!
//! Reads go through [`HostRoot`]; writes through [`crate::host::sysfs_write`], always to names a
//! directory listing returned. Under `--root DIR` (a captured or fake tree) `create` writes the
//! UUID to the tree's `create` file and does not wait: nothing in a plain directory turns that
//! write into a device. JSON shapes: docs/vgpu-json.md.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Ctx;
use crate::checks::mdev::{GVT_TYPES, HOST_LOW_GM_MB};
use crate::host::snapshot::{read_mdev_devices, read_mdev_parents, MdevDevice, MdevType};
use crate::host::sysfs_write::{self, is_safe_component, listed, WriteError};
use crate::host::{HostRoot, Probe};
use crate::parse::domain_xml;
use crate::render::printable;

/// Version of the JSON documents `vgpu types --json` and `vgpu list --json` print.
pub const SCHEMA_VERSION: u32 = 1;
/// How long `create`/`remove` wait for the kernel to add or drop the device directory.
const WAIT: Duration = Duration::from_secs(2);

/// `gvtg vgpu`.
#[derive(Debug, Args)]
pub struct VgpuArgs {
    #[command(subcommand)]
    /// What to do.
    pub command: VgpuCommand,
}

/// `gvtg vgpu` subcommands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum VgpuCommand {
    /// List every mdev parent (i915, mtty, mdpy, mbochs…) and its types.
    Types {
        /// Only this parent (e.g. 0000:00:02.0).
        #[arg(long, value_name = "PARENT")]
        parent: Option<String>,
        /// Print JSON (docs/vgpu-json.md).
        #[arg(long)]
        json: bool,
    },
    /// List existing mdevs: parent, type, IOMMU group, in use by a VM, persisted.
    List {
        /// Print JSON (docs/vgpu-json.md).
        #[arg(long)]
        json: bool,
    },
    /// Create a vGPU of TYPE (i915-GVTg_V5_4, GVTg_V5_4 or the type's name).
    Create {
        /// Type: directory name, short name or `name` attribute.
        #[arg(value_name = "TYPE")]
        mdev_type: String,
        /// The parent device, when more than one offers TYPE.
        #[arg(long, value_name = "PARENT")]
        parent: Option<String>,
        /// UUID to use (default: a new random UUID).
        #[arg(long, value_name = "UUID")]
        uuid: Option<String>,
        /// Also recreate it at boot (mdevctl definition; systemd unit without mdevctl;
        /// a configuration snippet on NixOS).
        #[arg(long)]
        persist: bool,
        /// Write to `create` without checking available_instances or an existing UUID first
        /// (tests the kernel's own answer).
        #[arg(long, hide = true)]
        no_precheck: bool,
    },
    /// Remove a vGPU (refused while a VM holds it).
    Remove {
        /// The mdev's UUID.
        uuid: String,
        /// Also delete its persisted definition.
        #[arg(long)]
        persist: bool,
    },
    /// Print the libvirt `<hostdev>` for a vGPU, or a domain XML with it added.
    Xml {
        /// The mdev's UUID.
        uuid: String,
        /// Domain XML file to add the hostdev to (printed, not changed in place).
        #[arg(long, value_name = "FILE")]
        domain: Option<std::path::PathBuf>,
        /// Turn on the vGPU's display (display/ramfb, SPICE GL, x-igd-opregion override).
        #[arg(long)]
        display: bool,
    },
    /// Print plain QEMU arguments for a vGPU, one per line.
    QemuArgs {
        /// The mdev's UUID.
        uuid: String,
        /// With the vGPU's display (dma-buf, ramfb, OpRegion).
        #[arg(long)]
        display: bool,
    },
}

/// Runs `gvtg vgpu`.
pub fn run(args: &VgpuArgs, ctx: &Ctx, out: &mut dyn Write) -> anyhow::Result<u8> {
    let root = &ctx.root;
    match &args.command {
        VgpuCommand::Types { parent, json } => types(root, parent.as_deref(), *json, out),
        VgpuCommand::List { json } => list(root, *json, out),
        VgpuCommand::Create {
            mdev_type,
            parent,
            uuid,
            persist,
            no_precheck,
        } => create(
            root,
            &CreateReq {
                mdev_type,
                parent: parent.as_deref(),
                uuid: uuid.as_deref(),
                persist: *persist,
                precheck: !*no_precheck,
            },
            out,
        ),
        VgpuCommand::Remove { uuid, persist } => remove(root, uuid, *persist, out),
        VgpuCommand::Xml {
            uuid,
            domain,
            display,
        } => xml(uuid, domain.as_deref(), *display, out),
        VgpuCommand::QemuArgs { uuid, display } => qemu_args(uuid, *display, out),
    }
}

// ---- types -------------------------------------------------------------------------------

#[derive(Serialize)]
struct TypesDoc {
    schema_version: u32,
    parents: Vec<ParentJson>,
}

#[derive(Serialize)]
struct ParentJson {
    name: String,
    /// Why the types could not be read, when they could not.
    error: Option<String>,
    types: Vec<TypeJson>,
}

#[derive(Serialize)]
struct TypeJson {
    id: String,
    short_name: String,
    name: Option<String>,
    description: Option<String>,
    gvt: Option<crate::parse::mdev_desc::GvtDescription>,
    device_api: Option<String>,
    available_instances: Option<u32>,
    available_instances_error: Option<String>,
    devices: Vec<String>,
}

/// `i915-GVTg_V5_4` → `GVTg_V5_4`; a name without a driver prefix stays as is.
fn short_name(id: &str) -> &str {
    id.split_once('-').map_or(id, |(_, rest)| rest)
}

fn type_json(parent: &str, t: &MdevType) -> TypeJson {
    let shown = HostRoot::display(&format!(
        "sys/class/mdev_bus/{parent}/mdev_supported_types/{}/available_instances",
        t.id
    ));
    TypeJson {
        id: t.id.clone(),
        short_name: short_name(&t.id).to_string(),
        name: t.name.clone(),
        description: t.description.as_ref().map(|d| d.trim_end().to_string()),
        gvt: t.gvt.clone(),
        device_api: t.device_api.clone(),
        available_instances: t.available_instances.ok().copied(),
        available_instances_error: (!t.available_instances.is_ok())
            .then(|| t.available_instances.describe_failure(&shown)),
        devices: t.devices.clone(),
    }
}

fn types(
    root: &HostRoot,
    only: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let parents = match read_mdev_parents(root) {
        Probe::Ok(p) => p,
        Probe::Missing => Vec::new(),
        other => bail!(
            "{}",
            other.describe_failure(&HostRoot::display("sys/class/mdev_bus"))
        ),
    };
    if let Some(p) = only {
        if !parents.iter().any(|x| x.name == p) {
            bail!(
                "no mdev parent {p:?} under /sys/class/mdev_bus (parents: {})",
                names_or_none(parents.iter().map(|x| x.name.as_str()))
            );
        }
    }
    let doc = TypesDoc {
        schema_version: SCHEMA_VERSION,
        parents: parents
            .iter()
            .filter(|p| only.is_none_or(|o| o == p.name))
            .map(|p| ParentJson {
                name: p.name.clone(),
                error: (!p.types.is_ok()).then(|| {
                    p.types.describe_failure(&HostRoot::display(&format!(
                        "sys/class/mdev_bus/{}/mdev_supported_types",
                        p.name
                    )))
                }),
                types: p
                    .types
                    .ok()
                    .map(|ts| ts.iter().map(|t| type_json(&p.name, t)).collect())
                    .unwrap_or_default(),
            })
            .collect(),
    };
    if json {
        crate::render::json::write_pretty(out, &doc)?;
        return Ok(0);
    }
    if doc.parents.is_empty() {
        writeln!(
            out,
            "No mdev parents under /sys/class/mdev_bus: no mdev driver is loaded (for GVT-g: i915 with enable_gvt=1 and kvmgt; run `gvtg doctor`)."
        )?;
        return Ok(0);
    }
    for p in &doc.parents {
        writeln!(out, "{}", printable(&p.name))?;
        if let Some(e) = &p.error {
            writeln!(out, "  {}", printable(e))?;
        }
        for t in &p.types {
            let avail = t
                .available_instances
                .map_or_else(|| "?".to_string(), |n| n.to_string());
            write!(out, "  {:<20} available {avail:>3}", printable(&t.id))?;
            if let Some(api) = &t.device_api {
                write!(out, "  {}", printable(api))?;
            }
            if let Some(n) = &t.name {
                write!(out, "  name {n:?}")?;
            }
            writeln!(out)?;
            if let Some(g) = &t.gvt {
                let f = |v: Option<u64>, unit: &str| v.map_or("?".into(), |v| format!("{v}{unit}"));
                writeln!(
                    out,
                    "      low GM {}, high GM {}, fences {}, resolution {}, weight {}",
                    f(g.low_gm_mb, " MB"),
                    f(g.high_gm_mb, " MB"),
                    f(g.fence, ""),
                    printable(g.resolution.as_deref().unwrap_or("?")),
                    f(g.weight, ""),
                )?;
            } else if let Some(d) = &t.description {
                writeln!(
                    out,
                    "      {}",
                    printable(&d.split_whitespace().collect::<Vec<_>>().join(" "))
                )?;
            }
            if let Some(e) = &t.available_instances_error {
                writeln!(out, "      {}", printable(e))?;
            }
        }
    }
    Ok(0)
}

fn names_or_none<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

// ---- list --------------------------------------------------------------------------------

#[derive(Serialize)]
struct ListDoc {
    schema_version: u32,
    mdevs: Vec<MdevJson>,
}

#[derive(Serialize)]
struct MdevJson {
    uuid: String,
    parent: Option<String>,
    #[serde(rename = "type")]
    mdev_type: Option<String>,
    iommu_group: Option<u32>,
    driver: Option<String>,
    /// true/false, or null when it could not be told (`in_use_note` says why).
    in_use: Option<bool>,
    in_use_note: Option<String>,
    holders: Vec<Holder>,
    /// Where it is persisted: "mdevctl", "systemd".
    persisted: Vec<String>,
}

/// A process holding a vGPU's VFIO node open.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub comm: Option<String>,
    /// The node it holds (`/dev/vfio/12`).
    pub node: String,
}

impl std::fmt::Display for Holder {
    /// `pid 4242 (qemu-system-x86) has /dev/vfio/12 open`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}) has {} open",
            self.pid,
            self.comm.as_deref().unwrap_or("?"),
            self.node
        )
    }
}

/// Who holds the VFIO nodes of `dev` open: `Err(reason)` when that cannot be known.
pub fn holders(root: &HostRoot, dev: &MdevDevice) -> Result<Vec<Holder>, String> {
    node_holders(root, &vfio_nodes(root, dev))
}

/// The `/dev/vfio` nodes through which a VM can hold `dev`.
fn vfio_nodes(root: &HostRoot, dev: &MdevDevice) -> Vec<String> {
    let mut nodes: Vec<String> = Vec::new();
    if let Some(g) = dev.iommu_group {
        nodes.push(HostRoot::display(&format!("dev/vfio/{g}")));
    }
    // iommufd-era character devices: .../UUID/vfio-dev/vfioX ↔ /dev/vfio/devices/vfioX.
    if let Some(cdevs) = root
        .read_dir(&format!("sys/bus/mdev/devices/{}/vfio-dev", dev.uuid))
        .into_ok()
    {
        nodes.extend(
            cdevs
                .iter()
                .map(|c| HostRoot::display(&format!("dev/vfio/devices/{c}"))),
        );
    }
    nodes
}

/// Which processes hold any of `nodes` (`/dev/vfio/12`, as the host sees them) open: `Err(reason)`
/// when that cannot be known.
pub fn node_holders(root: &HostRoot, nodes: &[String]) -> Result<Vec<Holder>, String> {
    if root.is_live() && root.euid() != 0 {
        return Err("unknown (needs root)".into());
    }
    if nodes.is_empty() {
        return Ok(Vec::new());
    }
    scan_holders(root, &nodes.iter().map(String::as_str).collect())
}

/// Every process holding one of `nodes` open, found in one pass over `/proc/*/fd`.
fn scan_holders(
    root: &HostRoot,
    nodes: &std::collections::HashSet<&str>,
) -> Result<Vec<Holder>, String> {
    let pids = match root.read_dir("proc") {
        Probe::Ok(p) => p,
        Probe::Missing => return Ok(Vec::new()),
        other => return Err(other.describe_failure(&HostRoot::display("proc"))),
    };
    let proc = root.dir("proc");
    let mut found = Vec::new();
    for pid in pids {
        let Ok(n) = pid.parse::<u32>() else { continue };
        // One open of /proc/PID/fd and a readlinkat per descriptor through it.
        let fds = match proc.read_links(&format!("{pid}/fd")) {
            Probe::Ok(f) => f,
            Probe::Denied => return Err("unknown (needs root)".into()),
            _ => continue, // the process exited
        };
        for (fd, target) in fds {
            if !fd.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Probe::Ok(t) = target {
                if nodes.contains(t.as_str())
                    && !found.iter().any(|h: &Holder| h.pid == n && h.node == t)
                {
                    found.push(Holder {
                        pid: n,
                        comm: root.read_attr(&format!("proc/{pid}/comm")).into_ok(),
                        node: t,
                    });
                }
            }
        }
    }
    Ok(found)
}

/// [`holders`] of every device in `devs`, with one pass over `/proc` for all of them.
fn holders_of_all(root: &HostRoot, devs: &[MdevDevice]) -> Vec<Result<Vec<Holder>, String>> {
    if root.is_live() && root.euid() != 0 {
        return devs
            .iter()
            .map(|_| Err("unknown (needs root)".into()))
            .collect();
    }
    // On the live host only nodes that exist can be held open (a process holding a node that
    // was since removed sees `/dev/vfio/12 (deleted)`, which names no node): with the two
    // directories listed once, a host whose devices have no VFIO node is answered without
    // reading /proc at all, and the per-device `vfio-dev` directories are read only when
    // iommufd nodes exist. A captured tree may hold /proc links without the nodes, so there
    // every device's nodes are looked for, as before.
    if !root.is_live() {
        let per_dev: Vec<Vec<String>> = devs.iter().map(|d| vfio_nodes(root, d)).collect();
        return holders_among(root, devs, per_dev);
    }
    let present: std::collections::HashSet<String> = ["dev/vfio", "dev/vfio/devices"]
        .iter()
        .flat_map(|d| {
            root.read_dir(d)
                .into_ok()
                .unwrap_or_default()
                .into_iter()
                .map(move |n| HostRoot::display(&format!("{d}/{n}")))
        })
        .collect();
    let cdevs = present.iter().any(|n| n.starts_with("/dev/vfio/devices/"));
    let per_dev: Vec<Vec<String>> = devs
        .iter()
        .map(|d| {
            let mut nodes = match d.iommu_group {
                Some(g) if !cdevs => vec![HostRoot::display(&format!("dev/vfio/{g}"))],
                None if !cdevs => Vec::new(),
                _ => vfio_nodes(root, d),
            };
            nodes.retain(|n| present.contains(n));
            nodes
        })
        .collect();
    holders_among(root, devs, per_dev)
}

/// The holders of each device's `per_dev` nodes, with one pass over `/proc` for all of them.
fn holders_among(
    root: &HostRoot,
    devs: &[MdevDevice],
    per_dev: Vec<Vec<String>>,
) -> Vec<Result<Vec<Holder>, String>> {
    let all: std::collections::HashSet<&str> =
        per_dev.iter().flatten().map(String::as_str).collect();
    if all.is_empty() {
        return devs.iter().map(|_| Ok(Vec::new())).collect();
    }
    match scan_holders(root, &all) {
        Ok(found) => per_dev
            .iter()
            .map(|nodes| {
                Ok(found
                    .iter()
                    .filter(|h| nodes.contains(&h.node))
                    .cloned()
                    .collect())
            })
            .collect(),
        Err(why) => devs.iter().map(|_| Err(why.clone())).collect(),
    }
}

/// Where `uuid` is persisted.
fn persisted(root: &HostRoot, parent: Option<&str>, uuid: &str) -> Vec<String> {
    let mut v = Vec::new();
    let parents: Vec<String> = match parent {
        Some(p) => vec![p.to_string()],
        None => root.read_dir("etc/mdevctl.d").into_ok().unwrap_or_default(),
    };
    if parents
        .iter()
        .filter(|p| is_safe_component(p))
        .any(|p| root.exists(&format!("etc/mdevctl.d/{p}/{uuid}")))
    {
        v.push("mdevctl".into());
    }
    if root.exists(&unit_rel(uuid)) {
        v.push("systemd".into());
    }
    v
}

fn list(root: &HostRoot, json: bool, out: &mut dyn Write) -> anyhow::Result<u8> {
    let devs = match read_mdev_devices(root) {
        Probe::Ok(d) => d,
        Probe::Missing => Vec::new(),
        other => bail!(
            "{}",
            other.describe_failure(&HostRoot::display("sys/bus/mdev/devices"))
        ),
    };
    let all_holders = holders_of_all(root, &devs);
    let mdevs: Vec<MdevJson> = devs
        .iter()
        .zip(all_holders)
        .map(|(d, held)| {
            let (in_use, in_use_note, holders) = match held {
                Ok(h) => (Some(!h.is_empty()), None, h),
                Err(why) => (None, Some(why), Vec::new()),
            };
            MdevJson {
                uuid: d.uuid.clone(),
                parent: d.parent.clone(),
                mdev_type: d.mdev_type.clone(),
                iommu_group: d.iommu_group,
                driver: d.driver.clone(),
                in_use,
                in_use_note,
                holders,
                persisted: persisted(root, d.parent.as_deref(), &d.uuid),
            }
        })
        .collect();
    if json {
        crate::render::json::write_pretty(
            out,
            &ListDoc {
                schema_version: SCHEMA_VERSION,
                mdevs,
            },
        )?;
        return Ok(0);
    }
    if mdevs.is_empty() {
        writeln!(out, "No mdevs exist (/sys/bus/mdev/devices is empty).")?;
        return Ok(0);
    }
    for m in &mdevs {
        let use_text = match (m.in_use, &m.in_use_note) {
            (Some(true), _) => format!(
                "in use by {}",
                m.holders
                    .iter()
                    .map(|h| format!("{} ({})", h.pid, h.comm.as_deref().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (Some(false), _) => "not in use".into(),
            (None, n) => n.clone().unwrap_or_else(|| "unknown".into()),
        };
        writeln!(
            out,
            "{}  {} on {}  iommu group {}  {}  persisted: {}",
            printable(&m.uuid),
            printable(m.mdev_type.as_deref().unwrap_or("?")),
            printable(m.parent.as_deref().unwrap_or("?")),
            m.iommu_group.map_or("?".into(), |g| g.to_string()),
            printable(&use_text),
            if m.persisted.is_empty() {
                "no".into()
            } else {
                printable(&m.persisted.join(", ")).into_owned()
            }
        )?;
    }
    Ok(0)
}

// ---- create ------------------------------------------------------------------------------

struct CreateReq<'a> {
    mdev_type: &'a str,
    parent: Option<&'a str>,
    uuid: Option<&'a str>,
    persist: bool,
    precheck: bool,
}

/// A type resolved against the kernel's listing.
struct Resolved {
    parent: String,
    mdev_type: MdevType,
}

/// Checks `s` is a UUID in the 36-character form the mdev core accepts; returns it lowercase.
pub fn parse_uuid(s: &str) -> anyhow::Result<String> {
    let ok = s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if !ok {
        bail!(
            "{:?} is not a UUID: the mdev core takes exactly 36 characters, 8-4-4-4-12 hex digits (e.g. a297db4a-f4c2-11e6-90f6-d3b88d6c9525)",
            s.chars().take(64).collect::<String>()
        );
    }
    Ok(s.to_ascii_lowercase())
}

fn resolve_type(root: &HostRoot, want: &str, parent: Option<&str>) -> anyhow::Result<Resolved> {
    if want.is_empty() || want.contains('/') || want.contains('\0') || want == "." || want == ".." {
        bail!("{want:?} is not an mdev type name (no '/', '..' or NUL)");
    }
    if let Some(p) = parent {
        if !is_safe_component(p) {
            bail!("{p:?} is not an mdev parent name (no '/', '..' or NUL)");
        }
    }
    let parents = match read_mdev_parents(root) {
        Probe::Ok(p) => p,
        Probe::Missing => bail!(
            "no mdev parents: /sys/class/mdev_bus does not exist (for GVT-g load i915 with enable_gvt=1 and kvmgt; `gvtg doctor` checks it)"
        ),
        other => bail!(
            "{}",
            other.describe_failure(&HostRoot::display("sys/class/mdev_bus"))
        ),
    };
    if let Some(p) = parent {
        if !parents.iter().any(|x| x.name == p) {
            bail!(
                "no mdev parent {p:?} under /sys/class/mdev_bus (parents: {})",
                names_or_none(parents.iter().map(|x| x.name.as_str()))
            );
        }
    }
    let mut matches = Vec::new();
    let mut all = Vec::new();
    for p in parents
        .iter()
        .filter(|p| parent.is_none_or(|w| w == p.name) && is_safe_component(&p.name))
    {
        for t in p.types.ok().into_iter().flatten() {
            if !is_safe_component(&t.id) {
                continue;
            }
            all.push(format!("{} ({})", t.id, p.name));
            if t.id == want || short_name(&t.id) == want || t.name.as_deref() == Some(want) {
                matches.push(Resolved {
                    parent: p.name.clone(),
                    mdev_type: t.clone(),
                });
            }
        }
    }
    // An exact directory name wins over short names that happen to collide.
    if matches.len() > 1 && matches.iter().filter(|m| m.mdev_type.id == want).count() == 1 {
        matches.retain(|m| m.mdev_type.id == want);
    }
    match matches.len() {
        0 => bail!(
            "no mdev type {want:?}{}; the kernel lists: {}",
            parent.map_or(String::new(), |p| format!(" on parent {p}")),
            names_or_none(all.iter().map(String::as_str))
        ),
        1 => Ok(matches.remove(0)),
        _ => bail!(
            "{want:?} matches several types: {}; pick one with --parent or the full type name",
            matches
                .iter()
                .map(|m| format!("{} on {}", m.mdev_type.id, m.parent))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The aperture arithmetic behind "no instances left", for GVT-g types.
fn aperture_text(root: &HostRoot, r: &Resolved) -> String {
    let existing = r.mdev_type.devices.len();
    let Some(g) = &r.mdev_type.gvt else {
        // Types of one parent usually share its resources (mtty's 24 ports, mbochs' memory),
        // so count the other types' instances too.
        let others: usize = read_mdev_parents(root)
            .into_ok()
            .unwrap_or_default()
            .iter()
            .filter(|p| p.name == r.parent)
            .flat_map(|p| p.types.ok().cloned().unwrap_or_default())
            .filter(|t| t.id != r.mdev_type.id)
            .map(|t| t.devices.len())
            .sum();
        return format!(
            "{existing} instance(s) of this type and {others} of other types exist on {}; remove one (gvtg vgpu remove UUID) or pick a smaller type",
            r.parent
        );
    };
    let mut s = format!(
        "each {} needs {} MB of low GM (mappable aperture), {} MB of high GM and {} fence registers",
        r.mdev_type.id,
        g.low_gm_mb.map_or("?".into(), |v| v.to_string()),
        g.high_gm_mb.map_or("?".into(), |v| v.to_string()),
        g.fence.map_or("?".into(), |v| v.to_string()),
    );
    if let Some(bar2) = root
        .read(&format!("sys/bus/pci/devices/{}/resource", r.parent))
        .into_ok()
        .and_then(|t| {
            crate::host::snapshot::parse_resource(&t)
                .get(2)
                .copied()
                .filter(|v| *v > 0)
        })
    {
        let ap = bar2 >> 20;
        let usable = ap.saturating_sub(HOST_LOW_GM_MB);
        s.push_str(&format!(
            "; aperture {ap} MB − {HOST_LOW_GM_MB} MB kept by the host = {usable} MB for guests"
        ));
        if let Some(low) = g.low_gm_mb.filter(|l| *l > 0) {
            s.push_str(&format!(", room for {} of this type", usable / low));
        }
    }
    s.push_str(&format!(
        "; {existing} exist now. Remove one (gvtg vgpu remove UUID), use a smaller type ({}), or raise the aperture in the firmware setup",
        GVT_TYPES
            .iter()
            .map(|(n, low, _)| format!("_{n}: {low} MB"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s
}

/// Explains an errno from writing `create`.
fn create_error(root: &HostRoot, r: &Resolved, uuid: &str, e: &WriteError) -> String {
    use nix::libc::*;
    let cause = match e.errno {
        Some(ENOSPC) => format!(
            "the {} driver has no resources left for another {} (ENOSPC): {}",
            r.parent,
            r.mdev_type.id,
            aperture_text(root, r)
        ),
        Some(EEXIST) => format!(
            "UUID {uuid} is already in use by another mdev (EEXIST); pick another UUID or omit --uuid"
        ),
        Some(EINVAL) => format!(
            "the kernel refused {uuid:?} (EINVAL): a malformed UUID, or the {} driver refused the request (see `dmesg`)",
            r.mdev_type.id
        ),
        Some(ENODEV) | Some(ENOENT) => format!(
            "the parent {} is gone (ENODEV): its driver was unbound or unloaded; check `gvtg vgpu types`",
            r.parent
        ),
        Some(EACCES) | Some(EPERM) => {
            "creating an mdev needs root (EACCES/EPERM): run it with sudo".to_string()
        }
        Some(EUSERS) => format!(
            "the instance limit of {} is reached (EUSERS): {}",
            r.mdev_type.id,
            aperture_text(root, r)
        ),
        _ => "the kernel refused the request".to_string(),
    };
    format!("creating mdev {uuid}: {cause} [{e}]")
}

fn create(root: &HostRoot, req: &CreateReq, out: &mut dyn Write) -> anyhow::Result<u8> {
    let r = resolve_type(root, req.mdev_type, req.parent)?;
    let uuid = match req.uuid {
        Some(u) => parse_uuid(u)?,
        None => uuid::Uuid::new_v4().hyphenated().to_string(),
    };
    let dev_rel = format!("sys/bus/mdev/devices/{uuid}");
    if req.precheck && root.exists(&dev_rel) {
        bail!(
            "creating mdev {uuid}: UUID {uuid} is already in use (EEXIST: {} exists); pick another UUID or omit --uuid",
            HostRoot::display(&dev_rel)
        );
    }
    let id = &r.mdev_type.id;
    let type_dir = format!("sys/class/mdev_bus/{}/mdev_supported_types/{id}", r.parent);
    if req.precheck {
        match &r.mdev_type.available_instances {
            Probe::Ok(0) => bail!(
                "creating a {id} on {}: available_instances is 0: {}",
                r.parent,
                aperture_text(root, &r)
            ),
            Probe::Ok(_) => {}
            other => bail!(
                "creating a {id}: {}",
                other.describe_failure(&HostRoot::display(&format!(
                    "{type_dir}/available_instances"
                )))
            ),
        }
    }
    // The kernel listed the type directory; `create` must be listed inside it too.
    let create_rel = match listed(root, &type_dir, "create") {
        Some(c) => format!("{type_dir}/{c}"),
        None => bail!("{} has no `create` attribute", HostRoot::display(&type_dir)),
    };
    sysfs_write::write_attr(root, &create_rel, uuid.as_bytes())
        .map_err(|e| anyhow::anyhow!(create_error(root, &r, &uuid, &e)))?;

    if root.is_live() {
        let start = Instant::now();
        while !root.exists(&dev_rel) {
            if start.elapsed() > WAIT {
                bail!(
                    "creating mdev {uuid}: the kernel accepted the UUID but {} did not appear within {} s",
                    HostRoot::display(&dev_rel),
                    WAIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        writeln!(
            out,
            "created {uuid}: {id} on {} ({})",
            r.parent,
            HostRoot::display(&dev_rel)
        )?;
    } else {
        writeln!(
            out,
            "written {uuid} to {} (captured tree: not waiting for the device)",
            HostRoot::display(&create_rel)
        )?;
    }

    if req.persist {
        if let Err(e) = persist(root, &r.parent, id, &uuid, out) {
            // Leave nothing half-done: take the device away again.
            // Only names the kernel listed: the device directory, then its `remove` attribute.
            let remove_rel = listed(root, "sys/bus/mdev/devices", &uuid).and_then(|u| {
                let dev = format!("sys/bus/mdev/devices/{u}");
                listed(root, &dev, "remove").map(|rm| format!("{dev}/{rm}"))
            });
            let undo = match remove_rel {
                Some(rel) => match sysfs_write::write_attr(root, &rel, b"1") {
                    Ok(()) => format!("removed {uuid} again"),
                    Err(re) => format!("removing {uuid} again failed too: {re}"),
                },
                None if root.exists(&dev_rel) => format!(
                    "{} has no `remove` attribute, remove it by hand",
                    HostRoot::display(&dev_rel)
                ),
                None => format!("{uuid} is not present, nothing to undo"),
            };
            return Err(e.context(format!("persisting mdev {uuid} ({undo})")));
        }
    }
    Ok(0)
}

// ---- persistence --------------------------------------------------------------------------

#[derive(Serialize)]
struct MdevctlConfig<'a> {
    mdev_type: &'a str,
    start: &'a str,
    attrs: [(); 0],
}

/// The mdevctl definition for a type (what `mdevctl define` writes).
pub fn mdevctl_json(mdev_type: &str) -> String {
    let mut s = serde_json::to_string(&MdevctlConfig {
        mdev_type,
        start: "auto",
        attrs: [],
    })
    .unwrap_or_default();
    s.push('\n');
    s
}

fn unit_rel(uuid: &str) -> String {
    format!("etc/systemd/system/{}", unit_name(uuid))
}

fn unit_name(uuid: &str) -> String {
    format!("gvtg-vgpu-{uuid}.service")
}

/// A oneshot unit that recreates the mdev at boot. The names are kernel-listed and checked to
/// be plain (no quotes or spaces), so the shell line is safe.
pub fn unit_text(parent: &str, mdev_type: &str, uuid: &str) -> anyhow::Result<String> {
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b":._-".contains(&b))
    };
    if !plain(parent) || !plain(mdev_type) || !plain(uuid) {
        bail!("the parent or type name has characters a unit file cannot carry safely");
    }
    let create = HostRoot::display(&format!(
        "sys/class/mdev_bus/{parent}/mdev_supported_types/{mdev_type}/create"
    ));
    let dev = HostRoot::display(&format!("sys/bus/mdev/devices/{uuid}"));
    Ok(format!(
        "# Written by gvtg vgpu create --persist: recreates vGPU {uuid} at boot.\n\
         [Unit]\n\
         Description=gvtg vGPU {uuid} ({mdev_type} on {parent})\n\
         After=systemd-modules-load.service\n\
         ConditionPathExists={create}\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         ExecStart=/bin/sh -c 'test -e {dev} || echo {uuid} > {create}'\n\
         ExecStop=/bin/sh -c 'test ! -e {dev} || echo 1 > {dev}/remove'\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    ))
}

fn is_nixos(root: &HostRoot) -> bool {
    root.exists("etc/NIXOS")
        || root.read("etc/os-release").into_ok().is_some_and(|t| {
            crate::host::snapshot::parse_os_release(&t)
                .get("ID")
                .is_some_and(|id| id == "nixos")
        })
}

fn has_mdevctl(root: &HostRoot) -> bool {
    [
        "usr/sbin/mdevctl",
        "usr/bin/mdevctl",
        "sbin/mdevctl",
        "bin/mdevctl",
    ]
    .iter()
    .any(|p| root.exists(p))
}

fn persist(
    root: &HostRoot,
    parent: &str,
    mdev_type: &str,
    uuid: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if is_nixos(root) {
        writeln!(
            out,
            "NixOS: add this to configuration.nix and run nixos-rebuild switch:\n  virtualisation.kvmgt.vgpus.\"{mdev_type}\".uuid = [ \"{uuid}\" ];"
        )?;
        return Ok(());
    }
    // mdevctl's definition is what mdevctl, libvirt's nodedev driver and `gvtg vgpu list` read.
    let rel = format!("etc/mdevctl.d/{parent}/{uuid}");
    sysfs_write::write_file_atomic(root, &rel, mdevctl_json(mdev_type).as_bytes())
        .context("writing the mdevctl definition")?;
    writeln!(out, "persisted: {}", HostRoot::display(&rel))?;
    if !has_mdevctl(root) {
        // Nothing reads /etc/mdevctl.d at boot without mdevctl: add a unit that does the create.
        let unit = unit_rel(uuid);
        let text = unit_text(parent, mdev_type, uuid)?;
        if let Err(e) = sysfs_write::write_file_atomic(root, &unit, text.as_bytes()) {
            let _ = sysfs_write::remove_file(root, &rel);
            return Err(e.context("writing the systemd unit (mdevctl is not installed)"));
        }
        writeln!(
            out,
            "mdevctl is not installed: wrote {} to recreate it at boot; enable it with:\n  systemctl daemon-reload && systemctl enable {}",
            HostRoot::display(&unit),
            unit_name(uuid)
        )?;
    }
    Ok(())
}

// ---- remove ------------------------------------------------------------------------------

fn remove(root: &HostRoot, uuid: &str, persist: bool, out: &mut dyn Write) -> anyhow::Result<u8> {
    let uuid = parse_uuid(uuid)?;
    let devs = read_mdev_devices(root).into_ok().unwrap_or_default();
    let dev = devs.iter().find(|d| d.uuid == uuid);
    match dev {
        None if !persist => bail!(
            "removing mdev {uuid}: no such mdev ({} does not exist; `gvtg vgpu list` shows them)",
            HostRoot::display(&format!("sys/bus/mdev/devices/{uuid}"))
        ),
        None => writeln!(out, "{uuid} does not exist; removing its definition only")?,
        Some(d) => {
            match holders(root, d) {
                Ok(h) if !h.is_empty() => bail!(
                    "removing mdev {uuid}: it is in use ({}); shut the VM down (or stop that process) first",
                    h.iter()
                        .map(Holder::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => {}
            }
            let dev_rel = format!("sys/bus/mdev/devices/{}", d.uuid);
            let rm = listed(root, &dev_rel, "remove").with_context(|| {
                format!("{} has no `remove` attribute", HostRoot::display(&dev_rel))
            })?;
            sysfs_write::write_attr(root, &format!("{dev_rel}/{rm}"), b"1").map_err(|e| {
                let why = match e.errno {
                    Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => {
                        "removing an mdev needs root: run it with sudo"
                    }
                    Some(nix::libc::EBUSY) => "the device is busy (a VM or vfio user holds it)",
                    _ => "the kernel refused",
                };
                anyhow::anyhow!("removing mdev {uuid}: {why} [{e}]")
            })?;
            if root.is_live() {
                let start = Instant::now();
                while root.exists(&dev_rel) {
                    if start.elapsed() > WAIT {
                        bail!(
                            "removing mdev {uuid}: {} is still there after {} s",
                            HostRoot::display(&dev_rel),
                            WAIT.as_secs()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                writeln!(out, "removed {uuid}")?;
            } else {
                writeln!(
                    out,
                    "written 1 to {}/remove (captured tree)",
                    HostRoot::display(&dev_rel)
                )?;
            }
        }
    }
    if persist {
        if is_nixos(root) {
            writeln!(
                out,
                "NixOS: remove \"{uuid}\" from virtualisation.kvmgt.vgpus in configuration.nix"
            )?;
            return Ok(0);
        }
        let mut removed = Vec::new();
        for p in root.read_dir("etc/mdevctl.d").into_ok().unwrap_or_default() {
            if is_safe_component(&p) {
                if let Some(u) = listed(root, &format!("etc/mdevctl.d/{p}"), &uuid) {
                    let rel = format!("etc/mdevctl.d/{p}/{u}");
                    if sysfs_write::remove_file(root, &rel)? {
                        removed.push(HostRoot::display(&rel));
                    }
                }
            }
        }
        if sysfs_write::remove_file(root, &unit_rel(&uuid))? {
            removed.push(HostRoot::display(&unit_rel(&uuid)));
            writeln!(out, "run: systemctl disable {}", unit_name(&uuid))?;
        }
        if removed.is_empty() {
            writeln!(out, "no persisted definition of {uuid} found")?;
        } else {
            writeln!(out, "deleted {}", removed.join(", "))?;
        }
    }
    Ok(0)
}

// ---- xml and qemu-args --------------------------------------------------------------------

fn xml(
    uuid: &str,
    domain: Option<&std::path::Path>,
    display: bool,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let uuid = parse_uuid(uuid)?;
    let Some(path) = domain else {
        writeln!(
            out,
            "{}",
            domain_xml::hostdev_element(&uuid, display, "", "  ")
        )?;
        if display {
            eprintln!("gvtg: note: display='on' needs libvirt ≥ 4.6.0 and ramfb='on' ≥ 5.10.0; pass --domain FILE to also get the SPICE GL <graphics> and the x-igd-opregion <qemu:override>");
        }
        return Ok(0);
    };
    // The domain file is the user's own file named on the command line, not a host path.
    let text = read_user_file(path, domain_xml::MAX_XML)
        .with_context(|| format!("reading the domain XML {}", path.display()))?;
    let edited = domain_xml::add_hostdev(&text, &uuid, display)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    out.write_all(edited.xml.as_bytes())?;
    for n in &edited.notes {
        eprintln!("gvtg: note: {n}");
    }
    Ok(0)
}

fn read_user_file(path: &std::path::Path, limit: usize) -> anyhow::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    if !f.metadata()?.is_file() {
        bail!("not a regular file");
    }
    let mut buf = Vec::new();
    f.take(limit as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > limit {
        bail!("larger than {} MB", limit / 1024 / 1024);
    }
    String::from_utf8(buf).map_err(|_| anyhow::anyhow!("not UTF-8"))
}

/// The QEMU arguments for an mdev, one per element.
pub fn qemu_arg_list(uuid: &str, display: bool) -> Vec<String> {
    let dev = HostRoot::display(&format!("sys/bus/mdev/devices/{uuid}"));
    if display {
        vec![
            "-device".into(),
            format!("vfio-pci-nohotplug,sysfsdev={dev},display=on,x-igd-opregion=on,ramfb=on"),
            "-display".into(),
            "gtk,gl=on".into(),
        ]
    } else {
        vec!["-device".into(), format!("vfio-pci,sysfsdev={dev}")]
    }
}

fn qemu_args(uuid: &str, display: bool, out: &mut dyn Write) -> anyhow::Result<u8> {
    let uuid = parse_uuid(uuid)?;
    for a in qemu_arg_list(&uuid, display) {
        writeln!(out, "{a}")?;
    }
    if display {
        eprintln!("gvtg: note: ramfb needs the non-hotpluggable vfio-pci-nohotplug device; without a local display use `-display egl-headless` plus `-spice ...,gl=on` or VNC instead of gtk");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Tree;

    const U: &str = "a297db4a-f4c2-11e6-90f6-d3b88d6c9525";

    fn gvt_tree(avail: u32) -> Tree {
        let mut t = Tree::new();
        let p = "sys/class/mdev_bus/0000:00:02.0/mdev_supported_types";
        for (id, a) in [("i915-GVTg_V5_4", avail), ("i915-GVTg_V5_8", 2)] {
            t.file(&format!("{p}/{id}/available_instances"), &format!("{a}\n"))
                .file(&format!("{p}/{id}/device_api"), "vfio-pci\n")
                .file(
                    &format!("{p}/{id}/description"),
                    "low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4\n",
                )
                .file(&format!("{p}/{id}/create"), "")
                .dir(&format!("{p}/{id}/devices"));
        }
        let res = "0x00000000f6000000 0x00000000f6ffffff 0x0000000000140204\n0x0 0x0 0x0\n0x00000000e0000000 0x00000000efffffff 0x000000000014220c\n";
        t.file("sys/bus/pci/devices/0000:00:02.0/resource", res);
        t
    }

    fn run_in(t: &Tree, cmd: VgpuCommand) -> (anyhow::Result<u8>, String) {
        let ctx = Ctx {
            root: HostRoot::at(t.path()).unwrap(),
            color: false,
        };
        let mut out = Vec::new();
        let r = run(&VgpuArgs { command: cmd }, &ctx, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    fn create_cmd(ty: &str, uuid: Option<&str>, persist: bool) -> VgpuCommand {
        VgpuCommand::Create {
            mdev_type: ty.into(),
            parent: None,
            uuid: uuid.map(str::to_string),
            persist,
            no_precheck: false,
        }
    }

    #[test]
    fn create_writes_uuid_by_short_name() {
        let t = gvt_tree(1);
        let (r, out) = run_in(&t, create_cmd("GVTg_V5_4", Some(U), false));
        r.unwrap();
        assert!(out.contains("written"), "{out}");
        let c = t
            .path()
            .join("sys/class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4/create");
        assert_eq!(std::fs::read_to_string(c).unwrap(), U);
    }

    #[test]
    fn generated_uuid_is_v4() {
        let t = gvt_tree(1);
        let (r, _) = run_in(&t, create_cmd("i915-GVTg_V5_8", None, false));
        r.unwrap();
        let c = t
            .path()
            .join("sys/class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_8/create");
        let u = std::fs::read_to_string(c).unwrap();
        assert_eq!(uuid::Uuid::parse_str(&u).unwrap().get_version_num(), 4);
    }

    #[test]
    fn refuses_unknown_and_hostile_types() {
        let t = gvt_tree(1);
        for bad in ["../../../etc", "GVTg_V5_2", "..", "a\0b", ""] {
            let (r, _) = run_in(&t, create_cmd(bad, Some(U), false));
            assert!(r.is_err(), "{bad:?}");
        }
        let (r, _) = run_in(&t, create_cmd("GVTg_V5_2", Some(U), false));
        assert!(format!("{:#}", r.unwrap_err()).contains("i915-GVTg_V5_4"));
        let (r, _) = run_in(&t, create_cmd("GVTg_V5_4", Some("not-a-uuid"), false));
        assert!(format!("{:#}", r.unwrap_err()).contains("36 characters"));
    }

    #[test]
    fn no_instances_explains_the_aperture() {
        let t = gvt_tree(0);
        let (r, _) = run_in(&t, create_cmd("GVTg_V5_4", Some(U), false));
        let e = format!("{:#}", r.unwrap_err());
        assert!(e.contains("available_instances is 0"), "{e}");
        assert!(
            e.contains("aperture 256 MB − 128 MB kept by the host = 128 MB"),
            "{e}"
        );
    }

    #[test]
    fn existing_uuid_is_eexist() {
        let mut t = gvt_tree(1);
        t.dir(&format!("sys/bus/mdev/devices/{U}"));
        let (r, _) = run_in(&t, create_cmd("GVTg_V5_4", Some(U), false));
        assert!(format!("{:#}", r.unwrap_err()).contains("already in use"));
    }

    #[test]
    fn persist_writes_mdevctl_json_and_unit_without_mdevctl() {
        let t = gvt_tree(1);
        let (r, out) = run_in(&t, create_cmd("GVTg_V5_4", Some(U), true));
        r.unwrap();
        let j = std::fs::read_to_string(t.path().join(format!("etc/mdevctl.d/0000:00:02.0/{U}")))
            .unwrap();
        assert_eq!(
            j,
            "{\"mdev_type\":\"i915-GVTg_V5_4\",\"start\":\"auto\",\"attrs\":[]}\n"
        );
        let unit = std::fs::read_to_string(
            t.path()
                .join(format!("etc/systemd/system/gvtg-vgpu-{U}.service")),
        )
        .unwrap();
        assert!(unit.contains(&format!("echo {U} > /sys/class/mdev_bus/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4/create")));
        assert!(out.contains("systemctl enable"), "{out}");
    }

    #[test]
    fn persist_with_mdevctl_writes_only_json() {
        let mut t = gvt_tree(1);
        t.file("usr/sbin/mdevctl", "");
        run_in(&t, create_cmd("GVTg_V5_4", Some(U), true))
            .0
            .unwrap();
        assert!(t
            .path()
            .join(format!("etc/mdevctl.d/0000:00:02.0/{U}"))
            .exists());
        assert!(!t.path().join("etc/systemd/system").exists());
    }

    #[test]
    fn nixos_prints_a_snippet() {
        let mut t = gvt_tree(1);
        t.file("etc/os-release", "NAME=NixOS\nID=nixos\n");
        let (r, out) = run_in(&t, create_cmd("GVTg_V5_4", Some(U), true));
        r.unwrap();
        assert!(out.contains(&format!(
            "virtualisation.kvmgt.vgpus.\"i915-GVTg_V5_4\".uuid = [ \"{U}\" ];"
        )));
        assert!(!t.path().join("etc/mdevctl.d").exists());
    }

    #[test]
    fn failed_persist_removes_the_device_again() {
        let mut t = gvt_tree(1);
        // The device "appeared"; etc/mdevctl.d is a file, so persisting fails.
        t.file(&format!("sys/bus/mdev/devices/{U}/remove"), "")
            .file("etc/mdevctl.d", "");
        // The device must not exist before create, so plant it under another name and link.
        std::fs::rename(
            t.path().join(format!("sys/bus/mdev/devices/{U}")),
            t.path().join("sys/bus/mdev/devices/later"),
        )
        .unwrap();
        let ctx_root = HostRoot::at(t.path()).unwrap();
        let r = Resolved {
            parent: "0000:00:02.0".into(),
            mdev_type: read_mdev_parents(&ctx_root).unwrap_ok()[0]
                .types
                .clone()
                .unwrap_ok()[0]
                .clone(),
        };
        std::fs::rename(
            t.path().join("sys/bus/mdev/devices/later"),
            t.path().join(format!("sys/bus/mdev/devices/{U}")),
        )
        .unwrap();
        let mut out = Vec::new();
        let e = persist(&ctx_root, &r.parent, &r.mdev_type.id, U, &mut out).unwrap_err();
        assert!(format!("{e:#}").contains("mdevctl"));
        // And through create: the UUID exists now, so it is refused before any write.
        let (r, _) = run_in(&t, create_cmd("GVTg_V5_4", Some(U), true));
        assert!(format!("{:#}", r.unwrap_err()).contains("already in use"));
    }

    fn mdev_tree(held: bool) -> Tree {
        let mut t = gvt_tree(1);
        t.link(
            &format!("sys/bus/mdev/devices/{U}/mdev_type"),
            "../../../devices/pci0000:00/0000:00:02.0/mdev_supported_types/i915-GVTg_V5_4",
        )
        .link(
            &format!("sys/bus/mdev/devices/{U}/iommu_group"),
            "../../../../kernel/iommu_groups/12",
        )
        .file(&format!("sys/bus/mdev/devices/{U}/remove"), "")
        .file(&format!("etc/mdevctl.d/0000:00:02.0/{U}"), "{}");
        if held {
            t.file("proc/4242/comm", "qemu-system-x86\n")
                .link("proc/4242/fd/17", "/dev/vfio/12")
                .link("proc/4242/fd/3", "/dev/null");
        }
        t.dir("proc/1/fd");
        t
    }

    #[test]
    fn list_shows_group_holder_and_persistence() {
        let t = mdev_tree(true);
        let (r, out) = run_in(&t, VgpuCommand::List { json: true });
        r.unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["schema_version"], 1);
        let m = &v["mdevs"][0];
        assert_eq!(m["uuid"], U);
        assert_eq!(m["parent"], "0000:00:02.0");
        assert_eq!(m["type"], "i915-GVTg_V5_4");
        assert_eq!(m["iommu_group"], 12);
        assert_eq!(m["in_use"], true);
        assert_eq!(m["holders"][0]["pid"], 4242);
        assert_eq!(m["holders"][0]["comm"], "qemu-system-x86");
        assert_eq!(m["persisted"][0], "mdevctl");
    }

    #[test]
    fn remove_refuses_while_held_and_deletes_definition() {
        let t = mdev_tree(true);
        let (r, _) = run_in(
            &t,
            VgpuCommand::Remove {
                uuid: U.into(),
                persist: true,
            },
        );
        let e = format!("{:#}", r.unwrap_err());
        assert!(e.contains("it is in use") && e.contains("pid 4242"), "{e}");
        let t = mdev_tree(false);
        let (r, out) = run_in(
            &t,
            VgpuCommand::Remove {
                uuid: U.into(),
                persist: true,
            },
        );
        r.unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join(format!("sys/bus/mdev/devices/{U}/remove")))
                .unwrap(),
            "1"
        );
        assert!(!t
            .path()
            .join(format!("etc/mdevctl.d/0000:00:02.0/{U}"))
            .exists());
        assert!(
            out.contains("deleted /etc/mdevctl.d/0000:00:02.0/"),
            "{out}"
        );
    }

    #[test]
    fn types_json_and_hostile_names() {
        let mut t = gvt_tree(3);
        t.dir("sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2")
            .file(
                "sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/available_instances",
                "12\n",
            )
            .file(
                "sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/name",
                "Dual port serial\n",
            )
            .file(
                "sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2/create",
                "",
            );
        // A non-UTF-8 and a very long name in the tree must not break anything.
        use std::os::unix::ffi::OsStrExt;
        let odd = t
            .path()
            .join("sys/class/mdev_bus/mtty/mdev_supported_types")
            .join(std::ffi::OsStr::from_bytes(b"bad\xff"));
        std::fs::create_dir_all(odd).unwrap();
        t.dir(&format!(
            "sys/class/mdev_bus/mtty/mdev_supported_types/{}",
            "x".repeat(250)
        ));
        let (r, out) = run_in(
            &t,
            VgpuCommand::Types {
                parent: None,
                json: true,
            },
        );
        r.unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let p = &v["parents"][0];
        assert_eq!(p["name"], "0000:00:02.0");
        assert_eq!(p["types"][0]["gvt"]["low_gm_mb"], 128);
        assert_eq!(p["types"][0]["available_instances"], 3);
        assert_eq!(p["types"][0]["short_name"], "GVTg_V5_4");
        let (r, _) = run_in(&t, create_cmd("Dual port serial", Some(U), false));
        r.unwrap();
        let (r, _) = run_in(&t, create_cmd("bad\u{fffd}", Some(U), false));
        assert!(r.is_err());
        let (r, text) = run_in(
            &t,
            VgpuCommand::Types {
                parent: Some("mtty".into()),
                json: false,
            },
        );
        r.unwrap();
        assert!(text.contains("mtty-2"), "{text}");
    }

    #[test]
    fn kernel_errors_name_cause_and_remedy() {
        let t = gvt_tree(0);
        let root = HostRoot::at(t.path()).unwrap();
        let r = resolve_type(&root, "GVTg_V5_4", None).unwrap();
        let msg = |errno| {
            create_error(
                &root,
                &r,
                U,
                &WriteError {
                    errno: Some(errno),
                    message: "writing x".into(),
                },
            )
        };
        use nix::libc::*;
        assert!(msg(ENOSPC).contains("(ENOSPC)") && msg(ENOSPC).contains("aperture 256 MB"));
        assert!(msg(EEXIST).contains("already in use by another mdev (EEXIST)"));
        assert!(msg(EINVAL).contains("malformed UUID"));
        assert!(msg(ENODEV).contains("is gone"));
        assert!(msg(EACCES).contains("needs root") && msg(EPERM).contains("needs root"));
        assert!(msg(EUSERS).contains("instance limit"));
        assert!(msg(EIO).contains("refused"));
    }

    #[test]
    fn uuid_forms() {
        assert_eq!(parse_uuid(&U.to_uppercase()).unwrap(), U);
        assert!(parse_uuid("a297db4af4c211e690f6d3b88d6c9525").is_err());
        assert!(parse_uuid("{a297db4a-f4c2-11e6-90f6-d3b88d6c952}").is_err());
    }

    #[test]
    fn qemu_args_lines() {
        assert_eq!(
            qemu_arg_list(U, false),
            vec![
                "-device",
                &format!("vfio-pci,sysfsdev=/sys/bus/mdev/devices/{U}")
            ]
        );
        assert!(qemu_arg_list(U, true)[1].contains("display=on,x-igd-opregion=on,ramfb=on"));
    }
}
