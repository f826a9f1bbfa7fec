//! `gvtg preflight`: will this libvirt domain start on this host?
//!
//! [`Domain::parse`] reads what matters from a domain XML (hostdevs, graphics, firmware, memory,
//! `<qemu:commandline>` and `<qemu:override>`), through the hostile-XML guard of
//! [`crate::parse::domain_xml::parse`]. [`run`] judges it against a [`Snapshot`] and a few
//! [`Facts`] (libvirt version, auto-start definitions, DRM render nodes), as pure functions like
//! the doctor's checks, and returns [`Item`]s carrying the doctor's [`Outcome`] type.
//!
//! Sources: libvirt formatdomain "Host device assignment" (display since 4.6.0 needs a graphics
//! framebuffer; ramfb since 5.10.0; `managed` ignored for mdev), drvqemu (`<qemu:override>` since
//! 8.2.0; JSON `-device` since 8.1.0 breaks `-set device.hostdev0.*`), kvmgt (one vGPU per KVM).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::checks::support;
use crate::checks::{Outcome, Status};
use crate::host::root::NodeInfo;
use crate::host::{Probe, Snapshot};
use crate::parse::domain_xml::{self, QEMU_NS};

/// One preflight verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Stable id (`vgpu.uuid`, `qemu.set-hostdev`…).
    pub id: &'static str,
    /// Short title.
    pub title: &'static str,
    /// The verdict.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// An mdev `<hostdev>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MdevHostdev {
    /// The `uuid` of `<source><address>` as written.
    pub uuid: String,
    /// `display` as written (None: absent, which means off).
    pub display: Option<String>,
    /// `ramfb='on'`.
    pub ramfb: bool,
    /// `<alias name=…>`.
    pub alias: Option<String>,
}

impl MdevHostdev {
    /// `display='on'`.
    pub fn display_on(&self) -> bool {
        self.display.as_deref() == Some("on")
    }
}

/// A PCI `<hostdev>`.
#[derive(Debug, Clone, PartialEq)]
pub struct PciHostdev {
    /// `0000:00:02.2`.
    pub address: String,
    /// `managed='yes'`.
    pub managed: bool,
}

/// A `<graphics>` device.
#[derive(Debug, Clone, PartialEq)]
pub struct Graphics {
    /// `spice`, `vnc`, `egl-headless`…
    pub kind: String,
    /// `<gl enable='yes'>` (always true for egl-headless).
    pub gl: bool,
    /// `<gl rendernode=…>`.
    pub rendernode: Option<String>,
    /// Listens on the network (a `listen` address or `<listen type='address|network'>`).
    pub remote: bool,
}

/// One `qemu:override` property.
#[derive(Debug, Clone, PartialEq)]
pub struct OverrideProp {
    /// Device alias.
    pub alias: String,
    /// Property name.
    pub name: String,
    /// Property value.
    pub value: String,
}

/// What preflight reads from a domain XML.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Domain {
    /// `<name>`.
    pub name: Option<String>,
    /// `qemu:` elements used without `xmlns:qemu` on `<domain>`.
    pub qemu_ns_missing: bool,
    /// `xmlns:qemu` bound to another URI.
    pub qemu_ns_wrong: Option<String>,
    /// mdev hostdevs, in order.
    pub mdevs: Vec<MdevHostdev>,
    /// PCI hostdevs, in order.
    pub pcis: Vec<PciHostdev>,
    /// Hostdevs without a user alias (libvirt names them hostdev0…).
    pub auto_aliased: usize,
    /// User aliases (`ua-…`) on hostdevs.
    pub user_aliases: Vec<String>,
    /// Graphics devices.
    pub graphics: Vec<Graphics>,
    /// UEFI firmware (OVMF).
    pub ovmf: bool,
    /// `<memoryBacking><locked/>`.
    pub locked: bool,
    /// `<memoryBacking><hugepages/>`.
    pub hugepages: bool,
    /// `<memtune><hard_limit>` in KiB.
    pub hard_limit_kib: Option<u64>,
    /// `<memory>` in KiB.
    pub memory_kib: Option<u64>,
    /// `<qemu:commandline>` `<qemu:arg value=…>` in order.
    pub qemu_args: Vec<String>,
    /// `<qemu:override>` properties.
    pub overrides: Vec<OverrideProp>,
    /// ROM files: `<rom file=…>` of hostdevs, and `romfile` set by `-set` or `qemu:override`.
    pub roms: Vec<String>,
}

fn to_kib(value: &str, unit: Option<&str>) -> Option<u64> {
    let v: u64 = value.trim().parse().ok()?;
    let (mult, div): (u64, u64) = match unit.unwrap_or("KiB") {
        "b" | "bytes" => (1, 1024),
        "KB" => (1000, 1024),
        "k" | "KiB" => (1, 1),
        "MB" => (1_000_000, 1024),
        "M" | "MiB" => (1024, 1),
        "GB" => (1_000_000_000, 1024),
        "G" | "GiB" => (1024 * 1024, 1),
        "T" | "TiB" => (1024 * 1024 * 1024, 1),
        _ => return None,
    };
    v.checked_mul(mult).map(|x| x / div)
}

impl Domain {
    /// Parses a domain XML. Errors (hostile or malformed XML, not a `<domain>`) are messages.
    pub fn parse(text: &str) -> Result<Domain, String> {
        domain_xml::check_safe(text)?;
        let mut dom = Domain::default();
        // `qemu:` elements without the namespace declaration: libvirt rejects the XML. Declare it
        // ourselves so the rest can still be judged, and report it.
        let fixed;
        let mut text = text;
        if text.contains("<qemu:") && !text.contains("xmlns:qemu") {
            if let Some(pos) = root_tag_end(text) {
                fixed = format!("{} xmlns:qemu=\"{QEMU_NS}\"{}", &text[..pos], &text[pos..]);
                text = &fixed;
                dom.qemu_ns_missing = true;
            }
        }
        let doc = domain_xml::parse(text)?;
        let root = doc.root_element();
        if root.tag_name().name() != "domain" || root.tag_name().namespace().is_some() {
            return Err(format!(
                "the root element is <{}>, not a libvirt <domain>",
                root.tag_name().name()
            ));
        }
        let mut qemu_uris = vec![QEMU_NS.to_string()];
        for n in doc.descendants().filter(|n| n.is_element()) {
            for ns in n.namespaces() {
                if ns.name() == Some("qemu") && ns.uri() != QEMU_NS {
                    dom.qemu_ns_wrong = Some(ns.uri().to_string());
                    qemu_uris.push(ns.uri().to_string());
                }
            }
        }
        let is_qemu = |n: &roxmltree::Node, local: &str| {
            n.tag_name().name() == local
                && n.tag_name()
                    .namespace()
                    .is_some_and(|u| qemu_uris.iter().any(|q| q == u))
        };
        let plain = |n: &roxmltree::Node, local: &str| {
            n.is_element() && n.tag_name().name() == local && n.tag_name().namespace().is_none()
        };
        dom.name = root
            .children()
            .find(|c| plain(c, "name"))
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string());
        for n in root.descendants().filter(|n| n.is_element()) {
            if plain(&n, "hostdev") && n.attribute("mode").unwrap_or("subsystem") == "subsystem" {
                let alias = child(n, "alias").and_then(|a| a.attribute("name"));
                match alias {
                    Some(a) if a.starts_with("ua-") => dom.user_aliases.push(a.to_string()),
                    _ => dom.auto_aliased += 1,
                }
                if let Some(f) = child(n, "rom").and_then(|r| r.attribute("file")) {
                    dom.roms.push(f.to_string());
                }
                let addr = child(n, "source").and_then(|s| child(s, "address"));
                match n.attribute("type") {
                    Some("mdev") => dom.mdevs.push(MdevHostdev {
                        uuid: addr
                            .and_then(|a| a.attribute("uuid"))
                            .unwrap_or("")
                            .to_string(),
                        display: n.attribute("display").map(str::to_string),
                        ramfb: n.attribute("ramfb") == Some("on"),
                        alias: alias.map(str::to_string),
                    }),
                    Some("pci") => {
                        let num = |k: &str| {
                            addr.and_then(|a| a.attribute(k)).and_then(|v| {
                                let v = v.trim();
                                match v.strip_prefix("0x") {
                                    Some(h) => u32::from_str_radix(h, 16).ok(),
                                    None => v.parse().ok(),
                                }
                            })
                        };
                        let address = format!(
                            "{:04x}:{:02x}:{:02x}.{:x}",
                            num("domain").unwrap_or(0),
                            num("bus").unwrap_or(0),
                            num("slot").unwrap_or(0),
                            num("function").unwrap_or(0)
                        );
                        dom.pcis.push(PciHostdev {
                            address,
                            managed: n.attribute("managed") == Some("yes"),
                        });
                    }
                    _ => {}
                }
            } else if plain(&n, "graphics") {
                let kind = n.attribute("type").unwrap_or("").to_string();
                let gl = child(n, "gl");
                dom.graphics.push(Graphics {
                    gl: kind == "egl-headless"
                        || gl.and_then(|g| g.attribute("enable")) == Some("yes"),
                    rendernode: gl
                        .and_then(|g| g.attribute("rendernode"))
                        .map(str::to_string),
                    remote: n.attribute("listen").is_some()
                        || n.children().any(|l| {
                            l.is_element()
                                && l.tag_name().name() == "listen"
                                && matches!(l.attribute("type"), Some("address" | "network"))
                        }),
                    kind,
                });
            } else if plain(&n, "os") {
                if n.attribute("firmware") == Some("efi") {
                    dom.ovmf = true;
                }
                if let Some(l) = child(n, "loader") {
                    let t = l.text().unwrap_or("").to_ascii_lowercase();
                    if l.attribute("type") == Some("pflash")
                        || t.contains("ovmf")
                        || t.contains("edk2")
                    {
                        dom.ovmf = true;
                    }
                }
            } else if plain(&n, "memoryBacking") {
                dom.locked |= child(n, "locked").is_some();
                dom.hugepages |= child(n, "hugepages").is_some();
            } else if plain(&n, "memtune") {
                dom.hard_limit_kib = child(n, "hard_limit")
                    .and_then(|h| to_kib(h.text().unwrap_or(""), h.attribute("unit")));
            } else if plain(&n, "memory") && n.parent() == Some(root) {
                dom.memory_kib = to_kib(n.text().unwrap_or(""), n.attribute("unit"));
            } else if is_qemu(&n, "arg") {
                if let Some(v) = n.attribute("value") {
                    dom.qemu_args.push(v.to_string());
                }
            } else if is_qemu(&n, "device") {
                let alias = n.attribute("alias").unwrap_or("").to_string();
                for p in n.descendants().filter(|p| is_qemu(p, "property")) {
                    dom.overrides.push(OverrideProp {
                        alias: alias.clone(),
                        name: p.attribute("name").unwrap_or("").to_string(),
                        value: p.attribute("value").unwrap_or("").to_string(),
                    });
                }
            }
        }
        let (sets, _) = set_args(&dom.qemu_args);
        let romfiles = sets
            .iter()
            .filter(|s| s.group == "device" && s.prop == "romfile")
            .map(|s| s.value.clone())
            .chain(
                dom.overrides
                    .iter()
                    .filter(|p| p.name == "romfile")
                    .map(|p| p.value.clone()),
            )
            .collect::<Vec<_>>();
        for r in romfiles {
            if !dom.roms.contains(&r) {
                dom.roms.push(r);
            }
        }
        Ok(dom)
    }

    /// Whether any `qemu:` element is used.
    pub fn uses_qemu_ns(&self) -> bool {
        self.qemu_ns_missing
            || self.qemu_ns_wrong.is_some()
            || !self.qemu_args.is_empty()
            || !self.overrides.is_empty()
    }

    /// The device ids QEMU will know for hostdevs: `hostdev0…` and user aliases.
    pub fn hostdev_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.auto_aliased)
            .map(|i| format!("hostdev{i}"))
            .collect();
        v.extend(self.user_aliases.iter().cloned());
        v
    }
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, local: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == local)
}

