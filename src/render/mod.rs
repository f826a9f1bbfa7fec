//! Printing doctor results: human text ([`text`]), versioned JSON ([`json`]) and Prometheus
//! textfile-collector metrics ([`prometheus`]). Renderers are pure: they take the results and
//! write to a `&mut dyn Write`; colour is decided once by the caller.

pub mod json;
pub mod prometheus;
pub mod text;

use std::borrow::Cow;

use serde::Serialize;

use crate::checks::{Check, Counts, Outcome};
use crate::host::Snapshot;
use crate::platform;

/// Facts about the host shown at the top of every report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HostFacts {
    /// True when the running host was read (false: a captured tree).
    pub live: bool,
    /// Whether the snapshot was taken as root.
    pub as_root: bool,
    /// Running kernel release.
    pub kernel: Option<String>,
    /// Distribution (`PRETTY_NAME`).
    pub os: Option<String>,
    /// CPU model name.
    pub cpu: Option<String>,
    /// The Intel iGPU, if any.
    pub igd: Option<IgdFacts>,
}

/// The Intel iGPU in a report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IgdFacts {
    /// PCI address.
    pub address: String,
    /// `8086:xxxx`.
    pub id: String,
    /// Platform, when known.
    pub platform: Option<platform::Platform>,
    /// Bound driver.
    pub driver: Option<String>,
    /// Aperture (BAR2) in MB.
    pub aperture_mb: Option<u64>,
}

impl HostFacts {
    /// Extracts the facts from a snapshot.
    pub fn of(s: &Snapshot) -> HostFacts {
        HostFacts {
            live: s.live,
            as_root: s.euid == 0,
            kernel: s.osrelease.ok().cloned(),
            os: s
                .os_release
                .ok()
                .and_then(|o| o.get("PRETTY_NAME").cloned()),
            cpu: s.cpuinfo.ok().and_then(|c| c.model_name.clone()),
            igd: s.intel_igds().first().map(|d| IgdFacts {
                address: d.address.clone(),
                id: format!("{:04x}:{:04x}", d.vendor, d.device),
                platform: platform::platform_from_pci_id(d.device),
                driver: d.driver.clone(),
                aperture_mb: d
                    .bar_sizes
                    .get(2)
                    .copied()
                    .filter(|s| *s > 0)
                    .map(|s| s >> 20),
            }),
        }
    }
}

/// Everything a renderer needs.
pub struct Report<'a> {
    /// Host facts.
    pub host: HostFacts,
    /// Results in run order.
    pub results: &'a [(&'static Check, Outcome)],
    /// Tallies.
    pub counts: Counts,
    /// The exit code the doctor returns.
    pub exit_code: i32,
}

/// `s` made safe for a terminal: control characters (ESC, BEL, CR, newline, DEL, the C1 codes)
/// are shown as Rust escapes (`\u{1b}`, `\n`) instead of being written raw, so a name or file
/// read from a hostile sysfs or captured tree cannot move the cursor, recolour the screen, set
/// the window title or forge an output line. Tabs are kept. Text without such characters is
/// returned as is.
pub fn printable(s: &str) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\t';
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("i915-GVTg_V5_4\tx"), "i915-GVTg_V5_4\tx");
        assert_eq!(
            printable("evil\n\u{1b}[31mRED\u{7}\u{9b}2J"),
            "evil\\n\\u{1b}[31mRED\\u{7}\\u{9b}2J"
        );
        assert!(!printable("\u{1b}]0;title\u{7}")
            .chars()
            .any(char::is_control));
    }
}
