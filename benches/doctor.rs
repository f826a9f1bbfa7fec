//! Doctor cost: snapshot + all checks on each fixture host, on the live host, and on the large
//! synthetic tree (docs/large-tree.md) at scales 1, 2 and 4 to show that the cost grows
//! linearly with the tree; `modinfo` on Debian's i915.ko; report creation on a fixture.
//! `cargo bench --bench doctor`; figures recorded in BENCHMARKS.md by `scripts/bench`.

#[path = "common/large_tree.rs"]
mod large_tree;

use std::path::{Path, PathBuf};

use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion};
use gvtg::checks::{self, Selection};
use gvtg::host::snapshot::Scope;
use gvtg::host::{HostRoot, Snapshot};

fn doctor(root: &HostRoot) -> usize {
    let snap = Snapshot::collect_scoped(root, Scope::GVT);
    checks::run(&snap, &Selection::default()).len()
}

fn fixtures() -> (PathBuf, Vec<String>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('_') && dir.join(n).join("root").is_dir())
        .collect();
    names.sort();
    (dir, names)
}

fn bench_fixtures(c: &mut Criterion) {
    let (dir, names) = fixtures();
    let mut g = c.benchmark_group("doctor-fixture");
    for n in &names {
        let root = HostRoot::at(&dir.join(n).join("root")).expect("fixture root");
        g.bench_function(n, |b| b.iter(|| doctor(&root)));
    }
    g.finish();
    c.bench_function("doctor-live", |b| b.iter(|| doctor(&HostRoot::live())));
}

fn bench_large(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("doctor-large");
    g.sample_size(10);
    for k in [1, 2, 4] {
        let out = tmp.path().join(format!("x{k}"));
        let spec = large_tree::Spec::ISSUE6.scaled(k);
        large_tree::generate(&large_tree::default_base(), &out, &spec)
            .unwrap_or_else(|e| panic!("generating the large tree ×{k}: {e}"));
        let root = HostRoot::at(&out).expect("large tree root");
        g.bench_function(format!("scale-{k}"), |b| b.iter(|| doctor(&root)));
    }
    g.finish();
}

/// Debian's i915.ko of the first installed release that has it.
fn i915() -> (String, PathBuf) {
    let mut rels: Vec<String> = std::fs::read_dir("/lib/modules")
        .expect("/lib/modules: install linux-image-amd64")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    rels.sort();
    for r in rels {
        let p = Path::new("/lib/modules")
            .join(&r)
            .join("kernel/drivers/gpu/drm/i915/i915.ko");
        if p.is_file() {
            return (r, p);
        }
    }
    panic!(
        "no /lib/modules/*/kernel/drivers/gpu/drm/i915/i915.ko: apt-get install linux-image-amd64"
    );
}

fn bench_modinfo(c: &mut Criterion) {
    let (rel, path) = i915();
    c.bench_function("modinfo-i915-by-name", |b| {
        b.iter(|| gvtg::kmod::modinfo(Path::new("/"), &rel, "i915").expect("modinfo i915"))
    });
    c.bench_function("modinfo-i915-file", |b| {
        b.iter(|| gvtg::kmod::modinfo_file(&path).expect("modinfo i915.ko"))
    });
}

fn bench_report(c: &mut Criterion) {
    let (dir, _) = fixtures();
    let root = dir.join("bdw-healthy/root");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("report.tar.gz");
    c.bench_function("report-bdw-healthy", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(&out);
            let cli = gvtg::cli::Cli::try_parse_from([
                "gvtg".as_ref(),
                "report".as_ref(),
                "--root".as_ref(),
                root.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
            ])
            .expect("report arguments");
            let mut sink = Vec::new();
            gvtg::cmd::dispatch(cli, &mut sink).expect("report")
        })
    });
}

criterion_group!(
    benches,
    bench_fixtures,
    bench_large,
    bench_modinfo,
    bench_report
);
criterion_main!(benches);
