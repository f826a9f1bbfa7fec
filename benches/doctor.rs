//! Doctor cost: snapshot + all checks on each fixture host, and the same on the live host.
//! `cargo bench --bench doctor`; figures recorded in BENCHMARKS.md.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use gvtg::checks::{self, Selection};
use gvtg::host::{HostRoot, Snapshot};

fn doctor(root: &HostRoot) -> usize {
    let snap = Snapshot::collect(root);
    checks::run(&snap, &Selection::default()).len()
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('_') && dir.join(n).join("root").is_dir())
        .collect();
    names.sort();
    let mut g = c.benchmark_group("doctor-fixture");
    for n in &names {
        let root = HostRoot::at(&dir.join(n).join("root")).expect("fixture root");
        g.bench_function(n, |b| b.iter(|| doctor(&root)));
    }
    g.finish();
    c.bench_function("doctor-live", |b| b.iter(|| doctor(&HostRoot::live())));
}

criterion_group!(benches, bench);
criterion_main!(benches);
