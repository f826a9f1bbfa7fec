//! The host root: the one place that turns "proc/cmdline" into a real path.
//!
//! Every read of the host goes through a [`HostRoot`]. On a live host the root is `/`; with
//! `--root DIR` (or `GVTG_ROOT`) it is a captured tree that mirrors the real paths
//! (`DIR/proc/cpuinfo`, `DIR/sys/...`). Callers name paths *relative* to the root
//! (`"sys/class/mdev_bus"`), so no absolute path literal exists outside this module.
//!
//! Two facts about a captured tree cannot be stored in the tree itself by git or tar in a portable
//! way: what a device node is (type, mode, owner) and where a sysfs symlink points when the target
//! was not captured. Those come from the tree's side file, `gvtg-tree.toml` (see
//! [`super::sidefile`] and `docs/captured-tree.md`). The side file wins over the tree.
//!
//! Reads are bounded ([`MAX_READ`]) and never block: in a captured tree only regular files are
//! read (a FIFO planted where a file is expected is refused, not waited on), and no path may
//! resolve outside the root (symlinks are followed, but the result is checked).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::probe::Probe;
use super::sidefile::{NodeKind, SideFile, SIDE_FILE};

/// The largest file we read. /proc and /sys files are small; a kernel config is ~250 KB; a kernel
/// log from /dev/kmsg is at most the ring buffer (a few MB). Anything larger is not one of ours.
pub const MAX_READ: u64 = 16 * 1024 * 1024;

/// Type, mode and ownership of a filesystem node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeInfo {
    /// What the node is.
    pub kind: NodeKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Device major:minor, for character and block devices.
    pub rdev: Option<(u32, u32)>,
}

/// A path that is safe to open, and the `O_PATH` descriptor it names (when it is
/// `/proc/self/fd/N`), held open while the path is used.
struct Resolved {
    path: PathBuf,
    fd: Option<std::os::fd::OwnedFd>,
}

/// Where the host's files are, and how to read them.
#[derive(Debug, Clone)]
pub struct HostRoot {
    base: PathBuf,
    /// Canonical form of `base`, for containment checks in captured trees.
    canonical: PathBuf,
    live: bool,
    side: SideFile,
    /// `canonical` opened `O_PATH`, for kernel-checked resolution beneath it (captured trees).
    dir_fd: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
}

impl HostRoot {
    /// The running host (`/`).
    pub fn live() -> Self {
        HostRoot {
            base: PathBuf::from("/"),
            canonical: PathBuf::from("/"),
            live: true,
            side: SideFile::default(),
            dir_fd: None,
        }
    }

    /// A captured tree at `dir`. Reads its side file when present. `dir` = `/` means live.
    pub fn at(dir: &Path) -> anyhow::Result<Self> {
        let canonical = dir
            .canonicalize()
            .map_err(|e| anyhow::anyhow!("opening host root {}: {e}", dir.display()))?;
        if !canonical.is_dir() {
            anyhow::bail!("host root {} is not a directory", dir.display());
        }
        if canonical == Path::new("/") {
            return Ok(Self::live());
        }
        let side_path = canonical.join(SIDE_FILE);
        let side = if side_path.exists() {
            let text = read_bounded(&side_path, 1024 * 1024)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", side_path.display()))?;
            SideFile::parse(&String::from_utf8_lossy(&text))
                .map_err(|e| anyhow::anyhow!("{}: {e}", side_path.display()))?
        } else {
            SideFile::default()
        };
        // Descriptors are reached through /proc/self/fd; without /proc, canonicalize() does it.
        let dir_fd = Path::new("/proc/self/fd")
            .is_dir()
            .then(|| {
                nix::fcntl::open(
                    &canonical,
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()
            })
            .flatten()
            .map(std::sync::Arc::new);
        Ok(HostRoot {
            base: dir.to_path_buf(),
            canonical,
            live: false,
            side,
            dir_fd,
        })
    }

    /// From `--root`/`GVTG_ROOT`, or the live host when neither is given.
    pub fn from_option(dir: Option<&Path>) -> anyhow::Result<Self> {
        match dir {
            Some(d) => Self::at(d),
            None => Ok(Self::live()),
        }
    }

    /// True when reading the running host.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The directory the host's `/` maps to.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The side file of a captured tree (empty on a live host).
    pub fn side(&self) -> &SideFile {
        &self.side
    }

    /// The real path of `rel` ("proc/cmdline") under this root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel.trim_start_matches('/'))
    }

    /// How a path is shown to users: as the host sees it (`/proc/cmdline`), whatever the root.
    pub fn display(rel: &str) -> String {
        format!("/{}", rel.trim_start_matches('/'))
    }

    /// Resolves `rel` to a real path that is safe to open: inside the root, and (in a captured
    /// tree) a regular file or directory.
    fn resolve(&self, rel: &str) -> Result<Resolved, Probe<()>> {
        let p = self.path(rel);
        if self.live {
            return Ok(Resolved { path: p, fd: None });
        }
        match self.resolve_beneath(rel) {
            Ok(r) => return Ok(r),
            Err(Some(e)) => return Err(io_probe(&e, rel)),
            Err(None) => {}
        }
        match p.canonicalize() {
            Ok(c) if c.starts_with(&self.canonical) => Ok(Resolved { path: c, fd: None }),
            Ok(c) => Err(Probe::Invalid(format!(
                "{} resolves to {}, outside the captured tree",
                Self::display(rel),
                c.display()
            ))),
            Err(e) => Err(io_probe(&e, rel)),
        }
    }

