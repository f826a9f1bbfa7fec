//! Hostile captured trees and report archives: every command that reads a tree finishes within
//! a time limit with exit 0 or 1 (never a panic or a signal), names the planted problem in the
//! check it affects, still runs every other check, and writes no raw control character to the
//! terminal. Archives that try to leave their extraction directory are refused and write
//! nothing outside it.

mod common;
use common::check;

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// No command may take longer than this on a hostile tree (a blocking read would).
const LIMIT: Duration = Duration::from_secs(10);

/// Runs gvtg with `args`, killing it and failing the test if it runs longer than [`LIMIT`].
fn run_limited(args: &[&std::ffi::OsStr], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gvtg"));
    c.args(args)
        .env_remove("GVTG_ROOT")
        .env_remove("GVTG_FAILPOINT")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("running gvtg");
    // Drain the pipes on threads so a large output cannot stall the child.
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let to = std::thread::spawn(move || {
        let mut b = Vec::new();
        so.read_to_end(&mut b).map(|_| b)
    });
    let te = std::thread::spawn(move || {
        let mut b = Vec::new();
        se.read_to_end(&mut b).map(|_| b)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for gvtg") {
            break st;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gvtg {args:?} blocked for more than {} s", LIMIT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: to.join().expect("stdout thread").expect("stdout"),
        stderr: te.join().expect("stderr thread").expect("stderr"),
    }
}

fn args(v: &[&str], root: &Path) -> Vec<std::ffi::OsString> {
    let mut a: Vec<std::ffi::OsString> = v.iter().map(Into::into).collect();
    a.push("--root".into());
    a.push(root.into());
    a
}

fn gvtg_root(v: &[&str], root: &Path) -> Output {
    let a = args(v, root);
    let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
    run_limited(&refs, &[])
}

/// Exit 0 or 1: a verdict, not a crash (101), a usage error (2) or a signal.
fn assert_verdict_exit(o: &Output, what: &str) {
    assert!(
        o.status.signal().is_none(),
        "{what}: killed by signal {:?}\n{}",
        o.status.signal(),
        common::text(o)
    );
    let code = o.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "{what}: exit {code:?}\n{}",
        common::text(o)
    );
    assert!(
        !common::text(o).contains("panicked"),
        "{what}: {}",
        common::text(o)
    );
}

/// No byte of a terminal control sequence (ESC, BEL, CSI, CR) reaches the output.
fn assert_no_raw_controls(o: &Output, what: &str) {
    for (name, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let bad: Vec<char> = text
            .chars()
            .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
            .collect();
        assert!(
            bad.is_empty(),
            "{what}: raw control characters {bad:?} in {name}:\n{text}"
        );
    }
}

/// Every path under `dir` (names only: the tree holds a 1 GiB file and device nodes).
fn paths(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}

const PARENT: &str = "sys/class/mdev_bus/0000:00:02.0/mdev_supported_types";

/// Makes a character device (or, when not permitted, says so and uses a FIFO, which the tree
/// reader refuses the same way). Returns what was made.
fn device_or_fifo(p: &Path, block: bool) -> &'static str {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let _ = std::fs::remove_file(p);
    let kind = if block {
        SFlag::S_IFBLK
    } else {
        SFlag::S_IFCHR
    };
    // 1:3 is /dev/null, 7:0 is /dev/loop0: reading either through the tree would not block,
    // but must not happen at all.
    let dev = if block { makedev(7, 0) } else { makedev(1, 3) };
    match mknod(p, kind, Mode::from_bits_truncate(0o644), dev) {
        Ok(()) => {
            if block {
                "block device"
            } else {
                "char device"
            }
        }
        Err(e) => {
            eprintln!(
                "mknod {} not permitted ({e}): planting a FIFO instead",
                p.display()
            );
            nix::unistd::mkfifo(p, Mode::from_bits_truncate(0o644)).expect("mkfifo");
            "fifo"
        }
    }
}

/// A copy of a healthy fixture host with every kind of hostile entry planted.
struct Hostile {
    tree: tempfile::TempDir,
    _outside: tempfile::TempDir,
    outside_file: PathBuf,
}

