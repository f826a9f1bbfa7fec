//! `gvtg explain`: the embedded `checks/<id>.md` of a check.

use std::io::Write;

use crate::checks;
use crate::cli::ExplainArgs;

/// Prints one check's document, or the list of checks.
pub fn run(args: &ExplainArgs, out: &mut dyn Write) -> anyhow::Result<u8> {
    if args.list {
        for c in checks::all_checks() {
            writeln!(out, "{:<20} {}", c.id, c.title)?;
        }
        return Ok(0);
    }
    let id = args.id.as_deref().unwrap_or_default();
    match checks::find(id) {
        Some(c) => {
            out.write_all(c.explain.as_bytes())?;
            if c.id == "kernel.log" {
                known_messages(out)?;
            }
            Ok(0)
        }
        None => {
            checks::Selection {
                only: vec![id.to_string()],
                ..checks::Selection::default()
            }
            .validate()?;
            Ok(2)
        }
    }
}

/// The embedded kernel-log pattern table, as a list after the kernel.log document.
fn known_messages(out: &mut dyn Write) -> anyhow::Result<()> {
    let pats = checks::log::patterns().map_err(|e| anyhow::anyhow!("{e}"))?;
    writeln!(
        out,
        "\n## Known messages ({} patterns, checks/kernel-log.toml)\n",
        pats.len()
    )?;
    for p in pats {
        writeln!(
            out,
            "- `{}` [{}] {} — {} (source: {})",
            p.id,
            p.severity.label(),
            p.regex
                .clone()
                .unwrap_or_else(|| p.literals().join("` | `")),
            p.meaning,
            p.source
        )?;
    }
    Ok(())
}