    /// `rel` resolved by the kernel in one `openat2(RESOLVE_BENEATH)` call (instead of
    /// `realpath`'s `readlink` on every component), as an `O_PATH` descriptor reached through
    /// `/proc/self/fd/N`: the same inode `canonicalize` would name, without walking the long
    /// path again. `Err(Some(e))` when a component does not exist or is not a directory
    /// (`ENOENT`, `ENOTDIR`: the kernel reports an absolute link or a `..` above the root as
    /// `EXDEV` before it gets there, so `canonicalize` would fail the same way). `Err(None)`
    /// whenever there is no such answer (no openat2, an absolute link, a `..` above the root, a
    /// loop): the caller then falls back to `canonicalize`, which decides and words the error as
    /// before.
    fn resolve_beneath(&self, rel: &str) -> Result<Resolved, Option<std::io::Error>> {
        use nix::errno::Errno;
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
        use std::os::fd::AsRawFd;
        let dir = self.dir_fd.as_ref().ok_or(None)?;
        let rel = rel.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        match nix::fcntl::openat2(dir.as_ref(), rel, how) {
            Ok(fd) => Ok(Resolved {
                path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
                fd: Some(fd),
            }),
            Err(e @ (Errno::ENOENT | Errno::ENOTDIR)) => Err(Some(e.into())),
            Err(_) => Err(None),
        }
    }

    /// The real path to open for a write under `rel`, refusing any path that leaves the root.
    /// On a live host this is `rel` under `/` as is (sysfs paths go through symlinks such as
    /// `/sys/class/mdev_bus/P`); in a captured tree the parent directory is canonicalised and must
    /// stay inside the tree, so a planted symlink cannot redirect a write elsewhere.
    pub fn path_for_write(&self, rel: &str) -> std::io::Result<PathBuf> {
        let p = self.path(rel);
        if self.live {
            return Ok(p);
        }
        let (parent, name) = match (p.parent(), p.file_name()) {
            (Some(d), Some(n)) => (d, n.to_owned()),
            _ => {
                return Err(std::io::Error::other(format!(
                    "{} has no parent",
                    Self::display(rel)
                )))
            }
        };
        let parent = parent.canonicalize()?;
        if !parent.starts_with(&self.canonical) {
            return Err(std::io::Error::other(format!(
                "{} resolves outside the captured tree",
                Self::display(rel)
            )));
        }
        Ok(parent.join(name))
    }

    /// Reads a whole file as bytes (bounded by [`MAX_READ`]).
    pub fn read_bytes(&self, rel: &str) -> Probe<Vec<u8>> {
        self.read_bytes_max(rel, MAX_READ)
    }

    /// Reads a whole file as text, refusing one larger than `limit` bytes (for files the kernel
    /// keeps small, such as the command line, so a hostile tree cannot make the parsers chew on
    /// megabytes).
    pub fn read_max(&self, rel: &str, limit: u64) -> Probe<String> {
        self.read_bytes_max(rel, limit.min(MAX_READ)).map(text)
    }

    fn read_bytes_max(&self, rel: &str, limit: u64) -> Probe<Vec<u8>> {
        self.open_regular(rel)
            .and_then(|f| match read_file_bounded(f, limit) {
                Ok(b) => Probe::Ok(b),
                Err(e) => io_probe(&e, rel),
            })
    }

    /// Opens `rel` for reading: on a live host as is; in a captured tree only a regular file
    /// inside the tree (a FIFO, a device node or a directory is refused, never opened).
    pub fn open_regular(&self, rel: &str) -> Probe<File> {
        let p = match self.resolve(rel) {
            Ok(p) => p,
            Err(e) => return e.map_never(),
        };
        if !self.live {
            match std::fs::metadata(&p.path) {
                Ok(m) if m.is_file() => {}
                Ok(m) if m.is_dir() => {
                    return Probe::Invalid(format!("{} is a directory", Self::display(rel)))
                }
                Ok(_) => {
                    return Probe::Invalid(format!(
                        "{} is not a regular file in the captured tree",
                        Self::display(rel)
                    ))
                }
                Err(e) => return io_probe(&e, rel),
            }
        }
        match File::open(&p.path) {
            Ok(f) => Probe::Ok(f),
            Err(e) => io_probe(&e, rel),
        }
    }

    /// Reads a whole file as text (invalid UTF-8 is replaced, never an error: sysfs and logs can
    /// hold anything).
    pub fn read(&self, rel: &str) -> Probe<String> {
        self.read_bytes(rel).map(text)
    }

    /// Reads a one-value sysfs attribute, trimmed.
    pub fn read_attr(&self, rel: &str) -> Probe<String> {
        self.read(rel).map(trimmed)
    }

    /// Entry names of a directory, sorted. Names that are not UTF-8 are kept lossily (a hostile
    /// tree can hold them; we must still list the rest).
    /// In a captured tree, entries the side file declares under the directory are included,
    /// and a directory that exists only in the side file reads as such.
    pub fn read_dir(&self, rel: &str) -> Probe<Vec<String>> {
        let key = rel.trim_matches('/');
        let side = if self.live {
            Vec::new()
        } else {
            self.side.children(key)
        };
        let real = match self.resolve(rel) {
            Ok(p) => match std::fs::read_dir(&p.path) {
                Ok(rd) => Probe::Ok(
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect::<Vec<_>>(),
                ),
                Err(e) => io_probe(&e, rel),
            },
            Err(e) => e.map_never(),
        };
        let mut names = match real {
            Probe::Ok(n) => n,
            Probe::Missing if !self.live && self.side.is_dir(key) => Vec::new(),
            other => return other,
        };
        names.extend(side);
        names.sort();
        names.dedup();
        Probe::Ok(names)
    }

