//! `gvtg passthrough bind|unbind PCI…`: move a device, its sibling functions and the rest of
//! its IOMMU group to vfio-pci now (driver_override + drivers_probe), or give them back to their
//! host drivers; refusing what the host needs. The logic is in [`crate::host::pci_bind`]; this
//! prints it (text or `--json`, docs/passthrough.md) and turns it into the exit code:
//! 0 done (or a dry run that would go ahead), 1 a write or its verification failed (what was
//! changed is put back), 2 usage or tool error, 3 refused.

use std::io::Write;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::Ctx;
use crate::host::pci_bind::{
    self, Action, GroupNode, Options, Outcome, Plan, Refusal, Skipped, Target,
};

/// Version of the `--json` document.
pub const SCHEMA_VERSION: u32 = 1;
/// Exit code of a refusal.
pub const EXIT_REFUSED: u8 = 3;
/// Exit code of a failed write or verification.
pub const EXIT_FAILED: u8 = 1;

const EXIT_HELP: &str = "Exit status: 0 done (or a dry run that would go ahead), 1 a write or its check failed (what was changed is put back), 2 usage or tool error, 3 refused. See docs/passthrough.md.";

/// `gvtg passthrough`.
#[derive(Debug, Args)]
pub struct PassthroughArgs {
    #[command(subcommand)]
    /// What to do.
    pub command: PassthroughCommand,
}

/// `gvtg passthrough` subcommands.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum PassthroughCommand {
    /// Bind devices to vfio-pci now, with their sibling functions and IOMMU group members
    /// (driver_override + drivers_probe); refused when the group holds what the host needs.
    #[command(after_help = EXIT_HELP)]
    Bind(BindArgs),
    /// Give devices bound to vfio-pci back to their host drivers (clears driver_override).
    #[command(after_help = EXIT_HELP)]
    Unbind(UnbindArgs),
}

/// `gvtg passthrough bind`.
#[derive(Debug, Args)]
pub struct BindArgs {
    /// PCI addresses (0000:01:00.0, 01:00.0) or vendor:device ids (10de:1b80).
    #[arg(required = true, value_name = "PCI")]
    pub devices: Vec<String>,
    /// Only the named functions, not their siblings or the rest of their IOMMU group (the group
    /// is then not viable for VFIO until the others are released).
    #[arg(long)]
    pub device_only: bool,
    /// Bind despite a storage controller, the only network controller or a boot VGA in use
    /// (never with the IOMMU off or the root filesystem's controller).
    #[arg(long)]
    pub force: bool,
    /// Print the writes (as shell lines) without doing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON (docs/passthrough.md).
    #[arg(long)]
    pub json: bool,
}

/// `gvtg passthrough unbind`.
#[derive(Debug, Args)]
pub struct UnbindArgs {
    /// PCI addresses (0000:01:00.0, 01:00.0) or vendor:device ids (10de:1b80).
    #[arg(required = true, value_name = "PCI")]
    pub devices: Vec<String>,
    /// Only the named functions, not their siblings or the rest of their IOMMU group.
    #[arg(long)]
    pub device_only: bool,
    /// Print the writes (as shell lines) without doing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON (docs/passthrough.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Modprobe {
    needed: bool,
    ran: bool,
}

#[derive(Serialize)]
struct Json<'a> {
    schema_version: u32,
    action: Action,
    live: bool,
    root: String,
    dry_run: bool,
    force: bool,
    device_only: bool,
    result: &'static str,
    exit_code: u8,
    modprobe: Modprobe,
    named: &'a [String],
    devices: &'a [Target],
    skipped: &'a [Skipped],
    groups: &'a [GroupNode],
    refusals: &'a [Refusal],
    notes: &'a [String],
    error: Option<&'a str>,
    rolled_back: &'a [String],
    rollback_errors: &'a [String],
}

/// Runs `gvtg passthrough`.
pub fn run(args: &PassthroughArgs, ctx: &Ctx, out: &mut dyn Write) -> anyhow::Result<u8> {
    let (action, devices, opts, dry_run, json) = match &args.command {
        PassthroughCommand::Bind(a) => (
            Action::Bind,
            &a.devices,
            Options {
                device_only: a.device_only,
                force: a.force,
            },
            a.dry_run,
            a.json,
        ),
        PassthroughCommand::Unbind(a) => (
            Action::Unbind,
            &a.devices,
            Options {
                device_only: a.device_only,
                force: false,
            },
            a.dry_run,
            a.json,
        ),
    };
    let root = &ctx.root;
    let mut plan = pci_bind::plan(root, action, devices, opts)?;
    let blocked = plan.blocked();
    let mut outcome = Outcome::default();
    let (result, code) = if blocked {
        ("refused", EXIT_REFUSED)
    } else if plan.devices.is_empty() {
        ("nothing-to-do", 0)
    } else if dry_run {
        ("planned", 0)
    } else {
        if root.is_live() && root.euid() != 0 {
            anyhow::bail!(
                "gvtg passthrough {} writes to /sys/bus/pci: run it as root (sudo), or see the writes with --dry-run",
                action.word()
            );
        }
        outcome = pci_bind::execute(root, &mut plan);
        if outcome.error.is_some() {
            ("failed", EXIT_FAILED)
        } else {
            ("done", 0)
        }
    };
    if json {
        let j = Json {
            schema_version: SCHEMA_VERSION,
            action,
            live: plan.live,
            root: pci_bind::root_shown(root),
            dry_run,
            force: opts.force,
            device_only: opts.device_only,
            result,
            exit_code: code,
            modprobe: Modprobe {
                needed: plan.modprobe,
                ran: outcome.modprobe_ran,
            },
            named: &plan.named,
            devices: &plan.devices,
            skipped: &plan.skipped,
            groups: &plan.groups,
            refusals: &plan.refusals,
            notes: &plan.notes,
            error: outcome.error.as_deref(),
            rolled_back: &outcome.rolled_back,
            rollback_errors: &outcome.rollback_errors,
        };
        crate::render::json::write_pretty(out, &j)?;
        return Ok(code);
    }
    text(&plan, &outcome, result, dry_run, opts, out)?;
    Ok(code)
}

