//! `gvtg report`: one `.tar.gz` holding the host snapshot (a captured tree, format 1), the
//! doctor's verdicts and a manifest (docs/report.md); `--markdown` prints an issue-ready summary.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use sha2::{Digest, Sha256};

use super::Ctx;
use crate::checks::{self, Counts, Selection, Status};
use crate::host::{HostRoot, Snapshot};
use crate::render::{self, HostFacts, Report};
use crate::report::{archive, redact, Collector};

/// Version of `manifest.json`.
pub const MANIFEST_VERSION: u32 = 1;

/// `gvtg report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write the archive to FILE (default: gvtg-report-HOST-YYYYmmdd-HHMMSS.tar.gz here).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print a Markdown summary for an issue tracker (writes no archive unless -o is given).
    #[arg(long)]
    pub markdown: bool,
    /// Keep host names, addresses, serials, user names and secrets (redacted by default).
    #[arg(long)]
    pub no_redact: bool,
}

fn progress(msg: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("gvtg report: {msg}");
    }
}

/// `YYYYmmdd-HHMMSS` and RFC 3339 forms of a Unix time (UTC).
pub fn timestamps(secs: u64) -> (String, String) {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}{m:02}{d:02}-{h:02}{mi:02}{s:02}"),
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
    )
}

fn host_token(src: &HostRoot, redacting: bool) -> String {
    if redacting {
        return "host-1".into();
    }
    ["etc/hostname", "proc/sys/kernel/hostname"]
        .iter()
        .filter_map(|r| src.read_attr(r).into_ok())
        .map(|h| {
            h.split('.')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(32)
                .collect::<String>()
        })
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

/// The doctor's outputs for a tree: (JSON, text, results summary for Markdown).
struct DoctorOut {
    json: String,
    text: String,
    markdown: String,
}

fn run_doctor(root: &HostRoot) -> Result<DoctorOut> {
    let snap = Snapshot::collect(root);
    let results = checks::run(&snap, &Selection::default());
    let counts = Counts::of(&results);
    let code = super::doctor::exit_code(&counts);
    let report = Report {
        host: HostFacts::of(&snap),
        results: &results,
        counts,
        exit_code: i32::from(code),
    };
    let mut json = Vec::new();
    render::json::render(&report, &mut json)?;
    let mut text = Vec::new();
    render::text::render(&report, false, false, &mut text)?;
    let text = String::from_utf8_lossy(&text).into_owned();
    let markdown = markdown(&report, &text);
    Ok(DoctorOut {
        json: String::from_utf8_lossy(&json).into_owned(),
        text,
        markdown,
    })
}

fn markdown(r: &Report, text: &str) -> String {
    let h = &r.host;
    let na = || "unknown".to_string();
    let mut m = String::from("### gvtg report\n\n| | |\n|---|---|\n");
    m.push_str(&format!("| gvtg | {} |\n", env!("CARGO_PKG_VERSION")));
    m.push_str(&format!(
        "| kernel | {} |\n",
        h.kernel.clone().unwrap_or_else(na)
    ));
    m.push_str(&format!(
        "| distribution | {} |\n",
        h.os.clone().unwrap_or_else(na)
    ));
    m.push_str(&format!("| CPU | {} |\n", h.cpu.clone().unwrap_or_else(na)));
    let igd = match &h.igd {
        Some(g) => format!(
            "{} `{}` {}, driver {}",
            g.address,
            g.id,
            g.platform.map(|p| p.name()).unwrap_or("unknown platform"),
            g.driver.as_deref().unwrap_or("none")
        ),
        None => "none found".into(),
    };
    m.push_str(&format!("| Intel iGPU | {igd} |\n"));
    let c = r.counts;
    m.push_str(&format!(
        "| checks | {} pass, {} warn, {} fail, {} skip, {} error |\n\n",
        c.pass, c.warn, c.fail, c.skip, c.error
    ));
    let failing: Vec<_> = r
        .results
        .iter()
        .filter(|(_, o)| matches!(o.status, Status::Fail | Status::Error | Status::Warn))
        .collect();
    if failing.is_empty() {
        m.push_str("No failing checks.\n\n");
    } else {
        m.push_str("**Checks that need attention**\n\n");
        for (chk, o) in failing {
            m.push_str(&format!(
                "- **{}** `{}`: {}\n",
                o.status.label(),
                chk.id,
                o.summary.replace('\n', " ")
            ));
        }
        m.push('\n');
    }
    m.push_str("<details><summary>gvtg doctor output</summary>\n\n```\n");
    m.push_str(text.trim_end());
    m.push_str("\n```\n\n</details>\n");
    m
}

#[derive(serde::Serialize)]
struct FileEntry {
    path: String,
    size: u64,
    sha256: String,
}

fn list_files(top: &Path, dir: &Path, out: &mut Vec<FileEntry>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_type()?.is_dir() {
            list_files(top, &p, out)?;
        } else {
            let data = std::fs::read(&p)?;
            out.push(FileEntry {
                path: p.strip_prefix(top)?.to_string_lossy().into_owned(),
                size: data.len() as u64,
                sha256: Sha256::digest(&data)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            });
        }
    }
    Ok(())
}

