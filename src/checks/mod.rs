//! The check registry: every doctor check, in run order, with its stable id.
//!
//! A check is a row in an area file's `CHECKS` table (ripgrep's `FLAGS` pattern): id, title, the
//! ids it requires, its explanation (`checks/<id>.md`, embedded), and a pure function of the
//! [`Snapshot`] and the outcomes of the checks before it. Adding a check means editing one area
//! file; the registry tests below keep ids unique and well-formed, `requires` pointing backwards,
//! and every `checks/*.md` owned by exactly one check.
//!
//! A check whose prerequisite failed is skipped only where the state it reads cannot exist
//! without that prerequisite (no mdev types without a parent). Configuration is judged even when
//! the hardware checks fail, so one run shows everything there is to fix.

use serde::Serialize;

use crate::host::Snapshot;

mod cpu;
mod gpu;
mod iommu;
mod kernel;
mod libvirt;
pub mod log;
pub mod looking_glass;
pub mod mdev;
mod modules;
mod params;
pub mod passthrough;
pub mod support;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing wrong.
    Pass,
    /// Works, but something deserves attention.
    Warn,
    /// GVT-g cannot work until this is fixed.
    Fail,
    /// Not evaluated: a prerequisite failed, or the check needs root.
    Skip,
    /// Could not be evaluated: the input was unreadable or malformed.
    Error,
}

impl Status {
    /// Upper-case label used in text output.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
            Status::Error => "ERROR",
        }
    }
}

/// A piece of evidence: which file said what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// Path as the host sees it.
    pub path: String,
    /// The relevant excerpt (a line, a value).
    pub excerpt: String,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The verdict.
    pub status: Status,
    /// One line: what is the case.
    pub summary: String,
    /// Where it was seen.
    pub evidence: Vec<Evidence>,
    /// The exact fix, when something is wrong (may span lines; commands are indented).
    pub remedy: Option<String>,
}

impl Outcome {
    fn new(status: Status, summary: impl Into<String>) -> Self {
        Outcome {
            status,
            summary: summary.into(),
            evidence: Vec::new(),
            remedy: None,
        }
    }
    /// A pass.
    pub fn pass(s: impl Into<String>) -> Self {
        Self::new(Status::Pass, s)
    }
    /// A warning.
    pub fn warn(s: impl Into<String>) -> Self {
        Self::new(Status::Warn, s)
    }
    /// A failure.
    pub fn fail(s: impl Into<String>) -> Self {
        Self::new(Status::Fail, s)
    }
    /// Not evaluated, with the reason.
    pub fn skip(s: impl Into<String>) -> Self {
        Self::new(Status::Skip, s)
    }
    /// Could not be evaluated.
    pub fn error(s: impl Into<String>) -> Self {
        Self::new(Status::Error, s)
    }
    /// Adds evidence.
    pub fn with(mut self, path: impl Into<String>, excerpt: impl Into<String>) -> Self {
        self.evidence.push(Evidence {
            path: path.into(),
            excerpt: excerpt.into(),
        });
        self
    }
    /// Adds evidence in place.
    pub fn push(&mut self, path: impl Into<String>, excerpt: impl Into<String>) {
        self.evidence.push(Evidence {
            path: path.into(),
            excerpt: excerpt.into(),
        });
    }
    /// Sets the remedy.
    pub fn fix(mut self, r: impl Into<String>) -> Self {
        self.remedy = Some(r.into());
        self
    }
    /// Raises the status to at least `s` (Pass < Warn < Fail).
    pub fn at_least(&mut self, s: Status) {
        if s > self.status {
            self.status = s;
        }
    }
}

/// The outcomes of the checks that ran before the current one.
pub struct Prior<'a> {
    done: &'a [(&'static Check, Outcome)],
}

impl Prior<'_> {
    /// The outcome of an earlier check, by id.
    pub fn get(&self, id: &str) -> Option<&Outcome> {
        self.done.iter().find(|(c, _)| c.id == id).map(|(_, o)| o)
    }

    /// True when the earlier check ran and failed (or could not run).
    pub fn failed(&self, id: &str) -> bool {
        self.get(id)
            .is_some_and(|o| matches!(o.status, Status::Fail | Status::Error))
    }
}