    /// Where a symlink points. The side file wins; otherwise the real link is read.
    pub fn read_link(&self, rel: &str) -> Probe<String> {
        let key = rel.trim_start_matches('/');
        if let Some(t) = self.side.link(key) {
            return Probe::Ok(t.to_string());
        }
        match std::fs::read_link(self.path(rel)) {
            Ok(t) => Probe::Ok(t.to_string_lossy().into_owned()),
            Err(e) => io_probe(&e, rel),
        }
    }

    /// The last component of a symlink's target ("driver" → "i915").
    pub fn link_name(&self, rel: &str) -> Probe<String> {
        self.read_link(rel).map(|t| {
            t.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
    }

    /// Whether a path exists (a side-file node or link counts).
    pub fn exists(&self, rel: &str) -> bool {
        let key = rel.trim_start_matches('/');
        self.side.node(key).is_some()
            || self.side.link(key).is_some()
            || std::fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// Type, mode and owner of a node, following symlinks (as `open()` would). The side file wins.
    pub fn node(&self, rel: &str) -> Probe<NodeInfo> {
        let key = rel.trim_start_matches('/');
        if let Some(n) = self.side.node(key) {
            return Probe::Ok(n.clone());
        }
        let p = match self.resolve(rel) {
            Ok(p) => p,
            Err(e) => return e.map_never(),
        };
        match nix::sys::stat::stat(&p.path) {
            Ok(st) => {
                let fmt = st.st_mode & nix::libc::S_IFMT;
                let kind = match fmt {
                    nix::libc::S_IFCHR => NodeKind::Char,
                    nix::libc::S_IFBLK => NodeKind::Block,
                    nix::libc::S_IFDIR => NodeKind::Dir,
                    nix::libc::S_IFIFO => NodeKind::Fifo,
                    nix::libc::S_IFSOCK => NodeKind::Socket,
                    _ => NodeKind::File,
                };
                let rdev = matches!(kind, NodeKind::Char | NodeKind::Block).then(|| {
                    (
                        nix::sys::stat::major(st.st_rdev) as u32,
                        nix::sys::stat::minor(st.st_rdev) as u32,
                    )
                });
                Probe::Ok(NodeInfo {
                    kind,
                    mode: st.st_mode & 0o7777,
                    uid: st.st_uid,
                    gid: st.st_gid,
                    rdev,
                })
            }
            Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => Probe::Missing,
            Err(nix::errno::Errno::EACCES) | Err(nix::errno::Errno::EPERM) => Probe::Denied,
            Err(e) => Probe::Invalid(format!("stat {}: {e}", Self::display(rel))),
        }
    }

    /// The effective uid the snapshot was taken as: ours on a live host, the side file's
    /// `captured_euid` (default 0, a root capture) in a tree.
    pub fn euid(&self) -> u32 {
        if self.live {
            nix::unistd::geteuid().as_raw()
        } else {
            self.side.captured_euid.unwrap_or(0)
        }
    }

    /// The kernel log: `/dev/kmsg` on a live host (root only; read without blocking), or in a
    /// captured tree the file the side file names (default `dev/kmsg` as a regular file).
    /// Returns the path shown to the user and the raw bytes.
    pub fn kernel_log(&self) -> Probe<(String, Vec<u8>)> {
        self.kernel_log_source().and_then(|(path, src)| match src {
            LogSource::Bytes(b) => Probe::Ok((path, b)),
            LogSource::File(f) => match read_file_bounded(f, MAX_READ) {
                Ok(b) => Probe::Ok((path, b)),
                Err(e) => io_probe(&e, &path),
            },
        })
    }

    /// [`HostRoot::kernel_log`], leaving a captured tree's file open for the caller to read
    /// (a piece at a time: a multi-MB log need not be held whole).
    pub fn kernel_log_source(&self) -> Probe<(String, LogSource)> {
        if self.live {
            return match read_kmsg_live(&self.path("dev/kmsg")) {
                Ok(b) => Probe::Ok(("/dev/kmsg".to_string(), LogSource::Bytes(b))),
                Err(e) => io_probe(&e, "dev/kmsg"),
            };
        }
        let rel = self
            .side
            .kernel_log
            .clone()
            .unwrap_or_else(|| "dev/kmsg".to_string());
        self.open_regular(&rel)
            .map(|f| (Self::display(&rel), LogSource::File(f)))
    }
}

/// Where the kernel log's bytes are: read already (`/dev/kmsg`, record by record), or a
/// captured tree's regular file, open.
pub enum LogSource {
    /// The whole log.
    Bytes(Vec<u8>),
    /// A file to read up to [`MAX_READ`] bytes of.
    File(File),
}

/// A directory of the host opened once, whose entries are then read relative to it
/// (`openat`/`readlinkat`) instead of walking the whole path again for every attribute: the
/// kernel's path walk through `/sys/class/mdev_bus/P/mdev_supported_types/T/…` is most of
/// what reading a sysfs attribute costs. In a captured tree the directory is resolved beneath
/// the tree and only links are read through it (files still go through [`HostRoot::read_bytes`],
/// which checks that they are regular files inside the tree); when the directory cannot be
/// opened, each call is the [`HostRoot`] call on the joined path, with the same results.
pub struct HostDir<'a> {
    root: &'a HostRoot,
    rel: String,
    fd: Option<std::os::fd::OwnedFd>,
}

impl HostRoot {
    /// Opens `rel` for reading its entries with [`HostDir`].
    pub fn dir(&self, rel: &str) -> HostDir<'_> {
        use nix::fcntl::OFlag;
        let fd = if self.live {
            nix::fcntl::open(
                &self.path(rel),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok()
        } else {
            // Resolved beneath the tree; only links are read through it (see `read_link`).
            self.resolve_beneath(rel).ok().and_then(|r| r.fd)
        };
        HostDir {
            root: self,
            rel: rel.trim_matches('/').to_string(),
            fd,
        }
    }
}

impl<'a> HostDir<'a> {
    fn join(&self, name: &str) -> String {
        format!("{}/{name}", self.rel)
    }

    /// Whether the directory itself is open (else every call goes by path).
    pub fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    /// The host this directory belongs to.
    pub fn root(&self) -> &'a HostRoot {
        self.root
    }

    /// Whether `name` is opened relative to this directory: one component, or on the live host
    /// several (`TYPE/name`: one open instead of opening `TYPE` first).
    fn relative(&self, name: &str) -> bool {
        is_component(name) || (self.root.live && is_components(name))
    }

    /// [`HostRoot::read_bytes`] of the entry `name` (a single path component, or several on the
    /// live host).
    ///
    /// In a captured tree the entry is first looked at with `fstatat(AT_SYMLINK_NOFOLLOW)`
    /// through the directory (resolved beneath the tree): only a regular file is opened, with
    /// `O_NOFOLLOW | O_NONBLOCK`, so a device node, a FIFO or a link is never opened here (an
    /// entry swapped for one of those between the look and the open is refused by `O_NOFOLLOW`,
    /// read as empty, or fails the read as a directory). Anything else (a link, a directory, a
    /// FIFO, an error other than "no such entry") goes through [`HostRoot::read_bytes`], which
    /// decides and words the answer as for any path.
    pub fn read_bytes(&self, name: &str) -> Probe<Vec<u8>> {
        use nix::fcntl::OFlag;
        use nix::sys::stat::{fstatat, Mode};
        use std::os::fd::AsFd;
        let Some(fd) = self.fd.as_ref().filter(|_| self.relative(name)) else {
            return self.root.read_bytes(&self.join(name));
        };
        let is_reg = |mode: nix::libc::mode_t| mode & nix::libc::S_IFMT == nix::libc::S_IFREG;
        let mut size = None;
        let flags = if self.root.live {
            OFlag::O_RDONLY | OFlag::O_CLOEXEC
        } else {
            match fstatat(fd.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) if is_reg(st.st_mode) => size = u64::try_from(st.st_size).ok(),
                // The directory is resolved, so a missing entry is missing at any path.
                Err(nix::errno::Errno::ENOENT) => return Probe::Missing,
                _ => return self.root.read_bytes(&self.join(name)),
            }
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC
        };
        let file = match nix::fcntl::openat(fd.as_fd(), name, flags, Mode::empty()) {
            Ok(f) => File::from(f),
            Err(_) if !self.root.live => return self.root.read_bytes(&self.join(name)),
            Err(e) => return io_probe(&e.into(), &self.join(name)),
        };
        // When the whole content is known to be in after the first read, the read that would
        // return 0 is skipped: a regular file of the captured tree once its `st_size` bytes
        // are in (a capture is not written while it is read), a sysfs attribute once a read
        // returned less than a page (the kernel hands an attribute's whole text to the first
        // read).
        let complete_at = if self.root.live {
            self.rel.starts_with("sys/").then_some(None)
        } else {
            Some(size)
        };
        match read_to_end_bounded(file, complete_at) {
            Ok(b) if b.len() as u64 > MAX_READ => Probe::Invalid(format!(
                "reading {}: larger than {} MiB",
                HostRoot::display(&self.join(name)),
                MAX_READ / 1024 / 1024
            )),
            Ok(b) => Probe::Ok(b),
            Err(e) => io_probe(&e, &self.join(name)),
        }
    }

