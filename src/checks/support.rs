//! Facts several checks derive from the snapshot: the distribution and boot loader (for exact
//! remedies), the QEMU user libvirt runs as, effective module parameters, and whether a user can
//! open a device node. Pure functions, like the checks.

use crate::host::root::NodeInfo;
use crate::host::snapshot::Snapshot;
use crate::parse;

/// libvirt's current default `cgroup_device_acl` (src/qemu/qemu.conf.in); setting the key
/// replaces this list, so checks and fixes compare against it.
pub const DEFAULT_ACL: &[&str] = &[
    "/dev/null",
    "/dev/full",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
    "/dev/ptmx",
    "/dev/kvm",
    "/dev/userfaultfd",
];

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The distribution family, as far as remedies differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distro {
    /// Debian, Ubuntu, Mint, Pop!_OS…
    Debian,
    /// Proxmox VE (Debian-based, own boot tool, no libvirt).
    Proxmox,
    /// Fedora, RHEL, CentOS, Rocky, Alma.
    Fedora,
    /// Arch, Manjaro, EndeavourOS.
    Arch,
    /// NixOS: configuration, not files.
    NixOs,
    /// openSUSE / SLES.
    Suse,
    /// Anything else.
    Other,
}

/// Detects the distribution from os-release `ID`/`ID_LIKE` (and Proxmox from its kernel name).
pub fn distro(s: &Snapshot) -> Distro {
    let Some(os) = s.os_release.ok() else {
        return Distro::Other;
    };
    let id = os.get("ID").map(String::as_str).unwrap_or("");
    let like = os.get("ID_LIKE").map(String::as_str).unwrap_or("");
    let pve = s.osrelease.ok().is_some_and(|r| r.ends_with("-pve"));
    let has = |w: &str| id == w || like.split_whitespace().any(|l| l == w);
    if id == "nixos" {
        Distro::NixOs
    } else if pve {
        Distro::Proxmox
    } else if has("debian") || has("ubuntu") {
        Distro::Debian
    } else if has("fedora") || has("rhel") || has("centos") {
        Distro::Fedora
    } else if has("arch") {
        Distro::Arch
    } else if has("suse") || id.starts_with("opensuse") || id == "sles" {
        Distro::Suse
    } else {
        Distro::Other
    }
}

/// How to add `params` to the kernel command line on this host, step by step.
pub fn add_kernel_params(s: &Snapshot, params: &str) -> String {
    let d = distro(s);
    if d == Distro::NixOs {
        return format!(
            "In configuration.nix:\n    boot.kernelParams = [ {} ];\nthen: sudo nixos-rebuild switch && reboot",
            params
                .split_whitespace()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if s.kernel_cmdline_file.is_ok() && s.grub_default.is_missing() {
        let regen = match d {
            Distro::Proxmox => "sudo proxmox-boot-tool refresh",
            Distro::Fedora => "sudo kernel-install add \"$(uname -r)\" /lib/modules/\"$(uname -r)\"/vmlinuz",
            _ => "sudo kernel-install add \"$(uname -r)\" /usr/lib/modules/\"$(uname -r)\"/vmlinuz (or: sudo bootctl update)",
        };
        return format!(
            "Append `{params}` to the single line in /etc/kernel/cmdline (systemd-boot / kernel-install), then:\n    {regen}\nand reboot."
        );
    }
    match d {
        Distro::Fedora => {
            format!("sudo grubby --update-kernel=ALL --args=\"{params}\"\nthen reboot.")
        }
        _ => {
            let regen = match d {
                Distro::Debian => "sudo update-grub",
                Distro::Proxmox => "sudo update-grub   (or: sudo proxmox-boot-tool refresh on systemd-boot installs)",
                Distro::Arch => "sudo grub-mkconfig -o /boot/grub/grub.cfg",
                Distro::Suse => "sudo grub2-mkconfig -o /boot/grub2/grub.cfg",
                _ => "sudo grub-mkconfig -o /boot/grub/grub.cfg   (grub2-mkconfig -o /boot/grub2/grub.cfg on some distributions)",
            };
            format!(
                "Add `{params}` inside GRUB_CMDLINE_LINUX_DEFAULT=\"…\" in /etc/default/grub, then:\n    {regen}\nand reboot."
            )
        }
    }
}

/// The command that rebuilds the initramfs on this host.
pub fn regen_initramfs(s: &Snapshot) -> &'static str {
    match distro(s) {
        Distro::Debian | Distro::Proxmox => "sudo update-initramfs -u",
        Distro::Fedora | Distro::Suse => "sudo dracut -f",
        Distro::Arch => "sudo mkinitcpio -P",
        Distro::NixOs => "sudo nixos-rebuild switch",
        Distro::Other => "rebuild the initramfs (update-initramfs -u, dracut -f or mkinitcpio -P)",
    }
}

/// kstrtobool(): the values the kernel accepts for a bool module parameter.
pub fn kernel_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "y" | "yes" | "on" | "true" => Some(true),
        "0" | "n" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// Where a module parameter's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSource {
    /// Shown path (`/proc/cmdline`, `/etc/modprobe.d/i915.conf:3`).
    pub origin: String,
    /// The value given (None for a bare `i915.enable_gvt`).
    pub value: Option<String>,
}