/// One doctor check.
pub struct Check {
    /// Stable id (`area.kebab-name`): JSON key, `--only`/`--skip` value, `checks/<id>.md`.
    pub id: &'static str,
    /// Short title for the verdict line.
    pub title: &'static str,
    /// Earlier checks whose failure makes this one meaningless (it is skipped).
    pub requires: &'static [&'static str],
    /// The explanation shown by `gvtg explain`.
    pub explain: &'static str,
    /// The judgement: pure.
    pub run: fn(&Snapshot, &Prior) -> Outcome,
}

/// Kernel-log messages the checks look for besides the kernel-log table
/// (`checks/kernel-log.toml`): each is found with [`crate::host::snapshot::KernelLog::containing`].
const LOG_TERMS: &[&str] = &[
    // mdev.parent: why no parent appeared.
    "Unsupported device. GVT-g is disabled",
    "gvt:",
    "kvmgt",
    // mdev.types: creation failed for lack of aperture.
    "failed to create intel vgpu: -28",
    "fail to allocate resource",
    "fail to alloc",
    // modules.loaded: `modprobe kvmgt` failing.
    "could not insert 'kvmgt'",
    // i915.enable-guc: GVT-g refused because of GuC submission.
    "not yet supported with GuC submission",
    // passthrough: the firmware framebuffer on the boot GPU.
    "efifb: framebuffer at",
    "simple-framebuffer",
    "simpledrm",
    "vesafb:",
];

/// Every kernel-log substring a check looks for: the checks' own terms and the literals of the
/// kernel-log table. The snapshot keeps only the records holding one of them.
pub fn log_terms() -> &'static [&'static str] {
    static T: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut t: Vec<&'static str> = LOG_TERMS.to_vec();
        if let Ok(pats) = log::patterns() {
            t.extend(pats.iter().flat_map(|p| p.literals()).map(String::as_str));
        }
        t.sort_unstable();
        t.dedup();
        t
    })
}

/// The filter of [`log_terms`], built once; `None` if a term cannot be searched for in raw log
/// lines (the snapshot then keeps every record).
pub fn log_filter() -> Option<&'static crate::parse::kmsg::Filter> {
    static F: std::sync::OnceLock<Option<crate::parse::kmsg::Filter>> = std::sync::OnceLock::new();
    F.get_or_init(|| crate::parse::kmsg::Filter::new(log_terms()).ok())
        .as_ref()
}

/// All checks in run order.
pub fn catalog() -> impl Iterator<Item = &'static Check> {
    cpu::CHECKS
        .iter()
        .chain(gpu::CHECKS)
        .chain(kernel::CHECKS)
        .chain(params::CHECKS)
        .chain(iommu::CHECKS)
        .chain(modules::CHECKS)
        .chain(mdev::CHECKS)
        .chain(libvirt::CHECKS)
        .chain(log::CHECKS)
}

/// The whole-GPU passthrough checks, in run order: a separate catalog that runs only with
/// `gvtg doctor --passthrough PCI`, after the GVT-g checks.
pub fn passthrough_catalog() -> impl Iterator<Item = &'static Check> {
    passthrough::CHECKS.iter()
}

/// Every check of both catalogs (GVT-g first).
pub fn all_checks() -> impl Iterator<Item = &'static Check> {
    catalog().chain(passthrough_catalog())
}

/// Looks a check up by id (in either catalog).
pub fn find(id: &str) -> Option<&'static Check> {
    all_checks().find(|c| c.id == id)
}

/// Which checks to run.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// Only these ids (empty = all).
    pub only: Vec<String>,
    /// Not these ids.
    pub skip: Vec<String>,
    /// Also run the passthrough catalog (after the GVT-g checks).
    pub passthrough: bool,
}

impl Selection {
    /// Errors on ids that do not exist, naming the closest one.
    pub fn validate(&self) -> anyhow::Result<()> {
        for id in self.only.iter().chain(&self.skip) {
            if find(id).is_none() {
                let ids: Vec<&str> = all_checks().map(|c| c.id).collect();
                let hint = ids
                    .iter()
                    .min_by_key(|c| support::edit_distance(c, id))
                    .map(|c| format!(" Did you mean '{c}'?"))
                    .unwrap_or_default();
                anyhow::bail!("unknown check id '{id}'.{hint} (`gvtg explain --list` lists them)");
            }
        }
        Ok(())
    }

    fn wants(&self, id: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|o| o == id))
            && !self.skip.iter().any(|s| s == id)
    }
}