    /// The entry `name` as a [`HostDir`] of its own, opened relative to this one (in a captured
    /// tree resolved with `RESOLVE_BENEATH` this directory, which is itself beneath the tree);
    /// when that fails (a link leading above this directory, a missing entry), it is
    /// [`HostRoot::dir`] of the joined path, with the same results.
    pub fn subdir(&self, name: &str) -> HostDir<'a> {
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
        use std::os::fd::AsFd;
        let fd = self
            .fd
            .as_ref()
            .filter(|_| is_component(name))
            .and_then(|fd| {
                if self.root.live {
                    nix::fcntl::openat(
                        fd.as_fd(),
                        name,
                        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        nix::sys::stat::Mode::empty(),
                    )
                    .ok()
                } else {
                    let how = OpenHow::new()
                        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
                        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
                    nix::fcntl::openat2(fd.as_fd(), name, how).ok()
                }
            });
        match fd {
            Some(fd) => HostDir {
                root: self.root,
                rel: self.join(name),
                fd: Some(fd),
            },
            None => self.root.dir(&self.join(name)),
        }
    }

    /// Opens the directory `rel` below this one for listing: `openat(O_DIRECTORY)` (which never
    /// opens anything but a directory) on the live host, `openat2` beneath this directory (no
    /// magic links) in a captured tree.
    fn open_listing(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        rel: &str,
    ) -> nix::Result<std::os::fd::OwnedFd> {
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        if self.root.live {
            nix::fcntl::openat(fd, rel, flags, nix::sys::stat::Mode::empty())
        } else {
            let how = OpenHow::new()
                .flags(flags)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            nix::fcntl::openat2(fd, rel, how)
        }
    }

    /// The entries of `dir` (the directory `rel` below this one) other than `.` and `..`, with
    /// the side file's entries under it in a captured tree, sorted; `None` when reading fails.
    /// rustix's `Dir` reads the descriptor as it is (libc's `fdopendir` first checks it with
    /// `fstat` and `fcntl`, two system calls per directory).
    fn listed(&self, dir: &mut rustix::fs::Dir, rel: &str) -> Option<Vec<String>> {
        let mut names = Vec::new();
        for e in dir {
            let e = e.ok()?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(entry_name(n));
            }
        }
        if !self.root.live {
            names.extend(self.root.side.children(&self.join(rel)));
        }
        names.sort();
        names.dedup();
        Some(names)
    }

    /// [`HostRoot::read_dir`] of the entry `name`: the directory is opened relative to this
    /// one (`open_listing`; a captured tree's side-file entries are added as
    /// [`HostRoot::read_dir`] adds them). When it cannot be opened that way, it is the
    /// path-based call.
    pub fn read_dir(&self, name: &str) -> Probe<Vec<String>> {
        use std::os::fd::AsFd;
        let by_path = || self.root.read_dir(&self.join(name));
        let Some(fd) = self.fd.as_ref().filter(|_| self.relative(name)) else {
            return by_path();
        };
        let Ok(mut dir) = self
            .open_listing(fd.as_fd(), name)
            .map_err(std::io::Error::from)
            .and_then(|fd| rustix::fs::Dir::new(fd).map_err(std::io::Error::from))
        else {
            return by_path();
        };
        self.listed(&mut dir, name).map_or_else(by_path, Probe::Ok)
    }

    /// The entries of the directory `rel` below this one (one or more components, none `.` or
    /// `..`), sorted, each with where it links to: [`HostDir::read_dir`] and
    /// [`HostDir::read_link`] of every entry, through one descriptor of that directory. For
    /// `/proc/PID/fd` this is one open and one `readlinkat` per descriptor, instead of a path
    /// walk through `/proc/PID` for each. When the directory cannot be opened that way, it is
    /// the path-based calls.
    pub fn read_links(&self, rel: &str) -> Probe<Vec<(String, Probe<String>)>> {
        use nix::errno::Errno;
        use std::os::fd::AsFd;
        let dir_rel = self.join(rel);
        let by_path = || {
            self.root.read_dir(&dir_rel).map(|names| {
                names
                    .into_iter()
                    .map(|n| {
                        let target = self.root.read_link(&format!("{dir_rel}/{n}"));
                        (n, target)
                    })
                    .collect()
            })
        };
        let Some(fd) = self.fd.as_ref().filter(|_| is_components(rel)) else {
            return by_path();
        };
        let dir = match self.open_listing(fd.as_fd(), rel) {
            Ok(d) => d,
            Err(Errno::ENOENT | Errno::ENOTDIR) if self.root.live => return Probe::Missing,
            Err(Errno::EACCES | Errno::EPERM) if self.root.live => return Probe::Denied,
            Err(_) => return by_path(),
        };
        let Ok(mut dir) = rustix::fs::Dir::new(dir) else {
            return by_path();
        };
        let Some(names) = self.listed(&mut dir, rel) else {
            return by_path();
        };
        let Ok(dirfd) = dir.fd() else {
            return by_path();
        };
        Probe::Ok(
            names
                .into_iter()
                .map(|n| {
                    let path = format!("{dir_rel}/{n}");
                    let side = if self.root.live {
                        None
                    } else {
                        self.root.side.link(&path)
                    };
                    let target = match side {
                        Some(t) => Probe::Ok(t.to_string()),
                        None if is_component(&n) => match nix::fcntl::readlinkat(dirfd, n.as_str())
                        {
                            Ok(t) => Probe::Ok(t.to_string_lossy().into_owned()),
                            Err(e) => io_probe(&e.into(), &path),
                        },
                        None => self.root.read_link(&path),
                    };
                    (n, target)
                })
                .collect(),
        )
    }

    /// [`HostRoot::read`] of the entry `name`.
    pub fn read(&self, name: &str) -> Probe<String> {
        self.read_bytes(name).map(text)
    }

    /// [`HostRoot::read_attr`] of the entry `name`.
    pub fn read_attr(&self, name: &str) -> Probe<String> {
        self.read(name).map(trimmed)
    }

    /// [`HostRoot::read_link`] of the entry `name`.
    pub fn read_link(&self, name: &str) -> Probe<String> {
        use std::os::fd::AsFd;
        let Some(fd) = self.fd.as_ref().filter(|_| is_component(name)) else {
            return self.root.read_link(&self.join(name));
        };
        if !self.root.live {
            // The side file wins, as in `HostRoot::read_link`. `readlinkat` does not follow the
            // link, so reading it through a directory resolved beneath the tree stays inside.
            if let Some(t) = self.root.side.link(&self.join(name)) {
                return Probe::Ok(t.to_string());
            }
        }
        match nix::fcntl::readlinkat(fd.as_fd(), name) {
            Ok(t) => Probe::Ok(t.to_string_lossy().into_owned()),
            Err(e) => io_probe(&e.into(), &self.join(name)),
        }
    }

    /// Whether the kernel says `path` (below this directory; it may have several components)
    /// does not exist: one `fstatat(AT_SYMLINK_NOFOLLOW)`. Intermediate components are followed
    /// as the kernel follows them, even out of a captured tree, so only "no such file" answers
    /// `true`: use it where an absent entry and one that cannot be read mean the same, and read
    /// the entry the careful way when it answers `false`.
    pub fn lacks(&self, path: &str) -> bool {
        use nix::errno::Errno;
        use std::os::fd::AsFd;
        let Some(fd) = self.fd.as_ref() else {
            return false;
        };
        if path.is_empty() || path.starts_with('/') {
            return false;
        }
        if !self.root.live && self.root.side.node(&self.join(path)).is_some() {
            return false;
        }
        matches!(
            nix::sys::stat::fstatat(fd.as_fd(), path, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW),
            Err(Errno::ENOENT | Errno::ENOTDIR)
        )
    }

    /// [`HostRoot::link_name`] of the entry `name`.
    pub fn link_name(&self, name: &str) -> Probe<String> {
        self.read_link(name).map(|t| {
            t.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
    }
}

/// Reads `file` to its end, at most [`MAX_READ`] + 1 bytes (the caller reports more as too
/// large). `complete_at`: `Some(Some(n))` stops once `n` bytes are in, `Some(None)` once a read
/// returns less than a page (a sysfs attribute), `None` reads until a read returns 0.
fn read_to_end_bounded(file: File, complete_at: Option<Option<u64>>) -> std::io::Result<Vec<u8>> {
    use std::mem::MaybeUninit;
    const PAGE: usize = 4096;
    // Each read() goes into memory that is not zeroed first (rustix's `read` into uninitialised
    // bytes returns the part the kernel filled): zeroing a page per sysfs attribute was a sixth
    // of the instructions of `gvtg vgpu types`.
    let read_into = |buf: &mut Vec<u8>| loop {
        match rustix::io::read(&file, rustix::buffer::spare_capacity(buf)) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(std::io::Error::from(e)),
        }
    };
    // A sysfs attribute: its text comes whole in the first read, almost always short. Read it
    // onto the stack and allocate only what it holds.
    if complete_at == Some(None) {
        let mut first = [MaybeUninit::<u8>::uninit(); PAGE + 1];
        let data = loop {
            match rustix::io::read(&file, &mut first[..]) {
                Ok((data, _)) => break data,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(std::io::Error::from(e)),
            }
        };
        if data.len() < PAGE {
            return Ok(data.to_vec());
        }
        let mut rest = data.to_vec();
        rest.extend(read_to_end_bounded(file, None)?);
        return Ok(rest);
    }
    let cap = match complete_at {
        Some(Some(n)) if n < MAX_READ => n as usize + 1,
        _ => PAGE + 1,
    };
    let mut buf = Vec::with_capacity(cap);
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() as u64 > MAX_READ {
                break;
            }
            let grow = buf
                .len()
                .min((MAX_READ + 1) as usize - buf.len().min(MAX_READ as usize));
            buf.reserve_exact(grow.max(1));
        }
        let n = read_into(&mut buf)?;
        let len = buf.len();
        let done = match complete_at {
            _ if n == 0 => true,
            Some(Some(size)) => len as u64 == size,
            Some(None) => n < PAGE && len == n,
            None => false,
        };
        if done {
            break;
        }
    }
    Ok(buf)
}

