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

/// Writes the passthrough candidate listing as metrics: one `gvtg_passthrough_candidate` series
/// per display-class function (labels: address, id, driver, IOMMU group, boot VGA) and, for
/// those in an IOMMU group, `gvtg_passthrough_group_viable` (1 when VFIO could take the group).
pub fn render_listing(
    candidates: &[crate::checks::passthrough::Candidate],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "# HELP gvtg_passthrough_candidates Number of display-class PCI functions that could be passed through."
    )?;
    writeln!(out, "# TYPE gvtg_passthrough_candidates gauge")?;
    writeln!(out, "gvtg_passthrough_candidates {}", candidates.len())?;
    writeln!(
        out,
        "# HELP gvtg_passthrough_candidate A display-class PCI function (always 1; the labels carry the facts)."
    )?;
    writeln!(out, "# TYPE gvtg_passthrough_candidate gauge")?;
    for c in candidates {
        let f = &c.function;
        writeln!(
            out,
            "gvtg_passthrough_candidate{{address=\"{}\",id=\"{}\",driver=\"{}\",iommu_group=\"{}\",boot_vga=\"{}\"}} 1",
            esc(&f.address),
            esc(&f.id),
            esc(f.driver.as_deref().unwrap_or("")),
            c.iommu_group.map(|g| g.to_string()).unwrap_or_default(),
            c.boot_vga == Some(true)
        )?;
    }
    writeln!(
        out,
        "# HELP gvtg_passthrough_group_viable 1 when every other member of the candidate's IOMMU group is a bridge, its own function, unbound or on vfio-pci/pci-stub; absent without an IOMMU group."
    )?;
    writeln!(out, "# TYPE gvtg_passthrough_group_viable gauge")?;
    for c in candidates {
        if let (Some(g), Some(v)) = (c.iommu_group, c.viable) {
            writeln!(
                out,
                "gvtg_passthrough_group_viable{{address=\"{}\",iommu_group=\"{g}\"}} {}",
                esc(&c.function.address),
                u8::from(v)
            )?;
        }
    }
    Ok(())
}