fn hostile_tree() -> Hostile {
    let tree = common::copy_fixture("bdw-healthy");
    let r = tree.path();
    let outside = tempfile::tempdir().unwrap();
    let outside_file = outside.path().join("secret.conf");
    std::fs::write(&outside_file, "options i915 enable_gvt=0\nSECRET-OUTSIDE\n").unwrap();

    // A symlink loop where a file is expected.
    std::fs::remove_file(r.join("proc/cpuinfo")).unwrap();
    std::os::unix::fs::symlink("cpuinfo.2", r.join("proc/cpuinfo")).unwrap();
    std::os::unix::fs::symlink("cpuinfo", r.join("proc/cpuinfo.2")).unwrap();
    // An absolute link out of the tree.
    std::fs::remove_file(r.join("etc/libvirt/qemu.conf")).unwrap();
    std::os::unix::fs::symlink(&outside_file, r.join("etc/libvirt/qemu.conf")).unwrap();
    // A relative link that climbs out with `..`.
    let depth = r.components().count() + 2;
    let up = "../".repeat(depth);
    let rel_target = format!(
        "{up}{}",
        outside_file.display().to_string().trim_start_matches('/')
    );
    std::os::unix::fs::symlink(&rel_target, r.join("etc/modprobe.d/zz-escape.conf")).unwrap();
    // The kernel log as a FIFO: a read would block forever.
    let _ = std::fs::remove_file(r.join("dev/kmsg"));
    nix::unistd::mkfifo(
        &r.join("dev/kmsg"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    // A 1 GiB (sparse) command line: reads must be bounded.
    let f = std::fs::File::create(r.join("proc/cmdline")).unwrap();
    f.set_len(1 << 30).unwrap();
    let f = std::fs::File::create(r.join("proc/modules")).unwrap();
    f.set_len(1 << 30).unwrap();
    // Device nodes where files are expected.
    let config = std::fs::read_dir(r.join("boot"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("config-")
        })
        .expect("fixture has a kernel config");
    device_or_fifo(&config, false);
    device_or_fifo(&r.join("etc/default/grub"), true);
    // Hostile sysfs names and contents.
    let types = r.join(PARENT);
    let src = types.join("i915-GVTg_V4_8");
    for name in [
        std::ffi::OsStr::from_bytes(b"i915-\xff\xfe-not-utf8"),
        std::ffi::OsStr::new("evil\n\x1b[31mRED\x1b[0m\x07"),
        std::ffi::OsStr::new("..dots..and..more"),
    ] {
        let st = Command::new("cp")
            .arg("-a")
            .arg(&src)
            .arg(types.join(name))
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::fs::write(
        types.join("i915-GVTg_V4_4/description"),
        "low_gm_size: 128MB\n\x1b[2J\x1b[31mhigh_gm_size: 512MB\n\u{9b}6n",
    )
    .unwrap();
    std::fs::write(
        types.join("i915-GVTg_V4_2/name"),
        "\x1b]0;pwned\x07GVTg_V4_2\r\n",
    )
    .unwrap();
    let group_devs = std::fs::read_dir(r.join("sys/kernel/iommu_groups"))
        .unwrap()
        .next()
        .expect("an iommu group")
        .unwrap()
        .path()
        .join("devices");
    std::fs::create_dir_all(&group_devs).unwrap();
    std::fs::write(
        group_devs.join(std::ffi::OsStr::from_bytes(b"\xff\x1b[5m..")),
        "",
    )
    .unwrap();
    Hostile {
        tree,
        _outside: outside,
        outside_file,
    }
}

/// All evidence of a check, as "path: excerpt" lines plus its summary.
fn said(json: &serde_json::Value, id: &str) -> String {
    let c = check(json, id);
    let mut s = c["summary"].as_str().unwrap_or_default().to_string();
    for e in c["evidence"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "\n{}: {}",
            e["path"].as_str().unwrap_or_default(),
            e["excerpt"].as_str().unwrap_or_default()
        ));
    }
    s
}

#[test]
fn hostile_tree_doctor_names_each_problem_and_runs_every_check() {
    let h = hostile_tree();
    let r = h.tree.path();

    let o = gvtg_root(&["doctor", "--json"], r);
    assert_verdict_exit(&o, "doctor --json");
    let json: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}\n{}", common::text(&o)));
    let checks = json["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 14, "every check still ran: {json}");
    for c in checks {
        assert!(c["status"].is_string(), "{c}");
    }
    let cpu = check(&json, "cpu.generation");
    assert_eq!(cpu["status"], "error", "{cpu}");
    assert!(
        said(&json, "cpu.generation").contains("symbolic links"),
        "{cpu}"
    );
    let conf = said(&json, "libvirt.qemu-conf");
    assert!(
        conf.contains("/etc/libvirt/qemu.conf") && conf.contains("outside the captured tree"),
        "{conf}"
    );
    let gvt = said(&json, "i915.enable-gvt");
    assert!(
        gvt.contains("/proc/cmdline: not read") && gvt.contains("larger than 64 KiB"),
        "{gvt}"
    );
    assert!(
        gvt.contains("/etc/modprobe.d/zz-escape.conf: not read")
            && gvt.contains("outside the captured tree"),
        "{gvt}"
    );
    assert!(
        gvt.contains("/etc/default/grub: not read") && gvt.contains("not a regular file"),
        "{gvt}"
    );
    let modules = said(&json, "modules.loaded");
    assert!(
        modules.contains("/proc/modules") && modules.contains("larger than 16 MiB"),
        "{modules}"
    );
    let log = check(&json, "kernel.log");
    assert_eq!(log["status"], "error", "{log}");
    assert!(
        said(&json, "kernel.log").contains("not a regular file"),
        "{log}"
    );
    let kernel = said(&json, "kernel.support");
    assert!(
        kernel.contains("/boot/config-") && kernel.contains("not a regular file"),
        "{kernel}"
    );
    // The hostile type names are listed (lossily or escaped by JSON), the good ones judged.
    let types = said(&json, "mdev.types");
    assert!(types.contains("i915-GVTg_V4_8"), "{types}");
    assert!(types.contains("i915-\u{fffd}\u{fffd}-not-utf8"), "{types}");
    assert!(types.contains("..dots..and..more"), "{types}");
    // What was outside the tree was never read.
    let all = common::text(&o);
    assert!(!all.contains("SECRET-OUTSIDE"), "{all}");
    assert!(std::fs::read_to_string(&h.outside_file)
        .unwrap()
        .contains("SECRET-OUTSIDE"));

    let o = gvtg_root(&["doctor", "-v"], r);
    assert_verdict_exit(&o, "doctor -v");
    assert_no_raw_controls(&o, "doctor -v");
    let text = common::text(&o);
    assert!(text.contains("evil\\n\\u{1b}[31mRED"), "{text}");
    assert!(text.contains("larger than 64 KiB"), "{text}");
    assert!(
        text.contains("14 passed") || text.contains("error(s)"),
        "{text}"
    );

    let o = gvtg_root(&["doctor", "--passthrough", "-v"], r);
    assert_verdict_exit(&o, "doctor --passthrough");
    assert_no_raw_controls(&o, "doctor --passthrough");

    let o = gvtg_root(&["doctor", "--format", "prometheus"], r);
    assert_verdict_exit(&o, "doctor --format prometheus");
    assert_no_raw_controls(&o, "doctor --format prometheus");
}

#[test]
fn hostile_tree_vgpu_commands_escape_names_and_never_write_through_them() {
    let h = hostile_tree();
    let r = h.tree.path();

    let o = gvtg_root(&["vgpu", "types"], r);
    assert_verdict_exit(&o, "vgpu types");
    assert_no_raw_controls(&o, "vgpu types");
    let text = common::text(&o);
    assert!(text.contains("i915-GVTg_V4_8"), "{text}");
    assert!(text.contains("evil\\n\\u{1b}[31mRED"), "{text}");
    assert!(text.contains("..dots..and..more"), "{text}");

    let o = gvtg_root(&["vgpu", "types", "--json"], r);
    assert_verdict_exit(&o, "vgpu types --json");
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("types JSON");
    assert!(json.to_string().contains("i915-GVTg_V4_2"), "{json}");

    for cmd in [&["vgpu", "list"][..], &["vgpu", "list", "--json"]] {
        let o = gvtg_root(cmd, r);
        assert_verdict_exit(&o, &format!("{cmd:?}"));
        assert_no_raw_controls(&o, &format!("{cmd:?}"));
    }

    // Type names that are path tricks are refused before anything is written; the hostile
    // listed names are never written through.
    let before = paths(r);
    for bad in [
        "..",
        "../../../../tmp",
        "evil\n\x1b[31mRED\x1b[0m\x07",
        "i915-\u{fffd}\u{fffd}-not-utf8",
    ] {
        let o = gvtg_root(&["vgpu", "create", bad], r);
        assert!(
            !o.status.success() && o.status.signal().is_none(),
            "create {bad:?}: {}",
            common::text(&o)
        );
        assert_no_raw_controls(&o, &format!("create {bad:?}"));
    }
    assert_eq!(paths(r), before, "a refused create left files behind");
}

#[test]
fn hostile_tree_report_skips_what_it_cannot_read_and_replays() {
    let h = hostile_tree();
    let r = h.tree.path();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("r.tar.gz");
    let a = args(&["report", "-o"], r);
    let mut a: Vec<std::ffi::OsString> = a;
    a.insert(2, file.clone().into());
    let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
    let o = run_limited(&refs, &[]);
    assert!(
        o.status.success(),
        "report on a hostile tree: {}",
        common::text(&o)
    );
    assert_no_raw_controls(&o, "report");
    let from = run_limited(
        &[
            "doctor".as_ref(),
            "--json".as_ref(),
            "--from".as_ref(),
            file.as_os_str(),
        ],
        &[],
    );
    assert_verdict_exit(&from, "doctor --from the hostile tree's report");
    let json: serde_json::Value = serde_json::from_slice(&from.stdout).expect("replay JSON");
    assert_eq!(json["checks"].as_array().unwrap().len(), 14);
    assert!(!common::text(&from).contains("SECRET-OUTSIDE"));
}

// ---- report archives -------------------------------------------------------------------------

/// A raw tar member: name, type, link target, data.
type Member<'a> = (&'a str, tar::EntryType, Option<&'a str>, &'a [u8]);

