//! What the real-kernel tests share (included by each with
//! `#[path = "realkernel/shared.rs"] mod rk;`): finding the kernel release and the programs,
//! a work directory that `GVTG_TEST_KEEP=1` keeps, building the initramfs and booting it, and
//! reading the marker sections of the console log (tests/realkernel/README.md).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The scripts' directory.
pub fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/realkernel")
}

/// A program on PATH or in the sbin directories that a non-root PATH often lacks.
pub fn find_prog(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Fails the test through `missing` (which names the packages) unless every program of `progs`
/// (program, its Debian package) is found, busybox is installed and `/boot/vmlinuz-REL` exists.
pub fn require(rel: &str, progs: &[(&str, &str)], missing: fn(&str) -> !) {
    for (prog, pkg) in progs {
        if find_prog(prog).is_none() {
            missing(&format!("`{prog}` not found (package {pkg})"));
        }
    }
    if !Path::new("/bin/busybox").is_file() && find_prog("busybox").is_none() {
        missing("/bin/busybox not found (package busybox-static)");
    }
    let vmlinuz = format!("/boot/vmlinuz-{rel}");
    if !Path::new(&vmlinuz).is_file() {
        missing(&format!("{vmlinuz} not found (kernel release {rel})"));
    }
}

/// `$GVTG_TEST_KERNEL_RELEASE`, else the first `/lib/modules/REL` (by name) that has
/// `modules.dep` and a `/boot/vmlinuz-REL` (the rule of common.sh). `missing` fails the test
/// with the packages it needs.
pub fn kernel_release(missing: fn(&str) -> !) -> String {
    if let Some(r) = std::env::var("GVTG_TEST_KERNEL_RELEASE")
        .ok()
        .filter(|r| !r.is_empty())
    {
        return r;
    }
    let mut rels: Vec<String> = std::fs::read_dir("/lib/modules")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    rels.sort();
    rels.into_iter()
        .find(|r| {
            Path::new(&format!("/lib/modules/{r}/modules.dep")).is_file()
                && Path::new(&format!("/boot/vmlinuz-{r}")).is_file()
        })
        .unwrap_or_else(|| {
            missing("no kernel: no /lib/modules/REL with modules.dep and a /boot/vmlinuz-REL")
        })
}

/// A fresh temp dir for the initramfs and console logs; kept (and its path printed) when
/// `GVTG_TEST_KEEP` is set. Hold the first value as long as the path is used.
pub fn work_dir(prefix: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    let tmp = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    if std::env::var_os("GVTG_TEST_KEEP").is_some() {
        let p = tmp.keep();
        println!("keeping {}", p.display());
        (None, p)
    } else {
        let p = tmp.path().to_path_buf();
        (Some(tmp), p)
    }
}

/// Runs `mkinitramfs.sh OUT GVTG REL` with `env` set; panics with its stderr on failure.
pub fn mkinitramfs(out: &Path, rel: &str, env: &[(&str, String)]) -> Output {
    let mut c = Command::new("bash");
    c.arg(script_dir().join("mkinitramfs.sh"))
        .arg(out)
        .arg(env!("CARGO_BIN_EXE_gvtg"))
        .arg(rel);
    if let Some(d) = out.parent() {
        c.env("TMPDIR", d);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("running mkinitramfs.sh");
    assert!(
        o.status.success(),
        "mkinitramfs.sh failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Boots `initrd` with `boot.sh` (extra QEMU args `qemu`, environment `env`), the console going
/// to `log`; returns boot.sh's output and the console log with CR/LF made plain newlines.
pub fn boot(
    initrd: &Path,
    rel: &str,
    log: &Path,
    env: &[(&str, String)],
    qemu: &[&str],
) -> (Output, String) {
    let mut c = Command::new("bash");
    c.arg(script_dir().join("boot.sh"))
        .arg(initrd)
        .args(qemu)
        .env("GVTG_TEST_KERNEL_RELEASE", rel)
        .env("GVTG_BOOT_LOG", log)
        .env_remove("GVTG_QEMU_CPU")
        .env_remove("GVTG_KERNEL_APPEND")
        .env_remove("GVTG_QEMU_IOMMU");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("running boot.sh");
    (o, console_text(log))
}

/// The console log with CR/LF and lone CRs made plain newlines.
pub fn console_text(log: &Path) -> String {
    let raw = std::fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

/// The text between `=====GVTG-{name}-BEGIN=====` and `=====GVTG-{name}-END=====`.
pub fn section<'a>(log: &'a str, name: &str) -> Option<&'a str> {
    let begin = format!("=====GVTG-{name}-BEGIN=====\n");
    let end = format!("=====GVTG-{name}-END=====");
    let start = log.find(&begin)? + begin.len();
    let len = log[start..].find(&end)?;
    Some(log[start..start + len].trim())
}

/// The exit code printed as `=====GVTG-{name}-RC=N=====`.
pub fn section_rc(log: &str, name: &str) -> Option<i64> {
    let tag = format!("=====GVTG-{name}-RC=");
    let start = log.find(&tag)? + tag.len();
    log[start..].split("=====").next()?.trim().parse().ok()
}

/// The last `n` lines.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
