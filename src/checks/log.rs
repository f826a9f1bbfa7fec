//! `kernel.log`: the kernel log scanned for the known GVT-g, kvmgt, VFIO and DMAR messages.
//!
//! The messages and what they mean live as data in `checks/kernel-log.toml` (embedded), not in
//! code, so adding one is a table edit that the tests below validate (every pattern compiles,
//! ids are unique, severities are known). Substring patterns are preferred: they cost nothing to
//! build; the few formatted messages use a regex, compiled once.

use std::sync::OnceLock;

use serde::Deserialize;

use super::{Check, Outcome, Prior, Status};
use crate::host::{Probe, Snapshot};

pub(super) const CHECKS: &[Check] = &[Check {
    id: "kernel.log",
    title: "Kernel log free of known GVT-g errors",
    requires: &[],
    explain: include_str!("../../checks/kernel.log.md"),
    run: check_kernel_log,
}];

/// `checks/kernel-log.toml`, turned into JSON by the build script (quicker to parse).
const PATTERNS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/kernel-log.json"));

/// How bad a known message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational or harmless.
    Info,
    /// Worth attention.
    Warn,
    /// GVT-g is broken.
    Fail,
}

impl Severity {
    /// Lower-case name.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Fail => "fail",
        }
    }
}

/// One or several literal substrings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Literals {
    /// One substring.
    One(String),
    /// Any of these.
    Any(Vec<String>),
}

impl Literals {
    fn as_slice(&self) -> &[String] {
        match self {
            Literals::One(s) => std::slice::from_ref(s),
            Literals::Any(v) => v,
        }
    }
}

/// One known kernel-log message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    /// Stable id.
    pub id: String,
    /// Substring(s) to look for: the cheap filter.
    pub contains: Literals,
    /// Optional regex a filtered record must also match.
    #[serde(default)]
    pub regex: Option<String>,
    /// How bad.
    pub severity: Severity,
    /// What it means.
    pub meaning: String,
    /// What to do.
    #[serde(default)]
    pub remedy: Option<String>,
    /// Where the message comes from.
    pub source: String,
    #[serde(skip)]
    compiled: OnceLock<Option<regex::bytes::Regex>>,
}

/// Compiles a table regex. Kernel messages are ASCII, and the table's classes mean ASCII:
/// `\d`, `\w`, `\s` and `\b` are matched byte-wise without Unicode tables (gvtg is built
/// without the `regex` crate's Unicode data, which every process start would otherwise pay
/// for in relocations and pages).
pub fn compile(r: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(r).unicode(false).build()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    pattern: Vec<Pattern>,
}

/// The embedded pattern table, parsed once. Regexes are validated by the tests below and
/// compiled lazily; a broken table is a build-time bug that degrades, at run time, to an error
/// verdict rather than a panic.
pub fn patterns() -> Result<&'static [Pattern], &'static str> {
    static P: OnceLock<Result<Vec<Pattern>, String>> = OnceLock::new();
    P.get_or_init(|| {
        let f: File = serde_json::from_str(PATTERNS_JSON)
            .map_err(|e| format!("checks/kernel-log.toml: {e}"))?;
        for p in &f.pattern {
            if p.contains.as_slice().iter().any(|c| c.is_empty())
                || p.contains.as_slice().is_empty()
            {
                return Err(format!("pattern {} has an empty `contains`", p.id));
            }
        }
        Ok(f.pattern)
    })
    .as_ref()
    .map(|v| v.as_slice())
    .map_err(|e| e.as_str())
}

impl Pattern {
    /// The literal filter(s).
    pub fn literals(&self) -> &[String] {
        self.contains.as_slice()
    }

    /// Whether a log line matches: contains one literal and, when there is a regex, matches it.
    /// An invalid regex (caught by the tests) never matches.
    pub fn matches(&self, line: &str) -> bool {
        if !self.literals().iter().any(|c| line.contains(c.as_str())) {
            return false;
        }
        match &self.regex {
            None => true,
            Some(r) => self
                .compiled
                .get_or_init(|| compile(r).ok())
                .as_ref()
                .is_some_and(|re| re.is_match(line.as_bytes())),
        }
    }
}

/// Indices of the patterns that match `line`, in table order. The kernel-log filter (one
/// SIMD search for every term, built once for the snapshot) rules out almost every record; the
/// rest are tested pattern by pattern.
fn matching(pats: &'static [Pattern], line: &str) -> Vec<usize> {
    if crate::checks::log_filter().is_some_and(|f| !f.finds(line.as_bytes())) {
        return Vec::new();
    }
    pats.iter()
        .enumerate()
        .filter(|(_, p)| p.matches(line))
        .map(|(i, _)| i)
        .collect()
}