/// One gzip'd tar with the given raw members, in order.
fn archive(path: &Path, members: &[Member]) {
    let f = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (name, kind, link, data) in members {
        let mut h = tar::Header::new_old();
        let n = name.as_bytes();
        h.as_old_mut().name[..n.len()].copy_from_slice(n);
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// `doctor --from` with TMPDIR pointed at an empty directory: returns the output and what was
/// left in that directory and beside the archive afterwards.
fn from_in_sandbox(file: &Path) -> (Output, Vec<String>, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_limited(
        &["doctor".as_ref(), "--from".as_ref(), file.as_os_str()],
        &[("TMPDIR", tmp.path())],
    );
    let list = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    (o, list(tmp.path()), list(file.parent().unwrap()))
}

#[test]
fn hostile_archives_get_a_clear_error_and_write_nothing_outside() {
    use tar::EntryType::*;
    let top = ("gvtg-report-x/", Directory, None, &b""[..]);
    let root = ("gvtg-report-x/root/", Directory, None, &b""[..]);
    let cases: Vec<(&str, Vec<Member>, &str)> = vec![
        (
            "dot-dot",
            vec![
                top,
                ("gvtg-report-x/root/../../../escaped", Regular, None, b"x"),
            ],
            "leaves the archive",
        ),
        (
            "absolute",
            vec![top, ("/tmp/gvtg-hostile-absolute", Regular, None, b"x")],
            "leaves the archive",
        ),
        (
            "symlink-then-file-through-it",
            vec![
                top,
                root,
                ("gvtg-report-x/root/etc", Symlink, Some("proc"), b""),
                ("gvtg-report-x/root/etc/passwd", Regular, None, b"x"),
            ],
            "goes through the symlink member",
        ),
        (
            "symlink-out-then-file",
            vec![
                top,
                root,
                ("gvtg-report-x/root/l", Symlink, Some("../../../.."), b""),
                ("gvtg-report-x/root/l/escaped", Regular, None, b"x"),
            ],
            "points outside the archive",
        ),
        (
            "hard-link-out",
            vec![
                top,
                ("gvtg-report-x/root/h", Link, Some("/etc/shadow"), b""),
            ],
            "hard link",
        ),
        (
            "hard-link-inside",
            vec![
                top,
                root,
                ("gvtg-report-x/root/a", Regular, None, b"x"),
                (
                    "gvtg-report-x/root/b",
                    Link,
                    Some("gvtg-report-x/root/a"),
                    b"",
                ),
            ],
            "hard link",
        ),
        (
            "block-device",
            vec![top, ("gvtg-report-x/root/dev/sda", Block, None, b"")],
            "Block",
        ),
        (
            "char-device",
            vec![top, ("gvtg-report-x/root/dev/kmsg", Char, None, b"")],
            "Char",
        ),
        (
            "fifo",
            vec![top, ("gvtg-report-x/root/dev/kmsg", Fifo, None, b"")],
            "Fifo",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, members, want) in &cases {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        let f = sub.join("r.tar.gz");
        archive(&f, members);
        let (o, tmp_left, beside) = from_in_sandbox(&f);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", common::text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{name}: wanted {want:?} in {err}");
        assert!(
            err.contains("r.tar.gz"),
            "{name}: the error names the file: {err}"
        );
        assert!(tmp_left.is_empty(), "{name}: left {tmp_left:?} in TMPDIR");
        assert_eq!(beside, ["r.tar.gz"], "{name}: wrote beside the archive");
    }
    assert!(!Path::new("/tmp/gvtg-hostile-absolute").exists());

    // A gzip bomb: 16 MiB of zeros in members small enough each to pass the per-file cap
    // compresses ~1000:1; the ratio limit stops it once past its floor.
    let f = dir.path().join("bomb.tar.gz");
    {
        let zeros = vec![0u8; 4 << 20];
        let file = std::fs::File::create(&f).unwrap();
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for i in 0..4 {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(Regular);
            h.set_size(zeros.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, format!("gvtg-report-x/root/z{i}"), &zeros[..])
                .unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }
    assert!(std::fs::metadata(&f).unwrap().len() < 1 << 20);
    let (o, tmp_left, _) = from_in_sandbox(&f);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("decompression bomb") || err.contains("unpacks to more than"),
        "{err}"
    );
    assert!(tmp_left.is_empty(), "bomb left {tmp_left:?}");

    // A truncated gzip stream.
    let good = dir.path().join("good.tar.gz");
    archive(
        &good,
        &[
            top,
            root,
            ("gvtg-report-x/root/x", Regular, None, &[7u8; 5000][..]),
        ],
    );
    let bytes = std::fs::read(&good).unwrap();
    let t = dir.path().join("truncated");
    std::fs::create_dir(&t).unwrap();
    let cut = t.join("r.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (o, tmp_left, _) = from_in_sandbox(&cut);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("r.tar.gz"), "{err}");
    assert!(tmp_left.is_empty(), "truncated left {tmp_left:?}");

    // A FIFO given as the report file is refused, not waited on.
    let fifo = dir.path().join("fifo.tar.gz");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (o, _, _) = from_in_sandbox(&fifo);
    assert_eq!(o.status.code(), Some(2), "{}", common::text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a regular file"),
        "{}",
        common::text(&o)
    );
}

// ---- sysfs writes ----------------------------------------------------------------------------

/// A write the kernel accepts only partly is an error, never "created": run `vgpu create` with
/// RLIMIT_FSIZE at 10 bytes (prlimit(1)), so the 36-byte UUID written to `create` is cut short by
/// the kernel itself.
#[test]
fn a_short_sysfs_write_is_an_error() {
    let tree = common::copy_fixture("bdw-healthy");
    let r = tree.path();
    let create = r.join(PARENT).join("i915-GVTg_V4_8/create");
    std::fs::write(&create, "").unwrap();
    let o = Command::new("prlimit")
        .arg("--fsize=10")
        .arg(env!("CARGO_BIN_EXE_gvtg"))
        .args(["vgpu", "create", "i915-GVTg_V4_8", "--uuid"])
        .arg("4b20d080-1b54-4048-85b3-a6a62d165c01")
        .arg("--root")
        .arg(r)
        .env_remove("GVTG_ROOT")
        .output()
        .expect("prlimit (util-linux) runs gvtg");
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(
        text.contains("short write (10 of 36 bytes accepted)"),
        "{text}"
    );
    assert!(!text.contains("written 4b20d080"), "{text}");
    assert_eq!(std::fs::read(&create).unwrap(), b"4b20d080-1");
}

/// Writes go only to names the kernel listed: a type without a `create` attribute is an error,
/// and the attribute is not created.
#[test]
fn sysfs_writes_only_go_to_listed_attributes() {
    let tree = common::copy_fixture("bdw-healthy");
    let r = tree.path();
    let t = r.join(PARENT).join("i915-GVTg_V4_8");
    let _ = std::fs::remove_file(t.join("create"));
    let o = gvtg_root(&["vgpu", "create", "i915-GVTg_V4_8"], r);
    let text = common::text(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("has no `create` attribute"), "{text}");
    assert!(!t.join("create").exists());
}
