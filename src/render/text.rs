//! Human output: one aligned verdict line per check (as virt-host-validate prints them), then a
//! summary and the fixes. `-v` adds the evidence under each line.

use std::io::Write;

use owo_colors::OwoColorize;

use super::{printable, Report};
use crate::checks::Status;

/// The padded verdict label, coloured when `color` is set.
pub fn status_label(s: Status, color: bool) -> String {
    let l = format!("{:<5}", s.label());
    if !color {
        return l;
    }
    match s {
        Status::Pass => l.green().to_string(),
        Status::Warn => l.yellow().to_string(),
        Status::Fail => l.red().bold().to_string(),
        Status::Skip => l.dimmed().to_string(),
        Status::Error => l.magenta().bold().to_string(),
    }
}

/// Writes the report as text.
pub fn render(r: &Report, verbose: bool, color: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let h = &r.host;
    let mut head = vec![format!(
        "gvtg {} doctor — {}",
        env!("CARGO_PKG_VERSION"),
        if h.live { "this host" } else { "captured tree" }
    )];
    if let Some(os) = &h.os {
        head.push(printable(os).into_owned());
    }
    if let Some(k) = &h.kernel {
        head.push(format!("kernel {}", printable(k)));
    }
    writeln!(out, "{}", head.join(", "))?;
    if let Some(c) = &h.cpu {
        write!(out, "CPU: {}", printable(c))?;
        if let Some(g) = &h.igd {
            write!(
                out,
                "; iGPU {} [{}]{}",
                printable(&g.address),
                g.id,
                g.driver
                    .as_deref()
                    .map(|d| format!(" ({})", printable(d)))
                    .unwrap_or_default()
            )?;
        }
        writeln!(out)?;
    }
    if h.live && !h.as_root {
        writeln!(
            out,
            "Note: not running as root; checks that need root say so."
        )?;
    }
    writeln!(out)?;
    let idw = r
        .results
        .iter()
        .map(|(c, _)| c.id.len())
        .max()
        .unwrap_or(10);
    for (c, o) in r.results {
        writeln!(
            out,
            "{:<idw$}  {}  {}",
            c.id,
            status_label(o.status, color),
            printable(&o.summary)
        )?;
        if verbose {
            for e in &o.evidence {
                let line = format!(
                    "{:idw$}         {}: {}",
                    "",
                    printable(&e.path),
                    printable(&e.excerpt)
                );
                if color {
                    writeln!(out, "{}", line.dimmed())?;
                } else {
                    writeln!(out, "{line}")?;
                }
            }
        }
    }
    let c = &r.counts;
    writeln!(
        out,
        "\n{} passed, {} warning(s), {} failed, {} skipped, {} error(s)",
        c.pass, c.warn, c.fail, c.skip, c.error
    )?;
    let fixes: Vec<_> = r
        .results
        .iter()
        .filter(|(_, o)| {
            matches!(o.status, Status::Fail | Status::Warn | Status::Error) && o.remedy.is_some()
        })
        .collect();
    if !fixes.is_empty() {
        writeln!(out, "\nHow to fix:")?;
        for (c, o) in fixes {
            let head = format!("[{}] {}", c.id, c.title);
            if color {
                writeln!(out, "\n{}", head.bold())?;
            } else {
                writeln!(out, "\n{head}")?;
            }
            for l in o.remedy.as_deref().unwrap_or("").lines() {
                writeln!(out, "  {}", printable(l))?;
            }
        }
    }
    if !verbose && r.results.iter().any(|(_, o)| !o.evidence.is_empty()) {
        writeln!(out, "\nRun with -v for the evidence behind each verdict; `gvtg explain ID` explains a check.")?;
    }
    Ok(())
}
