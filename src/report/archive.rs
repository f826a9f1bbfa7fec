//! Writing the report archive, and unpacking one safely (`gvtg doctor --from`).

use std::cell::Cell;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use anyhow::{bail, Context, Result};

/// Total uncompressed size an archive may unpack to.
pub const MAX_TOTAL: u64 = 256 * 1024 * 1024;
/// Largest single member (the host reader refuses files over 16 MiB anyway).
pub const MAX_FILE: u64 = 32 * 1024 * 1024;
/// Largest uncompressed:compressed ratio accepted once past `RATIO_FLOOR` (8 MiB).
pub const MAX_RATIO: u64 = 200;
const RATIO_FLOOR: u64 = 8 * 1024 * 1024;
/// Most members an archive may hold.
pub const MAX_ENTRIES: usize = 200_000;

/// Packs directory `top_dir` (its name becomes the archive's top directory) into a gzip'd tar
/// at `out`: regular files and directories only, owner 0:0, fixed modes, entries sorted, every
/// mtime `mtime`.
pub fn pack(top_dir: &Path, out: &Path, mtime: u64) -> Result<()> {
    let f = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let name = top_dir
        .file_name()
        .context("report directory has no name")?
        .to_string_lossy()
        .into_owned();
    add_dir(&mut tar, top_dir, Path::new(&name), mtime)?;
    tar.into_inner()?.finish()?;
    Ok(())
}

fn add_dir<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    name: &Path,
    mtime: u64,
) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(mtime);
    tar.append_data(&mut h, name, std::io::empty())?;
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let n = name.join(e.file_name());
        let ft = e.file_type()?;
        if ft.is_dir() {
            add_dir(tar, &p, &n, mtime)?;
        } else if ft.is_file() {
            let data = std::fs::read(&p)?;
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(mtime);
            tar.append_data(&mut h, &n, &data[..])?;
        }
    }
    Ok(())
}

struct Counting<R> {
    inner: R,
    n: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n.set(self.n.get() + k as u64);
        Ok(k)
    }
}

/// A path inside the archive, as plain components (no root, no `..`, no `.` only).
fn clean(p: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => bail!("archive member {} leaves the archive", p.display()),
        }
    }
    if out.as_os_str().is_empty() {
        bail!("archive member with an empty path");
    }
    Ok(out)
}

/// Unpacks a `.tar.gz` report into `dest` (an empty directory) and returns the captured tree
/// inside it (`TOP/root`). Refuses absolute paths, `..`, hard links, links leaving the archive,
/// device nodes and FIFOs, members over [`MAX_FILE`], more than [`MAX_TOTAL`] in all, and
/// decompression ratios over [`MAX_RATIO`].
pub fn unpack(file: &Path, dest: &Path) -> Result<PathBuf> {
    // O_NONBLOCK: a FIFO given as the report must be refused, not waited on.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    if !f.metadata()?.is_file() {
        bail!("{} is not a regular file", file.display());
    }
    let compressed = Rc::new(Cell::new(0u64));
    let plain = Rc::new(Cell::new(0u64));
    let gz = flate2::read::GzDecoder::new(Counting {
        inner: f,
        n: compressed.clone(),
    });
    let mut ar = tar::Archive::new(Counting {
        inner: gz,
        n: plain.clone(),
    });
    let ctx = |m: String| format!("{}: {m}", file.display());
    let mut total = 0u64;
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut count = 0usize;
    for entry in ar
        .entries()
        .map_err(|e| anyhow::anyhow!(ctx(e.to_string())))?
    {
        let mut entry = entry.map_err(|e| anyhow::anyhow!(ctx(format!("not a tar.gz: {e}"))))?;
        count += 1;
        if count > MAX_ENTRIES {
            bail!(ctx(format!("more than {MAX_ENTRIES} members")));
        }
        let raw = entry
            .path()
            .map_err(|e| anyhow::anyhow!(ctx(e.to_string())))?;
        let rel = clean(&raw).map_err(|e| anyhow::anyhow!(ctx(e.to_string())))?;
        let size = entry.header().size()?;
        if size > MAX_FILE {
            bail!(ctx(format!(
                "member {} is larger than {} MiB",
                rel.display(),
                MAX_FILE >> 20
            )));
        }
        total += size;
        if total > MAX_TOTAL {
            bail!(ctx(format!("unpacks to more than {} MiB", MAX_TOTAL >> 20)));
        }
        let out = dest.join(&rel);
        no_symlink_on_the_way(dest, &rel).map_err(|e| anyhow::anyhow!(ctx(e.to_string())))?;
        // Links are made last, so a member below an earlier symlink member would land in a
        // real directory now and collide with (or be redirected by) the link later.
        if let Some((l, _)) = links.iter().find(|(l, _)| out.starts_with(l)) {
            bail!(ctx(format!(
                "archive member {} goes through the symlink member {}",
                rel.display(),
                l.strip_prefix(dest).unwrap_or(l).display()
            )));
        }
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&out)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(d) = out.parent() {
                    std::fs::create_dir_all(d)?;
                }
                let mut data = Vec::with_capacity(size as usize);
                (&mut entry).take(MAX_FILE + 1).read_to_end(&mut data)?;
                std::fs::write(&out, &data)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .context("symlink without a target")?
                    .into_owned();
                // The target, resolved from the link's directory, must stay in the archive.
                let mut depth: i64 = rel.components().count() as i64 - 1;
                for c in target.components() {
                    match c {
                        Component::Normal(_) => depth += 1,
                        Component::ParentDir => depth -= 1,
                        Component::CurDir => {}
                        _ => depth = -1,
                    }
                    if depth < 0 {
                        bail!(ctx(format!(
                            "symlink {} points outside the archive ({})",
                            rel.display(),
                            target.display()
                        )));
                    }
                }
                links.push((out, target));
            }
            tar::EntryType::Link => bail!(ctx(format!(
                "hard link {} is not allowed in a report",
                rel.display()
            ))),
            other => bail!(ctx(format!(
                "member {} is a {other:?}; reports hold only files and directories",
                rel.display()
            ))),
        }
        let (c, p) = (compressed.get(), plain.get());
        if p > RATIO_FLOOR && p > c.saturating_mul(MAX_RATIO) {
            bail!(ctx(format!(
                "compression ratio over {MAX_RATIO}:1 (a decompression bomb?)"
            )));
        }
    }
    // Links last, so no member was written through one.
    for (at, target) in links {
        if let Some(d) = at.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::os::unix::fs::symlink(&target, &at).map_err(|e| {
            anyhow::anyhow!(ctx(format!(
                "symlink member {}: {e}",
                at.strip_prefix(dest).unwrap_or(&at).display()
            )))
        })?;
    }
    let tops: Vec<PathBuf> = std::fs::read_dir(dest)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("root").is_dir())
        .collect();
    match tops.as_slice() {
        [one] => Ok(one.join("root")),
        [] if dest.join("root").is_dir() => Ok(dest.join("root")),
        _ => bail!(ctx(
            "expected one top directory holding root/ (a gvtg report)".to_string()
        )),
    }
}

fn no_symlink_on_the_way(dest: &Path, rel: &Path) -> Result<()> {
    let mut p = dest.to_path_buf();
    for c in rel.components() {
        p.push(c);
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!("archive member {} goes through a symlink", rel.display());
        }
    }
    Ok(())
}
