//! `passthrough.looking-glass`: Looking Glass shows a passed-through GPU's output on the host
//! through IVSHMEM shared memory, either a `/dev/shm/looking-glass*` file (QEMU
//! `memory-backend-file`, libvirt `<shmem>`) or the kvmfr module's `/dev/kvmfrN` (DMA-capable).
//! Both QEMU (the libvirt QEMU user) and the client (the desktop user) open the memory read-write,
//! it must hold two frames of the guest's resolution, and a kvmfr node must get past libvirt's
//! devices cgroup, which knows nothing of a device named only in `<qemu:commandline>`.
//!
//! Size (Looking Glass documentation, "Determining memory"): width × height × 4 bytes × 2 frames,
//! in MiB, plus 10 MiB, rounded up to a power of two: 1920×1080 → 32 MiB, 2560×1440 → 64 MiB,
//! 3840×2160 → 128 MiB.
//!
//! [`needs`] is shared with `gvtg fix --passthrough`, so the plan fixes exactly what the check
//! reports.

use super::{support, Outcome, Prior, Status};
use crate::host::root::NodeInfo;
use crate::host::snapshot::{ModuleFile, Snapshot};

/// Where the tmpfiles.d line goes.
pub const TMPFILES_FILE: &str = "etc/tmpfiles.d/10-looking-glass.conf";
/// kvmfr's modprobe options.
pub const KVMFR_MODPROBE: &str = "etc/modprobe.d/kvmfr.conf";
/// kvmfr at boot.
pub const KVMFR_LOAD: &str = "etc/modules-load.d/kvmfr.conf";
/// The udev rule for /dev/kvmfr*.
pub const KVMFR_UDEV: &str = "etc/udev/rules.d/99-kvmfr.rules";
/// The size Looking Glass needs for 1920×1080, the least a setup should have.
pub const MIN_MIB: u64 = 32;

/// MiB Looking Glass needs for `w`×`h` at 4 bytes per pixel (SDR): two frames plus 10 MiB,
/// rounded up to the next power of two.
pub fn required_mib(w: u64, h: u64) -> u64 {
    let bytes = w * h * 4 * 2 + 10 * 1024 * 1024;
    bytes.div_ceil(1024 * 1024).next_power_of_two()
}

/// The largest common resolution `mib` holds, as `WxH`.
pub fn max_resolution(mib: u64) -> Option<&'static str> {
    const RES: &[(u64, u64, &str)] = &[
        (7680, 4320, "7680x4320"),
        (5120, 2880, "5120x2880"),
        (3840, 2160, "3840x2160"),
        (3440, 1440, "3440x1440"),
        (2560, 1440, "2560x1440"),
        (1920, 1200, "1920x1200"),
        (1920, 1080, "1920x1080"),
        (1600, 900, "1600x900"),
        (1280, 720, "1280x720"),
    ];
    RES.iter()
        .find(|(w, h, _)| required_mib(*w, *h) <= mib)
        .map(|r| r.2)
}

/// One place a Looking Glass memory is configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Use {
    /// The file or node (`/dev/shm/looking-glass`, `/dev/kvmfr0`).
    pub path: String,
    /// Size in bytes, when given.
    pub size: Option<u64>,
    /// Where (`/etc/libvirt/qemu/win10.xml`).
    pub origin: String,
}