/// Bytes read from a file as text, keeping their buffer when they are UTF-8 (almost always);
/// anything else is kept lossily.
fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `s` without leading and trailing whitespace, in its own buffer.
fn trimmed(mut s: String) -> String {
    let end = s.trim_end().len();
    s.truncate(end);
    let start = s.len() - s.trim_start().len();
    s.drain(..start);
    s
}

/// One path component: no `/`, not `.` or `..`, not empty.
fn is_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.as_bytes().contains(&b'/')
}

/// One or more components separated by `/`, none of them empty, `.` or `..`.
fn is_components(name: &str) -> bool {
    name.as_bytes()
        .split(|&b| b == b'/')
        .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// A directory entry's name as text (kept lossily when it is not UTF-8).
fn entry_name(n: &[u8]) -> String {
    match std::str::from_utf8(n) {
        Ok(n) => n.to_owned(),
        Err(_) => String::from_utf8_lossy(n).into_owned(),
    }
}

impl Probe<()> {
    fn map_never<T>(self) -> Probe<T> {
        match self {
            Probe::Ok(()) => Probe::Invalid("internal: resolved to nothing".into()),
            Probe::Missing => Probe::Missing,
            Probe::Denied => Probe::Denied,
            Probe::Invalid(m) => Probe::Invalid(m),
        }
    }
}

fn io_probe<T>(e: &std::io::Error, rel: &str) -> Probe<T> {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => Probe::Missing,
        PermissionDenied => Probe::Denied,
        _ => {
            // ENOTDIR (a file where a directory was expected) is "missing" for our purposes.
            if e.raw_os_error() == Some(nix::libc::ENOTDIR) {
                Probe::Missing
            } else {
                Probe::Invalid(format!("reading {}: {e}", HostRoot::display(rel)))
            }
        }
    }
}

