//! The GVT-g doctor reads less of the host (`Scope::GVT`: no IOMMU group members, only the
//! GVT-g parent's mdev type attributes, PCI details of display functions only, an mdev's IOMMU
//! group only) than every other command (`Scope::ALL`). Its verdicts must not depend on that:
//! every check's outcome, the kernel log the checks see and the fix plan are the same under
//! both scopes, on every fixture host and on a generated tree with many mdev parents, mdevs,
//! IOMMU groups and a kernel log larger than the piece it is read in.

#[path = "../benches/common/large_tree.rs"]
#[allow(dead_code)]
mod large_tree;

use std::path::{Path, PathBuf};

use gvtg::checks::{self, Selection};
use gvtg::host::snapshot::Scope;
use gvtg::host::{HostRoot, Snapshot};

fn same_verdicts(root: &Path) {
    let host = HostRoot::at(root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let gvt = Snapshot::collect_scoped(&host, Scope::GVT);
    let all = Snapshot::collect(&host);
    let outcomes = |s: &Snapshot| -> Vec<(&'static str, checks::Outcome)> {
        checks::run(s, &Selection::default())
            .into_iter()
            .map(|(c, o)| (c.id, o))
            .collect()
    };
    let (a, b) = (outcomes(&gvt), outcomes(&all));
    assert!(!a.is_empty());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x,
            y,
            "{}: check {} differs between scopes",
            root.display(),
            x.0
        );
    }
    assert_eq!(a.len(), b.len());
    assert_eq!(gvt.kernel_log, all.kernel_log, "{}", root.display());
    let plan = |s: &Snapshot| format!("{:?}", gvtg::fix::plan(&host, s).map_err(|e| e.to_string()));
    assert_eq!(plan(&gvt), plan(&all), "{}: fix plan", root.display());
}

#[test]
fn fixture_verdicts_do_not_depend_on_the_scope() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut roots: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/")
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('_'))
        .map(|e| e.path().join("root"))
        .filter(|p| p.is_dir())
        .collect();
    roots.sort();
    assert!(roots.len() >= 15, "{roots:?}");
    for r in &roots {
        same_verdicts(r);
    }
}

#[test]
fn large_tree_verdicts_do_not_depend_on_the_scope() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t");
    let spec = large_tree::Spec {
        groups: 24,
        parents: 6,
        types: 4,
        mdevs: 90,
        // More than the 256 KiB piece the kernel log is read in.
        kmsg_bytes: 700 << 10,
        modules: 300,
        seed: 11,
    };
    large_tree::generate(&large_tree::default_base(), &out, &spec).expect("generate");
    same_verdicts(&out);
    // The log read in pieces counts every record the full parser finds.
    let host = HostRoot::at(&out).unwrap();
    let snap = Snapshot::collect_scoped(&host, Scope::GVT);
    let log = snap.kernel_log.ok().expect("kernel log");
    let bytes = std::fs::read(out.join("dev/kmsg")).unwrap();
    let full = gvtg::parse::kmsg::parse(&bytes);
    assert!(full.len() > 5000, "{}", full.len());
    assert_eq!(log.total, full.len());
    // Every record holding a term is kept.
    let terms = checks::log_terms();
    let holding: Vec<_> = full
        .iter()
        .filter(|r| terms.iter().any(|t| r.text.contains(t)))
        .collect();
    assert!(!holding.is_empty());
    for r in holding {
        assert!(log.records.contains(r), "{r:?} not kept");
    }
    // And the scoped snapshot did skip what the scope says.
    assert!(snap
        .iommu_groups
        .ok()
        .is_some_and(|g| !g.is_empty() && g.iter().all(|g| g.devices.is_none())));
    assert!(snap
        .mdev_parents
        .ok()
        .is_some_and(|p| p.iter().filter(|p| p.attributes).count() == 1));
}
