//! `gvtg fix`: the doctor's failing checks turned into one plan of file edits, commands and
//! follow-ups ([`plan`]), shown as unified diffs ([`Plan::render`]) and applied atomically with
//! an undo journal ([`apply`]).
//!
//! Planning is pure apart from reading the files it edits through the [`HostRoot`]; every edit
//! is an [`edit`] function that returns `None` when the text is already right, so a second run
//! plans nothing.

pub mod apply;
pub mod edit;
pub mod nixos;
mod passthrough;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;

use crate::checks::{self, support, support::Distro, Outcome, Selection, Status};
use crate::host::{HostRoot, Snapshot};
use crate::parse;

/// The udev rule that gives the kvm group access to /dev/vfio/* (what NixOS's kvmgt module
/// installs).
pub const UDEV_RULE: &str = r#"SUBSYSTEM=="vfio", OWNER="root", GROUP="kvm", MODE="0660""#;
/// Where the rule goes.
pub const UDEV_RULE_FILE: &str = "etc/udev/rules.d/90-gvtg-vfio.rules";
/// The modules-load.d file we own.
pub const MODULES_LOAD_FILE: &str = "etc/modules-load.d/gvtg.conf";
/// The modprobe.d file we own.
pub const MODPROBE_FILE: &str = "etc/modprobe.d/i915-gvt.conf";
/// The dracut drop-in we own.
pub const DRACUT_FILE: &str = "etc/dracut.conf.d/gvtg.conf";

/// One file to change: its content before (None = did not exist) and after.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// Path relative to the root (`etc/default/grub`).
    pub rel: String,
    /// Content before; None when the file does not exist.
    pub before: Option<String>,
    /// Content after.
    pub after: String,
    /// Why (check ids).
    pub reasons: Vec<String>,
}

/// A command to run after the files changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Program and arguments (run without a shell).
    pub argv: Vec<String>,
    /// Why.
    pub reason: String,
    /// True when the command is itself the change (kernelstub, usermod), so it runs even when
    /// no file changed; otherwise it only makes file changes take effect.
    pub is_change: bool,
}

/// The whole plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Files to change, in order of first change.
    pub files: Vec<FileChange>,
    /// Commands to run after the files changed.
    pub commands: Vec<Command>,
    /// Things to do afterwards (restart libvirtd, create vGPUs).
    pub follow_ups: Vec<String>,
    /// Notes: what could not be fixed mechanically.
    pub notes: Vec<String>,
    /// Whether the changes take effect only after a reboot.
    pub reboot: bool,
    /// NixOS: the configuration.nix snippet to add instead of editing files.
    pub nixos: Option<String>,
}

impl Plan {
    /// True when nothing would change and nothing is suggested.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.commands.is_empty() && self.nixos.is_none()
    }

    /// Prints the plan: unified diffs, commands, reboot need, follow-ups.
    pub fn render(&self, live: bool) -> String {
        let mut o = String::new();
        if let Some(n) = &self.nixos {
            o.push_str("NixOS is configured declaratively: gvtg fix edits nothing. Add this to /etc/nixos/configuration.nix\n(merge the attributes into your existing ones), then run `sudo nixos-rebuild switch` and reboot:\n\n");
            o.push_str(n);
            o.push('\n');
        }
        for f in &self.files {
            let shown = HostRoot::display(&f.rel);
            let before = f.before.as_deref().unwrap_or("");
            let diff = similar::TextDiff::from_lines(before, f.after.as_str());
            let old_name = if f.before.is_some() {
                format!("a{shown}")
            } else {
                "/dev/null".to_string()
            };
            let _ = writeln!(o, "# {} ({})", shown, f.reasons.join(", "));
            let _ = write!(
                o,
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&old_name, &format!("b{shown}"))
                    .missing_newline_hint(true)
            );
        }
        if !self.commands.is_empty() {
            o.push_str(if live {
                "\nthen run:\n"
            } else {
                "\nthen on the host it would run (not on a captured tree):\n"
            });
            for c in &self.commands {
                let _ = writeln!(o, "    {}    # {}", c.argv.join(" "), c.reason);
            }
        }
        if self.reboot {
            o.push_str("\nA reboot is needed for the kernel command line, module options and initramfs to take effect.\n");
        }
        if !self.follow_ups.is_empty() {
            o.push_str("\nAfterwards:\n");
            for f in &self.follow_ups {
                let _ = writeln!(o, "    {f}");
            }
        }
        if !self.notes.is_empty() {
            o.push_str("\nNot fixed automatically:\n");
            for n in &self.notes {
                let _ = writeln!(o, "  - {n}");
            }
        }
        o
    }
}

