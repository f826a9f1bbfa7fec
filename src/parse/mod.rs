//! Pure text parsers for everything `gvtg` reads from a host or from a paste.
//!
//! Rules for every module in this folder:
//! - Input is `&str` or `&[u8]`, output is plain data. No file, process, network or
//!   environment access happens here; callers do the I/O and hand over the text. That keeps
//!   the parsers testable on pasted snippets (mail-wrapped, partial, copied from guides).
//! - Parsers never panic and never loop forever: no `unwrap`/`expect`/unchecked indexing
//!   outside tests, every loop consumes input, recursion is depth-limited, and the few
//!   collections that could grow from garbage (warnings, extras) are capped.
//! - Where a program defines the syntax, we follow that program's reading of it and name the
//!   source in the module header (kernel `next_arg()`, kmod `libkmod-config.c`, libvirt
//!   `virconf.c`, ...). Where users paste text that the real program would never see (mail
//!   wrapping, shell prompts, guide placeholders), we are tolerant and report what we skipped
//!   instead of failing.
//! - Siblings are referenced as `super::x` so that the folder can be mounted anywhere as
//!   `crate::parse`.

/// Test helper: the real-world samples start with one `# source: ...` line that is not data.
#[cfg(test)]
macro_rules! sample {
    ($path:literal) => {
        $crate::parse::strip_source_line(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/real-world/",
            $path
        )))
    };
}

pub mod cmdline;
pub mod cpuinfo;
pub mod domain_xml;
pub mod grub;
pub mod kconfig;
pub mod kmsg;
pub mod mdev_desc;
pub mod modprobe;
pub mod proc_modules;
pub mod qemu_conf;

/// Drops the first line (the sample's source comment) of a test fixture.
#[cfg(test)]
pub(crate) fn strip_source_line(text: &str) -> &str {
    text.split_once('\n').map_or("", |(_, rest)| rest)
}

/// Caps a list of diagnostics so that garbage input cannot make it grow without bound.
/// Returns `false` once the cap is reached (after pushing a single "more skipped" note).
pub(crate) fn push_capped(list: &mut Vec<String>, cap: usize, msg: String) -> bool {
    if list.len() < cap {
        list.push(msg);
        true
    } else if list.len() == cap {
        list.push("further warnings suppressed".to_string());
        false
    } else {
        false
    }
}
