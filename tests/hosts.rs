//! Fixture hosts: every folder under `fixtures/` (except `_*`) is a captured host with
//! `root/` (the tree) and `expected/` (the doctor's text and JSON output). One loop drives them
//! all, so a new fixture needs no code. `GVTG_BLESS=1 cargo test --test hosts` rewrites the
//! expected files; review the diff before committing.
//!
//! A host may hold an `args` file with extra doctor arguments (`--passthrough 0000:01:00.0`);
//! it then expects the passthrough checks after the 14 GVT-g checks.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How many checks `--passthrough PCI` adds (the passthrough catalog).
const PASSTHROUGH_CHECKS: usize = 9;

fn gvtg(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gvtg"))
        .arg("--root")
        .arg(root)
        .arg("--color")
        .arg("never")
        .args(args)
        .env_remove("GVTG_ROOT")
        .env_remove("NO_COLOR")
        .output()
        .expect("running gvtg");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('_'))
        .collect();
    v.sort();
    v
}

/// Compares or (with GVTG_BLESS=1) rewrites one expected file; returns a diff description.
fn compare(path: &Path, got: &str) -> Option<String> {
    if std::env::var_os("GVTG_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, got).unwrap();
        return None;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run GVTG_BLESS=1 cargo test --test hosts",
            path.display()
        )
    });
    if want == got {
        return None;
    }
    let first = want
        .lines()
        .zip(got.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| format!("line {}:\n  expected: {a}\n  got:      {b}", i + 1))
        .unwrap_or_else(|| {
            format!(
                "lengths differ: expected {} lines, got {}",
                want.lines().count(),
                got.lines().count()
            )
        });
    Some(format!("{}: {first}", path.display()))
}

#[test]
fn every_fixture_host_matches_its_expected_output() {
    let all = fixtures();
    assert!(
        all.len() >= 13,
        "expected at least 13 fixture hosts, found {}",
        all.len()
    );
    let mut failures = Vec::new();
    for f in &all {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let root = f.join("root");
        assert!(root.is_dir(), "{name}: no root/ directory");
        assert!(
            f.join("README.md").is_file(),
            "{name}: no README.md naming its sources"
        );
        let extra: Vec<String> = std::fs::read_to_string(f.join("args"))
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let want_checks = 14
            + if extra.contains(&"--passthrough") {
                PASSTHROUGH_CHECKS
            } else {
                0
            };
        let (code_t, text, err_t) = gvtg(&root, &[&["doctor", "-v"], &extra[..]].concat());
        let (code_j, json, err_j) = gvtg(&root, &[&["doctor", "--json"], &extra[..]].concat());
        assert!(
            err_t.is_empty() && err_j.is_empty(),
            "{name}: stderr: {err_t}{err_j}"
        );
        assert!(
            code_t == code_j && (code_t == 0 || code_t == 1),
            "{name}: exit codes {code_t}/{code_j}"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: bad JSON: {e}"));
        assert_eq!(
            doc["summary"]["exit_code"], code_j,
            "{name}: JSON exit_code disagrees with the process"
        );
        assert_eq!(
            doc["checks"].as_array().map(|a| a.len()),
            Some(want_checks),
            "{name}: not {want_checks} checks"
        );
        let ids: Vec<&str> = doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert!(
            ids[14..].iter().all(|i| i.starts_with("passthrough.")),
            "{name}: passthrough checks must follow the 14 GVT-g checks: {ids:?}"
        );
        for (file, got) in [("doctor.txt", &text), ("doctor.json", &json)] {
            if let Some(d) = compare(&f.join("expected").join(file), got) {
                failures.push(d);
            }
        }
        // The fixture's README states the verdicts it exists for: `expect: ID STATUS` lines.
        let readme = std::fs::read_to_string(f.join("README.md")).unwrap();
        for line in readme
            .lines()
            .filter_map(|l| l.trim().strip_prefix("expect:"))
        {
            let mut it = line.split_whitespace();
            let (id, status) = (it.next().unwrap(), it.next().unwrap());
            let got = doc["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
                .map(|c| c["status"].as_str().unwrap().to_string());
            if got.as_deref() != Some(status) {
                failures.push(format!("{name}: README expects {id} {status}, got {got:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