fn text(
    p: &Plan,
    o: &Outcome,
    result: &str,
    dry_run: bool,
    opts: Options,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let verb = p.action.word();
    for g in &p.groups {
        writeln!(out, "IOMMU group {} ({}):", g.number, g.node)?;
        for t in p.devices.iter().filter(|t| t.iommu_group == Some(g.number)) {
            writeln!(out, "  {}  [{}]", t.line, t.role.word())?;
        }
    }
    for t in p.devices.iter().filter(|t| t.iommu_group.is_none()) {
        writeln!(out, "  {}  [{}]", t.line, t.role.word())?;
    }
    for s in &p.skipped {
        writeln!(out, "  left alone: {}", s.reason)?;
    }
    for n in &p.notes {
        writeln!(out, "note: {n}")?;
    }
    if result == "refused" {
        writeln!(out)?;
        for r in &p.refusals {
            let force = if r.overridden {
                "overridden by --force"
            } else if r.overridable {
                "--force overrides this"
            } else {
                "--force does not override this"
            };
            writeln!(out, "refused ({}): {}", r.kind, r.message)?;
            writeln!(out, "  what to do: {}", r.remedy)?;
            writeln!(out, "  ({force})")?;
        }
        writeln!(out, "Nothing was written.")?;
        return Ok(());
    }
    for r in p.refusals.iter().filter(|r| r.overridden) {
        writeln!(out, "WARNING (--force, {}): {}", r.kind, r.message)?;
    }
    if result == "nothing-to-do" {
        writeln!(
            out,
            "Nothing to {verb}: {}",
            if p.action == Action::Bind {
                "every function is on vfio-pci already (or left alone above)"
            } else {
                "no function is on vfio-pci or overridden to it"
            }
        )?;
        return Ok(());
    }
    if dry_run {
        writeln!(out, "Dry run: nothing is written. The writes, in order:")?;
        if p.modprobe {
            writeln!(out, "modprobe vfio-pci")?;
        }
        for t in &p.devices {
            for w in &t.writes {
                writeln!(out, "{}", w.shell())?;
            }
        }
        return Ok(());
    }
    if o.modprobe_ran {
        writeln!(out, "loaded vfio-pci (modprobe vfio-pci)")?;
    }
    for t in &p.devices {
        let before = t.driver_before.as_deref().unwrap_or("no driver");
        match t.verified {
            _ if !t.written => writeln!(out, "{}: not done", t.address)?,
            None => writeln!(
                out,
                "{}: written ({} writes; captured tree, not verified)",
                t.address,
                t.writes.len()
            )?,
            Some(_) => {
                let after = match &t.driver_after {
                    Some(d) => d.clone(),
                    None if p.action == Action::Unbind => format!(
                        "no driver (no loaded driver claims it{})",
                        if t.host_drivers.is_empty() {
                            String::new()
                        } else {
                            format!("; load one: modprobe {}", t.host_drivers.join(" or "))
                        }
                    ),
                    None => "no driver".into(),
                };
                writeln!(out, "{}: {before} -> {after}", t.address)?;
            }
        }
    }
    if let Some(e) = &o.error {
        writeln!(out, "error: {e}")?;
        for r in &o.rolled_back {
            writeln!(out, "put back: {r}")?;
        }
        for r in &o.rollback_errors {
            writeln!(out, "could not put back: {r}")?;
        }
        return Ok(());
    }
    for g in &p.groups {
        let state = match (p.action, g.present) {
            (Action::Bind, true) => {
                "present: give it to the VM (libvirt <hostdev> or QEMU -device vfio-pci,host=ADDR)"
            }
            (Action::Bind, false) if p.live => {
                "absent: vfio did not create it (is devtmpfs mounted, udev running?)"
            }
            (Action::Bind, false) => "absent in the tree",
            (Action::Unbind, true) => {
                "still present (another member of the group is still on vfio-pci)"
            }
            (Action::Unbind, false) => "gone",
        };
        writeln!(out, "{}: {state}", g.node)?;
    }
    if p.action == Action::Bind && opts.device_only {
        writeln!(
            out,
            "Bound with --device-only: see the notes above on the group's viability."
        )?;
    }
    Ok(())
}