/// How this host boots, as far as adding kernel arguments goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootLoader {
    /// `/etc/default/grub` + the distribution's grub-mkconfig.
    Grub,
    /// GRUB managed by grubby (Fedora/RHEL): `/etc/default/grub` plus `grubby --update-kernel=ALL`.
    Grubby,
    /// systemd-boot / kernel-install reading `/etc/kernel/cmdline`.
    KernelCmdline,
    /// Proxmox's proxmox-boot-tool (systemd-boot or GRUB on ZFS/UEFI) with `/etc/kernel/cmdline`.
    ProxmoxBootTool,
    /// Pop!_OS's kernelstub.
    Kernelstub,
    /// NixOS: configuration only.
    NixOs,
    /// Nothing recognised.
    Unknown,
}

/// Which initramfs generator builds the initramfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initramfs {
    /// Debian's initramfs-tools.
    InitramfsTools,
    /// dracut.
    Dracut,
    /// Arch's mkinitcpio.
    Mkinitcpio,
    /// Unknown or not applicable.
    None,
}

fn exists_any(root: &HostRoot, rels: &[&str]) -> bool {
    rels.iter().any(|r| root.exists(r))
}

/// Detects the boot loader from the tree.
pub fn boot_loader(root: &HostRoot, s: &Snapshot) -> BootLoader {
    let d = support::distro(s);
    if d == Distro::NixOs || root.exists("etc/NIXOS") {
        return BootLoader::NixOs;
    }
    if root.exists("etc/kernelstub/configuration") {
        return BootLoader::Kernelstub;
    }
    let kcmd = root.exists("etc/kernel/cmdline");
    let pbt = exists_any(
        root,
        &["usr/sbin/proxmox-boot-tool", "sbin/proxmox-boot-tool"],
    );
    if kcmd && (pbt || d == Distro::Proxmox) && (pbt || !root.exists("etc/default/grub")) {
        return BootLoader::ProxmoxBootTool;
    }
    if kcmd && !root.exists("etc/default/grub") {
        return BootLoader::KernelCmdline;
    }
    if root.exists("etc/default/grub") || s.grub_default.is_ok() {
        if d == Distro::Fedora {
            return BootLoader::Grubby;
        }
        return BootLoader::Grub;
    }
    BootLoader::Unknown
}

/// Detects the initramfs generator: its configuration in the tree first, else the distribution.
pub fn initramfs(root: &HostRoot, s: &Snapshot) -> Initramfs {
    if root.exists("etc/mkinitcpio.conf") {
        return Initramfs::Mkinitcpio;
    }
    if root.exists("etc/initramfs-tools") {
        return Initramfs::InitramfsTools;
    }
    if exists_any(root, &["etc/dracut.conf", "etc/dracut.conf.d"]) {
        return Initramfs::Dracut;
    }
    match support::distro(s) {
        Distro::Debian | Distro::Proxmox => Initramfs::InitramfsTools,
        Distro::Fedora | Distro::Suse => Initramfs::Dracut,
        Distro::Arch => Initramfs::Mkinitcpio,
        _ => Initramfs::None,
    }
}

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Builds the plan while reading files through the root; edits to one file compose.
struct Builder<'a> {
    root: &'a HostRoot,
    plan: Plan,
    current: BTreeMap<String, String>,
    /// NixOS: what the configuration.nix snippet must set.
    nix: nixos::Wants,
}

