//! The captured tree's side file, `gvtg-tree.toml`: what a directory tree in git or tar cannot
//! carry portably. Format documented in `docs/captured-tree.md` (format 1).
//!
//! ```toml
//! format = 1
//! captured_euid = 0            # uid the capture ran as; 0 = root (default)
//! kernel_log = "dev/kmsg"      # file holding /dev/kmsg records or dmesg text
//!
//! [[node]]                     # a device node (the tree may hold an empty file or nothing)
//! path = "dev/kvm"
//! kind = "char"                # char | block | dir | file | fifo | socket
//! mode = "0660"                # octal permission bits
//! uid = 0
//! gid = 108
//! rdev = "10:232"
//!
//! [[link]]                     # a symlink whose target was not captured
//! path = "sys/bus/pci/devices/0000:00:02.0/driver"
//! target = "../../../bus/pci/drivers/i915"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::root::NodeInfo;

/// File name of the side file at the top of a captured tree.
pub const SIDE_FILE: &str = "gvtg-tree.toml";

/// Current format version; readers refuse a newer one.
pub const FORMAT: u32 = 1;

/// What kind of filesystem node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// Directory.
    Dir,
    /// Regular file.
    File,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    path: String,
    kind: NodeKind,
    mode: String,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
    #[serde(default)]
    rdev: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    path: String,
    target: String,
}

#[derive(Debug, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    format: u32,
    #[serde(default)]
    captured_euid: Option<u32>,
    #[serde(default)]
    kernel_log: Option<String>,
    #[serde(default)]
    node: Vec<RawNode>,
    #[serde(default)]
    link: Vec<RawLink>,
}

/// The parsed side file.
#[derive(Debug, Clone, Default)]
pub struct SideFile {
    /// uid the capture ran as (None = not recorded, treated as root).
    pub captured_euid: Option<u32>,
    /// Root-relative path of the kernel log file.
    pub kernel_log: Option<String>,
    nodes: BTreeMap<String, NodeInfo>,
    links: BTreeMap<String, String>,
}

impl SideFile {
    /// Parses the side file text; errors name the entry.
    pub fn parse(text: &str) -> anyhow::Result<SideFile> {
        let raw: Raw = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        if raw.format == 0 || raw.format > FORMAT {
            anyhow::bail!(
                "side file format {} is not supported (this gvtg reads format {FORMAT})",
                raw.format
            );
        }
        let mut nodes = BTreeMap::new();
        for n in raw.node {
            let path = clean_rel(&n.path)?;
            let mode = u32::from_str_radix(n.mode.trim_start_matches("0o"), 8)
                .map_err(|_| anyhow::anyhow!("node {path}: mode {:?} is not octal", n.mode))?;
            if mode > 0o7777 {
                anyhow::bail!("node {path}: mode {:?} is out of range", n.mode);
            }
            let rdev = match &n.rdev {
                None => None,
                Some(s) => {
                    let (a, b) = s.split_once(':').ok_or_else(|| {
                        anyhow::anyhow!("node {path}: rdev {s:?} is not MAJOR:MINOR")
                    })?;
                    let parse = |x: &str| {
                        x.trim().parse::<u32>().map_err(|_| {
                            anyhow::anyhow!("node {path}: rdev {s:?} is not MAJOR:MINOR")
                        })
                    };
                    Some((parse(a)?, parse(b)?))
                }
            };
            nodes.insert(
                path,
                NodeInfo {
                    kind: n.kind,
                    mode,
                    uid: n.uid,
                    gid: n.gid,
                    rdev,
                },
            );
        }
        let mut links = BTreeMap::new();
        for l in raw.link {
            links.insert(clean_rel(&l.path)?, l.target);
        }
        let kernel_log = raw.kernel_log.map(|k| clean_rel(&k)).transpose()?;
        Ok(SideFile {
            captured_euid: raw.captured_euid,
            kernel_log,
            nodes,
            links,
        })
    }

    /// The recorded node at a root-relative path.
    pub fn node(&self, rel: &str) -> Option<&NodeInfo> {
        self.nodes.get(rel)
    }

    /// Recorded nodes whose path starts with `prefix`.
    pub fn nodes_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a NodeInfo)> + 'a {
        self.nodes
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Names directly under directory `dir` implied by recorded nodes and links (a node at
    /// `a/b/c` implies entry `b` under `a`). Lets a tree declare empty directories, which git
    /// cannot hold, and links whose parent directory holds nothing else.
    pub fn children(&self, dir: &str) -> Vec<String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: Vec<String> = self
            .nodes
            .keys()
            .chain(self.links.keys())
            .filter_map(|k| k.strip_prefix(prefix.as_str()))
            .filter_map(|rest| rest.split('/').next())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether the side file declares `rel` a directory, or implies it by entries below it.
    pub fn is_dir(&self, rel: &str) -> bool {
        self.nodes.get(rel).is_some_and(|n| n.kind == NodeKind::Dir)
            || !self.children(rel).is_empty()
    }

    /// The recorded link target at a root-relative path.
    pub fn link(&self, rel: &str) -> Option<&str> {
        self.links.get(rel).map(String::as_str)
    }
}

/// Side-file paths are root-relative and may not climb out of the tree.
fn clean_rel(p: &str) -> anyhow::Result<String> {
    let p = p.trim_start_matches('/');
    if p.is_empty() || p.split('/').any(|c| c == "..") {
        anyhow::bail!("path {p:?} must be relative to the tree and must not contain '..'");
    }
    Ok(p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_newer_format_and_escapes() {
        assert!(SideFile::parse("format = 2").is_err());
        assert!(SideFile::parse("format = 1\nkernel_log = \"../x\"").is_err());
        assert!(
            SideFile::parse("format = 1\n[[node]]\npath=\"dev/x\"\nkind=\"char\"\nmode=\"9\"")
                .is_err()
        );
        assert!(SideFile::parse("format = 1\nbogus = 3").is_err());
        assert!(SideFile::parse("garbage [[[").is_err());
        let s = SideFile::parse("format = 1\ncaptured_euid = 1000").unwrap();
        assert_eq!(s.captured_euid, Some(1000));
    }
}
