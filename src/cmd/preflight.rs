//! `gvtg preflight`: read a domain XML (a file, `virsh dumpxml NAME`, or
//! ROOT/etc/libvirt/qemu/NAME.xml), judge it against the host, print, return 0 only when the
//! domain can start.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
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
        required_unless_present_any = ["domain", "install_hook", "remove_hook", "run_hook"],
        conflicts_with_all = ["domain", "install_hook", "remove_hook", "run_hook"]
    )]
    pub xml: Option<PathBuf>,
    /// A libvirt domain by name: `virsh dumpxml NAME` on a live host, else
    /// ROOT/etc/libvirt/qemu/NAME.xml.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["install_hook", "remove_hook", "run_hook"])]
    pub domain: Option<String>,
    /// Install a libvirt qemu hook that, when a domain is prepared, creates its missing
    /// auto-start vGPUs and refuses the start when preflight fails (`qemu.d/gvtg-preflight`;
    /// a foreign `hooks/qemu` script is never overwritten).
    #[arg(long, conflicts_with_all = ["remove_hook", "run_hook"])]
    pub install_hook: bool,
    /// Remove the hook `--install-hook` installed.
    #[arg(long, conflicts_with = "run_hook")]
    pub remove_hook: bool,
    /// Hook mode: the domain XML on stdin, for domain NAME (what the installed hook runs).
    #[arg(long, hide = true, value_name = "NAME")]
    pub run_hook: Option<String>,
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
            // The system instance (where /etc/libvirt/qemu lives) unless the user chose one.
            let mut a = Vec::new();
            if std::env::var_os("LIBVIRT_DEFAULT_URI").is_none() {
                a.extend(["--connect", "qemu:///system"]);
            }
            a.extend(["dumpxml", "--domain", name]);
            match run_with_timeout(&virsh, &a, VIRSH_TIMEOUT) {
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
    crate::render::text::status_label(s, color)
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
    if args.install_hook {
        return install_hook(&ctx.root, out);
    }
    if args.remove_hook {
        return remove_hook(&ctx.root, out);
    }
    let (xml, source) = match &args.run_hook {
        Some(name) => {
            let mut b = Vec::new();
            std::io::stdin()
                .lock()
                .take((MAX_XML + 1) as u64)
                .read_to_end(&mut b)
                .context("reading the domain XML from stdin")?;
            let xml = String::from_utf8(b).context("the domain XML on stdin is not UTF-8")?;
            create_autostart_vgpus(&xml, ctx, out)?;
            (xml, format!("libvirt hook for {name}"))
        }
        None => load(args, &ctx.root)?,
    };
    let version = match version {
        // In a hook, never call back into libvirt: only the daemon binaries are asked.
        None if args.run_hook.is_some() && ctx.root.is_live() => Some(daemon_version()),
        v => v,
    };
    let (name, items) = evaluate(&xml, &ctx.root, version);
    if args.run_hook.is_some() && !preflight::startable(&items) {
        // libvirt shows the hook's stderr in its error message.
        for i in items
            .iter()
            .filter(|i| matches!(i.outcome.status, Status::Fail | Status::Error))
        {
            eprintln!("gvtg preflight: {}: {}", i.id, i.outcome.summary);
        }
    }
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
        crate::render::json::write_pretty(out, &doc)?;
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

/// The hook file name inside `hooks/qemu.d`, and the marker that identifies our scripts.
const HOOK_NAME: &str = "gvtg-preflight";
const HOOK_MARKER: &str = "# gvtg-preflight hook";
const HOOKS_DIR: &str = "etc/libvirt/hooks";

/// The libvirt version from the daemon binaries only (no virsh: a hook must not call libvirt).
fn daemon_version() -> (Option<preflight::Version>, String) {
    for p in ["/usr/sbin/virtqemud", "/usr/sbin/libvirtd"] {
        let p = Path::new(p);
        if p.is_file() {
            if let Ok((true, out, _)) = run_with_timeout(p, &["--version"], VIRSH_TIMEOUT) {
                if let Some(v) = out.lines().next().and_then(preflight::parse_version) {
                    return (Some(v), format!("{} --version", p.display()));
                }
            }
        }
    }
    (None, "no libvirt daemon binary answered --version".into())
}

/// The hook script: libvirt runs it as `NAME OPERATION SUB-OP EXTRA` with the domain XML on
/// stdin; only "prepare begin" does anything.
pub fn hook_script(gvtg: &str) -> anyhow::Result<String> {
    if gvtg.is_empty()
        || !gvtg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._+-".contains(&b))
    {
        bail!("the gvtg path '{gvtg}' has characters a hook script cannot carry safely");
    }
    Ok(format!(
        "#!/bin/sh\n{HOOK_MARKER} (installed by `gvtg preflight --install-hook`; remove with --remove-hook).\n\
         # libvirt runs it as: NAME OPERATION SUB-OP EXTRA, with the domain XML on stdin. At\n\
         # \"prepare begin\" it creates missing auto-start vGPUs and refuses the start when the domain\n\
         # cannot start (the reasons go to libvirt's error message).\n\
         [ \"$2\" = prepare ] && [ \"$3\" = begin ] || exit 0\n\
         exec {gvtg} --color never preflight --run-hook \"$1\" >/dev/null\n"
    ))
}

fn is_ours(root: &HostRoot, rel: &str) -> bool {
    root.read(rel)
        .into_ok()
        .is_some_and(|t| t.contains(HOOK_MARKER))
}

/// Where the hook goes: `qemu.d/gvtg-preflight` when that layout is used; else `hooks/qemu`
/// when there is none or it is ours; a foreign `hooks/qemu` is refused with instructions.
fn hook_target(root: &HostRoot) -> anyhow::Result<String> {
    let dropin_dir = format!("{HOOKS_DIR}/qemu.d");
    let single = format!("{HOOKS_DIR}/qemu");
    if root.exists(&dropin_dir) {
        return Ok(format!("{dropin_dir}/{HOOK_NAME}"));
    }
    if !root.exists(&single) || is_ours(root, &single) {
        return Ok(single);
    }
    bail!(
        "{} is another program's hook script; it is not overwritten. Either use libvirt's drop-in \
         directory (libvirt ≥ 6.5.0 runs every script in it besides hooks/qemu):\n    sudo mkdir {}\n    \
         gvtg preflight --install-hook\nor add this line near the top of the existing script:\n    \
         [ \"$2\" = prepare ] && [ \"$3\" = begin ] && {{ gvtg --color never preflight --run-hook \"$1\" >/dev/null || exit 1; }}\n\
         (it reads the domain XML from stdin, so give it the script's stdin).",
        HostRoot::display(&single),
        HostRoot::display(&dropin_dir)
    )
}

fn install_hook(root: &HostRoot, out: &mut dyn Write) -> anyhow::Result<u8> {
    let rel = hook_target(root)?;
    let exe = std::env::current_exe().context("finding the gvtg binary")?;
    let script = hook_script(&exe.to_string_lossy())?;
    if root.read(&rel).into_ok().as_deref() == Some(script.as_str()) {
        writeln!(out, "already installed: {}", HostRoot::display(&rel))?;
        return Ok(0);
    }
    crate::host::sysfs_write::write_file_atomic(root, &rel, script.as_bytes())?;
    let path = root.path_for_write(&rel)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", HostRoot::display(&rel)))?;
    }
    writeln!(out, "installed: {}", HostRoot::display(&rel))?;
    writeln!(
        out,
        "libvirt reads hooks when it starts: sudo systemctl restart libvirtd (or virtqemud) once."
    )?;
    Ok(0)
}