impl Builder<'_> {
    /// Runs `f` on the file's current (planned) content; records the change when `f` returns Some.
    fn edit(
        &mut self,
        rel: &str,
        reason: &str,
        f: impl FnOnce(&str) -> Result<Option<String>>,
    ) -> Result<bool> {
        let cur = match self.current.get(rel) {
            Some(c) => Some(c.clone()),
            None => match self.root.read_bytes(rel) {
                crate::host::Probe::Ok(b) => Some(String::from_utf8(b).map_err(|_| {
                    anyhow::anyhow!(
                        "{} is not UTF-8 text; edit it by hand",
                        HostRoot::display(rel)
                    )
                })?),
                crate::host::Probe::Missing => None,
                crate::host::Probe::Denied => {
                    anyhow::bail!(
                        "reading {}: permission denied (run as root)",
                        HostRoot::display(rel)
                    )
                }
                crate::host::Probe::Invalid(m) => anyhow::bail!("{m}"),
            },
        };
        apply::check_target(self.root, &self.root.path(rel), &HostRoot::display(rel))?;
        let text = cur.clone().unwrap_or_default();
        let Some(new) = f(&text)? else {
            return Ok(false);
        };
        if new == text && cur.is_some() {
            return Ok(false);
        }
        match self.plan.files.iter_mut().find(|c| c.rel == rel) {
            Some(c) => {
                c.after = new.clone();
                if !c.reasons.iter().any(|r| r == reason) {
                    c.reasons.push(reason.to_string());
                }
            }
            None => self.plan.files.push(FileChange {
                rel: rel.to_string(),
                before: cur,
                after: new.clone(),
                reasons: vec![reason.to_string()],
            }),
        }
        self.current.insert(rel.to_string(), new);
        Ok(true)
    }

    /// Like [`Self::edit`], but a failing edit becomes a note instead of aborting the plan.
    fn try_edit(
        &mut self,
        rel: &str,
        reason: &str,
        f: impl FnOnce(&str) -> Result<Option<String>>,
    ) -> bool {
        match self.edit(rel, reason, f) {
            Ok(c) => c,
            Err(e) => {
                self.plan
                    .notes
                    .push(format!("{}: {e:#}", HostRoot::display(rel)));
                false
            }
        }
    }

    /// Queues the distribution's initramfs rebuild (nothing for `Initramfs::None`).
    fn rebuild_initramfs(&mut self, initrd: Initramfs) {
        let cmd = match initrd {
            Initramfs::InitramfsTools => Some(argv(&["update-initramfs", "-u"])),
            Initramfs::Dracut => Some(argv(&["dracut", "-f"])),
            Initramfs::Mkinitcpio => Some(argv(&["mkinitcpio", "-P"])),
            Initramfs::None => None,
        };
        if let Some(c) = cmd {
            self.command(
                c,
                "rebuild the initramfs so early-loaded modules see the change",
            );
        }
    }

    fn command(&mut self, argv: Vec<String>, reason: &str) {
        self.push_command(argv, reason, false);
    }

    /// A command that is a change by itself (kernelstub, usermod).
    fn change_command(&mut self, argv: Vec<String>, reason: &str) {
        self.push_command(argv, reason, true);
    }

    fn push_command(&mut self, argv: Vec<String>, reason: &str, is_change: bool) {
        if !self.plan.commands.iter().any(|c| c.argv == argv) {
            self.plan.commands.push(Command {
                argv,
                reason: reason.to_string(),
                is_change,
            });
        }
    }
}