fn check_kernel_log(s: &Snapshot, _: &Prior) -> Outcome {
    let (path, total, records) = match &s.kernel_log {
        Probe::Ok(log) => (&log.path, log.total, &log.records),
        Probe::Denied => {
            return Outcome::skip(
                "skipped: /dev/kmsg needs root; run with sudo to scan the kernel log",
            )
        }
        Probe::Missing if !s.live => return Outcome::skip("no kernel log in the captured tree"),
        other => return Outcome::error(other.describe_failure("/dev/kmsg")),
    };
    let pats = match patterns() {
        Ok(p) => p,
        Err(e) => return Outcome::error(format!("kernel-log pattern table is broken: {e}")),
    };
    // (pattern, count, first line)
    let mut hits: Vec<(&Pattern, usize, &str)> = Vec::new();
    for r in records {
        for p in matching(pats, &r.text)
            .into_iter()
            .filter_map(|i| pats.get(i))
        {
            {
                match hits.iter_mut().find(|(q, _, _)| q.id == p.id) {
                    Some(h) => h.1 += 1,
                    None => hits.push((p, 1, &r.text)),
                }
            }
        }
    }
    let worst = hits
        .iter()
        .map(|(p, _, _)| p.severity)
        .fold(Severity::Info, |a, b| match (a, b) {
            (Severity::Fail, _) | (_, Severity::Fail) => Severity::Fail,
            (Severity::Warn, _) | (_, Severity::Warn) => Severity::Warn,
            _ => Severity::Info,
        });
    let problems: Vec<&(&Pattern, usize, &str)> = hits
        .iter()
        .filter(|(p, _, _)| p.severity != Severity::Info)
        .collect();
    let mut o = match worst {
        Severity::Info => Outcome::pass(if hits.is_empty() {
            format!("{total} record(s) scanned, no known GVT-g message")
        } else {
            format!(
                "{total} record(s) scanned; only informational messages: {}",
                hits.iter()
                    .map(|(p, _, _)| p.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
        sev => {
            let mut o = Outcome::fail(format!(
                "{total} record(s) scanned: {}",
                problems
                    .iter()
                    .map(|(p, _, _)| p.meaning.trim_end_matches('.'))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            if sev == Severity::Warn {
                o.status = Status::Warn;
            }
            let remedies: Vec<String> = problems
                .iter()
                .filter_map(|(p, _, _)| p.remedy.as_ref().map(|r| format!("[{}] {r}", p.id)))
                .collect();
            if !remedies.is_empty() {
                o = o.fix(remedies.join("\n"));
            }
            o
        }
    };
    for (p, n, line) in &hits {
        let tag = p.severity.label();
        let times = if *n > 1 {
            format!(" (×{n})")
        } else {
            String::new()
        };
        let harmless = if p.severity == Severity::Info {
            format!(" — {}", p.meaning)
        } else {
            String::new()
        };
        o.push(
            path.clone(),
            format!("[{tag}:{}] {}{times}{harmless}", p.id, line.trim()),
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sample, snapshot_with};

    fn run_log(text: &str) -> Outcome {
        let s = snapshot_with(|t| {
            t.file("dev/kmsg", text);
        });
        check_kernel_log(&s, &Prior { done: &[] })
    }

    #[test]
    fn table_is_valid() {
        let p = patterns().expect("pattern table parses and compiles");
        assert!(p.len() >= 20, "only {} patterns", p.len());
        let mut ids = std::collections::BTreeSet::new();
        for x in p {
            assert!(ids.insert(&x.id), "duplicate pattern id {}", x.id);
            if let Some(r) = &x.regex {
                assert!(compile(r).is_ok(), "{}: regex does not compile", x.id);
            }
            if x.severity != Severity::Info {
                assert!(x.remedy.is_some(), "{} has no remedy", x.id);
            }
        }
    }

    #[test]
    fn verdicts_on_real_logs() {
        for (file, status) in [
            ("dmesg/gvt-linux-3-golden-hw-state-kbl.txt", Status::Pass),
            ("dmesg/gvt-linux-21-skl-mdev-registered.txt", Status::Pass),
            ("dmesg/gvt-linux-126-icl-unsupported.txt", Status::Fail),
            (
                "dmesg/gvt-linux-8-skl-i3-6006u-create-fail-28.txt",
                Status::Fail,
            ),
            ("dmesg/gvt-linux-164-fail-alloc-high-gm.txt", Status::Fail),
            (
                "dmesg/archwiki-intel-graphics-guc-submission-gvt-fail.txt",
                Status::Fail,
            ),
            (
                "dmesg/gvt-linux-174-tgl-1185g7-unsupported.txt",
                Status::Fail,
            ),
            (
                "dmesg/gvt-linux-64-glk-proxmox-unsupported.txt",
                Status::Fail,
            ),
        ] {
            let o = run_log(&sample(file));
            assert_eq!(o.status, status, "{file}: {}", o.summary);
        }
        let o = run_log(&sample("dmesg/gvt-linux-3-golden-hw-state-kbl.txt"));
        assert!(
            o.evidence
                .iter()
                .any(|e| e.excerpt.contains("golden_hw_state")),
            "{o:?}"
        );
    }

    #[test]
    fn automaton_agrees_with_pattern_by_pattern_matching() {
        let pats = patterns().unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/real-world/dmesg");
        let mut lines = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            for line in text.lines() {
                let naive: Vec<usize> =
                    (0..pats.len()).filter(|&i| pats[i].matches(line)).collect();
                assert_eq!(matching(pats, line), naive, "{line}");
                lines += 1;
            }
        }
        assert!(lines > 200);
    }

    #[test]
    fn missing_log_in_tree_skips() {
        let s = snapshot_with(|_| {});
        assert_eq!(
            check_kernel_log(&s, &Prior { done: &[] }).status,
            Status::Skip
        );
    }
}