/// Reads at most `limit` bytes; a file larger than that is an error, not silently truncated.
fn read_bounded(p: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    read_file_bounded(File::open(p)?, limit)
}

/// Reads `f` whole, refusing more than `limit` bytes.
pub(crate) fn read_file_bounded(f: File, limit: u64) -> std::io::Result<Vec<u8>> {
    // Sized once from the file's length (a sysfs or proc file says 4096 or 0; the read grows
    // the buffer as usual then): a multi-MB kernel log is read without reallocating.
    let len = f.metadata().map_or(0, |m| m.len()).min(limit);
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(buf)
}

/// The error for a file larger than `limit` bytes.
pub fn too_large(limit: u64) -> std::io::Error {
    let size = if limit >= 1024 * 1024 {
        format!("{} MiB", limit / 1024 / 1024)
    } else if limit >= 1024 {
        format!("{} KiB", limit / 1024)
    } else {
        format!("{limit} bytes")
    };
    std::io::Error::other(format!("larger than {size}"))
}

/// Reads every record currently in the kernel ring buffer from `/dev/kmsg` without blocking:
/// each `read()` returns one record, and `EAGAIN` means we reached the end (kernel
/// Documentation/ABI/testing/dev-kmsg). `EPIPE` means a record was overwritten while we read;
/// we skip it and go on.
fn read_kmsg_live(p: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(p)?;
    let mut out = Vec::new();
    let mut rec = vec![0u8; 8192];
    loop {
        match f.read(&mut rec) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&rec[..n]);
                if out.last() != Some(&b'\n') {
                    out.push(b'\n');
                }
                if out.len() as u64 > MAX_READ {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_trimmed() {
        assert_eq!(text(b"i915\n".to_vec()), "i915\n");
        assert_eq!(text(vec![b'a', 0xff, b'b']), "a\u{fffd}b");
        assert_eq!(trimmed(" \t7 8\n\n".into()), "7 8");
        assert_eq!(trimmed("x".into()), "x");
        assert_eq!(trimmed(" \n".into()), "");
        assert_eq!(trimmed("\u{a0}é\u{2003}".into()), "é");
    }

    #[test]
    fn host_dir_reads_what_paths_read() {
        // Live: relative openat/readlinkat against the joined-path calls.
        let live = HostRoot::live();
        let d = live.dir("proc/self");
        assert!(d.fd.is_some());
        assert_eq!(d.read_attr("cmdline"), live.read_attr("proc/self/cmdline"));
        assert!(matches!(d.read_link("exe"), Probe::Ok(ref t) if t.starts_with('/')));
        assert_eq!(d.read_attr("no-such-attr"), Probe::Missing);
        assert_eq!(d.read_link("no-such-link"), Probe::Missing);
        // A name that is not one component goes through the path-based call.
        assert_eq!(
            d.read_attr("../self/cmdline"),
            live.read_attr("proc/self/cmdline")
        );
        // Captured tree: the path-based calls, links resolved beneath the tree.
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("sys/x")).unwrap();
        std::fs::write(t.path().join("sys/x/a"), " 7\n").unwrap();
        std::os::unix::fs::symlink("../../etc", t.path().join("sys/x/out")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("sys/x/abs")).unwrap();
        let root = HostRoot::at(t.path()).unwrap();
        let d = root.dir("sys/x");
        assert!(d.fd.is_some());
        assert_eq!(d.read_attr("a"), Probe::Ok("7".into()));
        assert_eq!(d.link_name("out"), Probe::Ok("etc".into()));
        assert!(matches!(d.read_attr("abs"), Probe::Invalid(ref m) if m.contains("outside")));
        assert_eq!(d.read_attr("out/missing"), Probe::Missing);
    }

    /// `read_links` gives what `read_dir` + `read_link` of each entry give, live and in a
    /// captured tree (side-file links included and winning), and stays in the tree.
    #[test]
    fn read_links_is_listing_plus_read_link() {
        let by_path = |root: &HostRoot, rel: &str| {
            root.read_dir(rel).map(|names| {
                names
                    .into_iter()
                    .map(|n| {
                        let t = root.read_link(&format!("{rel}/{n}"));
                        (n, t)
                    })
                    .collect::<Vec<_>>()
            })
        };
        // Live: this process's descriptors (the directory's own descriptor aside, which only
        // the one-descriptor read holds open while it reads).
        let live = HostRoot::live();
        let proc = live.dir("proc");
        let pid = std::process::id();
        let Probe::Ok(fds) = proc.read_links(&format!("{pid}/fd")) else {
            panic!("/proc/{pid}/fd not listed");
        };
        assert!(fds
            .iter()
            .any(|(n, t)| n == "0" && matches!(t, Probe::Ok(_))));
        assert_eq!(proc.read_links("no-such-pid/fd"), Probe::Missing);
        assert_eq!(proc.read_links("self/cmdline"), Probe::Missing);
        // Captured: links, a plain file, a side-file link that wins over the tree's and one
        // that exists only in the side file; `..` and links out go the path-based way.
        let t = tempfile::tempdir().unwrap();
        let fd = t.path().join("proc/42/fd");
        std::fs::create_dir_all(&fd).unwrap();
        std::os::unix::fs::symlink("/dev/vfio/12", fd.join("17")).unwrap();
        std::os::unix::fs::symlink("/dev/null", fd.join("3")).unwrap();
        std::os::unix::fs::symlink("/dev/null", fd.join("5")).unwrap();
        std::fs::write(fd.join("notes"), "x").unwrap();
        std::os::unix::fs::symlink(t.path().join("proc/42/fd"), t.path().join("proc/43")).unwrap();
        std::fs::write(
            t.path().join("gvtg-tree.toml"),
            "format = 1\n[[link]]\npath = \"proc/42/fd/5\"\ntarget = \"/dev/vfio/7\"\n\
             [[link]]\npath = \"proc/42/fd/9\"\ntarget = \"/dev/kvm\"\n",
        )
        .unwrap();
        let root = HostRoot::at(t.path()).unwrap();
        let proc = root.dir("proc");
        let got = proc.read_links("42/fd");
        assert_eq!(got, by_path(&root, "proc/42/fd"));
        let Probe::Ok(got) = got else {
            panic!("{got:?}")
        };
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["17", "3", "5", "9", "notes"]);
        assert_eq!(got[0].1, Probe::Ok("/dev/vfio/12".into()));
        assert_eq!(got[2].1, Probe::Ok("/dev/vfio/7".into()));
        assert_eq!(got[3].1, Probe::Ok("/dev/kvm".into()));
        assert!(!matches!(got[4].1, Probe::Ok(_)));
        assert_eq!(proc.read_links("41/fd"), by_path(&root, "proc/41/fd"));
        assert_eq!(
            proc.read_links("../proc/42/fd"),
            by_path(&root, "proc/../proc/42/fd")
        );
        // A link to a directory that is inside the tree is read as the path-based calls read it.
        assert_eq!(proc.read_links("43"), by_path(&root, "proc/43"));
    }

    #[test]
    fn host_dir_subdirs_and_listings_stay_in_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::fs::create_dir_all(outside.path().join("d/e")).unwrap();
        std::fs::create_dir_all(t.path().join("sys/g/1/devices/a")).unwrap();
        std::fs::write(t.path().join("sys/g/1/name"), "vfio-noiommu\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("sys/g/2")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("d"), t.path().join("sys/g/1/out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), t.path().join("sys/g/1/s"))
            .unwrap();
        std::os::unix::fs::symlink("1", t.path().join("sys/g/up")).unwrap();
        nix::unistd::mkfifo(
            &t.path().join("sys/g/1/fifo"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        let root = HostRoot::at(t.path()).unwrap();
        let g = root.dir("sys/g");
        let one = g.subdir("1");
        assert_eq!(one.read_attr("name"), Probe::Ok("vfio-noiommu".into()));
        assert_eq!(one.read_dir("devices"), Probe::Ok(vec!["a".to_string()]));
        assert_eq!(one.read_attr("nope"), Probe::Missing);
        assert_eq!(one.read_dir("nope"), root.read_dir("sys/g/1/nope"));
        // Links leaving the tree are refused as the path-based calls refuse them.
        assert!(matches!(one.read_attr("s"), Probe::Invalid(ref m) if m.contains("outside")));
        assert_eq!(one.read_dir("out"), root.read_dir("sys/g/1/out"));
        assert!(!matches!(one.read_dir("out"), Probe::Ok(ref v) if v.contains(&"e".to_string())));
        let two = g.subdir("2");
        assert!(!matches!(two.read_attr("secret"), Probe::Ok(_)));
        assert!(!matches!(two.read_dir("d"), Probe::Ok(_)));
        // A link inside the tree is followed; a FIFO is refused, not waited on.
        assert_eq!(g.subdir("up").read_attr("name"), one.read_attr("name"));
        assert!(matches!(one.read_attr("fifo"), Probe::Invalid(_)));
        assert!(
            matches!(one.read_attr("devices"), Probe::Invalid(ref m) if m.contains("directory"))
        );
    }

    #[test]
    fn host_dir_reads_whole_files_and_bounds_them() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("sys/x")).unwrap();
        let text: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(t.path().join("sys/x/long"), &text).unwrap();
        std::fs::write(t.path().join("sys/x/empty"), "").unwrap();
        File::create(t.path().join("sys/x/big"))
            .unwrap()
            .set_len(MAX_READ + 10)
            .unwrap();
        let root = HostRoot::at(t.path()).unwrap();
        let d = root.dir("sys/x");
        assert_eq!(d.read_bytes("long"), Probe::Ok(text.clone()));
        assert_eq!(d.read_bytes("empty"), Probe::Ok(Vec::new()));
        assert!(matches!(d.read_bytes("big"), Probe::Invalid(m) if m.contains("larger")));
        // Unknown size (a pipe or /proc file): read until a read returns 0, still bounded.
        let f = File::open(t.path().join("sys/x/long")).unwrap();
        assert_eq!(read_to_end_bounded(f, None).unwrap(), text);
        let f = File::open(t.path().join("sys/x/big")).unwrap();
        assert_eq!(
            read_to_end_bounded(f, None).unwrap().len() as u64,
            MAX_READ + 1
        );
        // Live sysfs: one read of an attribute is its whole text.
        let live = HostRoot::live();
        let d = live.dir("sys/devices/system/cpu");
        if d.fd.is_some() {
            let whole = live.read_bytes("sys/devices/system/cpu/possible");
            assert!(matches!(whole, Probe::Ok(ref b) if b.ends_with(b"\n")));
            assert_eq!(d.read_bytes("possible"), whole);
        }
    }

    #[test]
    fn tree_reads_and_refuses_escape() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("proc")).unwrap();
        std::fs::write(d.path().join("proc/cmdline"), "quiet\n").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("escape")).unwrap();
        let r = HostRoot::at(d.path()).unwrap();
        assert_eq!(r.read("proc/cmdline"), Probe::Ok("quiet\n".to_string()));
        assert_eq!(r.read("proc/nope"), Probe::Missing);
        assert!(matches!(r.read("escape"), Probe::Invalid(m) if m.contains("outside")));
    }

    #[test]
    fn fifo_in_tree_is_refused_not_waited_on() {
        let d = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&d.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let r = HostRoot::at(d.path()).unwrap();
        assert!(matches!(r.read("fifo"), Probe::Invalid(_)));
    }

    #[test]
    fn oversized_file_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let f = File::create(d.path().join("big")).unwrap();
        f.set_len(MAX_READ + 10).unwrap();
        let r = HostRoot::at(d.path()).unwrap();
        assert!(matches!(r.read_bytes("big"), Probe::Invalid(m) if m.contains("larger")));
    }

    #[test]
    fn side_file_overrides_nodes_and_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(SIDE_FILE),
            "format = 1\n[[node]]\npath = \"dev/kvm\"\nkind = \"char\"\nmode = \"0660\"\nuid = 0\ngid = 108\nrdev = \"10:232\"\n[[link]]\npath = \"sys/bus/pci/devices/0000:00:02.0/driver\"\ntarget = \"../../../bus/pci/drivers/i915\"\n",
        )
        .unwrap();
        let r = HostRoot::at(d.path()).unwrap();
        let n = r.node("dev/kvm").unwrap_ok();
        assert_eq!(
            (n.kind, n.mode, n.gid, n.rdev),
            (NodeKind::Char, 0o660, 108, Some((10, 232)))
        );
        assert_eq!(
            r.link_name("sys/bus/pci/devices/0000:00:02.0/driver"),
            Probe::Ok("i915".into())
        );
        assert!(r.exists("dev/kvm"));
    }
}
