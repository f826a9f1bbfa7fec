//! Applying a plan safely, and undoing it.
//!
//! In order: take the lock (`ROOT/run/gvtg.lock`, flock); for each file, save its original to the
//! journal once (before its first change ever: later runs keep the first original), then write
//! the new content to a temp file in the same directory (`.gvtg-tmp-*`), copy mode and owner,
//! fsync, rename over the file, fsync the directory. A rename is atomic, so after a crash at any
//! point each file is wholly old or wholly new. If a step fails, the files this run changed are
//! put back and the error says so.
//!
//! The journal (`ROOT/var/lib/gvtg/journal/`) holds, per file, `NNNN.orig` (the original bytes)
//! and `NNNN.json` (`{"path", "existed", "mode", "uid", "gid", "kind"}`), the JSON written last
//! as the commit mark, and `NNNN.ours` (what gvtg last wrote there, saved just before the
//! rename). Directories the fix created are entries of kind `dir`. `--undo` restores every entry
//! newest first (removing files and directories that did not exist) and then clears the journal.
//! It first compares each file with `NNNN.ours`: a file edited by hand since gvtg wrote it is not
//! overwritten (that would lose the edit) unless `--force` says so.
//!
//! `GVTG_FAILPOINT=<name>[:sleep=MS]` makes apply fail (or sleep) at a named step, for the crash
//! tests; without it nothing happens. Steps: `before-backup`, `after-backup`, `after-temp-write`,
//! `after-rename`, `before-command`.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::Plan;
use crate::host::HostRoot;

/// The lock file, relative to the root.
pub const LOCK: &str = "run/gvtg.lock";
/// The journal directory, relative to the root.
pub const JOURNAL: &str = "var/lib/gvtg/journal";

/// Acts on `GVTG_FAILPOINT` when it names `step`.
pub fn failpoint(step: &str) -> Result<()> {
    let Ok(spec) = std::env::var("GVTG_FAILPOINT") else {
        return Ok(());
    };
    for one in spec.split(',') {
        let (name, action) = one.split_once(':').unwrap_or((one, "fail"));
        if name != step {
            continue;
        }
        if let Some(ms) = action.strip_prefix("sleep=") {
            let ms: u64 = ms.parse().unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(ms));
        } else {
            bail!("failpoint {step} reached (GVTG_FAILPOINT)");
        }
    }
    Ok(())
}

/// One journal entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// Path as the host sees it (`/etc/default/grub`).
    pub path: String,
    /// `file` or `dir`.
    pub kind: String,
    /// Whether it existed before gvtg changed it.
    pub existed: bool,
    /// Permission bits of the original.
    pub mode: u32,
    /// Owner of the original.
    pub uid: u32,
    /// Group of the original.
    pub gid: u32,
}

/// Holds the flock until dropped.
pub struct Lock {
    _flock: nix::fcntl::Flock<File>,
}

/// Takes `ROOT/run/gvtg.lock`, failing at once when another gvtg holds it.
pub fn lock(root: &HostRoot) -> Result<Lock> {
    let p = root.path(LOCK);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .with_context(|| format!("opening {}", p.display()))?;
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Lock { _flock: l }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            bail!("another gvtg fix is running (it holds {})", p.display())
        }
        Err((_, e)) => bail!("locking {}: {e}", p.display()),
    }
}

fn fsync_dir(d: &Path) -> Result<()> {
    File::open(d)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing directory {}", d.display()))
}

/// Writes `bytes` to `path` atomically (temp file in the same directory, fsync, rename, fsync
/// the directory) with the given mode and owner.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".gvtg-tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing a temp file in {}", dir.display()))?;
    let f = tmp.as_file();
    f.set_permissions(fs::Permissions::from_mode(mode))
        .context("setting the temp file's mode")?;
    if let Some((uid, gid)) = owner {
        let cur = f.metadata()?;
        if cur.uid() != uid || cur.gid() != gid {
            std::os::unix::fs::fchown(f, Some(uid), Some(gid))
                .with_context(|| format!("giving the new {} owner {uid}:{gid}", path.display()))?;
        }
    }
    f.sync_all().context("syncing the temp file")?;
    failpoint("after-temp-write")?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming the temp file over {}", path.display()))?;
    fsync_dir(dir)
}

/// The journal of a root.
pub struct Journal {
    dir: PathBuf,
    entries: Vec<(usize, Entry)>,
}

