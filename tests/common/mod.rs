//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// Every path under `dir` → (mode, bytes; empty for directories), minus the lock, the
/// journal and temp-file leftovers.
pub fn tree(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if rel == "run" || rel.starts_with("run/") || rel.starts_with("var") {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            if m.is_dir() {
                out.insert(rel + "/", (mode, Vec::new()));
                walk(base, &p, out);
            } else if m.file_type().is_symlink() {
                let t = fs::read_link(&p).unwrap();
                out.insert(rel, (0, t.to_string_lossy().as_bytes().to_vec()));
            } else {
                out.insert(rel, (mode, fs::read(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = format!("{}/fixtures/{name}/root/.", env!("CARGO_MANIFEST_DIR"));
    let st = Command::new("cp")
        .args(["-a", &src, &d.path().to_string_lossy()])
        .status()
        .unwrap();
    assert!(st.success());
    d
}

/// `gvtg --root ROOT ARGS…` (the global `--root` first, so it can never be taken for a value of
/// a trailing list), without the caller's `GVTG_*` settings, colour off.
pub fn gvtg(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gvtg"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("GVTG_ROOT")
        .env_remove("GVTG_FAILPOINT")
        .env("NO_COLOR", "1")
        .output()
        .expect("running gvtg")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts two trees are equal, naming only the paths that differ.
pub fn assert_same(
    a: &BTreeMap<String, (u32, Vec<u8>)>,
    b: &BTreeMap<String, (u32, Vec<u8>)>,
    ctx: &str,
) {
    let diff: Vec<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    assert!(diff.is_empty(), "{ctx}: these paths differ: {diff:?}");
}

/// The check `id` in a doctor JSON document (fails the test when it is absent).
pub fn check<'a>(json: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    json["checks"]
        .as_array()
        .expect("checks array")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {json}"))
}
