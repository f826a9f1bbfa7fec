//! Test support: build a small host tree in a temp dir and snapshot it, and read the real-world
//! samples under `testdata/real-world` (each file's first line names its source and is dropped).

use std::path::Path;

use crate::host::{HostRoot, Snapshot};

/// A host tree under construction.
pub struct Tree {
    dir: tempfile::TempDir,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().expect("creating a temp dir"),
        }
    }

    /// Its root directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (parents created).
    pub fn file(&mut self, rel: &str, content: &str) -> &mut Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("a path with a parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
        self
    }

    /// Creates a directory.
    pub fn dir(&mut self, rel: &str) -> &mut Self {
        std::fs::create_dir_all(self.dir.path().join(rel)).expect("mkdir");
        self
    }

    /// Creates a symlink (parents created).
    pub fn link(&mut self, rel: &str, target: &str) -> &mut Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("a path with a parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, p).expect("symlink");
        self
    }

    /// Declares a node in the side file (`gvtg-tree.toml`): kind (`char`, `file`…), mode,
    /// owner, group and the device number of a char/block node.
    pub fn node(
        &mut self,
        rel: &str,
        kind: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: Option<(u32, u32)>,
    ) -> &mut Self {
        let p = self.dir.path().join(crate::host::sidefile::SIDE_FILE);
        let mut text = std::fs::read_to_string(&p).unwrap_or_else(|_| "format = 1\n".into());
        text.push_str(&format!(
            "\n[[node]]\npath = \"{rel}\"\nkind = \"{kind}\"\nmode = \"{mode:04o}\"\nuid = {uid}\ngid = {gid}\n"
        ));
        if let Some((a, b)) = rdev {
            text.push_str(&format!("rdev = \"{a}:{b}\"\n"));
        }
        std::fs::write(p, text).expect("write side file");
        self
    }

    /// A PCI function: see [`pci_function`].
    pub fn pci_function(
        &mut self,
        addr: &str,
        id: (u16, u16),
        class: u32,
        driver: Option<&str>,
        group: u32,
    ) -> &mut Self {
        pci_function(self.dir.path(), addr, id, class, driver, group);
        self
    }

    /// Snapshot of the tree.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::collect(&HostRoot::at(self.dir.path()).expect("tree root"))
    }
}

/// Builds a tree with `f` and snapshots it.
pub fn snapshot_with(f: impl FnOnce(&mut Tree)) -> Snapshot {
    let mut t = Tree::new();
    f(&mut t);
    t.snapshot()
}

/// A real-world sample without its source line.
pub fn sample(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/real-world")
        .join(rel);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    match text.split_once('\n') {
        Some((_, rest)) => rest.to_string(),
        None => String::new(),
    }
}

/// Writes a PCI function under `root` as sysfs shows it: `vendor`, `device`, `class`, the
/// `driver` link when bound, the `iommu_group` link and the group's `devices/` entry (links
/// resolve inside the tree: `sys/bus/pci/drivers/D`, `sys/kernel/iommu_groups/N`).
pub fn pci_function(
    root: &Path,
    addr: &str,
    id: (u16, u16),
    class: u32,
    driver: Option<&str>,
    group: u32,
) {
    let put = |rel: &str, content: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("a path with a parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    };
    let link = |rel: &str, target: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("a path with a parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, p).expect("symlink");
    };
    let b = format!("sys/bus/pci/devices/{addr}");
    put(&format!("{b}/vendor"), &format!("0x{:04x}\n", id.0));
    put(&format!("{b}/device"), &format!("0x{:04x}\n", id.1));
    put(&format!("{b}/class"), &format!("0x{class:06x}\n"));
    if let Some(d) = driver {
        link(&format!("{b}/driver"), &format!("../../drivers/{d}"));
    }
    link(
        &format!("{b}/iommu_group"),
        &format!("../../../../kernel/iommu_groups/{group}"),
    );
    put(
        &format!("sys/kernel/iommu_groups/{group}/devices/{addr}"),
        "",
    );
}
