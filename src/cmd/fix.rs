//! `gvtg fix`: failing checks → a reviewed plan → a safe, undoable apply.
//!
//! Dry run by default: the plan is printed as unified diffs plus the commands it would run.
//! `--yes` applies; on a terminal without `--yes` it asks once. `--undo` restores the originals.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use super::Ctx;
use crate::fix::{self, apply};
use crate::host::{HostRoot, Snapshot};

/// `gvtg fix`.
#[derive(Debug, Args)]
pub struct FixArgs {
    /// Apply the plan (default: print it as a dry run; on a terminal, ask once).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Restore every file gvtg fix changed to its original, byte for byte, and clear the journal.
    #[arg(long, conflicts_with = "yes")]
    pub undo: bool,
    /// With --undo: restore even files edited by hand since gvtg fix wrote them.
    #[arg(long, requires = "undo")]
    pub force: bool,
    /// Whole-GPU VFIO passthrough of these functions (and their sibling functions), as for
    /// `gvtg doctor --passthrough`: PCI addresses (0000:01:00.0, 01:00.0) or vendor:device ids
    /// (10de:1b80). Adds IOMMU kernel arguments, /etc/modprobe.d/vfio.conf and the initramfs
    /// modules to the plan.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        value_name = "PCI",
        conflicts_with = "undo"
    )]
    pub passthrough: Option<Vec<String>>,
}

/// Runs `gvtg fix`.
pub fn run(args: &FixArgs, ctx: &Ctx, out: &mut dyn Write) -> anyhow::Result<u8> {
    if args.undo {
        let restored = apply::undo(&ctx.root, args.force)?;
        if restored.is_empty() {
            writeln!(out, "Nothing to undo: the journal is empty.")?;
        } else {
            for p in &restored {
                writeln!(out, "restored {p}")?;
            }
            writeln!(
                out,
                "Undone: {} path(s) restored; the journal is cleared. Regenerate the boot configuration and initramfs as before (and reboot) for the originals to take effect.",
                restored.len()
            )?;
        }
        return Ok(0);
    }
    let mut snap = Snapshot::collect(&ctx.root);
    if let Some(p) = &args.passthrough {
        snap.passthrough =
            crate::checks::passthrough::resolve(&snap, p).map_err(|e| anyhow::anyhow!(e))?;
    }
    let plan = fix::plan(&ctx.root, &snap)?;
    write!(out, "{}", plan.render(ctx.root.is_live()))?;
    if plan.files.is_empty() && plan.commands.is_empty() {
        if plan.nixos.is_none() {
            writeln!(out, "Nothing to change.")?;
        }
        return Ok(0);
    }
    let mut go = args.yes;
    if !go && std::io::stdin().is_terminal() {
        write!(out, "\nApply these changes? [y/N] ")?;
        out.flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        go = matches!(line.trim(), "y" | "Y" | "yes" | "Yes");
    }
    if !go {
        let pt = args
            .passthrough
            .as_ref()
            .map(|p| format!(" --passthrough {}", p.join(",")))
            .unwrap_or_default();
        writeln!(
            out,
            "\nDry run: nothing was changed. Run `gvtg fix{pt} --yes` to apply."
        )?;
        return Ok(0);
    }
    let applied = apply::apply(&ctx.root, &plan)?;
    for p in &applied.changed {
        writeln!(out, "changed {p}")?;
    }
    // Commands that make file changes take effect run only when a file changed; commands that
    // are the change themselves (kernelstub, usermod) always.
    let files_changed = !applied.changed.is_empty();
    let to_run: Vec<&fix::Command> = plan
        .commands
        .iter()
        .filter(|c| files_changed || c.is_change)
        .collect();
    if ctx.root.is_live() {
        for c in &to_run {
            apply::failpoint("before-command")?;
            writeln!(out, "running: {}", c.argv.join(" "))?;
            let st = std::process::Command::new(&c.argv[0])
                .args(&c.argv[1..])
                .status()
                .map_err(|e| anyhow::anyhow!("running {}: {e}", c.argv[0]))?;
            if !st.success() {
                anyhow::bail!(
                    "{} failed ({st}); the files are changed (undo with `gvtg fix --undo`); run it again by hand",
                    c.argv.join(" ")
                );
            }
        }
    } else {
        for c in &to_run {
            writeln!(
                out,
                "would run (not on a captured tree): {}",
                c.argv.join(" ")
            )?;
        }
    }
    writeln!(
        out,
        "Applied. Originals are saved in {}; `gvtg fix --undo` restores them.{}",
        HostRoot::display(apply::JOURNAL),
        if plan.reboot {
            " Reboot for the changes to take effect."
        } else {
            ""
        }
    )?;
    Ok(0)
}
