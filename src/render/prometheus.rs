//! `--format prometheus`: metrics for node_exporter's textfile collector, so a fleet can alert
//! on hosts whose GVT-g setup broke (after a kernel update, say). Every check emits one series
//! per possible status (0 or 1), so the series set is stable and `== 1` alerts are simple.

use std::io::Write;

use super::Report;
use crate::checks::Status;

const STATUSES: [Status; 5] = [
    Status::Pass,
    Status::Warn,
    Status::Fail,
    Status::Skip,
    Status::Error,
];

/// Escapes a label value (exposition format: backslash, double quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn lower(s: Status) -> String {
    s.label().to_ascii_lowercase()
}

/// Writes the report in the Prometheus text exposition format.
pub fn render(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "# HELP gvtg_check_status Status of a gvtg doctor check: 1 for the current status, 0 otherwise.")?;
    writeln!(out, "# TYPE gvtg_check_status gauge")?;
    for (c, o) in r.results {
        for s in STATUSES {
            writeln!(
                out,
                "gvtg_check_status{{check=\"{}\",status=\"{}\"}} {}",
                esc(c.id),
                lower(s),
                u8::from(o.status == s)
            )?;
        }
    }
    writeln!(
        out,
        "# HELP gvtg_checks Number of doctor checks per status."
    )?;
    writeln!(out, "# TYPE gvtg_checks gauge")?;
    let c = &r.counts;
    for (s, n) in [
        ("pass", c.pass),
        ("warn", c.warn),
        ("fail", c.fail),
        ("skip", c.skip),
        ("error", c.error),
    ] {
        writeln!(out, "gvtg_checks{{status=\"{s}\"}} {n}")?;
    }
    writeln!(
        out,
        "# HELP gvtg_doctor_exit_code Exit code of the doctor run (0 ok, 1 a check failed)."
    )?;
    writeln!(out, "# TYPE gvtg_doctor_exit_code gauge")?;
    writeln!(out, "gvtg_doctor_exit_code {}", r.exit_code)?;
    writeln!(
        out,
        "# HELP gvtg_build_info gvtg version and the host's kernel."
    )?;
    writeln!(out, "# TYPE gvtg_build_info gauge")?;
    writeln!(
        out,
        "gvtg_build_info{{version=\"{}\",kernel=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        esc(r.host.kernel.as_deref().unwrap_or(""))
    )?;
    Ok(())
}