impl Journal {
    /// Opens (without creating) the journal.
    pub fn open(root: &HostRoot) -> Result<Journal> {
        let dir = root.path(JOURNAL);
        let mut entries = Vec::new();
        if dir.is_dir() {
            for e in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(n) = name
                    .strip_suffix(".json")
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                let text = fs::read_to_string(e.path())
                    .with_context(|| format!("reading {}", e.path().display()))?;
                let entry: Entry = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", e.path().display()))?;
                entries.push((n, entry));
            }
        }
        entries.sort_by_key(|(n, _)| *n);
        Ok(Journal { dir, entries })
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().map(|(_, e)| e)
    }

    fn has(&self, path: &str) -> bool {
        self.entries.iter().any(|(_, e)| e.path == path)
    }

    /// Records an original: bytes first, then the JSON (the commit mark).
    fn record(&mut self, entry: Entry, orig: Option<&[u8]>) -> Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let n = self.entries.last().map_or(0, |(n, _)| n + 1);
        if let Some(b) = orig {
            atomic_write(&self.dir.join(format!("{n:04}.orig")), b, 0o600, None)?;
        }
        let json = serde_json::to_string_pretty(&entry)? + "\n";
        atomic_write(
            &self.dir.join(format!("{n:04}.json")),
            json.as_bytes(),
            0o600,
            None,
        )?;
        self.entries.push((n, entry));
        Ok(())
    }

    fn orig(&self, n: usize) -> PathBuf {
        self.dir.join(format!("{n:04}.orig"))
    }

    fn ours(&self, n: usize) -> PathBuf {
        self.dir.join(format!("{n:04}.ours"))
    }

    /// Saves what gvtg is about to write to `path` (called before the rename, so after a crash
    /// the file holds either the original or exactly this).
    fn record_ours(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let Some((n, _)) = self.entries.iter().find(|(_, e)| e.path == path) else {
            bail!("internal: {path} has no journal entry");
        };
        atomic_write(&self.ours(*n), bytes, 0o600, None)
    }

    /// Journaled files whose current content is neither what gvtg wrote nor the original:
    /// someone edited them after `gvtg fix`.
    pub fn edited_since(&self, root: &HostRoot) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, e)| e.kind == "file")
            .filter_map(|(n, e)| {
                let ours = fs::read(self.ours(*n)).ok()?;
                let now = fs::read(root.path(e.path.trim_start_matches('/'))).ok();
                let orig = if e.existed {
                    fs::read(self.orig(*n)).ok()
                } else {
                    None
                };
                let untouched = now.as_deref() == Some(ours.as_slice()) || now == orig;
                (!untouched).then(|| e.path.clone())
            })
            .collect()
    }
}

/// What one run changed, to roll back on failure.
enum Done {
    File {
        path: PathBuf,
        before: Option<(Vec<u8>, u32, u32, u32)>,
    },
    Dir(PathBuf),
}

fn rollback(done: &[Done]) -> Vec<String> {
    let mut errs = Vec::new();
    for d in done.iter().rev() {
        let r = match d {
            Done::File {
                path,
                before: Some((b, mode, uid, gid)),
            } => atomic_write(path, b, *mode, Some((*uid, *gid))),
            Done::File { path, before: None } => fs::remove_file(path)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .with_context(|| format!("removing {}", path.display())),
            Done::Dir(p) => fs::remove_dir(p).with_context(|| format!("removing {}", p.display())),
        };
        if let Err(e) = r {
            errs.push(format!("{e:#}"));
        }
    }
    errs
}

/// Creates the missing parent directories of `rel`, journaling each one.
fn make_parents(root: &HostRoot, rel: &str, j: &mut Journal, done: &mut Vec<Done>) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = Path::new(rel).parent();
    while let Some(p) = cur {
        if p.as_os_str().is_empty() {
            break;
        }
        let s = p.to_string_lossy().into_owned();
        if root.path(&s).exists() {
            break;
        }
        missing.push(s);
        cur = p.parent();
    }
    for d in missing.into_iter().rev() {
        let shown = HostRoot::display(&d);
        if !j.has(&shown) {
            j.record(
                Entry {
                    path: shown,
                    kind: "dir".into(),
                    existed: false,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
                None,
            )?;
        }
        let p = root.path(&d);
        fs::create_dir(&p).with_context(|| format!("creating {}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
        done.push(Done::Dir(p));
    }
    Ok(())
}

/// Refuses a target that is a symlink (renaming over it would replace the link, not the file it
/// points to) or whose existing directory resolves outside a captured tree.
pub fn check_target(root: &HostRoot, path: &Path, shown: &str) -> Result<()> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!("{shown} is a symbolic link; edit the file it points to by hand");
    }
    if !root.is_live() {
        let base = root.base().canonicalize()?;
        let mut dir = path.parent();
        while let Some(d) = dir {
            if let Ok(c) = d.canonicalize() {
                if !c.starts_with(&base) {
                    bail!(
                        "{shown} resolves outside the captured tree ({})",
                        c.display()
                    );
                }
                break;
            }
            dir = d.parent();
        }
    }
    Ok(())
}