/// Runs the selected checks in order.
pub fn run(snap: &Snapshot, sel: &Selection) -> Vec<(&'static Check, Outcome)> {
    let mut done: Vec<(&'static Check, Outcome)> = Vec::new();
    let extra = if sel.passthrough {
        passthrough::CHECKS
    } else {
        &[]
    };
    for check in catalog().chain(extra) {
        if !sel.wants(check.id) {
            continue;
        }
        let blocked = check.requires.iter().find_map(|r| {
            done.iter()
                .find(|(c, o)| {
                    c.id == *r && matches!(o.status, Status::Fail | Status::Error | Status::Skip)
                })
                .map(|(c, o)| (c.id, o.status))
        });
        let outcome = match blocked {
            Some((id, st)) => Outcome::skip(format!(
                "skipped: needs {id}, which reported {}",
                st.label()
            )),
            None => (check.run)(snap, &Prior { done: &done }),
        };
        done.push((check, outcome));
    }
    done
}

/// Counts per status.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub pass: usize,
    /// Warned.
    pub warn: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
    /// Could not be evaluated.
    pub error: usize,
}

impl Counts {
    /// Tallies outcomes.
    pub fn of(results: &[(&'static Check, Outcome)]) -> Counts {
        let mut c = Counts::default();
        for (_, o) in results {
            match o.status {
                Status::Pass => c.pass += 1,
                Status::Warn => c.warn += 1,
                Status::Fail => c.fail += 1,
                Status::Skip => c.skip += 1,
                Status::Error => c.error += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_log_term_is_kept_and_searchable() {
        let terms = log_terms();
        for t in LOG_TERMS {
            assert!(terms.contains(t), "{t:?}");
        }
        for p in log::patterns().expect("table") {
            for l in p.literals() {
                assert!(terms.contains(&l.as_str()), "{l:?} of {}", p.id);
            }
        }
        let f = log_filter().expect("every term is printable ASCII without a backslash");
        // The SIMD searcher takes up to 64 terms, all three bytes or longer; past that the
        // kernel log is scanned by an automaton several times slower.
        assert!(f.searched() <= 64, "{} terms", f.searched());
        assert!(terms.iter().all(|t| t.len() >= 3), "{terms:?}");
    }

    #[test]
    fn ids_unique_and_well_formed() {
        let re = regex::Regex::new(r"^[a-z0-9]+\.[a-z0-9-]+$").unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for c in all_checks() {
            assert!(re.is_match(c.id), "bad id {}", c.id);
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert!(!c.explain.trim().is_empty(), "{} has no explanation", c.id);
            assert!(
                c.explain.starts_with("# "),
                "{}.md must start with a title",
                c.id
            );
        }
    }

    #[test]
    fn the_fourteen_checks_in_order() {
        let ids: Vec<&str> = catalog().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [
                "cpu.generation",
                "gpu.igd",
                "kernel.support",
                "i915.enable-gvt",
                "i915.guc",
                "iommu.state",
                "modules.loaded",
                "kvm.device",
                "mdev.parent",
                "mdev.types",
                "vfio.permissions",
                "libvirt.qemu-conf",
                "libvirt.seccomp",
                "kernel.log",
            ]
        );
    }

    #[test]
    fn requires_point_backwards() {
        let ids: Vec<&str> = all_checks().map(|c| c.id).collect();
        for (i, c) in all_checks().enumerate() {
            for r in c.requires {
                let pos = ids.iter().position(|x| x == r);
                assert!(
                    pos.is_some_and(|p| p < i),
                    "{} requires {r}, which is not earlier",
                    c.id
                );
            }
        }
    }

    #[test]
    fn every_doc_belongs_to_a_check() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/checks");
        for e in std::fs::read_dir(dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".md") {
                assert!(find(id).is_some(), "checks/{name} has no check");
            }
        }
    }

    #[test]
    fn passthrough_checks_are_separate_and_opt_in() {
        assert!(passthrough_catalog().all(|c| c.id.starts_with("passthrough.")));
        assert!(catalog().all(|c| !c.id.starts_with("passthrough.")));
        let snap = crate::testing::snapshot_with(|_| {});
        assert_eq!(run(&snap, &Selection::default()).len(), 14);
        let with = run(
            &snap,
            &Selection {
                passthrough: true,
                ..Selection::default()
            },
        );
        assert_eq!(with.len(), 14 + passthrough_catalog().count());
        assert!(with[14..]
            .iter()
            .all(|(c, _)| c.id.starts_with("passthrough.")));
    }

    #[test]
    fn unknown_id_suggests() {
        let s = Selection {
            only: vec!["mdev.type".into()],
            ..Selection::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("Did you mean 'mdev.types'"), "{e}");
    }
}
