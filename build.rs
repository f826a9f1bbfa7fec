//! Build steps that make `gvtg` start faster: the kernel-log table as JSON
//! ([`kernel_log_table`]), and the link settings below.
//!
//! Every `gvtg` command is one short process, so the dynamic loader's work is a share of it
//! (a large one in a QEMU TCG guest, where each instruction and page fault is emulated). On
//! Linux with glibc the `gvtg` binary (only the binary: tests and examples keep the defaults) is
//! linked with the unwinder from libgcc_eh.a instead of libgcc_s.so.1 (what `-static-libgcc`
//! does for C): one shared library fewer to map, relocate and version-check. rustc always asks
//! for `-lgcc_s`, so the search directory added here holds a `libgcc_s.a` that is a symbolic
//! link to the toolchain's `libgcc_eh.a` (a linker finds `-l` archives in the directories named
//! by `-L` before its own). When the C compiler cannot name `libgcc_eh.a`, the shared libgcc_s
//! is kept.
//!
//! The binary stays a position-independent executable: gvtg runs as root on input from other
//! machines (captured trees, reports), and address-space randomisation of its own code is
//! worth the ~10,000 relocations ld.so applies at start (about 0.05 ms). glibc stays shared (a
//! static glibc would change how the process resolves names and loads NSS modules).
//! `GVTG_LINK_DEFAULTS=1` in the build environment turns this off.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    kernel_log_table();
    println!("cargo:rerun-if-env-changed=GVTG_LINK_DEFAULTS");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("GVTG_LINK_DEFAULTS") == "1"
    {
        return;
    }
    // Only when glibc is linked dynamically (a `+crt-static` build is already static).
    if var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static")
    {
        return;
    }
    if let Some(dir) = static_libgcc_dir() {
        println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    }
}

/// `OUT_DIR/static-libgcc` holding `libgcc_s.a` -> the C compiler's `libgcc_eh.a`.
fn static_libgcc_dir() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let eh = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // gcc prints the bare name back when it has no such file.
    if !out.status.success() || !eh.is_absolute() || !eh.is_file() {
        println!("cargo:warning=libgcc_eh.a not found ({cc}); gvtg links libgcc_s.so.1");
        return None;
    }
    let dir = Path::new(&std::env::var_os("OUT_DIR")?).join("static-libgcc");
    std::fs::create_dir_all(&dir).ok()?;
    let link = dir.join("libgcc_s.a");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&eh, &link).ok()?;
    Some(dir)
}

/// `checks/kernel-log.toml` as JSON in `OUT_DIR`: the table is written as TOML for people and
/// read as JSON by the binary, whose JSON parser does in a fifth of the instructions what the
/// TOML parser did at every doctor run. A table that is not valid TOML fails the build here.
fn kernel_log_table() {
    let src = Path::new("checks/kernel-log.toml");
    println!("cargo:rerun-if-changed={}", src.display());
    let text =
        std::fs::read_to_string(src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    let value: toml::Value =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let json = serde_json::to_string(&value).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let out = Path::new(&std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("kernel-log.json");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