/// What `--no-redact` keeps, said on stderr and in the manifest.
pub const KEPT_WITHOUT_REDACTION: &str = "host and domain names, IPv4/IPv6 and MAC addresses, \
serial numbers, the machine id, user names and libvirt passwords/secrets, as found on the host";

/// Builds the report directory `<tmp>/<top>` and returns (its path, the doctor's output).
fn build(src: &HostRoot, redacting: bool, tmp: &Path, now: u64) -> Result<(PathBuf, DoctorOut)> {
    let (stamp, created) = timestamps(now);
    let top = tmp.join(format!(
        "gvtg-report-{}-{stamp}",
        host_token(src, redacting)
    ));
    let root = top.join("root");
    progress("collecting the host's files…");
    let red = redacting.then(|| redact::Redactor::for_host(src));
    let mut c = Collector::new(src, &root, red)?;
    c.collect()?;
    let denied = std::mem::take(&mut c.denied);
    if !denied.is_empty() {
        eprintln!(
            "gvtg report: {} file(s) were not readable as this user and are missing from the \
             report (run as root for a complete one): {}",
            denied.len(),
            denied.join(", ")
        );
    }
    progress("running the checks on the collected tree…");
    let doc = run_doctor(&HostRoot::at(&root)?)?;
    let meta = top.join("gvtg-report");
    std::fs::create_dir_all(&meta)?;
    std::fs::write(meta.join("doctor.json"), &doc.json)?;
    std::fs::write(meta.join("doctor.txt"), &doc.text)?;
    std::fs::write(
        meta.join("version.txt"),
        format!("gvtg {}\n", env!("CARGO_PKG_VERSION")),
    )?;
    let mut files = Vec::new();
    list_files(&top, &top, &mut files)?;
    let manifest = serde_json::json!({
        "schema_version": MANIFEST_VERSION,
        "gvtg_version": env!("CARGO_PKG_VERSION"),
        "created": created,
        "source": if src.is_live() { "live host" } else { "captured tree" },
        "redaction": {
            "enabled": redacting,
            "classes": if redacting { redact::CLASSES.to_vec() } else { Vec::new() },
            "kept": if redacting { serde_json::Value::Null } else { KEPT_WITHOUT_REDACTION.into() },
        },
        "unreadable": denied,
        "files": files,
    });
    std::fs::write(
        meta.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    Ok((top, doc))
}

/// Runs `gvtg report`.
pub fn run(args: &ReportArgs, ctx: &Ctx, out: &mut dyn Write) -> Result<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if args.no_redact {
        eprintln!("gvtg report: --no-redact: the report keeps {KEPT_WITHOUT_REDACTION}");
    }
    let tmp = tempfile::tempdir()?;
    let (top, doc) = build(&ctx.root, !args.no_redact, tmp.path(), now)?;
    if args.markdown {
        out.write_all(doc.markdown.as_bytes())?;
    }
    if args.output.is_some() || !args.markdown {
        let name = top
            .file_name()
            .context("report directory")?
            .to_string_lossy()
            .into_owned();
        let path = args
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{name}.tar.gz")));
        progress("writing the archive…");
        // Written beside the target and renamed, so a failed run leaves no half archive.
        let part = PathBuf::from(format!("{}.part", path.display()));
        if let Err(e) = archive::pack(&top, &part, now) {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        std::fs::rename(&part, &path)
            .with_context(|| format!("renaming {} to {}", part.display(), path.display()))?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let msg = format!(
            "wrote {} ({} KiB; {})",
            path.display(),
            size.div_ceil(1024),
            if args.no_redact {
                "not redacted"
            } else {
                "redacted; see gvtg-report/manifest.json"
            }
        );
        if args.markdown {
            eprintln!("gvtg report: {msg}");
        } else {
            writeln!(out, "{msg}")?;
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_time() {
        assert_eq!(
            timestamps(0),
            ("19700101-000000".into(), "1970-01-01T00:00:00Z".into())
        );
        assert_eq!(timestamps(1_795_450_000).1, "2026-11-23T16:06:40Z");
        assert_eq!(timestamps(951_782_400).0, "20000229-000000");
    }
}
