//! Writes to the host: the mdev `create`/`remove` attributes, and the persisted definitions
//! (mdevctl's JSON, our systemd unit).
//!
//! Every path written here is built from names a directory listing returned ([`listed`]), never
//! from user input alone: a type or UUID the user typed is first matched against `read_dir`.
//! Attribute writes are one `write()` on an `O_WRONLY` descriptor, as the kernel's sysfs store
//! functions expect (a short write would hand the kernel half a UUID), and the errno is kept so
//! the caller can explain it. File writes are atomic (temp file, fsync, rename, fsync dir).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::HostRoot;

/// Why an attribute write failed: the errno (when the kernel gave one) and its text.
#[derive(Debug)]
pub struct WriteError {
    /// The raw errno, if any.
    pub errno: Option<i32>,
    /// What happened, with the path as the host sees it.
    pub message: String,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WriteError {}

/// Whether `name` is safe as one path component: not empty, not `.`/`..`, no `/` or NUL, at most
/// 255 bytes (NAME_MAX), no control characters (no kernel name has them; in a hostile tree they
/// would reach the terminal), and no U+FFFD (the lossy form of a name that is not UTF-8: writing
/// to it would address a different file than the one listed). Sysfs names come from the kernel,
/// but a captured tree can hold anything.
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains('/')
        && !name.contains('\0')
        && !name.contains(char::REPLACEMENT_CHARACTER)
        && !name.chars().any(char::is_control)
}

/// `name` if a listing of `dir` under `root` holds it exactly and it is a safe component.
pub fn listed(root: &HostRoot, dir: &str, name: &str) -> Option<String> {
    if !is_safe_component(name) {
        return None;
    }
    let names = root.read_dir(dir).into_ok()?;
    names.into_iter().find(|n| n == name)
}

/// Writes `value` to the attribute `rel` in one `write()` (no create, no shell), and checks
/// that the kernel took all of it.
pub fn write_attr(root: &HostRoot, rel: &str, value: &[u8]) -> Result<(), WriteError> {
    let shown = HostRoot::display(rel);
    let fail = |e: std::io::Error, what: &str| WriteError {
        errno: e.raw_os_error(),
        message: format!("{what} {shown}: {e}"),
    };
    let path = root.path_for_write(rel).map_err(|e| fail(e, "resolving"))?;
    // O_NOFOLLOW: the attribute itself is a regular file in sysfs; a symlink there is not ours.
    // In a captured tree also O_NONBLOCK, so a FIFO planted as `create` cannot make us wait,
    // and the opened node must be a regular file.
    let mut flags = nix::libc::O_NOFOLLOW;
    if !root.is_live() {
        flags |= nix::libc::O_NONBLOCK;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(!root.is_live())
        .custom_flags(flags)
        .open(&path)
        .map_err(|e| fail(e, "opening"))?;
    if !root.is_live() && !f.metadata().map_err(|e| fail(e, "inspecting"))?.is_file() {
        return Err(WriteError {
            errno: None,
            message: format!("{shown} is not a regular file in the captured tree"),
        });
    }
    let n = loop {
        match f.write(value) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e, "writing")),
        }
    };
    if n != value.len() {
        return Err(WriteError {
            errno: None,
            message: format!(
                "writing {shown}: short write ({n} of {} bytes accepted)",
                value.len()
            ),
        });
    }
    Ok(())
}

/// Writes `content` to `rel` atomically: a temp file in the same directory, fsync, rename over
/// the target, fsync the directory. Parent directories are created (mode 0755).
pub fn write_file_atomic(root: &HostRoot, rel: &str, content: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let shown = HostRoot::display(rel);
    let target = root.path(rel);
    let dir = target
        .parent()
        .with_context(|| format!("writing {shown}: no parent directory"))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating the directory of {shown}"))?;
    let target = root
        .path_for_write(rel)
        .with_context(|| format!("resolving {shown}"))?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.gvtg-tmp.{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {shown}"))
}

/// Removes `rel` if it exists; true when something was removed.
pub fn remove_file(root: &HostRoot, rel: &str) -> anyhow::Result<bool> {
    use anyhow::Context;
    let path = match root.path_for_write(rel) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("resolving {}", HostRoot::display(rel))),
    };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", HostRoot::display(rel))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a\0b",
            &"x".repeat(256),
            "evil\n\u{1b}[31m",
            "i915-\u{fffd}",
        ] {
            assert!(!is_safe_component(bad), "{bad:?}");
        }
        assert!(is_safe_component("i915-GVTg_V5_4"));
        assert!(is_safe_component("0000:00:02.0"));
    }

    #[test]
    fn attr_write_goes_to_the_listed_file_and_never_creates() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sys/x")).unwrap();
        std::fs::write(d.path().join("sys/x/create"), "old-longer-content").unwrap();
        let r = HostRoot::at(d.path()).unwrap();
        write_attr(&r, "sys/x/create", b"abc").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("sys/x/create")).unwrap(),
            "abc"
        );
        let e = write_attr(&r, "sys/x/nope", b"1").unwrap_err();
        assert_eq!(e.errno, Some(nix::libc::ENOENT));
        assert!(!d.path().join("sys/x/nope").exists());
    }

    #[test]
    fn writes_do_not_escape_the_tree() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("create"), "").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("evil")).unwrap();
        let r = HostRoot::at(d.path()).unwrap();
        assert!(write_attr(&r, "evil/create", b"x").is_err());
        assert_eq!(
            std::fs::read_to_string(outside.path().join("create")).unwrap(),
            ""
        );
        std::os::unix::fs::symlink(outside.path().join("create"), d.path().join("link")).unwrap();
        assert!(write_attr(&r, "link", b"x").is_err(), "O_NOFOLLOW");
        nix::unistd::mkfifo(&d.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(
            write_attr(&r, "fifo", b"x").is_err(),
            "a FIFO is refused, not waited on"
        );
    }

    #[test]
    fn atomic_file() {
        let d = tempfile::tempdir().unwrap();
        let r = HostRoot::at(d.path()).unwrap();
        write_file_atomic(&r, "etc/mdevctl.d/p/u", b"{}").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("etc/mdevctl.d/p/u")).unwrap(),
            "{}"
        );
        assert_eq!(
            std::fs::read_dir(d.path().join("etc/mdevctl.d/p"))
                .unwrap()
                .count(),
            1
        );
        assert!(remove_file(&r, "etc/mdevctl.d/p/u").unwrap());
        assert!(!remove_file(&r, "etc/mdevctl.d/p/u").unwrap());
    }
}