fn bad(results: &[(&'static checks::Check, Outcome)], id: &str, warn_too: bool) -> bool {
    results.iter().any(|(c, o)| {
        c.id == id && (o.status == Status::Fail || (warn_too && o.status == Status::Warn))
    })
}

/// Modules the modules.loaded check wants at boot that are neither loaded nor built in.
fn modules_wanted(s: &Snapshot) -> Vec<String> {
    let loaded = s.modules.loaded.ok();
    let builtin = s.modules.builtin.ok();
    let mut out = Vec::new();
    for m in ["kvmgt", "vfio_iommu_type1", "mdev"] {
        let there = loaded.is_some_and(|l| l.contains(m)) || builtin.is_some_and(|b| b.contains(m));
        let absent = matches!(
            s.modules.files.get(m),
            Some(crate::host::snapshot::ModuleFile::Absent)
        );
        if !there && !absent {
            out.push(m.to_string());
        }
    }
    if out.is_empty() {
        out.push("kvmgt".to_string());
    }
    out
}

/// The vGPU type to suggest: the first type of the first parent with instances available.
fn vgpu_type(s: &Snapshot) -> Option<String> {
    let parents = s.mdev_parents.ok()?;
    parents
        .iter()
        .filter_map(|p| p.types.ok())
        .flatten()
        .find(|t| t.available_instances.ok().is_some_and(|n| *n > 0))
        .map(|t| t.id.clone())
}

/// Builds the plan for this host: the GVT-g fixes, and with functions named in
/// [`Snapshot::passthrough`] (`gvtg fix --passthrough PCI`) the whole-GPU VFIO passthrough ones.
pub fn plan(root: &HostRoot, s: &Snapshot) -> Result<Plan> {
    let mut b = Builder {
        root,
        plan: Plan::default(),
        current: BTreeMap::new(),
        nix: nixos::Wants::default(),
    };
    if s.passthrough.is_empty() {
        plan_gvt(&mut b, root, s)?;
    } else {
        // GVT-g and passing the iGPU itself through (GVT-d) exclude each other; on hosts
        // without GVT-g there is nothing of it to fix.
        let igpu = checks::passthrough::members(s)
            .iter()
            .any(|d| d.address == "0000:00:02.0");
        if !igpu && !support::gvt_impossible(s) {
            plan_gvt(&mut b, root, s)?;
        }
        passthrough::plan(&mut b, root, s)?;
    }
    b.plan.nixos = nixos::snippet(&b.nix);
    Ok(b.plan)
}

/// The GVT-g part of the plan.
fn plan_gvt(b: &mut Builder, root: &HostRoot, s: &Snapshot) -> Result<()> {
    let results = checks::run(s, &Selection::default());
    if support::gvt_impossible(s) {
        b.plan.notes.push(
            "GVT-g is not possible on this hardware (see `gvtg doctor`); nothing to fix.".into(),
        );
        return Ok(());
    }
    // Without a usable iGPU or a kernel with GVT-g, i915 options and kvmgt at boot would do
    // nothing (or fail at every boot): say what blocks them and leave the boot setup alone.
    let mut blocked = false;
    for (id, why) in [
        ("gpu.igd", "the iGPU is missing or not usable by i915"),
        ("kernel.support", "this kernel lacks GVT-g"),
    ] {
        if let Some((_, o)) = results
            .iter()
            .find(|(c, o)| c.id == id && o.status == Status::Fail)
        {
            b.plan.notes.push(format!(
                "{why} ({id}: {}); kernel arguments and modules are left alone until that is fixed",
                o.summary
            ));
            blocked = true;
        }
    }
    let loader = boot_loader(root, s);
    let initrd = initramfs(root, s);
    let want_gvt = !blocked && bad(&results, "i915.enable-gvt", false);
    let drop_guc = !blocked && bad(&results, "i915.guc", true);
    let want_modules = !blocked && bad(&results, "modules.loaded", false);
    // Only node permissions are ours to fix (a missing node or an mdev without a VFIO driver
    // is a module matter, handled by modules.loaded).
    let want_udev = results.iter().any(|(c, o)| {
        c.id == "vfio.permissions" && o.status == Status::Fail && o.summary.contains("not usable")
    });
    let want_acl = bad(&results, "libvirt.qemu-conf", false);

    if loader == BootLoader::NixOs {
        b.nix = nixos::Wants {
            gvt: want_gvt || want_modules,
            params: want_gvt,
            modules: if want_modules {
                modules_wanted(s)
            } else {
                Vec::new()
            },
            udev: want_udev,
            acl: want_acl.then(|| acl_list(s)),
            vgpu: vgpu_type(s),
            ..Default::default()
        };
        b.plan.reboot = nixos::snippet(&b.nix).is_some() && (want_gvt || drop_guc || want_modules);
        if drop_guc {
            b.plan.notes.push("remove i915.enable_guc from boot.kernelParams / boot.extraModprobeConfig in configuration.nix".into());
        }
        return Ok(());
    }

    let mut boot_changed = false;
    let mut initrd_changed = false;
    let add: Vec<String> = if want_gvt {
        vec!["i915.enable_gvt=1".to_string()]
    } else {
        Vec::new()
    };
    let remove: fn(&str) -> bool = if drop_guc {
        edit::is_guc_submission
    } else {
        |_| false
    };
    let reason = match (want_gvt, drop_guc) {
        (true, true) => "i915.enable-gvt, i915.guc",
        (true, false) => "i915.enable-gvt",
        _ => "i915.guc",
    };
    if want_gvt || drop_guc {
        let guc_args: Vec<String> = s
            .cmdline
            .ok()
            .map(|c| {
                c.params
                    .iter()
                    .map(|p| p.raw.clone())
                    .filter(|a| remove(a))
                    .collect()
            })
            .unwrap_or_default();
        boot_changed |= kernel_args(b, root, s, &add, remove, &guc_args, reason);
    }

    // modprobe.d: fix lines written in kernel-command-line syntax (modprobe ignores them), and
    // on hosts where the command line cannot be edited, add `options i915 enable_gvt=1`.
    let mut modprobe_has_gvt = false;
    for (file, mf) in &s.modprobe {
        let rel = file.trim_start_matches('/').to_string();
        if !rel.starts_with("etc/") {
            continue;
        }
        for p in &mf.problems {
            if let parse::modprobe::ProblemKind::CmdlineSyntax { suggestion } = &p.kind {
                let suggestion = edit::without_guc_submission(suggestion);
                if suggestion.is_empty() {
                    continue;
                }
                if b.try_edit(&rel, "i915.enable-gvt", |t| {
                    edit::replace_line(t, p.line, &suggestion)
                }) {
                    initrd_changed = true;
                }
                modprobe_has_gvt |= suggestion.contains("enable_gvt");
            }
        }
        if drop_guc {
            for e in &mf.entries {
                if let parse::modprobe::Directive::Options { module, params } = &e.directive {
                    let hit = params.iter().any(|(k, v)| {
                        edit::is_guc_submission(&format!(
                            "{module}.{k}={}",
                            v.as_deref().unwrap_or("")
                        ))
                    });
                    if hit
                        && b.try_edit(&rel, "i915.guc", |t| {
                            edit::drop_option(t, e.line, edit::is_guc_submission)
                        })
                    {
                        initrd_changed = true;
                    }
                }
            }
        }
    }
    if want_gvt && !modprobe_has_gvt && matches!(loader, BootLoader::Unknown) {
        initrd_changed |= b.try_edit(MODPROBE_FILE, "i915.enable-gvt", |t| {
            edit::ensure_line(t, "options i915 enable_gvt=1")
        });
    }

    if want_modules {
        // Modules already configured to load at boot only need the reboot.
        let configured: Vec<String> = s
            .modules_load
            .iter()
            // Our own file does not count, so a rerun after an interrupted one plans the same.
            .filter(|(f, _)| f.trim_start_matches('/') != MODULES_LOAD_FILE)
            .flat_map(|(_, m)| m.iter().map(|x| parse::cmdline::normalize(x)))
            .collect();
        let mods: Vec<String> = modules_wanted(s)
            .into_iter()
            .filter(|m| !configured.contains(&parse::cmdline::normalize(m)))
            .collect();
        for m in &mods {
            b.try_edit(MODULES_LOAD_FILE, "modules.loaded", |t| {
                edit::ensure_line(t, m)
            });
        }
        let kvmgt = vec!["kvmgt".to_string()];
        let early = mods.iter().any(|m| m == "kvmgt");
        initrd_changed |= early
            && match initrd {
                Initramfs::InitramfsTools => {
                    b.try_edit("etc/initramfs-tools/modules", "modules.loaded", |t| {
                        edit::ensure_line(t, "kvmgt")
                    })
                }
                Initramfs::Dracut => b.try_edit(DRACUT_FILE, "modules.loaded", |t| {
                    edit::ensure_line(t, "add_drivers+=\" kvmgt \"")
                }),
                Initramfs::Mkinitcpio => {
                    if root.exists("etc/mkinitcpio.conf") {
                        b.try_edit("etc/mkinitcpio.conf", "modules.loaded", |t| {
                            edit::mkinitcpio_modules(t, &kvmgt)
                        })
                    } else {
                        false
                    }
                }
                Initramfs::None => false,
            };
        b.plan.reboot = true;
    }
    if initrd_changed {
        b.rebuild_initramfs(initrd);
    }
    b.plan.reboot |= boot_changed || initrd_changed;

    if want_udev {
        if b.try_edit(UDEV_RULE_FILE, "vfio.permissions", |t| {
            edit::ensure_line(t, UDEV_RULE)
        }) {
            b.command(
                argv(&["udevadm", "control", "--reload"]),
                "load the new udev rule",
            );
            b.command(
                argv(&[
                    "udevadm",
                    "trigger",
                    "--subsystem-match=vfio",
                    "--action=change",
                ]),
                "apply it to existing /dev/vfio nodes",
            );
        }
        // The rule gives the nodes to group kvm: the QEMU user must be in it.
        let id = support::qemu_identity(s);
        let kvm = s
            .groups
            .ok()
            .and_then(|gs| gs.iter().find(|g| g.name == "kvm"));
        let member = support::resolve_user(s, &id.user).is_some_and(|(_, gid, _)| {
            kvm.is_some_and(|k| k.gid == gid || k.members.contains(&id.user))
        });
        if kvm.is_some() && !member && !id.user.starts_with('+') && id.user != "root" {
            b.change_command(
                argv(&["usermod", "-aG", "kvm", &id.user]),
                "let the QEMU user open group-kvm nodes",
            );
        }
    }

    if want_acl {
        if let Some(f) = s.qemu_conf.ok() {
            let rel = f.path.trim_start_matches('/').to_string();
            if b.try_edit(&rel, "libvirt.qemu-conf", edit::qemu_acl) {
                b.plan
                    .follow_ups
                    .push("sudo systemctl restart libvirtd   (or virtqemud)".into());
            }
        }
    }

    let vgpus_exist = s.mdev_devices.ok().is_some_and(|d| !d.is_empty());
    if !vgpus_exist && !blocked {
        match vgpu_type(s) {
            Some(t) => b.plan.follow_ups.push(format!("gvtg vgpu create {t} --persist")),
            None if want_gvt || want_modules || bad(&results, "mdev.parent", false) => b
                .plan
                .follow_ups
                .push("after the reboot: `gvtg doctor`, then `gvtg vgpu create TYPE --persist` (types: `gvtg vgpu types`)".into()),
            None => {}
        }
    }
    Ok(())
}

/// Adds `add` to and drops what `remove` matches (`remove_args`: those on the running command
/// line) from the kernel command line, the way this host's boot loader keeps it. True when
/// something changed.
fn kernel_args(
    b: &mut Builder,
    root: &HostRoot,
    s: &Snapshot,
    add: &[String],
    remove: fn(&str) -> bool,
    guc_args: &[String],
    reason: &str,
) -> bool {
    let loader = boot_loader(root, s);
    let distro = support::distro(s);
    let mut boot_changed = false;
    match loader {
        BootLoader::Grub | BootLoader::Grubby => {
            // grub-mkconfig sources /etc/default/grub.d/*.cfg after /etc/default/grub (Ubuntu
            // cloud images set GRUB_CMDLINE_LINUX_DEFAULT there): a value set there wins.
            if let Some(names) = root.read_dir("etc/default/grub.d").ok() {
                for n in names.iter().filter(|n| n.ends_with(".cfg")) {
                    let rel = format!("etc/default/grub.d/{n}");
                    if let Some(t) = root.read(&rel).ok() {
                        let g = parse::grub::parse(t);
                        if g.get("GRUB_CMDLINE_LINUX_DEFAULT").is_some() {
                            let n = format!(
                                "{} also sets GRUB_CMDLINE_LINUX_DEFAULT and is read after /etc/default/grub, so its value wins: add the arguments there too",
                                HostRoot::display(&rel)
                            );
                            if !b.plan.notes.contains(&n) {
                                b.plan.notes.push(n);
                            }
                        }
                    }
                }
            }
            let changed = b.try_edit("etc/default/grub", reason, |t| {
                edit::grub_default(t, add, remove)
            });
            boot_changed |= changed;
            if loader == BootLoader::Grubby {
                if changed && (!add.is_empty() || !guc_args.is_empty()) {
                    let mut v = argv(&["grubby", "--update-kernel=ALL"]);
                    if !add.is_empty() {
                        v.push(format!("--args={}", add.join(" ")));
                    }
                    if !guc_args.is_empty() {
                        v.push(format!("--remove-args={}", guc_args.join(" ")));
                    }
                    b.command(
                        v,
                        "kernel arguments of every installed kernel (BLS entries)",
                    );
                    boot_changed = true;
                }
            } else if changed {
                let regen = match distro {
                    Distro::Debian | Distro::Proxmox => argv(&["update-grub"]),
                    Distro::Suse => argv(&["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"]),
                    _ => argv(&["grub-mkconfig", "-o", "/boot/grub/grub.cfg"]),
                };
                b.command(regen, "regenerate grub.cfg from /etc/default/grub");
            }
        }
        BootLoader::KernelCmdline | BootLoader::ProxmoxBootTool => {
            let changed = b.try_edit("etc/kernel/cmdline", reason, |t| {
                edit::kernel_cmdline(t, add, remove)
            });
            boot_changed |= changed;
            if changed {
                if loader == BootLoader::ProxmoxBootTool {
                    b.command(
                        argv(&["proxmox-boot-tool", "refresh"]),
                        "copy the new command line to the boot entries",
                    );
                } else if let Some(rel) = s.osrelease.ok() {
                    b.command(
                        vec![
                            "kernel-install".into(),
                            "add".into(),
                            rel.clone(),
                            format!("/usr/lib/modules/{rel}/vmlinuz"),
                        ],
                        "rewrite the boot entry with /etc/kernel/cmdline",
                    );
                }
            }
        }
        BootLoader::Kernelstub => {
            let before = b.plan.commands.len();
            // kernelstub keeps its options in this JSON file; an argument already there is done.
            let conf = root
                .read("etc/kernelstub/configuration")
                .ok()
                .cloned()
                .unwrap_or_default();
            for a in add.iter().filter(|a| !conf.contains(a.as_str())) {
                b.change_command(
                    argv(&["kernelstub", "-a", a]),
                    "add the kernel argument (Pop!_OS)",
                );
            }
            for a in guc_args.iter().filter(|a| conf.contains(a.as_str())) {
                b.change_command(
                    argv(&["kernelstub", "-d", a]),
                    "remove the kernel argument (Pop!_OS)",
                );
            }
            boot_changed = b.plan.commands.len() > before;
        }
        BootLoader::NixOs => unreachable!("handled above"),
        BootLoader::Unknown => {
            b.plan.notes.push(format!("no boot loader configuration found (/etc/default/grub, /etc/kernel/cmdline): add {} to the kernel command line by hand", add.join(" ")));
        }
    }
    boot_changed
}

/// The merged ACL for NixOS's verbatimConfig: the host's list plus libvirt's defaults.
fn acl_list(s: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = s
        .qemu_conf
        .ok()
        .and_then(|f| parse::qemu_conf::parse(&f.text).ok())
        .and_then(|c| {
            c.get_list("cgroup_device_acl")
                .map(|l| l.iter().map(|x| x.to_string()).collect())
        })
        .unwrap_or_default();
    for d in edit::DEFAULT_ACL {
        if !out.iter().any(|x| x == d) {
            out.push(d.to_string());
        }
    }
    out
}
