//! `gvtg preflight`: read a domain XML (a file, `virsh dumpxml NAME`, or
//! ROOT/etc/libvirt/qemu/NAME.xml), judge it against the host, print, return 0 only when the
//! domain can start.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use owo_colors::OwoColorize;
use serde::Serialize;

use super::Ctx;
use crate::checks::{Counts, Status};
use crate::host::{HostRoot, Snapshot};
use crate::parse::domain_xml::MAX_XML;
use crate::preflight::{self, Domain, Facts, Item};

/// JSON schema version of `gvtg preflight --json` (docs/preflight.md).
pub const SCHEMA_VERSION: u32 = 1;

/// How long a `virsh` call may take.
const VIRSH_TIMEOUT: Duration = Duration::from_secs(15);

/// `gvtg preflight`.
#[derive(Debug, clap::Args)]
pub struct PreflightArgs {
    /// The domain XML file to judge.
    #[arg(
        value_name = "DOMAIN.xml",
        required_unless_present = "domain",
        conflicts_with = "domain"
    )]
    pub xml: Option<PathBuf>,
    /// A libvirt domain by name: `virsh dumpxml NAME` on a live host, else
    /// ROOT/etc/libvirt/qemu/NAME.xml.
    #[arg(long, value_name = "NAME")]
    pub domain: Option<String>,
    /// Print JSON (docs/preflight.md).
    #[arg(long)]
    pub json: bool,
    /// Show the evidence behind each verdict.
    #[arg(short, long)]
    pub verbose: bool,
    /// The libvirt version to judge against (default: `virsh --version` / `libvirtd --version`
    /// on a live host; unknown in a captured tree).
    #[arg(long, value_name = "X.Y.Z")]
    pub libvirt_version: Option<String>,
}

/// Runs a program (no shell) with a timeout; gives (success, stdout, stderr).
pub fn run_with_timeout(
    prog: &Path,
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<(bool, String, String)> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .spawn()
        .with_context(|| format!("running {}", prog.display()))?;
    let mut so = child.stdout.take().context("stdout pipe")?;
    let mut se = child.stderr.take().context("stderr pipe")?;
    let limit = (MAX_XML + 1) as u64;
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = (&mut so).take(limit).read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = (&mut se).take(64 * 1024).read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} {} did not finish within {}s",
                prog.display(),
                args.join(" "),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = t_out.join().unwrap_or_default();
    let err = t_err.join().unwrap_or_default();
    Ok((
        status.success(),
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    ))
}

/// A program in PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The libvirt version of a live host and where it came from; or why it is unknown.
fn live_libvirt_version() -> (Option<preflight::Version>, String) {
    let mut tried = Vec::new();
    let candidates: Vec<PathBuf> = [
        which("virsh"),
        Some(PathBuf::from("/usr/sbin/libvirtd")),
        Some(PathBuf::from("/usr/sbin/virtqemud")),
    ]
    .into_iter()
    .flatten()
    .filter(|p| p.is_file())
    .collect();
    for p in candidates {
        match run_with_timeout(&p, &["--version"], VIRSH_TIMEOUT) {
            Ok((true, out, _)) => {
                if let Some(v) = out.lines().next().and_then(preflight::parse_version) {
                    return (Some(v), format!("{} --version", p.display()));
                }
                tried.push(format!("{} --version printed no version", p.display()));
            }
            Ok((false, _, err)) => {
                tried.push(format!("{} --version failed: {}", p.display(), err.trim()))
            }
            Err(e) => tried.push(format!("{e:#}")),
        }
    }
    if tried.is_empty() {
        tried.push("neither virsh, /usr/sbin/libvirtd nor /usr/sbin/virtqemud found".into());
    }
    (None, tried.join("; "))
}

fn read_limited(p: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", p.display());
    }
    let mut b = Vec::new();
    std::fs::File::open(p)
        .with_context(|| format!("reading {}", p.display()))?
        .take((MAX_XML + 1) as u64)
        .read_to_end(&mut b)
        .with_context(|| format!("reading {}", p.display()))?;
    String::from_utf8(b).with_context(|| format!("{} is not UTF-8", p.display()))
}

fn safe_name(n: &str) -> bool {
    !n.is_empty() && n != "." && n != ".." && !n.contains('/') && !n.contains('\0')
}

/// The domain XML and where it came from.
fn load(args: &PreflightArgs, root: &HostRoot) -> anyhow::Result<(String, String)> {
    if let Some(p) = &args.xml {
        return Ok((read_limited(p)?, p.display().to_string()));
    }
    let name = args
        .domain
        .as_deref()
        .context("a DOMAIN.xml or --domain NAME is required")?;
    if !safe_name(name) {
        bail!("'{name}' is not a domain name");
    }
    let mut why = String::new();
    if root.is_live() {
        if let Some(virsh) = which("virsh") {
            match run_with_timeout(&virsh, &["dumpxml", "--domain", name], VIRSH_TIMEOUT) {
                Ok((true, out, _)) => return Ok((out, format!("virsh dumpxml {name}"))),
                Ok((false, _, err)) => why = format!("virsh dumpxml {name}: {}; ", err.trim()),
                Err(e) => why = format!("{e:#}; "),
            }
        }
    }
    let rel = format!("etc/libvirt/qemu/{name}.xml");
    match root.read(&rel) {
        crate::host::Probe::Ok(t) => Ok((t, HostRoot::display(&rel))),
        crate::host::Probe::Missing => {
            bail!(
                "{why}{} does not exist (no such domain?)",
                HostRoot::display(&rel)
            )
        }
        crate::host::Probe::Denied => bail!(
            "{why}{}: permission denied (run as root)",
            HostRoot::display(&rel)
        ),
        crate::host::Probe::Invalid(m) => bail!("{why}{m}"),
    }
}

