//! `gvtg doctor`: snapshot the host, run the checks, print, return the exit code.

use std::io::{IsTerminal, Write};

use super::Ctx;
use crate::checks::{self, Counts, Selection};
use crate::cli::{DoctorArgs, Format};
use crate::host::snapshot::Scope;
use crate::host::Snapshot;
use crate::render::{self, HostFacts, Report};

/// Exit code for a set of results: 1 when a check failed or could not be evaluated.
pub fn exit_code(c: &Counts) -> u8 {
    u8::from(c.fail > 0 || c.error > 0)
}

/// Runs the doctor.
pub fn run(args: &DoctorArgs, ctx: &Ctx, out: &mut dyn Write) -> anyhow::Result<u8> {
    let sel = Selection {
        only: args.only.clone(),
        skip: args.skip.clone(),
        passthrough: args.passthrough.as_ref().is_some_and(|p| !p.is_empty()),
    };
    sel.validate()?;
    if !sel.passthrough {
        if let Some(id) = sel.only.iter().find(|i| i.starts_with("passthrough.")) {
            anyhow::bail!(
                "{id} judges a device given with --passthrough PCI (`gvtg doctor --passthrough` lists the candidates)"
            );
        }
    }
    // Group members matter only to the passthrough checks and the candidate listing.
    let scope = if args.passthrough.is_some() {
        Scope::ALL
    } else {
        Scope::GVT
    };
    let mut snap = Snapshot::collect_scoped(&ctx.root, scope);
    match &args.passthrough {
        // `--passthrough` alone: list the candidates and how to choose.
        Some(p) if p.is_empty() => {
            match if args.json { Format::Json } else { args.format } {
                Format::Text => out.write_all(checks::passthrough::listing(&snap).as_bytes())?,
                Format::Json => render::json::render_listing(
                    &HostFacts::of(&snap),
                    &checks::passthrough::candidate_list(&snap),
                    out,
                )?,
                Format::Prometheus => render::prometheus::render_listing(
                    &checks::passthrough::candidate_list(&snap),
                    out,
                )?,
            }
            return Ok(0);
        }
        Some(p) => {
            snap.passthrough =
                checks::passthrough::resolve(&snap, p).map_err(|e| anyhow::anyhow!(e))?;
        }
        None => {}
    }
    let results = checks::run(&snap, &sel);
    let counts = Counts::of(&results);
    let code = exit_code(&counts);
    let report = Report {
        host: HostFacts::of(&snap),
        results: &results,
        counts,
        exit_code: i32::from(code),
    };
    let format = if args.json { Format::Json } else { args.format };
    match format {
        Format::Text => {
            render::text::render(&report, args.verbose, ctx.color, out)?;
            // On a terminal, point at the command that applies the fixes.
            if std::io::stdout().is_terminal()
                && crate::fix::plan(&ctx.root, &snap).is_ok_and(|p| !p.is_empty())
            {
                writeln!(
                    out,
                    "\n`gvtg fix` shows the changes that fix this as a diff (`gvtg fix --yes` applies them)."
                )?;
            }
        }
        Format::Json => render::json::render(&report, out)?,
        Format::Prometheus => render::prometheus::render(&report, out)?,
    }
    Ok(code)
}