/// Parses a size as libvirt's `<size unit=…>` (default bytes; K/M/G and KiB… binary, KB/MB/GB
/// decimal).
fn scaled(value: &str, unit: Option<&str>) -> Option<u64> {
    let n: u64 = value.trim().parse().ok()?;
    let mul: u64 = match unit.unwrap_or("b").trim() {
        "b" | "bytes" | "B" => 1,
        "k" | "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Parses a QEMU size (`32M`, `1G`, `33554432`; suffixes binary).
fn qemu_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mul) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 1u64 << 10),
        'M' | 'm' => (&v[..v.len() - 1], 1 << 20),
        'G' | 'g' => (&v[..v.len() - 1], 1 << 30),
        'T' | 't' => (&v[..v.len() - 1], 1 << 40),
        'B' | 'b' => (&v[..v.len() - 1], 1),
        _ => (v, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// The Looking Glass memories the libvirt domains configure: `<shmem name='looking-glass…'>`
/// (QEMU's file is `/dev/shm/NAME`) and `memory-backend-file` objects in `<qemu:commandline>`
/// whose `mem-path` is under `/dev/shm` or a kvmfr node.
pub fn domain_uses(s: &Snapshot) -> Vec<Use> {
    let mut out = Vec::new();
    for f in &s.looking_glass.domains {
        let Ok(doc) = crate::parse::domain_xml::parse(&f.text) else {
            continue;
        };
        for n in doc.descendants().filter(|n| n.is_element()) {
            match n.tag_name().name() {
                "shmem" if n.tag_name().namespace().is_none() => {
                    let Some(name) = n.attribute("name") else {
                        continue;
                    };
                    let size = n
                        .children()
                        .find(|c| c.has_tag_name("size"))
                        .and_then(|c| scaled(c.text()?, c.attribute("unit")));
                    out.push(Use {
                        path: format!("/dev/shm/{name}"),
                        size,
                        origin: f.path.clone(),
                    });
                }
                "arg" => {
                    let Some(v) = n.attribute("value") else {
                        continue;
                    };
                    let mut path = None;
                    let mut size = None;
                    if v.trim_start().starts_with('{') {
                        // JSON -object (what the Looking Glass documentation shows for libvirt).
                        let Ok(j) = serde_json::from_str::<serde_json::Value>(v) else {
                            continue;
                        };
                        if j["qom-type"] != "memory-backend-file" {
                            continue;
                        }
                        path = j["mem-path"].as_str().map(str::to_string);
                        size = match &j["size"] {
                            serde_json::Value::Number(n) => n.as_u64(),
                            serde_json::Value::String(z) => qemu_size(z),
                            _ => None,
                        };
                    } else if v.starts_with("memory-backend-file") {
                        for kv in v.split(',') {
                            if let Some(p) = kv.strip_prefix("mem-path=") {
                                path = Some(p.to_string());
                            } else if let Some(z) = kv.strip_prefix("size=") {
                                size = qemu_size(z);
                            }
                        }
                    } else {
                        continue;
                    }
                    if let Some(p) = path.filter(|p| {
                        p.starts_with("/dev/kvmfr") || p.starts_with("/dev/shm/looking-glass")
                    }) {
                        out.push(Use {
                            path: p,
                            size,
                            origin: f.path.clone(),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// A systemd-tmpfiles line for a Looking Glass file: `f /dev/shm/looking-glass 0660 user kvm -`.
#[derive(Debug, Clone, PartialEq)]
pub struct TmpfilesLine {
    /// Where (`/etc/tmpfiles.d/10-looking-glass.conf:1`).
    pub origin: String,
    /// Path.
    pub path: String,
    /// Mode bits.
    pub mode: Option<u32>,
    /// Owner.
    pub user: Option<String>,
    /// Group.
    pub group: Option<String>,
}

/// The tmpfiles.d lines that create `/dev/shm/looking-glass*`. tmpfiles.d(5): files of the same
/// name override each other (/etc over /run over /usr/lib); the reader lists /etc first, so the
/// first file of a name wins.
pub fn tmpfiles_lines(s: &Snapshot) -> Vec<TmpfilesLine> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for f in &s.looking_glass.tmpfiles {
        let name = f.path.rsplit('/').next().unwrap_or("").to_string();
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        for (i, l) in f.text.lines().enumerate() {
            let t: Vec<&str> = l.split_whitespace().collect();
            if t.len() < 2 || t[0].starts_with('#') || !t[1].starts_with("/dev/shm/looking-glass") {
                continue;
            }
            if !matches!(
                t[0].trim_end_matches(['!', '-', '+', '=', '~', '^']),
                "f" | "F" | "z" | "Z"
            ) {
                continue;
            }
            let field = |k: usize| t.get(k).filter(|v| **v != "-").map(|v| v.to_string());
            out.push(TmpfilesLine {
                origin: format!("{}:{}", f.path, i + 1),
                path: t[1].to_string(),
                mode: field(2).and_then(|m| u32::from_str_radix(m.trim_start_matches('~'), 8).ok()),
                user: field(3),
                group: field(4),
            });
        }
    }
    out
}

/// The file a tmpfiles.d line makes: its mode (0644 when not given) and owner.
fn tmpfiles_node(s: &Snapshot, t: &TmpfilesLine) -> NodeInfo {
    NodeInfo {
        kind: crate::host::sidefile::NodeKind::File,
        mode: t.mode.unwrap_or(0o644),
        uid: t
            .user
            .as_deref()
            .and_then(|u| support::resolve_user(s, u))
            .map_or(0, |x| x.0),
        gid: t
            .group
            .as_deref()
            .and_then(|g| support::resolve_group(s, g))
            .unwrap_or(0),
        rdev: None,
    }
}

/// A udev rule line for kvmfr: (where, OWNER, GROUP, MODE).
type UdevRule = (String, Option<String>, Option<String>, Option<u32>);

/// The udev rule lines for kvmfr, with their `OWNER=`, `GROUP=` and `MODE=` when set.
fn udev_kvmfr(s: &Snapshot) -> Vec<UdevRule> {
    let mut out = Vec::new();
    let grab = |l: &str, key: &str| -> Option<String> {
        let at = l.find(&format!("{key}=\""))? + key.len() + 2;
        let end = l[at..].find('"')?;
        Some(l[at..at + end].to_string())
    };
    for f in &s.looking_glass.udev {
        for (i, l) in f.text.lines().enumerate() {
            if l.trim_start().starts_with('#') || !l.contains("kvmfr") {
                continue;
            }
            out.push((
                format!("{}:{}", f.path, i + 1),
                grab(l, "OWNER"),
                grab(l, "GROUP"),
                grab(l, "MODE").and_then(|m| u32::from_str_radix(&m, 8).ok()),
            ));
        }
    }
    out
}

/// The desktop user who runs the Looking Glass client, and how we know: the owner a tmpfiles.d
/// line or kvmfr udev rule gives the memory, else the owner of an existing file (uid 1000–59999, not the QEMU user),
/// else the only regular account (uid 1000–59999). None when it cannot be told.
pub fn desktop_user(s: &Snapshot) -> Option<(String, String)> {
    let human = |u: &str| u != "root" && !u.starts_with('+') && u != support::qemu_identity(s).user;
    if let Some(t) = tmpfiles_lines(s)
        .into_iter()
        .find(|t| t.user.as_deref().is_some_and(human))
    {
        return Some((t.user.unwrap_or_default(), t.origin));
    }
    if let Some((o, u, _, _)) = udev_kvmfr(s)
        .into_iter()
        .find(|(_, u, _, _)| u.as_deref().is_some_and(human))
    {
        return Some((u.unwrap_or_default(), o));
    }
    let users = s.users.ok()?;
    for f in &s.looking_glass.shm {
        if let Some(u) = users
            .iter()
            .find(|u| u.uid == f.node.uid && (1000..60000).contains(&u.uid) && human(&u.name))
        {
            return Some((u.name.clone(), format!("owner of {}", f.path)));
        }
    }
    let humans: Vec<&crate::host::snapshot::User> = users
        .iter()
        .filter(|u| (1000..60000).contains(&u.uid) && human(&u.name))
        .collect();
    match humans.as_slice() {
        [u] => Some((
            u.name.clone(),
            "the only regular account in /etc/passwd".into(),
        )),
        _ => None,
    }
}

/// What `gvtg fix --passthrough` should change for Looking Glass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Needs {
    /// The tmpfiles.d line (`f /dev/shm/looking-glass 0660 USER kvm -`).
    pub tmpfiles: Option<String>,
    /// kvmfr in modules-load.d.
    pub kvmfr_load: bool,
    /// kvmfr is not installed for the running kernel (DKMS; on NixOS a package).
    pub kvmfr_missing: bool,
    /// `options kvmfr static_size_mb=N` (the size of /dev/kvmfr0).
    pub kvmfr_size_mb: Option<u64>,
    /// The sizes configured for /dev/kvmfr1… now, kept after the new first value.
    pub kvmfr_other_sizes: Vec<u64>,
    /// The kvmfr udev rule.
    pub kvmfr_udev: Option<String>,
    /// Entries cgroup_device_acl must gain (`/dev/kvmfr0`).
    pub acl: Vec<String>,
    /// What cannot be fixed by a file (kvmfr not installed, no desktop user known).
    pub notes: Vec<String>,
}

impl Needs {
    /// The `static_size_mb=` value to write: /dev/kvmfr0's new size, then the other devices'
    /// sizes as configured now.
    pub fn kvmfr_size_value(&self) -> Option<String> {
        let first = self.kvmfr_size_mb?;
        Some(
            std::iter::once(first)
                .chain(self.kvmfr_other_sizes.iter().copied())
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
    }
}

/// Everything the check judges, derived once.
struct Facts {
    uses: Vec<Use>,
    shm_paths: Vec<String>,
    kvmfr_paths: Vec<String>,
    kvmfr_wanted: bool,
    static_sizes: Option<(Vec<u64>, String)>,
    desktop: Option<(String, String)>,
}

fn facts(s: &Snapshot) -> Facts {
    let uses = domain_uses(s);
    let lg = &s.looking_glass;
    let mut shm_paths: Vec<String> = lg.shm.iter().map(|f| f.path.clone()).collect();
    shm_paths.extend(
        uses.iter()
            .filter(|u| u.path.starts_with("/dev/shm/"))
            .map(|u| u.path.clone()),
    );
    shm_paths.extend(tmpfiles_lines(s).into_iter().map(|t| t.path));
    shm_paths.sort();
    shm_paths.dedup();
    let mut kvmfr_paths: Vec<String> = uses
        .iter()
        .filter(|u| u.path.starts_with("/dev/kvmfr"))
        .map(|u| u.path.clone())
        .collect();
    kvmfr_paths.extend(lg.kvmfr_nodes.keys().map(|k| format!("/dev/{k}")));
    kvmfr_paths.sort();
    kvmfr_paths.dedup();
    let static_conf = support::configured_param(s, "kvmfr", "static_size_mb");
    let parse_sizes =
        |v: &str| -> Vec<u64> { v.split(',').filter_map(|x| x.trim().parse().ok()).collect() };
    let static_sizes = match (&lg.kvmfr_live_sizes, static_conf.last()) {
        (_, Some(p)) => Some((
            parse_sizes(p.value.as_deref().unwrap_or("")),
            format!("{} (static_size_mb)", p.origin),
        )),
        (Some(v), None) => Some((
            parse_sizes(v),
            "/sys/module/kvmfr/parameters/static_size_mb".into(),
        )),
        _ => None,
    };
    let kvmfr_wanted = !kvmfr_paths.is_empty()
        || s.module_present("kvmfr")
        || static_sizes.is_some()
        || s.modules_load
            .iter()
            .any(|(_, m)| m.iter().any(|x| x == "kvmfr"))
        || s.qemu_conf
            .ok()
            .is_some_and(|f| f.text.contains("/dev/kvmfr"));
    if kvmfr_wanted && kvmfr_paths.is_empty() {
        kvmfr_paths.push("/dev/kvmfr0".into());
    }
    Facts {
        uses,
        shm_paths,
        kvmfr_paths,
        kvmfr_wanted,
        static_sizes,
        desktop: desktop_user(s),
    }
}

/// Whether the devices cgroup confines QEMU (qemu.conf `cgroup_controllers` unset, or listing
/// `devices`).
fn devices_cgroup(conf: Option<&crate::parse::qemu_conf::QemuConf>) -> bool {
    conf.and_then(|c| c.get_list("cgroup_controllers"))
        .is_none_or(|l| l.contains(&"devices"))
}

fn mode_ok_for(n: &NodeInfo, ids: Option<&(u32, Vec<u32>)>) -> Option<bool> {
    ids.map(|(u, g)| support::can_rw(n, *u, g))
}

fn ids_of(s: &Snapshot, user: &str) -> Option<(u32, Vec<u32>)> {
    support::resolve_user(s, user).map(|(uid, gid, mut supp)| {
        supp.push(gid);
        (uid, supp)
    })
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

fn size_words(m: u64) -> String {
    match max_resolution(m) {
        Some(r) => format!("{m} MiB (enough for {r})"),
        None => format!("{m} MiB (not enough even for 1280x720)"),
    }
}

/// The check and the fix's needs, from one derivation.
fn judge(s: &Snapshot) -> (Outcome, Needs) {
    let f = facts(s);
    let mut needs = Needs::default();
    let lg = &s.looking_glass;
    let configured = !f.shm_paths.is_empty() || f.kvmfr_wanted;
    if !configured {
        return (
            Outcome::skip(
                "Looking Glass is not set up: no /dev/shm/looking-glass*, no kvmfr module or /dev/kvmfr*, no libvirt domain or qemu.conf naming them",
            ),
            needs,
        );
    }
    let qa = support::qemu_access(s);
    let quser = qa.identity.user.clone();
    let desktop_ids = f.desktop.as_ref().and_then(|(u, _)| ids_of(s, u));
    let dname = f
        .desktop
        .as_ref()
        .map(|(u, _)| u.clone())
        .unwrap_or_else(|| "USER".into());
    let mut o = Outcome::pass("");
    let mut fails: Vec<String> = Vec::new();
    let mut warns: Vec<String> = Vec::new();
    let mut good: Vec<String> = Vec::new();
    match &f.desktop {
        Some((u, how)) => o.push("/etc/passwd", format!("desktop user {u} ({how})")),
        None => warns.push(
            "the desktop user who runs the client is unknown (no tmpfiles.d or udev owner, several or no regular accounts): only the QEMU user is judged".into(),
        ),
    }
    o.push(
        qa.identity.source.clone(),
        format!("QEMU runs as {quser}:{}", qa.identity.group),
    );
    for u in &f.uses {
        o.push(
            u.origin.clone(),
            format!(
                "{}{}",
                u.path,
                u.size
                    .map(|b| format!(", size {} MiB", mib(b)))
                    .unwrap_or_default()
            ),
        );
    }
    let kvm_group = s
        .groups
        .ok()
        .and_then(|g| g.iter().find(|g| g.name == "kvm"))
        .map(|g| g.name.clone())
        .unwrap_or_else(|| qa.identity.group.clone());
    let tmpfiles_line = format!("f /dev/shm/looking-glass 0660 {dname} {kvm_group} -");

    // ---- the /dev/shm file --------------------------------------------------------------------
    let tmp = tmpfiles_lines(s);
    for p in &f.shm_paths {
        let file = lg.shm.iter().find(|x| &x.path == p);
        let line = tmp.iter().find(|t| &t.path == p);
        if let Some(t) = line {
            o.push(
                t.origin.clone(),
                format!(
                    "{} {:04o} {} {}",
                    t.path,
                    t.mode.unwrap_or(0o644),
                    t.user.as_deref().unwrap_or("root"),
                    t.group.as_deref().unwrap_or("root")
                ),
            );
        }
        let node = match (file, line) {
            (Some(x), _) => {
                o.push(
                    p.clone(),
                    format!(
                        "{}{}",
                        support::describe_node(s, &x.node),
                        x.size
                            .map(|b| format!(", {} MiB", mib(b)))
                            .unwrap_or_default()
                    ),
                );
                Some(x.node.clone())
            }
            // Not there now: what tmpfiles.d creates at boot.
            (None, Some(t)) => {
                o.push(
                    p.clone(),
                    "does not exist yet (tmpfiles.d creates it at boot)",
                );
                Some(tmpfiles_node(s, t))
            }
            (None, None) => None,
        };
        match node {
            None => {
                warns.push(format!(
                    "{p} does not exist and no tmpfiles.d line creates it: QEMU will create it as {quser} with its umask, and the client run by {dname} cannot open it"
                ));
                needs.tmpfiles = Some(tmpfiles_line.clone());
            }
            Some(n) => {
                let q = mode_ok_for(&n, qa.ids.as_ref());
                let d = mode_ok_for(&n, desktop_ids.as_ref());
                let mut who = Vec::new();
                if q == Some(false) {
                    who.push(quser.clone());
                }
                if d == Some(false) {
                    who.push(dname.clone());
                }
                if who.is_empty() && line.is_none() {
                    // Right now, by hand: /dev/shm is a tmpfs, emptied at every boot, and QEMU
                    // then creates the file again with its own owner.
                    warns.push(format!(
                        "{p} is usable now, but no tmpfiles.d line recreates it after a reboot (/dev/shm starts empty; QEMU would create it as {quser})"
                    ));
                    needs.tmpfiles = Some(tmpfiles_line.clone());
                } else if who.is_empty() {
                    good.push(format!("{p} read-write for {quser} and {dname}"));
                } else {
                    let e = format!(
                        "{p} ({}) is not read-write for {}",
                        support::describe_node(s, &n),
                        who.join(" and ")
                    );
                    let line_ok = line.is_some_and(|t| {
                        let n = tmpfiles_node(s, t);
                        mode_ok_for(&n, qa.ids.as_ref()) != Some(false)
                            && mode_ok_for(&n, desktop_ids.as_ref()) != Some(false)
                    });
                    if line.is_some() && file.is_none() {
                        fails.push(format!("the tmpfiles.d line would create {e}"));
                        needs.tmpfiles = Some(tmpfiles_line.clone());
                    } else if line_ok {
                        // tmpfiles.d applies mode and owner to an existing `f` file too.
                        warns.push(format!(
                            "{e} now; the tmpfiles.d line sets it right at the next boot (or now: sudo systemd-tmpfiles --create)"
                        ));
                    } else {
                        fails.push(e);
                        needs.tmpfiles = Some(tmpfiles_line.clone());
                    }
                }
                // A file left from an earlier, smaller size: QEMU fails to map it (the
                // Looking Glass documentation says to delete it after resizing).
                if let Some(have) = file.and_then(|x| x.size) {
                    if let Some(want) = f
                        .uses
                        .iter()
                        .filter(|u| &u.path == p)
                        .filter_map(|u| u.size)
                        .max()
                    {
                        if have < want {
                            warns.push(format!(
                                "{p} is {} MiB but the domain asks for {} MiB: stop the VM and delete the file so it is recreated at the new size",
                                mib(have),
                                mib(want)
                            ));
                        }
                    }
                }
            }
        }
    }

    // ---- kvmfr ------------------------------------------------------------------------------
    if f.kvmfr_wanted {
        let loaded = s.module_present("kvmfr");
        let file = s.modules.files.get("kvmfr");
        let at_boot = s
            .modules_load
            .iter()
            .find(|(_, m)| m.iter().any(|x| x == "kvmfr"))
            .map(|(f, _)| f.clone());
        o.push(
            "/proc/modules",
            if loaded {
                "kvmfr loaded"
            } else {
                "kvmfr not loaded"
            },
        );
        if let Some(b) = &at_boot {
            o.push(b.clone(), "kvmfr loaded at boot");
        }
        match (loaded, file) {
            (false, Some(ModuleFile::Absent)) => {
                fails.push("the kvmfr module is not installed for this kernel (it is out of tree: build it with DKMS from the Looking Glass source, module/ directory)".into());
                needs.kvmfr_missing = true;
                needs.kvmfr_load = at_boot.is_none();
                needs.notes.push("kvmfr is not installed for the running kernel: install it (DKMS, Looking Glass source module/ directory; NixOS: boot.extraModulePackages)".into());
            }
            (false, _) if at_boot.is_none() => {
                fails.push("kvmfr is not loaded and nothing loads it at boot".into());
                needs.kvmfr_load = true;
            }
            (false, _) => warns.push("kvmfr is configured to load at boot but not loaded now (reboot, or sudo modprobe kvmfr)".into()),
            (true, _) if at_boot.is_none() => {
                warns.push("kvmfr is loaded now but nothing loads it at boot".into());
                needs.kvmfr_load = true;
            }
            _ => {}
        }
        // static_size_mb: one size per device; without it kvmfr creates no device.
        let want_mib: u64 = f
            .uses
            .iter()
            .filter(|u| u.path == "/dev/kvmfr0")
            .filter_map(|u| u.size.map(mib))
            .max()
            .unwrap_or(MIN_MIB)
            .max(MIN_MIB)
            .next_power_of_two();
        match &f.static_sizes {
            None => {
                fails.push("kvmfr has no static_size_mb: it creates no /dev/kvmfr device".into());
                needs.kvmfr_size_mb = Some(want_mib);
            }
            Some((sizes, origin)) => {
                needs.kvmfr_other_sizes = sizes.iter().skip(1).copied().collect();
                o.push(
                    origin.clone(),
                    format!(
                        "static_size_mb={}",
                        sizes
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                );
                let first = sizes.first().copied().unwrap_or(0);
                if first == 0 {
                    fails.push("kvmfr static_size_mb is empty or 0: no usable /dev/kvmfr0".into());
                    needs.kvmfr_size_mb = Some(want_mib);
                } else {
                    // static_size_mb lists one size per device: /dev/kvmfrN gets the N-th.
                    for u in f.uses.iter().filter(|u| u.path.starts_with("/dev/kvmfr")) {
                        let Some(n) = u
                            .path
                            .trim_start_matches("/dev/kvmfr")
                            .parse::<usize>()
                            .ok()
                        else {
                            continue;
                        };
                        let have = sizes.get(n).copied();
                        let Some(b) = u.size else { continue };
                        if have.is_none_or(|h| mib(b) > h) {
                            fails.push(match have {
                                Some(h) => format!(
                                    "{} maps {} MiB of {} but kvmfr gives it {h} MiB: QEMU cannot map past the device",
                                    u.origin,
                                    mib(b),
                                    u.path
                                ),
                                None => format!(
                                    "{} maps {} but static_size_mb lists no size for it: kvmfr creates no such device",
                                    u.origin, u.path
                                ),
                            });
                            if n == 0 {
                                needs.kvmfr_size_mb = Some(want_mib);
                            } else {
                                needs.notes.push(format!(
                                    "give {} its size as value {} of `options kvmfr static_size_mb=` (comma-separated, one per device) by hand",
                                    u.path,
                                    n + 1
                                ));
                            }
                        }
                    }
                    if first < MIN_MIB {
                        warns.push(format!(
                            "kvmfr0 is {}; Looking Glass needs 32 MiB for 1920x1080",
                            size_words(first)
                        ));
                        needs.kvmfr_size_mb = Some(want_mib);
                    } else if !first.is_power_of_two() {
                        warns.push(format!(
                            "kvmfr0 is {first} MiB, not a power of two (Looking Glass sizes round up to one: the PCI BAR is one)"
                        ));
                    } else {
                        good.push(format!("kvmfr0 {}", size_words(first)));
                    }
                }
            }
        }
        // The node: read-write for QEMU (libvirt does not relabel a path named only in
        // <qemu:commandline>) and for the client.
        let rule = udev_kvmfr(s);
        for (origin, owner, group, mode) in &rule {
            o.push(
                origin.clone(),
                format!(
                    "udev: OWNER={} GROUP={} MODE={}",
                    owner.as_deref().unwrap_or("-"),
                    group.as_deref().unwrap_or("-"),
                    mode.map(|m| format!("{m:04o}")).unwrap_or("-".into())
                ),
            );
        }
        let udev_line = format!(
            "SUBSYSTEM==\"kvmfr\", OWNER=\"{dname}\", GROUP=\"{kvm_group}\", MODE=\"0660\""
        );
        for p in &f.kvmfr_paths {
            let name = p.trim_start_matches("/dev/");
            match lg.kvmfr_nodes.get(name) {
                None if loaded => {
                    fails.push(format!("{p} does not exist although kvmfr is loaded (static_size_mb lists fewer devices?)"));
                }
                None => {
                    o.push(p.clone(), "does not exist (kvmfr not loaded)");
                    if rule.is_empty() {
                        warns.push(format!("no udev rule gives {p} to {dname} and {quser}: it will be root-only (0600)"));
                        needs.kvmfr_udev = Some(udev_line.clone());
                    }
                }
                Some(n) => {
                    o.push(p.clone(), support::describe_node(s, n));
                    let q = mode_ok_for(n, qa.ids.as_ref());
                    let d = mode_ok_for(n, desktop_ids.as_ref());
                    let mut who = Vec::new();
                    if q == Some(false) {
                        who.push(quser.clone());
                    }
                    if d == Some(false) {
                        who.push(dname.clone());
                    }
                    if who.is_empty() {
                        good.push(format!("{p} read-write for {quser} and {dname}"));
                    } else if !rule.is_empty()
                        && rule
                            .iter()
                            .all(|(_, u, _, _)| u.as_deref() == Some(dname.as_str()))
                    {
                        warns.push(format!("{p} is not read-write for {} now; the udev rule fixes it (sudo udevadm trigger --subsystem-match=kvmfr, or reboot)", who.join(" and ")));
                    } else {
                        fails.push(format!(
                            "{p} ({}) is not read-write for {}",
                            support::describe_node(s, n),
                            who.join(" and ")
                        ));
                        needs.kvmfr_udev = Some(udev_line.clone());
                    }
                }
            }
        }
        // libvirt's devices cgroup: the list replaces the default, and a node named only in
        // <qemu:commandline> is never added by libvirt. First key wins.
        if s.libvirt_present && devices_cgroup(qa.conf.as_ref()) {
            let acl: Vec<String> = qa
                .conf
                .as_ref()
                .and_then(|c| c.get_list("cgroup_device_acl"))
                .map(|l| l.iter().map(|x| x.to_string()).collect())
                .unwrap_or_else(|| support::DEFAULT_ACL.iter().map(|x| x.to_string()).collect());
            let set = qa
                .conf
                .as_ref()
                .is_some_and(|c| c.get("cgroup_device_acl").is_some());
            let missing: Vec<String> = f
                .kvmfr_paths
                .iter()
                .filter(|p| !acl.contains(p))
                .cloned()
                .collect();
            if missing.is_empty() {
                good.push(format!("{} in cgroup_device_acl", f.kvmfr_paths.join(", ")));
                o.push(
                    s.qemu_conf
                        .ok()
                        .map_or("/etc/libvirt/qemu.conf".into(), |f| f.path.clone()),
                    format!("cgroup_device_acl has {}", f.kvmfr_paths.join(", ")),
                );
            } else {
                fails.push(format!(
                    "qemu.conf's cgroup_device_acl {} {}: the devices cgroup keeps QEMU from opening it",
                    if set { "lacks" } else { "is unset, so libvirt's default list applies, which lacks" },
                    missing.join(", ")
                ));
                needs.acl = missing;
            }
        }
    }

    let fix_text = |needs: &Needs| -> String {
        let mut r = String::new();
        if let Some(t) = &needs.tmpfiles {
            r.push_str(&format!(
                "Create the shared-memory file at boot with access for {dname} and the QEMU user ({quser}, in group {kvm_group}):\n    echo '{t}' | sudo tee /etc/tmpfiles.d/10-looking-glass.conf && sudo systemd-tmpfiles --create /etc/tmpfiles.d/10-looking-glass.conf\n"
            ));
        }
        if needs.kvmfr_load {
            r.push_str(
                "Load kvmfr at boot:\n    echo kvmfr | sudo tee /etc/modules-load.d/kvmfr.conf\n",
            );
        }
        if let (Some(m), Some(v)) = (needs.kvmfr_size_mb, needs.kvmfr_size_value()) {
            r.push_str(&format!("Give kvmfr0 {} (width x height x 4 x 2 + 10 MiB, rounded up to a power of two), in the modprobe.d line that sets static_size_mb now if there is one:\n    echo 'options kvmfr static_size_mb={v}' | sudo tee /etc/modprobe.d/kvmfr.conf\n    sudo modprobe -r kvmfr && sudo modprobe kvmfr\n", size_words(m)));
        }
        if let Some(u) = &needs.kvmfr_udev {
            r.push_str(&format!("Give /dev/kvmfr* to {dname} and group {kvm_group}:\n    echo '{u}' | sudo tee /etc/udev/rules.d/99-kvmfr.rules && sudo udevadm control --reload && sudo udevadm trigger --subsystem-match=kvmfr\n"));
        }
        if !needs.acl.is_empty() {
            r.push_str(&format!(
                "Add {} to cgroup_device_acl in the first such key of qemu.conf, keeping libvirt's defaults ({}), then restart libvirtd.\n",
                needs.acl.join(", "),
                support::DEFAULT_ACL.join(", ")
            ));
        }
        for n in &needs.notes {
            r.push_str(&format!("{n}.\n"));
        }
        if support::distro(s) == support::Distro::NixOs && !r.is_empty() {
            r.push_str("On NixOS put this in configuration.nix instead (`gvtg fix --passthrough PCI` prints the snippet): systemd.tmpfiles.rules, boot.extraModulePackages = [ config.boot.kernelPackages.kvmfr ], boot.kernelModules, boot.extraModprobeConfig, services.udev.extraRules, virtualisation.libvirtd.qemu.verbatimConfig.\n");
        }
        r.trim_end().to_string()
    };

    // Sizes below what 1080p needs, for the /dev/shm path (kvmfr is judged above).
    for u in f.uses.iter().filter(|u| u.path.starts_with("/dev/shm/")) {
        if let Some(b) = u.size {
            if mib(b) < MIN_MIB {
                warns.push(format!(
                    "{} gives {} {}: Looking Glass needs 32 MiB for 1920x1080, 64 MiB for 2560x1440, 128 MiB for 3840x2160",
                    u.origin,
                    u.path,
                    size_words(mib(b))
                ));
            }
        }
    }
    if !fails.is_empty() {
        o.status = Status::Fail;
        o.summary = fails.join("; ");
        if !warns.is_empty() {
            o.summary = format!("{}; also: {}", o.summary, warns.join("; "));
        }
    } else if !warns.is_empty() {
        o.status = Status::Warn;
        o.summary = warns.join("; ");
    } else {
        o.summary = format!("Looking Glass ready: {}", good.join("; "));
        if !good.iter().any(|g| g.contains("MiB")) {
            if let Some(m) = f.uses.iter().filter_map(|u| u.size).max() {
                o.summary = format!("{}; shared memory {}", o.summary, size_words(mib(m)));
            }
        }
    }
    let r = fix_text(&needs);
    // Without a known desktop user a rule would name a placeholder: the fix leaves it to a note.
    if f.desktop.is_none() {
        if let Some(t) = needs.tmpfiles.take() {
            needs.notes.push(format!("the desktop user is unknown: add `{t}` to /etc/tmpfiles.d/10-looking-glass.conf with USER replaced by the account that runs the client"));
        }
        if let Some(u) = needs.kvmfr_udev.take() {
            needs.notes.push(format!("the desktop user is unknown: add `{u}` to /etc/udev/rules.d/99-kvmfr.rules with USER replaced by the account that runs the client"));
        }
    }
    if o.status != Status::Pass && !r.is_empty() {
        o.remedy = Some(r);
    }
    (o, needs)
}

/// `passthrough.looking-glass`.
pub(super) fn check(s: &Snapshot, _: &Prior) -> Outcome {
    judge(s).0
}

/// What `gvtg fix --passthrough` changes for Looking Glass (empty when the check passes or skips).
pub fn needs(s: &Snapshot) -> Needs {
    let (o, n) = judge(s);
    if matches!(o.status, Status::Pass | Status::Skip) {
        Needs::default()
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{snapshot_with, Tree};

    const NONE: Prior = Prior { done: &[] };

    #[test]
    fn formula_matches_the_documentation() {
        assert_eq!(required_mib(1920, 1080), 32);
        assert_eq!(required_mib(2560, 1440), 64);
        assert_eq!(required_mib(3840, 2160), 128);
        assert_eq!(max_resolution(32), Some("1920x1200"));
        assert_eq!(max_resolution(64), Some("3440x1440"));
        assert_eq!(max_resolution(128), Some("5120x2880"));
        assert_eq!(max_resolution(127), Some("3440x1440"));
        assert_eq!(max_resolution(8), None);
        assert_eq!(qemu_size("32M"), Some(32 << 20));
        assert_eq!(scaled("32", Some("M")), Some(32 << 20));
        assert_eq!(scaled("33554432", None), Some(32 << 20));
    }

    #[test]
    fn json_object_syntax_is_read() {
        let s = snapshot_with(|t| {
            accounts(t);
            t.file(
                "etc/libvirt/qemu/win10.xml",
                "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>w</name><qemu:commandline><qemu:arg value='-object'/><qemu:arg value='{\"qom-type\":\"memory-backend-file\",\"id\":\"looking-glass\",\"mem-path\":\"/dev/kvmfr0\",\"size\":67108864,\"share\":true}'/></qemu:commandline></domain>",
            );
        });
        let u = domain_uses(&s);
        assert_eq!(u.len(), 1);
        assert_eq!(
            (u[0].path.as_str(), u[0].size),
            ("/dev/kvmfr0", Some(64 << 20))
        );
    }

    fn accounts(t: &mut Tree) {
        t.file(
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\nlibvirt-qemu:x:64055:108::/:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        );
        t.file(
            "etc/group",
            "root:x:0:\nkvm:x:108:libvirt-qemu\nlibvirt-qemu:x:64055:\nalice:x:1000:\n",
        );
        t.file("etc/os-release", "ID=debian\n");
        t.file("etc/libvirt/qemu.conf", "#user = \"libvirt-qemu\"\n");
    }

    /// A Debian host with a VM mapping kvmfr devices (`domain`), the kvmfr module loaded and
    /// loaded at boot, with `static_size_mb=sizes`.
    fn kvmfr_host(t: &mut Tree, domain: &str, sizes: &str) {
        accounts(t);
        t.file("etc/libvirt/qemu/win10.xml", domain);
        t.file(
            "proc/modules",
            "kvmfr 16384 0 - Live 0x0000000000000000 (OE)\n",
        );
        t.file(
            "etc/modprobe.d/kvmfr.conf",
            &format!("options kvmfr static_size_mb={sizes}\n"),
        );
        t.file("etc/modules-load.d/kvmfr.conf", "kvmfr\n");
    }

    const SHMEM: &str = "<domain type='kvm'><name>win10</name><devices><shmem name='looking-glass'><model type='ivshmem-plain'/><size unit='M'>32</size></shmem></devices></domain>\n";

    #[test]
    fn nothing_configured_skips() {
        let s = snapshot_with(accounts);
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Skip);
        assert!(o.summary.contains("not set up"), "{}", o.summary);
        assert_eq!(needs(&s), Needs::default());
    }

    #[test]
    fn shmem_without_tmpfiles_warns_and_plans_the_line() {
        let s = snapshot_with(|t| {
            accounts(t);
            t.file("etc/libvirt/qemu/win10.xml", SHMEM);
        });
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(
            o.summary.contains("no tmpfiles.d line creates it"),
            "{}",
            o.summary
        );
        assert_eq!(
            needs(&s).tmpfiles.as_deref(),
            Some("f /dev/shm/looking-glass 0660 alice kvm -")
        );
        // With the documented line, the configuration passes (the file appears at boot).
        let s = snapshot_with(|t| {
            accounts(t);
            t.file("etc/libvirt/qemu/win10.xml", SHMEM);
            t.file(
                "etc/tmpfiles.d/10-looking-glass.conf",
                "f /dev/shm/looking-glass 0660 alice kvm -\n",
            );
        });
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(
            o.summary.contains("32 MiB (enough for 1920x1200)"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn shm_file_owned_by_qemu_fails_for_the_desktop_user() {
        let tree = |t: &mut Tree, tmpfiles: bool| {
            accounts(t);
            t.file("etc/libvirt/qemu/win10.xml", SHMEM);
            t.file("dev/shm/looking-glass", "");
            t.node("dev/shm/looking-glass", "file", 0o644, 64055, 64055, None);
            if tmpfiles {
                t.file(
                    "etc/tmpfiles.d/10-looking-glass.conf",
                    "f /dev/shm/looking-glass 0660 alice kvm -\n",
                );
            }
        };
        let s = snapshot_with(|t| tree(t, false));
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(
            o.summary.contains("/dev/shm/looking-glass (0644 libvirt-qemu:libvirt-qemu) is not read-write for alice"),
            "{}",
            o.summary
        );
        assert!(o.remedy.unwrap().contains("systemd-tmpfiles --create"));
        // The documented line in place: right from the next boot (tmpfiles adjusts `f` files).
        let s = snapshot_with(|t| tree(t, true));
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(
            o.summary.contains("sets it right at the next boot"),
            "{}",
            o.summary
        );
        assert_eq!(needs(&s).tmpfiles, None);
    }

    #[test]
    fn a_file_set_right_by_hand_still_needs_the_tmpfiles_line() {
        let s = snapshot_with(|t| {
            accounts(t);
            t.file("etc/libvirt/qemu/win10.xml", SHMEM);
            t.file("dev/shm/looking-glass", "");
            t.node("dev/shm/looking-glass", "file", 0o660, 1000, 108, None);
        });
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(
            o.summary.contains("recreates it after a reboot"),
            "{}",
            o.summary
        );
        assert_eq!(
            needs(&s).tmpfiles.as_deref(),
            Some("f /dev/shm/looking-glass 0660 alice kvm -")
        );
    }

    #[test]
    fn small_shmem_warns_with_the_resolution() {
        let s = snapshot_with(|t| {
            accounts(t);
            t.file("etc/libvirt/qemu/win10.xml", &SHMEM.replace(">32<", ">16<"));
            t.file(
                "etc/tmpfiles.d/10-looking-glass.conf",
                "f /dev/shm/looking-glass 0660 alice kvm -\n",
            );
        });
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Warn);
        assert!(
            o.summary
                .starts_with("/etc/libvirt/qemu/win10.xml gives /dev/shm/looking-glass 16 MiB (not enough even for 1280x720)"),
            "{}",
            o.summary
        );
    }

    const KVMFR: &str = "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>win10</name><qemu:commandline><qemu:arg value='-device'/><qemu:arg value='{\"driver\":\"ivshmem-plain\",\"id\":\"shmem0\",\"memdev\":\"looking-glass\"}'/><qemu:arg value='-object'/><qemu:arg value='memory-backend-file,id=looking-glass,mem-path=/dev/kvmfr0,size=64M,share=yes'/></qemu:commandline></domain>\n";

    #[test]
    fn kvmfr_needs_size_node_access_and_the_acl() {
        let s = snapshot_with(|t| {
            kvmfr_host(t, KVMFR, "32");
            t.node("dev/kvmfr0", "char", 0o600, 0, 0, Some((242, 0)));
            t.file(
                "etc/libvirt/qemu.conf",
                "#user = \"libvirt-qemu\"\ncgroup_device_acl = [ \"/dev/null\", \"/dev/kvm\" ]\ncgroup_device_acl = [ \"/dev/kvmfr0\" ]\n",
            );
        });
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(
            o.summary
                .contains("maps 64 MiB of /dev/kvmfr0 but kvmfr gives it 32 MiB"),
            "{}",
            o.summary
        );
        assert!(
            o.summary.contains(
                "/dev/kvmfr0 (0600 root:root) is not read-write for libvirt-qemu and alice"
            ),
            "{}",
            o.summary
        );
        // The first key wins: the second list naming /dev/kvmfr0 is ignored by libvirt.
        assert!(
            o.summary.contains("cgroup_device_acl lacks /dev/kvmfr0"),
            "{}",
            o.summary
        );
        let n = needs(&s);
        assert_eq!(n.kvmfr_size_mb, Some(64));
        assert_eq!(n.acl, ["/dev/kvmfr0"]);
        assert_eq!(
            n.kvmfr_udev.as_deref(),
            Some("SUBSYSTEM==\"kvmfr\", OWNER=\"alice\", GROUP=\"kvm\", MODE=\"0660\"")
        );
        assert!(!n.kvmfr_load);
        assert_eq!(n.kvmfr_size_value().as_deref(), Some("64"));

        // Two devices: kvmfr1 keeps its size when kvmfr0 grows; a device without a size fails.
        let two = KVMFR.replace(
            "</qemu:commandline>",
            "<qemu:arg value='-object'/><qemu:arg value='memory-backend-file,id=lg2,mem-path=/dev/kvmfr2,size=32M,share=yes'/></qemu:commandline>",
        );
        let s = snapshot_with(|t| {
            kvmfr_host(t, &two, "32,16");
        });
        let o = check(&s, &NONE);
        assert!(
            o.summary
                .contains("maps /dev/kvmfr2 but static_size_mb lists no size for it"),
            "{}",
            o.summary
        );
        let n = needs(&s);
        assert_eq!(n.kvmfr_size_value().as_deref(), Some("64,16"));
        assert!(
            n.notes.iter().any(|x| x.contains("value 3 of")),
            "{:?}",
            n.notes
        );

        // Unset ACL: libvirt's default list applies, and it lacks the node.
        let s = snapshot_with(|t| {
            kvmfr_host(t, KVMFR, "64");
            t.node("dev/kvmfr0", "char", 0o660, 1000, 108, Some((242, 0)));
        });
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(
            o.summary
                .contains("is unset, so libvirt's default list applies"),
            "{}",
            o.summary
        );
        // All in place: pass.
        let s = snapshot_with(|t| {
            kvmfr_host(t, KVMFR, "64");
            t.node("dev/kvmfr0", "char", 0o660, 1000, 108, Some((242, 0)));
            t.file(
                "etc/libvirt/qemu.conf",
                "cgroup_device_acl = [ \"/dev/null\", \"/dev/full\", \"/dev/zero\", \"/dev/random\", \"/dev/urandom\", \"/dev/ptmx\", \"/dev/kvm\", \"/dev/userfaultfd\", \"/dev/kvmfr0\" ]\n",
            );
        });
        let o = check(&s, &NONE);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(
            o.summary.contains("kvmfr0 64 MiB (enough for 3440x1440)"),
            "{}",
            o.summary
        );
    }
}