fn remove_hook(root: &HostRoot, out: &mut dyn Write) -> anyhow::Result<u8> {
    let mut removed = false;
    for rel in [
        format!("{HOOKS_DIR}/qemu.d/{HOOK_NAME}"),
        format!("{HOOKS_DIR}/qemu"),
    ] {
        if root.exists(&rel) && is_ours(root, &rel) {
            crate::host::sysfs_write::remove_file(root, &rel)?;
            writeln!(out, "removed: {}", HostRoot::display(&rel))?;
            removed = true;
        }
    }
    if !removed {
        writeln!(out, "no gvtg preflight hook installed")?;
    }
    Ok(0)
}

/// The (parent, type) of an mdevctl definition with `"start": "auto"` for `uuid`.
fn autostart_definition(root: &HostRoot, uuid: &str) -> Option<(String, String)> {
    for p in root.read_dir("etc/mdevctl.d").into_ok()? {
        if !safe_name(&p) {
            continue;
        }
        let Some(t) = root.read(&format!("etc/mdevctl.d/{p}/{uuid}")).into_ok() else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) else {
            continue;
        };
        if v.get("start").and_then(|s| s.as_str()) == Some("auto") {
            let ty = v.get("mdev_type").and_then(|s| s.as_str())?;
            return Some((p, ty.to_string()));
        }
    }
    None
}

/// Creates the domain's vGPUs that do not exist but have an auto-start definition, through
/// `gvtg vgpu create TYPE --parent P --uuid U`.
fn create_autostart_vgpus(xml: &str, ctx: &Ctx, out: &mut dyn Write) -> anyhow::Result<()> {
    let Ok(dom) = Domain::parse(xml) else {
        return Ok(()); // judged (as an ERROR) by preflight itself
    };
    for m in &dom.mdevs {
        let u = m.uuid.trim().to_ascii_lowercase();
        if u.len() != 36
            || uuid::Uuid::try_parse(&u).is_err()
            || ctx.root.exists(&format!("sys/bus/mdev/devices/{u}"))
        {
            continue;
        }
        let Some((parent, ty)) = autostart_definition(&ctx.root, &u) else {
            continue;
        };
        let cli = crate::cli::Cli::try_parse_from([
            "gvtg", "vgpu", "create", &ty, "--parent", &parent, "--uuid", &u,
        ])?;
        if let crate::cli::Command::Vgpu(a) = &cli.command {
            match super::vgpu::run(a, ctx, out) {
                Ok(0) => {}
                Ok(_) => eprintln!("gvtg preflight: creating vGPU {u} failed"),
                Err(e) => eprintln!("gvtg preflight: creating vGPU {u}: {e:#}"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_program_is_killed_at_the_timeout() {
        let Some(sleep) = which("sleep") else { return };
        let t0 = Instant::now();
        let e = run_with_timeout(&sleep, &["30"], Duration::from_millis(300)).unwrap_err();
        assert!(e.to_string().contains("did not finish"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(10));
        let Some(echo) = which("echo") else { return };
        let (ok, out, _) = run_with_timeout(&echo, &["8.0.0"], VIRSH_TIMEOUT).unwrap();
        assert!(ok);
        assert_eq!(preflight::parse_version(out.trim()), Some((8, 0, 0)));
    }

    #[test]
    fn domain_names_are_plain() {
        assert!(safe_name("win10") && safe_name("a.b-c_d"));
        assert!(!safe_name("..") && !safe_name("a/b") && !safe_name(""));
    }
}