/// Result of applying.
#[derive(Debug, Default)]
pub struct Applied {
    /// Files changed (shown paths).
    pub changed: Vec<String>,
}

/// Writes the plan's files. Commands are the caller's (they run only on a live root).
pub fn apply(root: &HostRoot, plan: &Plan) -> Result<Applied> {
    let _lock = lock(root)?;
    let mut j = Journal::open(root)?;
    let mut done: Vec<Done> = Vec::new();
    let mut applied = Applied::default();
    let r = (|| -> Result<()> {
        for f in &plan.files {
            let path = root.path(&f.rel);
            let shown = HostRoot::display(&f.rel);
            check_target(root, &path, &shown)?;
            // Re-read under the lock: the plan must still describe the file.
            let now = match fs::read(&path) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("reading {shown}")),
            };
            if now.as_deref() != f.before.as_deref().map(str::as_bytes) {
                bail!("{shown} changed since the plan was made; run gvtg fix again");
            }
            let meta = fs::metadata(&path).ok();
            let (mode, uid, gid) = meta
                .as_ref()
                .map_or((0o644, 0, 0), |m| (m.mode() & 0o7777, m.uid(), m.gid()));
            failpoint("before-backup")?;
            if now.is_none() {
                make_parents(root, &f.rel, &mut j, &mut done)?;
            }
            if !j.has(&shown) {
                j.record(
                    Entry {
                        path: shown.clone(),
                        kind: "file".into(),
                        existed: now.is_some(),
                        mode,
                        uid,
                        gid,
                    },
                    now.as_deref(),
                )?;
            }
            failpoint("after-backup")?;
            // A new file is ours (root's on a host); an existing one keeps its owner.
            let owner = meta.is_some().then_some((uid, gid));
            done.push(Done::File {
                path: path.clone(),
                before: now.map(|b| (b, mode, uid, gid)),
            });
            j.record_ours(&shown, f.after.as_bytes())?;
            atomic_write(&path, f.after.as_bytes(), mode, owner)?;
            failpoint("after-rename")?;
            applied.changed.push(shown);
        }
        Ok(())
    })();
    if let Err(e) = r {
        let errs = rollback(&done);
        if errs.is_empty() {
            bail!(
                "{e:#}\nrolled back: {} change(s) undone; the files are as they were before this run",
                done.len()
            );
        }
        bail!(
            "{e:#}\nrollback failed too: {}\nrun `gvtg fix --undo` to restore the originals from {}",
            errs.join("; "),
            HostRoot::display(JOURNAL)
        );
    }
    Ok(applied)
}

/// Restores every journaled original, newest first, then clears the journal. Returns the
/// restored paths. Refuses, changing nothing, when a file was edited by hand after gvtg wrote it,
/// unless `force`.
pub fn undo(root: &HostRoot, force: bool) -> Result<Vec<String>> {
    let _lock = lock(root)?;
    let j = Journal::open(root)?;
    let edited = j.edited_since(root);
    if !edited.is_empty() && !force {
        bail!(
            "refusing to undo: {} changed since gvtg fix wrote {}; restoring the original{} would lose those edits. Compare with the originals in {}, then run `gvtg fix --undo --force` to restore anyway.",
            edited.join(", "),
            if edited.len() == 1 { "it" } else { "them" },
            if edited.len() == 1 { "" } else { "s" },
            HostRoot::display(JOURNAL)
        );
    }
    let mut restored = Vec::new();
    for (n, e) in j.entries.iter().rev() {
        let rel = e.path.trim_start_matches('/');
        let p = root.path(rel);
        // Leftovers of an interrupted write.
        if let Some(d) = p.parent() {
            if let Ok(rd) = fs::read_dir(d) {
                for x in rd.flatten() {
                    if x.file_name().to_string_lossy().starts_with(".gvtg-tmp-") {
                        let _ = fs::remove_file(x.path());
                    }
                }
            }
        }
        match (e.kind.as_str(), e.existed) {
            ("dir", _) => match fs::remove_dir(&p) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("removing directory {}", e.path))
                }
            },
            (_, true) => {
                let b = fs::read(j.orig(*n))
                    .with_context(|| format!("reading the saved original of {}", e.path))?;
                atomic_write(&p, &b, e.mode, Some((e.uid, e.gid)))?;
            }
            (_, false) => match fs::remove_file(&p) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).with_context(|| format!("removing {}", e.path)),
            },
        }
        restored.push(e.path.clone());
    }
    // Clear: commit marks first, so a crash here leaves nothing half-described.
    for (n, _) in &j.entries {
        let _ = fs::remove_file(j.dir.join(format!("{n:04}.json")));
    }
    if j.dir.is_dir() {
        fs::remove_dir_all(&j.dir).with_context(|| format!("clearing {}", j.dir.display()))?;
    }
    Ok(restored)
}