fn tally(items: &[Item]) -> Counts {
    let mut c = Counts::default();
    for i in items {
        match i.outcome.status {
            Status::Pass => c.pass += 1,
            Status::Warn => c.warn += 1,
            Status::Fail => c.fail += 1,
            Status::Skip => c.skip += 1,
            Status::Error => c.error += 1,
        }
    }
    c
}

/// Judges `xml` against the host at `root`: the domain name and the verdicts. Hostile or
/// malformed XML gives a single `domain.xml` ERROR.
pub fn evaluate(
    xml: &str,
    root: &HostRoot,
    version: Option<(Option<preflight::Version>, String)>,
) -> (Option<String>, Vec<Item>) {
    let dom = match Domain::parse(xml) {
        Ok(d) => d,
        Err(e) => {
            return (
                None,
                vec![Item {
                    id: "domain.xml",
                    title: "the domain XML can be read",
                    outcome: crate::checks::Outcome::error(e)
                        .fix("Give the XML libvirt writes (`virsh dumpxml NAME`)."),
                }],
            )
        }
    };
    let snap = Snapshot::collect(root);
    let mut facts = Facts::collect(root, &dom);
    let (v, src) = version.unwrap_or_else(|| {
        if root.is_live() {
            live_libvirt_version()
        } else {
            (
                None,
                "a captured tree: no libvirt binary is run (give --libvirt-version)".into(),
            )
        }
    });
    facts.libvirt_version = v;
    facts.libvirt_version_source = src;
    let items = preflight::run(&dom, &snap, &facts);
    (dom.name, items)
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    schema_version: u32,
    tool: JsonTool,
    domain: Option<&'a str>,
    source: &'a str,
    startable: bool,
    checks: &'a [Item],
    summary: JsonSummary,
}

#[derive(Serialize)]
struct JsonTool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct JsonSummary {
    #[serde(flatten)]
    counts: Counts,
    exit_code: i32,
}

fn label(s: Status, color: bool) -> String {
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

/// Runs `gvtg preflight`.
pub fn run(args: &PreflightArgs, ctx: &Ctx, out: &mut dyn Write) -> anyhow::Result<u8> {
    let version = match &args.libvirt_version {
        Some(v) => Some((
            Some(
                preflight::parse_version(v)
                    .with_context(|| format!("'{v}' is not a version like 8.0.0"))?,
            ),
            "--libvirt-version".to_string(),
        )),
        None => None,
    };
    let (xml, source) = load(args, &ctx.root)?;
    let (name, items) = evaluate(&xml, &ctx.root, version);
    let name = name.or_else(|| args.domain.clone());
    let ok = preflight::startable(&items);
    let code = u8::from(!ok);
    let counts = tally(&items);
    if args.json {
        let doc = JsonDoc {
            schema_version: SCHEMA_VERSION,
            tool: JsonTool {
                name: "gvtg",
                version: env!("CARGO_PKG_VERSION"),
            },
            domain: name.as_deref(),
            source: &source,
            startable: ok,
            checks: &items,
            summary: JsonSummary {
                counts,
                exit_code: i32::from(code),
            },
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(code);
    }
    let color = ctx.color;
    writeln!(
        out,
        "gvtg {} preflight — domain {} ({source}, {})",
        env!("CARGO_PKG_VERSION"),
        name.as_deref().unwrap_or("(unnamed)"),
        if ctx.root.is_live() {
            "this host"
        } else {
            "captured tree"
        }
    )?;
    writeln!(out)?;
    let idw = items.iter().map(|i| i.id.len()).max().unwrap_or(10);
    for i in &items {
        writeln!(
            out,
            "{:<idw$}  {}  {}",
            i.id,
            label(i.outcome.status, color),
            i.outcome.summary
        )?;
        if args.verbose {
            for e in &i.outcome.evidence {
                for (n, l) in e.excerpt.lines().enumerate() {
                    let line = if n == 0 {
                        format!("{:idw$}         {}: {l}", "", e.path)
                    } else {
                        format!("{:idw$}           {l}", "")
                    };
                    if color {
                        writeln!(out, "{}", line.dimmed())?;
                    } else {
                        writeln!(out, "{line}")?;
                    }
                }
            }
        }
    }
    writeln!(
        out,
        "\n{} passed, {} warning(s), {} failed, {} error(s): {}",
        counts.pass,
        counts.warn,
        counts.fail,
        counts.error,
        if ok {
            "the domain can start"
        } else {
            "the domain will not start"
        }
    )?;
    let fixes: Vec<&Item> = items
        .iter()
        .filter(|i| {
            matches!(
                i.outcome.status,
                Status::Fail | Status::Warn | Status::Error
            ) && i.outcome.remedy.is_some()
        })
        .collect();
    if !fixes.is_empty() {
        writeln!(out, "\nHow to fix:")?;
        for i in fixes {
            let head = format!("[{}] {}", i.id, i.title);
            if color {
                writeln!(out, "\n{}", head.bold())?;
            } else {
                writeln!(out, "\n{head}")?;
            }
            for l in i.outcome.remedy.as_deref().unwrap_or("").lines() {
                writeln!(out, "  {l}")?;
            }
        }
    }
    if !args.verbose && items.iter().any(|i| !i.outcome.evidence.is_empty()) {
        writeln!(out, "\nRun with -v for the evidence behind each verdict.")?;
    }
    Ok(code)
}