/// Byte offset just after `<domain` in the root start tag.
fn root_tag_end(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("<domain") {
        let at = from + i + "<domain".len();
        if text[at..]
            .chars()
            .next()
            .is_some_and(|c| c.is_whitespace() || c == '>' || c == '/')
        {
            return Some(at);
        }
        from = at;
    }
    None
}

/// One `-set group.id.prop=value` from `<qemu:commandline>`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetArg {
    /// `device`.
    pub group: String,
    /// `hostdev0`.
    pub id: String,
    /// Property.
    pub prop: String,
    /// Value.
    pub value: String,
}

/// `-set` arguments as QEMU reads them (each `-set` takes the next argument, whatever it is):
/// the parsed ones, and the invalid ones with QEMU's complaint.
pub fn set_args(args: &[String]) -> (Vec<SetArg>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "-set" || args[i] == "--set" {
            match args.get(i + 1) {
                None => bad.push("option -set requires an argument".to_string()),
                Some(v) => {
                    let parsed = v.split_once('=').and_then(|(l, val)| {
                        let (g, rest) = l.split_once('.')?;
                        let (id, prop) = rest.split_once('.')?;
                        (!g.is_empty() && !id.is_empty() && !prop.is_empty()).then(|| SetArg {
                            group: g.into(),
                            id: id.into(),
                            prop: prop.into(),
                            value: val.into(),
                        })
                    });
                    match parsed {
                        Some(s) => ok.push(s),
                        None => bad.push(format!("Invalid -set parameter: {v}")),
                    }
                }
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    (ok, bad)
}

/// The `<qemu:override>` equivalent of `-set device.ID.PROP=VALUE` lines (libvirt ≥ 8.2.0).
pub fn override_xml(sets: &[SetArg]) -> String {
    let mut by_id: Vec<(&str, Vec<&SetArg>)> = Vec::new();
    for s in sets.iter().filter(|s| s.group == "device") {
        match by_id.iter_mut().find(|(id, _)| *id == s.id) {
            Some((_, v)) => v.push(s),
            None => by_id.push((&s.id, vec![s])),
        }
    }
    let mut x = String::from("<qemu:override>\n");
    for (id, props) in by_id {
        x.push_str(&format!(
            "  <qemu:device alias='{}'>\n    <qemu:frontend>\n",
            xml_escape(id)
        ));
        for p in props {
            let (ty, val) = match p.value.as_str() {
                "on" | "true" | "yes" => ("bool", "true".to_string()),
                "off" | "false" | "no" => ("bool", "false".to_string()),
                v if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                    ("unsigned", v.to_string())
                }
                v => ("string", v.to_string()),
            };
            x.push_str(&format!(
                "      <qemu:property name='{}' type='{ty}' value='{}'/>\n",
                xml_escape(&p.prop),
                xml_escape(&val)
            ));
        }
        x.push_str("    </qemu:frontend>\n  </qemu:device>\n");
    }
    x.push_str("</qemu:override>");
    x
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// A libvirt version `x.y.z`.
pub type Version = (u32, u32, u32);

/// Parses the last `x.y[.z]` token of a `--version` line (`libvirtd (libvirt) 8.0.0`).
pub fn parse_version(s: &str) -> Option<Version> {
    let tok = s.split_whitespace().last()?;
    let mut it = tok.split('.').map(|p| p.parse::<u32>());
    let a = it.next()?.ok()?;
    let b = it.next()?.ok()?;
    let c = it.next().and_then(Result::ok).unwrap_or(0);
    Some((a, b, c))
}

/// Host facts preflight needs beyond the doctor's snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// libvirt's version, when known.
    pub libvirt_version: Option<Version>,
    /// Where the version came from, or why it is unknown.
    pub libvirt_version_source: String,
    /// UUIDs defined to be created at boot → where (mdevctl definition or systemd unit).
    pub autostart: BTreeMap<String, String>,
    /// `/dev/dri/renderD*` nodes (path → node).
    pub render_nodes: BTreeMap<String, NodeInfo>,
    /// The render nodes named by `<gl rendernode=…>` (path → what stat said).
    pub named_nodes: BTreeMap<String, Probe<NodeInfo>>,
    /// ROM files the domain names → whether they exist.
    pub roms: BTreeMap<String, bool>,
    /// Existing ROM files → the nodes on the way to them (`/`, each directory, the file), for
    /// whether the QEMU user can reach and read them.
    pub rom_paths: BTreeMap<String, Vec<(String, NodeInfo)>>,
}

impl Facts {
    /// Reads the facts for `dom` from `root`. The libvirt version is not read here (it needs a
    /// process on a live host): the caller sets it.
    pub fn collect(root: &crate::host::HostRoot, dom: &Domain) -> Facts {
        let mut f = Facts::default();
        if let Probe::Ok(parents) = root.read_dir("etc/mdevctl.d") {
            for p in parents {
                if let Probe::Ok(uuids) = root.read_dir(&format!("etc/mdevctl.d/{p}")) {
                    for u in uuids {
                        let rel = format!("etc/mdevctl.d/{p}/{u}");
                        let auto = root.read(&rel).into_ok().and_then(|t| {
                            serde_json::from_str::<serde_json::Value>(&t)
                                .ok()
                                .map(|v| v.get("start").and_then(|s| s.as_str()) == Some("auto"))
                        });
                        if auto == Some(true) {
                            f.autostart
                                .insert(u.to_ascii_lowercase(), format!("/{rel} (start: auto)"));
                        }
                    }
                }
            }
        }
        for dir in [
            "etc/systemd/system",
            "usr/lib/systemd/system",
            "lib/systemd/system",
        ] {
            if let Probe::Ok(names) = root.read_dir(dir) {
                for n in names {
                    if let Some(u) = n
                        .strip_prefix("gvtg-vgpu-")
                        .and_then(|r| r.strip_suffix(".service"))
                    {
                        f.autostart
                            .entry(u.to_ascii_lowercase())
                            .or_insert_with(|| format!("/{dir}/{n}"));
                    }
                }
            }
        }
        if let Probe::Ok(names) = root.read_dir("dev/dri") {
            for n in names.iter().filter(|n| n.starts_with("renderD")) {
                if let Probe::Ok(node) = root.node(&format!("dev/dri/{n}")) {
                    f.render_nodes.insert(format!("/dev/dri/{n}"), node);
                }
            }
        }
        for r in &dom.roms {
            if rom_path_ok(r) {
                let rel = r.trim_start_matches('/');
                let exists = root.exists(rel);
                f.roms.insert(r.clone(), exists);
                if exists {
                    let mut chain = Vec::new();
                    let mut acc = String::new();
                    for (i, c) in rel.split('/').filter(|c| !c.is_empty()).enumerate() {
                        if i > 0 {
                            acc.push('/');
                        }
                        acc.push_str(c);
                        if let Probe::Ok(n) = root.node(&acc) {
                            chain.push((format!("/{acc}"), n));
                        }
                    }
                    f.rom_paths.insert(r.clone(), chain);
                }
            }
        }
        for g in &dom.graphics {
            if let Some(r) = &g.rendernode {
                let probe = if r.starts_with('/') && !r.split('/').any(|c| c == "..") {
                    root.node(r.trim_start_matches('/'))
                } else {
                    Probe::Invalid(format!("{r}: not an absolute path"))
                };
                f.named_nodes.insert(r.clone(), probe);
            }
        }
        f
    }
}

/// An absolute path without `..` or shell/template placeholders (`${user}`, `$HOME`, `~`).
fn rom_path_ok(p: &str) -> bool {
    p.starts_with('/') && !p.split('/').any(|c| c == "..") && !p.contains('$') && !p.contains('~')
}

/// Whether DAC lets `uid`/`gids` use `n` with `bits` (4 read, 1 search/execute); root may.
fn dac_allows(n: &NodeInfo, uid: u32, gids: &[u32], bits: u32) -> bool {
    if uid == 0 {
        return true;
    }
    let have = if n.uid == uid {
        (n.mode >> 6) & 0o7
    } else if gids.contains(&n.gid) {
        (n.mode >> 3) & 0o7
    } else {
        n.mode & 0o7
    };
    have & bits == bits
}

/// Why the QEMU user cannot read `rom` (a directory it cannot search, or the file itself), as
/// `path (mode owner:group)`; None when it can, or when the user is unknown.
fn rom_unreadable(s: &Snapshot, f: &Facts, rom: &str, qu: &QemuUser) -> Option<String> {
    let (uid, gids) = qu.ids.as_ref()?;
    let chain = f.rom_paths.get(rom)?;
    for (i, (p, n)) in chain.iter().enumerate() {
        let last = i + 1 == chain.len();
        let bits = if last { 0o4 } else { 0o1 };
        if !dac_allows(n, *uid, gids, bits) {
            return Some(format!(
                "{} ({}){}",
                p,
                support::describe_node(s, n),
                if last {
                    ""
                } else {
                    ": directory not searchable"
                }
            ));
        }
    }
    None
}

fn check_roms(dom: &Domain, f: &Facts, s: &Snapshot, qu: &QemuUser) -> Outcome {
    let mut o = Outcome::pass("");
    let mut notes = Vec::new();
    for r in &dom.roms {
        if !rom_path_ok(r) {
            raise(&mut o, Status::Fail);
            notes.push(format!("ROM file '{r}' is not an absolute path (a placeholder?): QEMU will fail to find it"));
            o.push(r.clone(), "not an absolute, literal path");
        } else if f.roms.get(r) == Some(&true) {
            match rom_unreadable(s, f, r, qu) {
                // QEMU opens the ROM as the QEMU user; libvirt does not hand it over, and an
                // unreadable file fails exactly like a missing one (qemu_find_file).
                Some(why) => {
                    raise(&mut o, Status::Fail);
                    notes.push(format!(
                        "{r} exists but {} cannot read it: QEMU will fail: failed to find romfile \"{r}\"",
                        qu.name
                    ));
                    o.push(r.clone(), format!("not readable by {}: {why}", qu.name));
                    add_fix(&mut o, &format!("Make it readable by {}: sudo chmod 0644 {r} (and a+x on its directories), or move it to /usr/share/vgabios or /var/lib/libvirt/images.", qu.name));
                }
                None => {
                    notes.push(format!("{r} exists, readable by {}", qu.name));
                    o.push(r.clone(), "exists");
                }
            }
        } else {
            raise(&mut o, Status::Fail);
            notes.push(format!("QEMU will fail: failed to find romfile \"{r}\""));
            o.push(r.clone(), "does not exist");
        }
    }
    if notes.iter().any(|n| {
        n.contains("not an absolute path")
            || (n.contains("failed to find romfile") && !n.contains("cannot read it"))
    }) {
        add_fix(&mut o, "Put the ROM where the XML says (libvirt's images directory, e.g. /var/lib/libvirt/images, is readable by QEMU), or fix the path.");
    }
    o.summary = notes.join("; ");
    o
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// The QEMU user's uid and gids, and whether libvirt's dynamic_ownership is on.
struct QemuUser {
    name: String,
    ids: Option<(u32, Vec<u32>)>,
    dynamic: bool,
    conf: Option<crate::parse::qemu_conf::QemuConf>,
}

fn qemu_user(s: &Snapshot) -> QemuUser {
    let support::QemuAccess {
        identity: id,
        conf,
        dynamic_ownership: dynamic,
        ids,
    } = support::qemu_access(s);
    QemuUser {
        name: id.user,
        ids,
        dynamic,
        conf,
    }
}

fn item(id: &'static str, title: &'static str, outcome: Outcome) -> Item {
    Item { id, title, outcome }
}

/// Raises `o` to `s` (Pass < Warn < Fail), never to Skip.
fn raise(o: &mut Outcome, s: Status) {
    if matches!(s, Status::Warn | Status::Fail) && (o.status == Status::Pass || s > o.status) {
        o.status = s;
    }
}

fn add_fix(o: &mut Outcome, fix: &str) {
    match &mut o.remedy {
        Some(r) => {
            r.push('\n');
            r.push_str(fix);
        }
        None => o.remedy = Some(fix.to_string()),
    }
}

/// Runs every preflight check that applies to `dom`.
pub fn run(dom: &Domain, s: &Snapshot, f: &Facts) -> Vec<Item> {
    let mut out = Vec::new();
    let qu = qemu_user(s);
    if dom.uses_qemu_ns() {
        out.push(item(
            "qemu.namespace",
            "<qemu:…> elements are in libvirt's QEMU namespace",
            check_namespace(dom),
        ));
    }
    let (sets, bad_sets) = set_args(&dom.qemu_args);
    if !sets.is_empty() || !bad_sets.is_empty() || !dom.overrides.is_empty() {
        out.push(item(
            "qemu.set-hostdev",
            "QEMU device properties (-set / qemu:override) apply",
            check_set(dom, f, &sets, &bad_sets),
        ));
    }
    if let Some(o) = check_sysfsdev(dom, s, &qu) {
        out.push(item(
            "qemu.sysfsdev",
            "vGPU passed on the QEMU command line",
            o,
        ));
    }
    if !dom.mdevs.is_empty() {
        out.push(item("vgpu.count", "one vGPU per VM", check_count(dom)));
        out.push(item(
            "vgpu.uuid",
            "the vGPU exists (libvirt does not create mdevs)",
            check_uuid(dom, s, f),
        ));
        out.push(item(
            "vgpu.vfio-node",
            "/dev/vfio/N of the vGPU usable by QEMU",
            check_vfio_node(dom, s, &qu),
        ));
        out.push(item(
            "vgpu.display",
            "vGPU display: graphics with OpenGL, firmware, ramfb",
            check_display(dom, &sets),
        ));
        if dom.mdevs.iter().any(MdevHostdev::display_on) && dom.graphics.iter().any(|g| g.gl) {
            out.push(item(
                "display.rendernode",
                "DRM render node for OpenGL",
                check_rendernode(dom, f, &qu),
            ));
        }
    }
    if !dom.pcis.is_empty() {
        out.push(item(
            "pci.hostdev",
            "PCI hostdevs exist, bound to vfio-pci or managed, IOMMU group viable",
            check_pci(dom, s),
        ));
    }
    if !dom.roms.is_empty() {
        out.push(item(
            "hostdev.rom",
            "option ROM files exist and QEMU can read them",
            check_roms(dom, f, s, &qu),
        ));
    }
    if !dom.mdevs.is_empty() || !dom.pcis.is_empty() {
        out.push(item(
            "memory.locked",
            "locked memory for VFIO",
            check_memory(dom),
        ));
    }
    if out.is_empty() {
        out.push(item(
            "domain.hostdevs",
            "devices GVT-g preflight judges",
            Outcome::pass(
                "no vGPU, PCI hostdev or qemu:commandline: nothing GVT-g-specific to check",
            ),
        ));
    }
    out
}

fn check_namespace(dom: &Domain) -> Outcome {
    let decl = format!("<domain type='kvm' xmlns:qemu='{QEMU_NS}'>");
    if dom.qemu_ns_missing {
        return Outcome::fail(
            "<qemu:…> elements are used but <domain> does not declare xmlns:qemu: libvirt rejects the XML (or drops the elements)",
        )
        .fix(format!("Declare the namespace on the root element:\n    {decl}"));
    }
    if let Some(u) = &dom.qemu_ns_wrong {
        return Outcome::fail(format!(
            "xmlns:qemu is '{u}', not libvirt's '{QEMU_NS}': libvirt ignores the qemu: elements"
        ))
        .fix(format!("Use the exact URI:\n    {decl}"));
    }
    Outcome::pass("xmlns:qemu declared")
}

fn check_set(dom: &Domain, f: &Facts, sets: &[SetArg], bad: &[String]) -> Outcome {
    let mut o = Outcome::pass("");
    let mut notes: Vec<String> = Vec::new();
    let ids = dom.hostdev_ids();
    let dev_sets: Vec<SetArg> = sets
        .iter()
        .filter(|s| s.group == "device")
        .cloned()
        .collect();
    let mut missing: Vec<&str> = Vec::new();
    for sa in &dev_sets {
        o.push(
            "<qemu:commandline>",
            format!("-set device.{}.{}={}", sa.id, sa.prop, sa.value),
        );
        if sa.id.starts_with("hostdev")
            && !ids.contains(&sa.id)
            && !missing.contains(&sa.id.as_str())
        {
            missing.push(&sa.id);
        }
    }
    for m in &missing {
        raise(&mut o, Status::Fail);
        notes.push(format!(
            "QEMU will fail: there is no device \"{m}\" defined"
        ));
    }
    for b in bad {
        raise(&mut o, Status::Fail);
        notes.push(format!("QEMU will fail: {b}"));
        o.push("<qemu:commandline>", b.clone());
    }
    if !bad.is_empty() {
        add_fix(
            &mut o,
            "Each -set takes the next <qemu:arg> as group.id.property=value: remove the stray -set arguments.",
        );
    }
    if !missing.is_empty() {
        add_fix(
            &mut o,
            &format!(
                "The domain has {} hostdev(s) named by libvirt ({}): add the <hostdev> the -set lines are meant for (`gvtg vgpu xml UUID` prints one), or delete the -set lines.",
                dom.auto_aliased,
                if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
            ),
        );
    }
    let v = f.libvirt_version;
    if !dev_sets.is_empty() && missing.is_empty() {
        let repl = override_xml(&dev_sets);
        let how = format!(
            "Replace the -set device.* lines in <qemu:commandline> with (libvirt ≥ 8.2.0):\n{}",
            indent(&repl, "    ")
        );
        match v {
            Some(ver) if ver >= (8, 1, 0) => {
                raise(&mut o, Status::Fail);
                notes.push(format!(
                    "libvirt {}.{}.{} passes -device as JSON, so `-set device.*` fails: QEMU will fail: there is no device \"{}\" defined",
                    ver.0, ver.1, ver.2, dev_sets[0].id
                ));
                add_fix(&mut o, &how);
            }
            Some(ver) => {
                notes.push(format!(
                    "-set device.* lines work with libvirt {}.{}.{} (< 8.1) but break on upgrade; <qemu:override> is the lasting form",
                    ver.0, ver.1, ver.2
                ));
                o.push("suggested <qemu:override>", repl);
            }
            None => {
                raise(&mut o, Status::Warn);
                notes.push(format!(
                    "libvirt version unknown ({}): -set device.* works only before libvirt 8.1",
                    f.libvirt_version_source
                ));
                add_fix(&mut o, &how);
            }
        }
    }
    if !dom.overrides.is_empty() {
        let mut bad_alias: Vec<&str> = Vec::new();
        for p in &dom.overrides {
            o.push(
                "<qemu:override>",
                format!("device {} property {}", p.alias, p.name),
            );
            if !ids.contains(&p.alias) && !bad_alias.contains(&p.alias.as_str()) {
                bad_alias.push(&p.alias);
            }
        }
        if !bad_alias.is_empty() && !ids.is_empty() {
            raise(&mut o, Status::Fail);
            notes.push(format!(
                "qemu:override names device(s) {} that the domain does not define (hostdev ids: {})",
                bad_alias.join(", "),
                ids.join(", ")
            ));
        } else if !bad_alias.is_empty() {
            raise(&mut o, Status::Warn);
            notes.push(format!(
                "qemu:override names {} but the XML has no hostdev (a fragment?)",
                bad_alias.join(", ")
            ));
        }
        match v {
            Some(ver) if ver < (8, 2, 0) => {
                raise(&mut o, Status::Fail);
                notes.push(format!(
                    "<qemu:override> needs libvirt ≥ 8.2.0; this is {}.{}.{}",
                    ver.0, ver.1, ver.2
                ));
            }
            _ => notes.push("qemu:override sets the hostdev's properties".into()),
        }
    }
    o.summary = notes.join("; ");
    o
}

fn indent(s: &str, pre: &str) -> String {
    s.lines()
        .map(|l| format!("{pre}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `-device vfio-pci,sysfsdev=/sys/bus/mdev/devices/UUID` on the QEMU command line.
fn check_sysfsdev(dom: &Domain, s: &Snapshot, qu: &QemuUser) -> Option<Outcome> {
    let mut paths = Vec::new();
    let mut i = 0;
    while i + 1 < dom.qemu_args.len() {
        if dom.qemu_args[i] == "-device" {
            for part in dom.qemu_args[i + 1].split(',') {
                if let Some(p) = part.strip_prefix("sysfsdev=") {
                    paths.push(p.to_string());
                }
            }
        }
        i += 1;
    }
    if paths.is_empty() {
        return None;
    }
    let controllers = qu
        .conf
        .as_ref()
        .and_then(|c| c.get_list("cgroup_controllers"));
    let devices_active = controllers.as_ref().is_none_or(|l| l.contains(&"devices"));
    let acl: Vec<String> = qu
        .conf
        .as_ref()
        .and_then(|c| c.get_list("cgroup_device_acl"))
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    let mut o = Outcome::pass("");
    let mut notes = Vec::new();
    for p in &paths {
        let uuid = p
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let group = s
            .mdev_devices
            .ok()
            .and_then(|ms| ms.iter().find(|m| m.uuid == uuid))
            .and_then(|m| m.iommu_group);
        let node = group.map_or("/dev/vfio/N".to_string(), |g| format!("/dev/vfio/{g}"));
        o.push("<qemu:commandline>", format!("-device …,sysfsdev={p}"));
        if devices_active && !acl.contains(&node) {
            raise(&mut o, Status::Fail);
            notes.push(format!(
                "sysfsdev={p} bypasses libvirt: it did not add {node} to the VM's devices cgroup or /dev namespace (QEMU: \"failed to open {node}: Operation not permitted\")"
            ));
        } else {
            raise(&mut o, Status::Warn);
            notes.push(format!(
                "sysfsdev={p} bypasses libvirt's labels and /dev namespace for {node}"
            ));
        }
        if is_uuid(&uuid) {
            add_fix(
                &mut o,
                &format!(
                    "Let libvirt manage the vGPU: drop the -device line and add to <devices>:\n{}",
                    domain_xml::hostdev_element(&uuid, false, "    ", "  ")
                ),
            );
        }
    }
    if let Some(f) = s.qemu_conf.ok() {
        o.push(
            f.path.clone(),
            match &controllers {
                None => "cgroup_controllers unset (devices controller active)".to_string(),
                Some(l) => format!("cgroup_controllers = {l:?}"),
            },
        );
    }
    o.summary = notes.join("; ");
    Some(o)
}

fn check_count(dom: &Domain) -> Outcome {
    let n = dom.mdevs.len();
    if n == 1 {
        return Outcome::pass("one vGPU");
    }
    let mut o = Outcome::fail(format!(
        "{n} vGPUs in one VM: kvmgt refuses a second vGPU for the same KVM instance (EEXIST), so QEMU fails to start"
    ))
    .fix("Keep one <hostdev type='mdev'> per domain.");
    for m in &dom.mdevs {
        o.push("<hostdev type='mdev'>", m.uuid.clone());
    }
    o
}

fn check_uuid(dom: &Domain, s: &Snapshot, f: &Facts) -> Outcome {
    let mut o = Outcome::pass("");
    let mut notes = Vec::new();
    let existing = s.mdev_devices.ok();
    for m in &dom.mdevs {
        let u = m.uuid.trim().to_ascii_lowercase();
        if !is_uuid(&u) {
            raise(&mut o, Status::Fail);
            notes.push(format!(
                "'{}' is not a UUID (a template placeholder?): libvirt refuses the hostdev",
                m.uuid
            ));
            o.push(
                "<hostdev type='mdev'><source><address uuid>",
                m.uuid.clone(),
            );
            add_fix(
                &mut o,
                &format!(
                    "Create a vGPU and put its UUID in place of '{}':\n    gvtg vgpu create TYPE --persist   (`gvtg vgpu types` lists the types)\nthen set <address uuid='THE-UUID'/> (`virsh edit`).",
                    m.uuid
                ),
            );
            continue;
        }
        let path = format!("/sys/bus/mdev/devices/{u}");
        match existing.and_then(|ms| ms.iter().find(|d| d.uuid == u)) {
            Some(d) => {
                notes.push(format!(
                    "{u} exists ({} on {})",
                    d.mdev_type.as_deref().unwrap_or("type unknown"),
                    d.parent.as_deref().unwrap_or("parent unknown")
                ));
                o.push(
                    path,
                    format!(
                        "type {}, parent {}, driver {}",
                        d.mdev_type.as_deref().unwrap_or("?"),
                        d.parent.as_deref().unwrap_or("?"),
                        d.driver.as_deref().unwrap_or("none")
                    ),
                );
            }
            None => {
                if let Some(src) = f.autostart.get(&u) {
                    raise(&mut o, Status::Warn);
                    notes.push(format!(
                        "{u} will be created at boot, not now: starting the VM now fails"
                    ));
                    o.push(src.clone(), "auto-start definition");
                    add_fix(
                        &mut o,
                        &format!("Create it now: gvtg vgpu create TYPE --uuid {u}   (or: sudo mdevctl start -u {u})"),
                    );
                } else {
                    raise(&mut o, Status::Fail);
                    notes.push(format!(
                        "{u} does not exist: libvirt fails with \"failed to access '{path}/iommu_group'\""
                    ));
                    o.push(path, "does not exist");
                    add_fix(
                        &mut o,
                        &format!("libvirt does not create mdevs (managed is ignored for them). Create it, and keep it across reboots:\n    gvtg vgpu create TYPE --uuid {u} --persist   (`gvtg vgpu types` lists the types)"),
                    );
                }
            }
        }
    }
    o.summary = notes.join("; ");
    o
}

fn check_vfio_node(dom: &Domain, s: &Snapshot, qu: &QemuUser) -> Outcome {
    let present = |m: &MdevHostdev| {
        let u = m.uuid.trim().to_ascii_lowercase();
        s.mdev_devices
            .ok()
            .is_some_and(|ms| ms.iter().any(|d| d.uuid == u))
    };
    if !dom.mdevs.iter().any(present) {
        return Outcome::skip("skipped: the vGPU does not exist now (see vgpu.uuid)");
    }
    let mut o = Outcome::pass("");
    let mut notes = Vec::new();
    let nodes = s.dev_vfio.ok().cloned().unwrap_or_default();
    for m in &dom.mdevs {
        let u = m.uuid.trim().to_ascii_lowercase();
        let Some(d) = s
            .mdev_devices
            .ok()
            .and_then(|ms| ms.iter().find(|d| d.uuid == u))
        else {
            notes.push(format!("{}: no such mdev now (see vgpu.uuid)", m.uuid));
            continue;
        };
        let Some(g) = d.iommu_group else {
            raise(&mut o, Status::Fail);
            notes.push(format!(
                "mdev {u} has no iommu_group (no VFIO driver bound)"
            ));
            o.push(format!("/sys/bus/mdev/devices/{u}/iommu_group"), "missing");
            add_fix(&mut o, "Load kvmgt (and vfio_mdev before ~5.14), then recreate the vGPU: sudo modprobe kvmgt");
            continue;
        };
        let path = format!("/dev/vfio/{g}");
        match nodes.get(&g.to_string()) {
            None if qu.dynamic && s.libvirt_present => {
                raise(&mut o, Status::Warn);
                notes.push(format!(
                    "{path} not seen (IOMMU group {g} is known; libvirt opens it at start)"
                ));
                o.push(path, "not seen");
            }
            None => {
                raise(&mut o, Status::Fail);
                notes.push(format!("{path} does not exist"));
                o.push(path, "does not exist");
                add_fix(&mut o, "A missing /dev/vfio/N means the vfio modules are not loaded: sudo modprobe -a vfio vfio_iommu_type1");
            }
            Some(n) => {
                let usable = qu
                    .ids
                    .as_ref()
                    .map(|(uid, gs)| support::can_rw(n, *uid, gs));
                o.push(path.clone(), support::describe_node(s, n));
                if usable == Some(true) {
                    notes.push(format!("{path} usable by {}", qu.name));
                } else if qu.dynamic {
                    notes.push(format!(
                        "{path} exists; libvirt's dynamic_ownership gives it to {} at start",
                        qu.name
                    ));
                } else if usable == Some(false) {
                    raise(&mut o, Status::Fail);
                    notes.push(format!(
                        "{path} not usable by {} and dynamic_ownership = 0",
                        qu.name
                    ));
                    add_fix(&mut o, &format!("Give {} access with a udev rule:\n    echo 'SUBSYSTEM==\"vfio\", OWNER=\"root\", GROUP=\"kvm\", MODE=\"0660\"' | sudo tee /etc/udev/rules.d/90-gvtg-vfio.rules && sudo udevadm control --reload && sudo udevadm trigger --subsystem-match=vfio\n    sudo usermod -aG kvm {}", qu.name, qu.name));
                } else {
                    raise(&mut o, Status::Warn);
                    notes.push(format!(
                        "{path} exists; the QEMU user {} is not in /etc/passwd",
                        qu.name
                    ));
                }
            }
        }
    }
    o.summary = notes.join("; ");
    o
}

fn check_display(dom: &Domain, sets: &[SetArg]) -> Outcome {
    let mut o = Outcome::pass("");
    let mut notes = Vec::new();
    let set_prop = |prop: &str, val: &[&str]| {
        sets.iter()
            .any(|s| s.group == "device" && s.prop == prop && val.contains(&s.value.as_str()))
            || dom
                .overrides
                .iter()
                .any(|p| p.name == prop && val.contains(&p.value.as_str()))
    };
    let display_set = set_prop("display", &["on", "true"]);
    let opregion = set_prop("x-igd-opregion", &["on", "true"]);
    let ramfb_set = set_prop("ramfb", &["on", "true"]);
    for m in &dom.mdevs {
        let on = m.display_on() || display_set;
        if !on {
            notes.push(format!(
                "{}: display {} (no dma-buf framebuffer; use the guest's own remote display or Looking Glass)",
                m.uuid,
                if m.display.is_none() { "off (the default)" } else { "off" }
            ));
            continue;
        }
        if !m.display_on() {
            notes.push(format!(
                "{}: display='{}' on the hostdev, but -set/qemu:override turns it on",
                m.uuid,
                m.display.as_deref().unwrap_or("off")
            ));
        }
        let gl = dom.graphics.iter().find(|g| g.gl);
        let cmdline_gl = dom.qemu_args.windows(2).find(|w| {
            w[0] == "-display" && (w[1].contains("gl=on") || w[1].starts_with("egl-headless"))
        });
        match (gl, dom.graphics.is_empty()) {
            (Some(g), _) if g.kind == "spice" && g.remote => {
                raise(&mut o, Status::Warn);
                notes.push("SPICE with OpenGL listens on the network: QEMU's SPICE GL serves only local clients (listen type='none')".into());
                add_fix(&mut o, "Use <listen type='none'/> in the SPICE <graphics> (view with virt-manager or virt-viewer on this host).");
            }
            (Some(g), _) => notes.push(format!("display on, shown by {} with OpenGL", g.kind)),
            (None, _) if cmdline_gl.is_some() => notes.push(format!(
                "display on, shown by `-display {}` from qemu:commandline (outside libvirt: it needs the qemu:env DISPLAY and access to that X server)",
                cmdline_gl.map(|w| w[1].as_str()).unwrap_or("")
            )),
            (None, true) if m.display_on() => {
                raise(&mut o, Status::Fail);
                notes.push("display='on' but the domain has no <graphics>: libvirt refuses it (\"graphics device is needed for attribute value 'display=on' in <hostdev>\")".into());
            }
            (None, _) => {
                raise(&mut o, if m.display_on() { Status::Fail } else { Status::Warn });
                notes.push(format!(
                    "display on, but no graphics device has OpenGL ({}): the vGPU's dma-buf cannot be shown",
                    dom.graphics.iter().map(|g| g.kind.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if gl.is_none() && cmdline_gl.is_none() {
            add_fix(&mut o, "Add a local SPICE display with OpenGL (or <graphics type='egl-headless'/>):\n    <graphics type='spice'>\n      <listen type='none'/>\n      <gl enable='yes'/>\n    </graphics>");
        }
        let ramfb = m.ramfb || ramfb_set;
        if dom.ovmf && !ramfb {
            raise(&mut o, Status::Warn);
            notes.push(
                "OVMF without ramfb: nothing is shown until the guest's i915 driver loads".into(),
            );
            add_fix(&mut o, "Add ramfb='on' to the <hostdev type='mdev'> (libvirt ≥ 5.10.0) to see firmware and boot loader.");
        } else if ramfb {
            notes.push(format!(
                "ramfb on ({} boot display)",
                if dom.ovmf { "OVMF" } else { "SeaBIOS" }
            ));
        }
        if !opregion {
            notes.push("note: x-igd-opregion=on (via <qemu:override>) is needed for the dma-buf display of most guests".into());
        }
    }
    o.summary = notes.join("; ");
    o
}

fn check_rendernode(dom: &Domain, f: &Facts, qu: &QemuUser) -> Outcome {
    let named = dom
        .graphics
        .iter()
        .find(|g| g.gl)
        .and_then(|g| g.rendernode.clone());
    let (path, node) = match named {
        Some(p) => match f.named_nodes.get(&p) {
            Some(Probe::Ok(n)) => (p, n.clone()),
            other => {
                let why = match other {
                    Some(Probe::Denied) => "not readable".to_string(),
                    Some(Probe::Invalid(m)) => m.clone(),
                    _ => "does not exist".to_string(),
                };
                return Outcome::fail(format!("rendernode {p} {why}: QEMU fails to initialise OpenGL"))
                    .with(p.clone(), why)
                    .fix("Point rendernode= at an existing node (`ls -l /dev/dri/by-path/`), usually the iGPU's: /dev/dri/by-path/pci-0000:00:02.0-render");
            }
        },
        None => match f.render_nodes.iter().next() {
            Some((p, n)) => (p.clone(), n.clone()),
            None => {
                return Outcome::fail("no drm render node available (/dev/dri/renderD* missing): OpenGL display cannot start")
                    .fix("Load the iGPU's driver (i915) so /dev/dri/renderD128 exists, or name one with <gl enable='yes' rendernode='/dev/dri/renderD128'/>.");
            }
        },
    };
    let desc = format!("{:04o} uid {} gid {}", node.mode, node.uid, node.gid);
    let usable = qu
        .ids
        .as_ref()
        .map(|(u, gs)| support::can_rw(&node, *u, gs));
    match usable {
        Some(true) => Outcome::pass(format!("{path} usable by {}", qu.name)).with(path, desc),
        _ if qu.dynamic => Outcome::pass(format!(
            "{path} exists; libvirt labels it for {} at start (dynamic_ownership)",
            qu.name
        ))
        .with(path, desc),
        Some(false) => Outcome::fail(format!("{path} is not usable by {}", qu.name))
            .with(path, desc)
            .fix(format!(
                "sudo usermod -aG render {}   (and video on older distributions)",
                qu.name
            )),
        None => Outcome::warn(format!(
            "{path} exists; the QEMU user {} is unknown",
            qu.name
        ))
        .with(path, desc),
    }
}

fn parse_pci_addr(a: &str) -> Option<(u32, u32, u32, u32)> {
    let (dom, rest) = a.split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (slot, func) = rest.split_once('.')?;
    Some((
        u32::from_str_radix(dom, 16).ok()?,
        u32::from_str_radix(bus, 16).ok()?,
        u32::from_str_radix(slot, 16).ok()?,
        u32::from_str_radix(func, 16).ok()?,
    ))
}

/// An iGPU SR-IOV VF address (00:02.1–7).
pub fn is_igpu_vf(addr: &str) -> bool {
    parse_pci_addr(addr).is_some_and(|(_, b, s, f)| b == 0 && s == 2 && (1..=7).contains(&f))
}

fn check_pci(dom: &Domain, s: &Snapshot) -> Outcome {
    let mut o = Outcome::pass("");
    let mut notes = Vec::new();
    let pci = s.pci.ok();
    for h in &dom.pcis {
        let vf = is_igpu_vf(&h.address);
        let what = if vf {
            format!("{}: SR-IOV VF passthrough (not GVT-g)", h.address)
        } else {
            h.address.clone()
        };
        let Some(d) = pci.and_then(|ds| ds.iter().find(|d| d.address == h.address)) else {
            raise(&mut o, Status::Fail);
            notes.push(format!("{what}: no such PCI device"));
            o.push(
                format!("/sys/bus/pci/devices/{}", h.address),
                "does not exist",
            );
            if vf {
                add_fix(&mut o, "Create the VFs first: echo N | sudo tee /sys/bus/pci/devices/0000:00:02.0/sriov_numvfs (i915 SR-IOV driver required).");
            }
            continue;
        };
        let drv = d.driver.as_deref();
        o.push(
            format!("/sys/bus/pci/devices/{}", h.address),
            format!(
                "{:04x}:{:04x} class {:06x}, driver {}, group {}",
                d.vendor,
                d.device,
                d.class,
                drv.unwrap_or("none"),
                d.iommu_group.map_or("none".into(), |g| g.to_string())
            ),
        );
        let mut line = what.clone();
        match (drv, h.managed) {
            (Some("vfio-pci"), _) => line.push_str(", bound to vfio-pci"),
            (_, true) => line.push_str(&format!(
                ", managed='yes' (libvirt detaches it from {})",
                drv.unwrap_or("no driver")
            )),
            (d2, false) => {
                raise(&mut o, Status::Fail);
                line.push_str(&format!(
                    ", bound to {} and managed='no': libvirt will not detach it",
                    d2.unwrap_or("no driver")
                ));
                add_fix(
                    &mut o,
                    &format!(
                        "Set managed='yes' on the hostdev, or: sudo virsh nodedev-detach pci_{}",
                        h.address.replace([':', '.'], "_")
                    ),
                );
            }
        }
        let Some(g) = d.iommu_group else {
            raise(&mut o, Status::Fail);
            line.push_str(", no IOMMU group (VT-d off?)");
            add_fix(
                &mut o,
                "Enable VT-d in firmware and boot with intel_iommu=on.",
            );
            notes.push(line);
            continue;
        };
        // The doctor's rule (passthrough.group); the domain's other hostdevs go with it.
        let offenders: Vec<String> = crate::checks::passthrough::group_offenders(s, g, |m| {
            m.address == h.address || dom.pcis.iter().any(|p| p.address == m.address)
        })
        .iter()
        .map(|m| format!("{} ({})", m.address, m.driver.as_deref().unwrap_or("none")))
        .collect();
        if offenders.is_empty() {
            line.push_str(&format!(", IOMMU group {g} viable"));
        } else {
            raise(&mut o, Status::Fail);
            line.push_str(&format!(
                ", IOMMU group {g} not viable: {} bound to host drivers",
                offenders.join(", ")
            ));
            add_fix(&mut o, &format!("Every device in IOMMU group {g} must be unbound or bound to vfio-pci: add them as hostdevs (managed='yes') too, or bind them to vfio-pci (driverctl set-override ADDR vfio-pci)."));
        }
        // Reset between runs (passthrough.reset's reading of reset_method).
        let (reset, amd_no_flr) = crate::checks::passthrough::reset_of(d);
        match &reset {
            crate::checks::passthrough::Reset::None => {
                raise(&mut o, Status::Warn);
                line.push_str(
                    ", no reset method (a second start or a guest reboot may find it hung)",
                );
            }
            crate::checks::passthrough::Reset::Methods(m) => {
                line.push_str(&format!(", reset {m}"));
            }
            crate::checks::passthrough::Reset::Unknown => {}
        }
        if amd_no_flr {
            raise(&mut o, Status::Warn);
            line.push_str(", AMD GPU without FLR (the AMD reset bug: it may not come back after a guest shutdown)");
            add_fix(
                &mut o,
                "For the AMD reset bug: the vendor-reset module (gvtg explain passthrough.reset).",
            );
        }
        // The host's own screen (passthrough.host-driver): managed='yes' would take it away.
        if drv != Some("vfio-pci") {
            if let Some(why) = crate::checks::passthrough::drives_host_display(s, d) {
                raise(&mut o, Status::Warn);
                line.push_str(&format!(", {why}"));
                add_fix(&mut o, &format!("Passing the host's display GPU needs the desktop stopped first (or another GPU for the host); libvirt's detach of {} while a display server holds it can hang the session.", h.address));
            }
        }
        notes.push(line);
    }
    o.summary = notes.join("; ");
    o
}

fn check_memory(dom: &Domain) -> Outcome {
    let mut notes = Vec::new();
    let mut o = Outcome::pass("");
    let need = dom.memory_kib.map(|m| m.saturating_add(1024 * 1024));
    if dom.locked || dom.hugepages {
        notes.push(format!(
            "{} with VFIO: guest RAM is pinned",
            if dom.locked { "<locked/>" } else { "hugepages" }
        ));
    }
    match (dom.hard_limit_kib, need) {
        (Some(h), Some(n)) if h < n => {
            raise(&mut o, Status::Warn);
            notes.push(format!(
                "memtune hard_limit {h} KiB is below guest RAM + 1 GiB ({n} KiB): VFIO DMA mapping can fail (\"Cannot allocate memory\")"
            ));
            o.remedy = Some(format!("Raise it: <memtune><hard_limit unit='KiB'>{n}</hard_limit></memtune>"));
        }
        (Some(h), _) => notes.push(format!("memtune hard_limit {h} KiB")),
        (None, _) if dom.locked => notes.push(
            "no memtune hard_limit: libvirt lifts the memlock limit entirely for <locked/>; set <memtune><hard_limit> ≥ RAM + 1 GiB to bound it".into(),
        ),
        (None, _) => notes.push(
            "libvirt raises the memlock limit to guest RAM + 1 GiB for VFIO itself (no memtune hard_limit needed)".into(),
        ),
    }
    o.summary = notes.join("; ");
    o
}

/// Whether the domain can start: no Fail or Error.
pub fn startable(items: &[Item]) -> bool {
    !items
        .iter()
        .any(|i| matches!(i.outcome.status, Status::Fail | Status::Error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sample, snapshot_with, Tree};

    const V7: Option<Version> = Some((7, 6, 0));

    /// A fragment wrapped in a minimal `<domain>` (with the qemu namespace).
    fn wrap(frag: &str) -> String {
        format!("<domain type='kvm' xmlns:qemu='{QEMU_NS}'>\n<name>t</name>\n{frag}\n</domain>")
    }

    fn load(file: &str) -> Domain {
        let text = sample(&format!("libvirt/{file}"));
        let text = if file.ends_with(".fragment") {
            wrap(&text)
        } else {
            text
        };
        Domain::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    fn facts(v: Option<Version>) -> Facts {
        Facts {
            libvirt_version: v,
            libvirt_version_source: "test".into(),
            ..Facts::default()
        }
    }

    fn get<'a>(items: &'a [Item], id: &str) -> &'a Outcome {
        &items
            .iter()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("no {id} in {items:#?}"))
            .outcome
    }

    /// A host with mdev `uuid` in IOMMU group `g`, /dev/vfio/g, a render node, libvirt.
    fn host_with_mdev(t: &mut Tree, uuid: &str, g: u32) {
        let b = format!("sys/bus/mdev/devices/{uuid}");
        t.dir(&b);
        t.link(
            &format!("{b}/iommu_group"),
            &format!("../../../../kernel/iommu_groups/{g}"),
        );
        t.dir(&format!("sys/kernel/iommu_groups/{g}/devices"));
        t.file(&format!("dev/vfio/{g}"), "");
        t.file("dev/dri/renderD128", "");
        t.link("dev/dri/by-path/pci-0000:00:02.0-render", "../renderD128");
        t.file("etc/libvirt/qemu.conf", "# stock\n");
    }

    #[test]
    fn every_real_domain_xml_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/real-world/libvirt");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".xml") || name.ends_with(".xml.fragment") {
                load(&name);
                n += 1;
            }
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn bung69_working_domain_ok_with_note_on_old_libvirt() {
        let d = load("bung69-fedora35-gvtg-working-domain.xml");
        assert_eq!(d.name.as_deref(), Some("fedora35-gnome"));
        let uuid = "b591950a-d165-4141-9714-b380f6cd4c9d";
        let s = snapshot_with(|t| host_with_mdev(t, uuid, 3));
        let mut f = facts(V7);
        f.named_nodes.insert(
            "/dev/dri/by-path/pci-0000:00:02.0-render".into(),
            Probe::Ok(NodeInfo {
                kind: crate::host::sidefile::NodeKind::Char,
                mode: 0o666,
                uid: 0,
                gid: 0,
                rdev: None,
            }),
        );
        let items = run(&d, &s, &f);
        assert!(startable(&items), "{items:#?}");
        let set = get(&items, "qemu.set-hostdev");
        assert_eq!(set.status, Status::Pass);
        assert!(set.summary.contains("break on upgrade"), "{}", set.summary);
        assert!(get(&items, "vgpu.uuid").summary.contains("exists"));
        assert_eq!(get(&items, "vgpu.display").status, Status::Pass);
    }

    #[test]
    fn bung69_fails_on_libvirt_8_1_with_the_override() {
        let d = load("bung69-fedora35-gvtg-working-domain.xml");
        let items = run(&d, &snapshot_with(|_| {}), &facts(Some((8, 1, 0))));
        let o = get(&items, "qemu.set-hostdev");
        assert_eq!(o.status, Status::Fail);
        assert!(o
            .summary
            .contains("there is no device \"hostdev0\" defined"));
        let r = o.remedy.as_deref().unwrap();
        for want in [
            "<qemu:device alias='hostdev0'>",
            "<qemu:property name='x-igd-opregion' type='bool' value='true'/>",
            "<qemu:property name='xres' type='unsigned' value='1920'/>",
            "<qemu:property name='driver' type='string' value='vfio-pci-nohotplug'/>",
        ] {
            assert!(r.contains(want), "{want} not in {r}");
        }
        // Unknown version: a warning that says why.
        let items = run(&d, &snapshot_with(|_| {}), &facts(None));
        let o = get(&items, "qemu.set-hostdev");
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("libvirt version unknown (test)"));
    }

    #[test]
    fn gpd_template_placeholder_uuid_fails_with_fix() {
        let d = load("gpd-win2-gvt-win-template.xml");
        let items = run(&d, &snapshot_with(|_| {}), &facts(V7));
        let o = get(&items, "vgpu.uuid");
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("'GPU_UUID' is not a UUID"));
        assert!(o.remedy.as_deref().unwrap().contains("gvtg vgpu create"));
        let disp = get(&items, "vgpu.display");
        assert!(
            disp.summary.contains("display='off' on the hostdev"),
            "{}",
            disp.summary
        );
        assert!(
            disp.summary.contains("-display gtk,gl=on"),
            "{}",
            disp.summary
        );
        assert!(!startable(&items));
    }

    #[test]
    fn phyllomeos_set_hostdev0_without_hostdev_fails() {
        let d = load("phyllomeos-annotated-domain-qemu-set-hostdev0-without-hostdev.xml");
        assert!(d.mdevs.is_empty() && d.pcis.is_empty());
        assert!(d.ovmf);
        let items = run(&d, &snapshot_with(|_| {}), &facts(V7));
        let o = get(&items, "qemu.set-hostdev");
        assert_eq!(o.status, Status::Fail);
        assert!(o
            .summary
            .starts_with("QEMU will fail: there is no device \"hostdev0\" defined"));
        assert!(o.summary.contains("Invalid -set parameter: -display"));
        assert!(!startable(&items));
    }

    #[test]
    fn radxa_sriov_vf_is_classified_and_judged() {
        let d = load("radxa-x4-windows_11-sriov-vf-hostdev-pci.xml");
        assert_eq!(
            d.pcis,
            [PciHostdev {
                address: "0000:00:02.2".into(),
                managed: true
            }]
        );
        // The VF exists, bound to vfio-pci, alone in its group with a bridge.
        let s = snapshot_with(|t| {
            for (a, class, drv, dev) in [
                ("0000:00:02.2", "0x030000", "vfio-pci", "0x46d1"),
                ("0000:00:1c.0", "0x060400", "pcieport", "0x54b8"),
            ] {
                let b = format!("sys/bus/pci/devices/{a}");
                t.file(&format!("{b}/vendor"), "0x8086\n");
                t.file(&format!("{b}/device"), &format!("{dev}\n"));
                t.file(&format!("{b}/class"), &format!("{class}\n"));
                t.link(
                    &format!("{b}/driver"),
                    &format!("../../../bus/pci/drivers/{drv}"),
                );
                t.link(
                    &format!("{b}/iommu_group"),
                    "../../../kernel/iommu_groups/12",
                );
                t.dir(&format!("sys/kernel/iommu_groups/12/devices/{a}"));
            }
        });
        let items = run(&d, &s, &facts(Some((10, 0, 0))));
        let o = get(&items, "pci.hostdev");
        assert_eq!(o.status, Status::Pass, "{o:?}");
        assert!(o.summary.contains("SR-IOV VF passthrough (not GVT-g)"));
        assert!(o.summary.contains("IOMMU group 12 viable"));
        // Only the template's `${user}` ROM path keeps it from starting as written.
        let failing: Vec<&str> = items
            .iter()
            .filter(|i| i.outcome.status == Status::Fail)
            .map(|i| i.id)
            .collect();
        assert_eq!(failing, ["hostdev.rom"]);
        // Without the VF: not startable, still classified.
        let items = run(&d, &snapshot_with(|_| {}), &facts(None));
        let o = get(&items, "pci.hostdev");
        assert_eq!(o.status, Status::Fail);
        assert!(o
            .summary
            .contains("SR-IOV VF passthrough (not GVT-g): no such PCI device"));
    }

    #[test]
    fn pci_group_offenders_named_with_driver() {
        let d = Domain::parse(&wrap(
            "<devices><hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source></hostdev></devices>",
        ))
        .unwrap();
        let s = snapshot_with(|t| {
            for (a, drv) in [
                ("0000:01:00.0", "vfio-pci"),
                ("0000:01:00.1", "snd_hda_intel"),
            ] {
                let b = format!("sys/bus/pci/devices/{a}");
                t.file(&format!("{b}/vendor"), "0x10de\n");
                t.file(&format!("{b}/device"), "0x1c82\n");
                t.file(&format!("{b}/class"), "0x030000\n");
                t.link(
                    &format!("{b}/driver"),
                    &format!("../../../bus/pci/drivers/{drv}"),
                );
                t.link(
                    &format!("{b}/iommu_group"),
                    "../../../kernel/iommu_groups/1",
                );
                t.dir(&format!("sys/kernel/iommu_groups/1/devices/{a}"));
            }
        });
        let items = run(&d, &s, &facts(None));
        let o = get(&items, "pci.hostdev");
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary.contains("0000:01:00.1 (snd_hda_intel)"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn fragments_as_index_says() {
        let empty = snapshot_with(|_| {});
        // gebim and PhyllomeOS display off: headless is fine.
        for f in [
            "gebim-virsh-mdev-hostdev.xml.fragment",
            "phyllomeos-mdev-hostdev-display-off.xml.fragment",
        ] {
            let items = run(&load(f), &empty, &facts(V7));
            let o = get(&items, "vgpu.display");
            assert_eq!(o.status, Status::Pass);
            assert!(o.summary.contains("display off"), "{f}: {}", o.summary);
        }
        // Ubuntu blog: no display attribute = off by default.
        let items = run(
            &load("ubuntu-blog-bdw-spice-gl-mdev-hostdev.xml.fragment"),
            &empty,
            &facts(V7),
        );
        assert!(get(&items, "vgpu.display")
            .summary
            .contains("off (the default)"));
        // Old <address type='mdev' uuid=…> form.
        let d = load("gvt-linux-199-cfl-iris655-dmabuf-wiki-hostdev.xml.fragment");
        assert_eq!(d.mdevs[0].uuid, "59c57b6c-13ee-4055-846e-e4d3dc55d389");
        // display on + ramfb + spice gl: display OK; the rendernode is judged.
        let d = load("phyllomeos-mdev-hostdev-display-on-ramfb-rom.xml.fragment");
        assert!(d.mdevs[0].display_on() && d.mdevs[0].ramfb);
        let items = run(&d, &empty, &facts(V7));
        let o = get(&items, "vgpu.display");
        assert_eq!(o.status, Status::Pass);
        assert!(o.summary.contains("ramfb on"));
        assert_eq!(get(&items, "display.rendernode").status, Status::Fail);
        // qemu:override (libvirt ≥ 8.2): no failure of its own.
        let d = load("jp-blog-whl-qemu-override-hostdev0.xml.fragment");
        assert_eq!(d.overrides.len(), 3);
        let items = run(&d, &empty, &facts(Some((9, 0, 0))));
        assert!(startable(&items), "{items:#?}");
        let items = run(&d, &empty, &facts(Some((8, 0, 0))));
        assert!(get(&items, "qemu.set-hostdev")
            .summary
            .contains("needs libvirt ≥ 8.2.0"));
    }

    #[test]
    fn qemu_commandline_without_namespace_fails() {
        let d = Domain::parse(
            "<domain type='kvm'><name>x</name><qemu:commandline><qemu:arg value='-set'/><qemu:arg value='device.hostdev0.ramfb=on'/></qemu:commandline></domain>",
        )
        .unwrap();
        assert!(d.qemu_ns_missing);
        let items = run(&d, &snapshot_with(|_| {}), &facts(V7));
        let o = get(&items, "qemu.namespace");
        assert_eq!(o.status, Status::Fail);
        assert!(o.remedy.as_deref().unwrap().contains(QEMU_NS));
        // The -set line is still judged.
        assert_eq!(get(&items, "qemu.set-hostdev").status, Status::Fail);
        // A wrong URI.
        let d = Domain::parse("<domain xmlns:qemu='http://example.org/q'><qemu:commandline><qemu:arg value='-S'/></qemu:commandline></domain>").unwrap();
        let items = run(&d, &snapshot_with(|_| {}), &facts(V7));
        assert!(get(&items, "qemu.namespace")
            .summary
            .contains("not libvirt's"));
    }

    #[test]
    fn two_vgpus_fail() {
        let h = |u: &str| {
            format!("<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='{u}'/></source></hostdev>")
        };
        let d = Domain::parse(&wrap(&format!(
            "<devices>{}{}</devices>",
            h("f3b9c1d2-6a4e-4c1b-9e07-2d5a8b3c7e41"),
            h("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")
        )))
        .unwrap();
        let items = run(&d, &snapshot_with(|_| {}), &facts(V7));
        let o = get(&items, "vgpu.count");
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("EEXIST"));
    }

    const U: &str = "f3b9c1d2-6a4e-4c1b-9e07-2d5a8b3c7e41";

    fn mdev_domain(attrs: &str, rest: &str) -> Domain {
        Domain::parse(&wrap(&format!(
            "{rest}<devices><hostdev mode='subsystem' type='mdev' model='vfio-pci' {attrs}><source><address uuid='{U}'/></source></hostdev></devices>"
        )))
        .unwrap()
    }

    #[test]
    fn display_needs_gl_and_a_render_node() {
        let s = snapshot_with(|t| host_with_mdev(t, U, 0));
        // No graphics at all.
        let items = run(&mdev_domain("display='on'", ""), &s, &facts(V7));
        let o = get(&items, "vgpu.display");
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("graphics device is needed"));
        // VNC without GL.
        let d = mdev_domain("display='on'", "<devices><graphics type='vnc'/></devices>");
        assert_eq!(
            get(&run(&d, &s, &facts(V7)), "vgpu.display").status,
            Status::Fail
        );
        // egl-headless, OVMF without ramfb: a warning; render node found.
        let d = mdev_domain(
            "display='on'",
            "<os><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader></os><devices><graphics type='egl-headless'/></devices>",
        );
        let mut f = facts(V7);
        f.render_nodes.insert(
            "/dev/dri/renderD128".into(),
            NodeInfo {
                kind: crate::host::sidefile::NodeKind::Char,
                mode: 0o660,
                uid: 0,
                gid: 0,
                rdev: None,
            },
        );
        let items = run(&d, &s, &f);
        let o = get(&items, "vgpu.display");
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("OVMF without ramfb"));
        assert_eq!(get(&items, "display.rendernode").status, Status::Pass);
        assert!(startable(&items));
        // No render node at all.
        let items = run(&d, &s, &facts(V7));
        let o = get(&items, "display.rendernode");
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("no drm render node available"));
    }

    #[test]
    fn autostart_definition_warns() {
        let d = mdev_domain("display='off'", "");
        let s = snapshot_with(|_| {});
        let mut f = facts(V7);
        f.autostart
            .insert(U.into(), "/etc/mdevctl.d/0000:00:02.0/x".into());
        let items = run(&d, &s, &f);
        let o = get(&items, "vgpu.uuid");
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("will be created at boot, not now"));
        assert_eq!(get(&items, "vgpu.vfio-node").status, Status::Skip);
        // Facts::collect finds mdevctl definitions with start auto only, and units.
        let mut t = Tree::new();
        t.file(
            &format!("etc/mdevctl.d/0000:00:02.0/{U}"),
            "{\"mdev_type\":\"i915-GVTg_V5_4\",\"start\":\"auto\",\"attrs\":[]}",
        );
        t.file(
            "etc/mdevctl.d/0000:00:02.0/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
            "{\"mdev_type\":\"i915-GVTg_V5_4\",\"start\":\"manual\"}",
        );
        t.file(
            "etc/systemd/system/gvtg-vgpu-11111111-2222-4333-8444-555555555555.service",
            "[Unit]\n",
        );
        let root = crate::host::HostRoot::at(t.path()).unwrap();
        let f = Facts::collect(&root, &d);
        assert_eq!(
            f.autostart.keys().collect::<Vec<_>>(),
            ["11111111-2222-4333-8444-555555555555", U]
        );
    }

    #[test]
    fn sysfsdev_on_the_command_line() {
        let d = Domain::parse(&wrap(&format!(
            "<qemu:commandline><qemu:arg value='-device'/><qemu:arg value='vfio-pci,sysfsdev=/sys/bus/mdev/devices/{U},display=off'/></qemu:commandline>"
        )))
        .unwrap();
        let s = snapshot_with(|t| host_with_mdev(t, U, 4));
        let o = get(&run(&d, &s, &facts(V7)), "qemu.sysfsdev").clone();
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("/dev/vfio/4"), "{}", o.summary);
        assert!(o
            .remedy
            .unwrap()
            .contains(&format!("<address uuid='{U}'/>")));
        let s = snapshot_with(|t| {
            host_with_mdev(t, U, 4);
            t.file(
                "etc/libvirt/qemu.conf",
                "cgroup_controllers = [ \"cpu\", \"memory\" ]\n",
            );
        });
        assert_eq!(
            get(&run(&d, &s, &facts(V7)), "qemu.sysfsdev").status,
            Status::Warn
        );
    }

    #[test]
    fn memory_hard_limit_too_low_warns() {
        let d = mdev_domain(
            "",
            "<memory unit='GiB'>4</memory><memtune><hard_limit unit='GiB'>4</hard_limit></memtune><memoryBacking><locked/></memoryBacking>",
        );
        let items = run(&d, &snapshot_with(|_| {}), &facts(V7));
        let o = get(&items, "memory.locked");
        assert_eq!(o.status, Status::Warn);
        assert!(o.remedy.as_deref().unwrap().contains("5242880"));
    }

    #[test]
    fn set_args_and_override() {
        let a: Vec<String> = ["-set", "device.hostdev0.xres=1920", "-set", "bogus", "-set"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (ok, bad) = set_args(&a);
        assert_eq!(ok.len(), 1);
        assert_eq!(
            bad,
            [
                "Invalid -set parameter: bogus",
                "option -set requires an argument"
            ]
        );
        assert!(override_xml(&ok).contains("type='unsigned' value='1920'"));
        assert_eq!(parse_version("libvirtd (libvirt) 8.0.0"), Some((8, 0, 0)));
        assert_eq!(parse_version("10.1"), Some((10, 1, 0)));
        assert_eq!(parse_version("nope"), None);
        assert!(is_igpu_vf("0000:00:02.7") && !is_igpu_vf("0000:00:02.0"));
        assert!(crate::cmd::preflight::hook_script("/usr/bin/gvtg").is_ok());
        assert!(crate::cmd::preflight::hook_script("/tmp/a b;rm").is_err());
    }

    #[test]
    fn rom_files_are_checked() {
        // radxa: a ${user} placeholder.
        let d = load("radxa-x4-windows_11-sriov-vf-hostdev-pci.xml");
        let items = run(&d, &snapshot_with(|_| {}), &facts(None));
        let o = get(&items, "hostdev.rom");
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("placeholder"));
        // gpd: romfile from -set; PhyllomeOS: <rom file=…>; present in the tree or not.
        let d = load("gpd-win2-gvt-win-template.xml");
        assert_eq!(d.roms, ["/var/lib/libvirt/images/vbios_gvt_uefi.rom"]);
        let d = load("phyllomeos-mdev-hostdev-display-on-ramfb-rom.xml.fragment");
        let mut t = Tree::new();
        let root = crate::host::HostRoot::at(t.path()).unwrap();
        let f = Facts::collect(&root, &d);
        let o = get(&run(&d, &t.snapshot(), &f), "hostdev.rom").clone();
        assert!(
            o.summary.contains("failed to find romfile"),
            "{}",
            o.summary
        );
        t.file("var/lib/libvirt/isos/vbios_gvt_uefi.rom", "x");
        let f = Facts::collect(&root, &d);
        assert_eq!(
            get(&run(&d, &t.snapshot(), &f), "hostdev.rom").status,
            Status::Pass
        );
    }

    #[test]
    fn rom_must_be_readable_by_the_qemu_user() {
        let d = Domain::parse(&wrap(
            "<devices><hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source><rom file='/var/lib/libvirt/vbios/gpu.rom'/></hostdev></devices>",
        ))
        .unwrap();
        let tree = |file_mode: u32, dir_mode: u32| {
            let mut t = Tree::new();
            t.file(
                "etc/passwd",
                "root:x:0:0::/root:/bin/sh\nlibvirt-qemu:x:64055:108::/:/bin/false\n",
            );
            t.file("etc/group", "root:x:0:\nkvm:x:108:\n");
            t.file("etc/libvirt/qemu.conf", "user = \"libvirt-qemu\"\n");
            t.file("var/lib/libvirt/vbios/gpu.rom", "x");
            // Modes from the side file, not from the build machine's umask.
            for dir in ["var", "var/lib", "var/lib/libvirt"] {
                t.node(dir, "dir", 0o755, 0, 0, None);
            }
            t.node("var/lib/libvirt/vbios", "dir", dir_mode, 0, 0, None);
            t.node(
                "var/lib/libvirt/vbios/gpu.rom",
                "file",
                file_mode,
                0,
                0,
                None,
            );
            t
        };
        let verdict = |t: &Tree| {
            let root = crate::host::HostRoot::at(t.path()).unwrap();
            let f = Facts::collect(&root, &d);
            get(&run(&d, &t.snapshot(), &f), "hostdev.rom").clone()
        };
        let o = verdict(&tree(0o600, 0o755));
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.summary.contains("exists but libvirt-qemu cannot read it"),
            "{}",
            o.summary
        );
        assert!(o.remedy.unwrap().contains("sudo chmod 0644"));
        let o = verdict(&tree(0o644, 0o700));
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.evidence.iter().any(|e| e
                .excerpt
                .contains("/var/lib/libvirt/vbios (0700 root:root): directory not searchable")),
            "{:?}",
            o.evidence
        );
        let o = verdict(&tree(0o644, 0o755));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(
            o.summary.contains("readable by libvirt-qemu"),
            "{}",
            o.summary
        );
    }

    #[test]
    fn pci_reset_and_the_host_display_come_from_the_passthrough_checks() {
        // An RX 580 on amdgpu, the boot VGA device, reset only by bus reset, given managed.
        let d = Domain::parse(&wrap(
            "<devices><hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x0a' slot='0x00' function='0x0'/></source></hostdev></devices>",
        ))
        .unwrap();
        let b = "sys/bus/pci/devices/0000:0a:00.0";
        let s = snapshot_with(|t| {
            t.pci_function(
                "0000:0a:00.0",
                (0x1002, 0x67df),
                0x030000,
                Some("amdgpu"),
                7,
            );
            t.file(&format!("{b}/boot_vga"), "1\n");
            t.file(&format!("{b}/reset_method"), "bus\n");
        });
        let o = get(&run(&d, &s, &facts(None)), "pci.hostdev").clone();
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(
            o.summary.contains("IOMMU group 7 viable, reset bus"),
            "{}",
            o.summary
        );
        assert!(o.summary.contains("the AMD reset bug"), "{}", o.summary);
        assert!(
            o.summary
                .contains("0000:0a:00.0 is the boot VGA device and amdgpu drives it"),
            "{}",
            o.summary
        );
        // An empty reset_method: no reset at all.
        let s = snapshot_with(|t| {
            t.pci_function(
                "0000:0a:00.0",
                (0x10de, 0x1b80),
                0x030000,
                Some("vfio-pci"),
                7,
            );
            t.file(&format!("{b}/reset_method"), "\n");
        });
        let o = get(&run(&d, &s, &facts(None)), "pci.hostdev").clone();
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(o.summary.contains("no reset method"), "{}", o.summary);
    }

    #[test]
    fn spice_gl_on_the_network_warns() {
        let s = snapshot_with(|t| host_with_mdev(t, U, 0));
        let d = mdev_domain(
            "display='on' ramfb='on'",
            "<devices><graphics type='spice' autoport='yes'><listen type='address' address='0.0.0.0'/><gl enable='yes'/></graphics></devices>",
        );
        let o = get(&run(&d, &s, &facts(V7)), "vgpu.display").clone();
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("listens on the network"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(a in "\\PC{0,80}", n in "[0-9]{0,25}", u in "(KB|MB|GB|T|b|k)?") {
            let _ = Domain::parse(&a);
            let s = snapshot_with(|_| {});
            let x = format!(
                "<domain xmlns:qemu='{QEMU_NS}'><memory unit='{u}'>{n}</memory><memtune><hard_limit unit='{u}'>{n}</hard_limit></memtune><devices><hostdev type='pci'><source><address bus='{n}' slot='0x{n}'/></source></hostdev><hostdev type='mdev' display='on'><source><address uuid='{n}'/></source></hostdev></devices><qemu:commandline><qemu:arg value='-set'/><qemu:arg value='{n}.{n}.{n}={n}'/></qemu:commandline></domain>"
            );
            let d = Domain::parse(&x).unwrap();
            let _ = run(&d, &s, &facts(None));
        }
    }

    #[test]
    fn hostile_xml_is_refused_quickly() {
        let t0 = std::time::Instant::now();
        let bomb = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>]><domain>&b;</domain>";
        assert!(Domain::parse(bomb).unwrap_err().contains("DOCTYPE"));
        let deep = format!(
            "<domain>{}{}</domain>",
            "<a>".repeat(100_000),
            "</a>".repeat(100_000)
        );
        assert!(Domain::parse(&deep).is_err());
        let huge = format!(
            "<domain><name x='{}'/></domain>",
            "a".repeat(11 * 1024 * 1024)
        );
        assert!(Domain::parse(&huge).is_err());
        assert!(Domain::parse("<domain><unclosed></domain>").is_err());
        assert!(Domain::parse("<network/>")
            .unwrap_err()
            .contains("not a libvirt <domain>"));
        assert!(Domain::parse("").is_err());
        assert!(t0.elapsed().as_secs() < 10);
    }
}