/// Every configured value of `module.param`, in the order the kernel applies them: modprobe.d
/// options first (kmod reads them in file order), then the command line, which kmod appends
/// last, so it wins (libkmod-module.c, `kmod_module_get_options`). Built-in modules only see
/// the command line.
pub fn configured_param(s: &Snapshot, module: &str, param: &str) -> Vec<ParamSource> {
    let mut out = Vec::new();
    for (file, mf) in &s.modprobe {
        for e in &mf.entries {
            if let parse::modprobe::Directive::Options { module: m, params } = &e.directive {
                if parse::cmdline::normalize(m) == parse::cmdline::normalize(module) {
                    for (k, v) in params {
                        if parse::cmdline::normalize(k) == parse::cmdline::normalize(param) {
                            out.push(ParamSource {
                                origin: format!("{file}:{}", e.line),
                                value: v.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    if let Some(c) = s.cmdline.ok() {
        for p in c.module_param(module, param) {
            out.push(ParamSource {
                origin: "/proc/cmdline".into(),
                value: p.value.clone(),
            });
        }
    }
    out
}

/// The user and group QEMU runs as under libvirt, and how we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuIdentity {
    /// User name (or `+N` uid).
    pub user: String,
    /// Group name (or `+N` gid).
    pub group: String,
    /// Where it came from.
    pub source: String,
}

/// qemu.conf's first `user`/`group`; else the distribution default, read from the commented
/// `#user = "…"` line that every packaged qemu.conf carries (libvirt substitutes @QEMU_USER@ at
/// build time), else a table of known packagings.
pub fn qemu_identity(s: &Snapshot) -> QemuIdentity {
    let mut user = None;
    let mut group = None;
    let mut source = String::new();
    if let Some(f) = s.qemu_conf.ok() {
        if let Ok(conf) = parse::qemu_conf::parse(&f.text) {
            if let Some(u) = conf.get_str("user") {
                user = Some(u.to_string());
                source = format!("{} (user)", f.path);
            }
            if let Some(g) = conf.get_str("group") {
                group = Some(g.to_string());
            }
        }
        if user.is_none() || group.is_none() {
            for line in f.text.lines() {
                let l = line.trim_start_matches('#').trim();
                for (key, slot) in [("user", &mut user), ("group", &mut group)] {
                    if slot.is_none() && line.starts_with('#') {
                        if let Some(rest) = l.strip_prefix(key) {
                            let rest = rest.trim_start();
                            if let Some(v) = rest.strip_prefix('=') {
                                let v = v.trim().trim_matches('"');
                                if !v.is_empty() && !v.contains(' ') && !v.starts_with('@') {
                                    *slot = Some(v.to_string());
                                    if source.is_empty() {
                                        source =
                                            format!("{} (packaged default, commented)", f.path);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let (du, dg) = match distro(s) {
        Distro::Debian => ("libvirt-qemu", "libvirt-qemu"),
        Distro::Arch => ("libvirt-qemu", "libvirt-qemu"),
        Distro::NixOs => ("qemu-libvirtd", "qemu-libvirtd"),
        Distro::Proxmox => ("root", "root"),
        _ => ("qemu", "qemu"),
    };
    if source.is_empty() {
        source = "distribution default".into();
    }
    QemuIdentity {
        user: user.unwrap_or_else(|| du.to_string()),
        group: group.unwrap_or_else(|| dg.to_string()),
        source,
    }
}

/// Who QEMU runs as and how libvirt hands it device nodes: the identity, the parsed qemu.conf
/// (when it parses), `dynamic_ownership` (default 1: libvirt chowns /dev/vfio/N per VM) and the
/// resolved uid with every gid it has (primary, supplementary, qemu.conf's group).
pub struct QemuAccess {
    /// User, group and where they came from.
    pub identity: QemuIdentity,
    /// qemu.conf, when present and parseable.
    pub conf: Option<parse::qemu_conf::QemuConf>,
    /// libvirt's `dynamic_ownership`.
    pub dynamic_ownership: bool,
    /// (uid, gids) when the user exists in /etc/passwd.
    pub ids: Option<(u32, Vec<u32>)>,
}

/// Everything about the QEMU user that device-node checks need, derived once.
pub fn qemu_access(s: &Snapshot) -> QemuAccess {
    let identity = qemu_identity(s);
    let conf = s
        .qemu_conf
        .ok()
        .and_then(|f| parse::qemu_conf::parse(&f.text).ok());
    let dynamic_ownership = conf
        .as_ref()
        .and_then(|c| c.get_int("dynamic_ownership"))
        .unwrap_or(1)
        != 0;
    let ids = resolve_user(s, &identity.user).map(|(uid, gid, mut supp)| {
        supp.push(gid);
        if let Some(g) = resolve_group(s, &identity.group) {
            supp.push(g);
        }
        (uid, supp)
    });
    QemuAccess {
        identity,
        conf,
        dynamic_ownership,
        ids,
    }
}

/// Resolves a user spec (`name` or `+uid`) to (uid, primary gid, supplementary gids).
pub fn resolve_user(s: &Snapshot, user: &str) -> Option<(u32, u32, Vec<u32>)> {
    let users = s.users.ok()?;
    let u = if let Some(n) = user.strip_prefix('+') {
        let uid: u32 = n.parse().ok()?;
        users.iter().find(|u| u.uid == uid)?
    } else {
        users.iter().find(|u| u.name == user)?
    };
    let supp = s
        .groups
        .ok()
        .map(|gs| {
            gs.iter()
                .filter(|g| g.members.iter().any(|m| m == &u.name))
                .map(|g| g.gid)
                .collect()
        })
        .unwrap_or_default();
    Some((u.uid, u.gid, supp))
}

/// Resolves a group spec (`name` or `+gid`).
pub fn resolve_group(s: &Snapshot, group: &str) -> Option<u32> {
    if let Some(n) = group.strip_prefix('+') {
        return n.parse().ok();
    }
    s.groups
        .ok()?
        .iter()
        .find(|g| g.name == group)
        .map(|g| g.gid)
}

/// The name of a gid, or the number.
pub fn group_name(s: &Snapshot, gid: u32) -> String {
    s.groups
        .ok()
        .and_then(|gs| gs.iter().find(|g| g.gid == gid).map(|g| g.name.clone()))
        .unwrap_or_else(|| gid.to_string())
}

/// The name of a uid, or the number.
pub fn user_name(s: &Snapshot, uid: u32) -> String {
    s.users
        .ok()
        .and_then(|us| us.iter().find(|u| u.uid == uid).map(|u| u.name.clone()))
        .unwrap_or_else(|| uid.to_string())
}

/// A node's mode and owner as `ls -l` would show them: `0660 root:kvm`.
pub fn describe_node(s: &Snapshot, n: &NodeInfo) -> String {
    format!(
        "{:04o} {}:{}",
        n.mode,
        user_name(s, n.uid),
        group_name(s, n.gid)
    )
}

/// Whether GVT-g settings can apply at all: an Intel display device exists on the root bus.
/// (When the PCI bus is unreadable we cannot tell, and judge the configuration anyway.)
pub fn has_intel_igd(s: &Snapshot) -> bool {
    !s.pci.is_ok() || !s.intel_igds().is_empty()
}

/// Whether the iGPU is known *not* to have GVT-g (a platform with another route or none).
pub fn igd_without_gvt(s: &Snapshot) -> bool {
    s.intel_igds().first().is_some_and(|d| {
        crate::platform::platform_from_pci_id(d.device)
            .is_some_and(|p| !matches!(p.route(), crate::platform::Route::GvtG(_)))
    })
}

/// Whether GVT-g is impossible on this hardware whatever the configuration: a non-Intel CPU,
/// an iGPU of a platform without GVT-g, or no iGPU on a CPU that has none (F-series, server
/// parts). An Intel host whose iGPU is merely not visible (disabled in firmware, a guest) is
/// not counted: enabling it may be the fix.
pub fn gvt_impossible(s: &Snapshot) -> bool {
    let ci = s.cpuinfo.ok();
    let vendor = ci.and_then(|c| c.vendor_id.as_deref());
    if vendor.is_some_and(|v| v != "GenuineIntel") && s.intel_igds().is_empty() {
        return true;
    }
    if igd_without_gvt(s) {
        return true;
    }
    if s.pci.is_ok() && s.intel_igds().is_empty() {
        if let Some(c) = ci {
            let no_igpu_name = c
                .model_name
                .as_deref()
                .is_some_and(crate::platform::name_says_no_igpu);
            let server = match (c.family, c.model) {
                (Some(f), Some(m)) => {
                    crate::platform::platform_from_cpu(f, m, c.model_name.as_deref())
                        .is_some_and(|(p, _)| p.is_server())
                }
                _ => false,
            };
            return no_igpu_name || server;
        }
    }
    false
}

/// Whether a process with these ids may open `node` read-write (classic DAC; root always may).
pub fn can_rw(node: &NodeInfo, uid: u32, gids: &[u32]) -> bool {
    if uid == 0 {
        return true;
    }
    let bits = if node.uid == uid {
        (node.mode >> 6) & 0o7
    } else if gids.contains(&node.gid) {
        (node.mode >> 3) & 0o7
    } else {
        node.mode & 0o7
    };
    bits & 0o6 == 0o6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::sidefile::NodeKind;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("enable_gvt", "enable_gtv"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn rw_bits() {
        let n = NodeInfo {
            kind: NodeKind::Char,
            mode: 0o660,
            uid: 0,
            gid: 108,
            rdev: None,
        };
        assert!(can_rw(&n, 64055, &[108]));
        assert!(!can_rw(&n, 64055, &[64055]));
        assert!(can_rw(&n, 0, &[]));
    }

    #[test]
    fn bools() {
        assert_eq!(kernel_bool("Y"), Some(true));
        assert_eq!(kernel_bool("0"), Some(false));
        assert_eq!(kernel_bool("maybe"), None);
    }
}
