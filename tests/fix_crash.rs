//! Crash test: `gvtg fix --yes --root TMP` is SIGKILLed at many points (random delays, and while
//! it sleeps at named steps via `GVTG_FAILPOINT`). After each kill every file is wholly old or
//! wholly new, a new run completes to the same result, and `--undo` restores the original tree
//! byte for byte.
//!
//! `GVTG_KILL_RUNS=N` sets the number of runs (default 300), `GVTG_KILL_TMPDIR=DIR` where the
//! trees live (default: the system temp dir); `scripts/killtest` runs thousands on tmpfs and
//! prints the figures.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{assert_same, copy_fixture, gvtg, text, tree};

type Tree = BTreeMap<String, (u32, Vec<u8>)>;

/// The kbl host with kvmgt neither loaded nor configured, so the fix edits three files and
/// creates two (one in a new directory).
fn prepare(dir: &Path) {
    fs::remove_file(dir.join("etc/modules-load.d/gvt.conf")).unwrap();
    let m: String = fs::read_to_string(dir.join("proc/modules"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("kvmgt "))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(dir.join("proc/modules"), m).unwrap();
}

fn without_tmp(t: Tree) -> Tree {
    t.into_iter()
        .filter(|(k, _)| !k.contains(".gvtg-tmp-"))
        .collect()
}

/// Small deterministic PRNG (xorshift), so a failure replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The files that are neither wholly old nor wholly new (each named once).
fn corrupted(now: &Tree, old: &Tree, new: &Tree) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> =
        old.keys().chain(new.keys()).chain(now.keys()).collect();
    keys.into_iter()
        .filter(|k| {
            let (o, n, c) = (old.get(*k), new.get(*k), now.get(*k));
            c != o && c != n
        })
        .cloned()
        .collect()
}

fn runs_wanted() -> usize {
    std::env::var("GVTG_KILL_RUNS")
        .ok()
        .map(|v| v.parse().expect("GVTG_KILL_RUNS is a number"))
        .unwrap_or(300)
}

fn scratch() -> tempfile::TempDir {
    match std::env::var_os("GVTG_KILL_TMPDIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

#[test]
fn sigkill_at_any_point_leaves_old_or_new_and_undo_restores() {
    let pristine = copy_fixture("kbl-acl-replaced-modprobe-mistake");
    prepare(pristine.path());
    let old = tree(pristine.path());
    // The known new version: one complete run.
    let full = tempfile::tempdir().unwrap();
    cp(pristine.path(), full.path());
    let t0 = std::time::Instant::now();
    let o = gvtg(full.path(), &["fix", "--yes"]);
    // Kill points spread over the whole run (at least 0-20 ms).
    let span_us = (t0.elapsed().as_micros() as u64 * 6 / 5).max(20_000);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let new = tree(full.path());
    assert_ne!(old, new);
    assert!(new.contains_key("etc/initramfs-tools/"), "a new directory");
    assert!(new.contains_key("etc/modules-load.d/gvtg.conf"));

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let steps = [
        "before-backup",
        "after-backup",
        "after-temp-write",
        "after-rename",
    ];
    let (mut killed, mut finished, mut iterations) = (0, 0, 0);
    let (mut saw_old, mut saw_mixed, mut saw_new) = (0, 0, 0);
    let runs = runs_wanted();
    let n_random = runs * 11 / 15;
    let n_failpoint = runs - n_random;
    let mut bad_files: Vec<String> = Vec::new();
    for i in 0..(n_random + n_failpoint) {
        iterations += 1;
        let d = scratch();
        cp(pristine.path(), d.path());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gvtg"));
        cmd.args(["fix", "--yes", "--root"])
            .arg(d.path())
            .env_remove("GVTG_ROOT")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let delay_us = if i < n_random {
            cmd.env_remove("GVTG_FAILPOINT");
            rng.next() % span_us
        } else {
            let step = steps[i % steps.len()];
            cmd.env("GVTG_FAILPOINT", format!("{step}:sleep=4"));
            rng.next() % (span_us * 2)
        };
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_micros(delay_us));
        match child.try_wait().unwrap() {
            Some(_) => finished += 1,
            None => {
                child.kill().unwrap();
                killed += 1;
            }
        }
        child.wait().unwrap();
        let ctx = format!("iteration {i} (delay {delay_us} us)");
        let now = without_tmp(tree(d.path()));
        let bad = corrupted(&now, &old, &new);
        if !bad.is_empty() {
            bad_files.extend(bad.iter().map(|k| format!("{ctx}: {k}")));
            continue;
        }
        if now == old {
            saw_old += 1;
        } else if now == new {
            saw_new += 1;
        } else {
            saw_mixed += 1;
        }
        if i % 3 == 0 {
            // A later run completes the job.
            let o = gvtg(d.path(), &["fix", "--yes"]);
            assert_eq!(o.status.code(), Some(0), "{ctx}: {}", text(&o));
            assert_same(&without_tmp(tree(d.path())), &new, &format!("{ctx}: rerun"));
        }
        let u = gvtg(d.path(), &["fix", "--undo"]);
        assert_eq!(u.status.code(), Some(0), "{ctx}: {}", text(&u));
        assert_same(&tree(d.path()), &old, &format!("{ctx}: undo"));
    }
    eprintln!("crash test: {iterations} runs (span {span_us} us), {killed} killed mid-run, {finished} finished before the kill; trees after the kill: {saw_old} untouched, {saw_mixed} part-applied (each file old or new), {saw_new} fully applied; corrupted files: {}", bad_files.len());
    assert!(
        bad_files.is_empty(),
        "files neither wholly old nor wholly new:\n{}",
        bad_files.join("\n")
    );
    assert!(saw_mixed > 0, "no kill landed between two file writes");
    assert!(
        killed >= runs / 3,
        "only {killed} of {runs} runs were killed mid-run"
    );
}

fn cp(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .args([
            "-a",
            &format!("{}/.", from.display()),
            &to.to_string_lossy(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
}
