//! `gvtg doctor` on a real running kernel: the installed Debian kernel is booted under QEMU (TCG,
//! no KVM needed) with a busybox initramfs that loads kvm, vfio, mdev, i915 (enable_gvt=1) and
//! kvmgt, then runs `gvtg doctor --json`, `gvtg doctor -v` and `gvtg modinfo kvmgt` as root and
//! prints their output between marker lines on the serial console. The verdicts asserted here are
//! the ones a real kernel in a QEMU q35 machine (intel-iommu, no Intel iGPU, no VT-x under TCG)
//! makes true.
//!
//! Needs the Debian packages linux-image-amd64 qemu-system-x86 busybox-static kmod cpio and fails
//! (never skips) without them. See tests/realkernel/README.md.
//!
//! Environment: GVTG_TEST_KERNEL_RELEASE picks the kernel; GVTG_TEST_KEEP=1 keeps the temp dir
//! (initramfs and console log) and prints its path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

#[path = "realkernel/shared.rs"]
mod rk;

use rk::{find_prog, section, section_rc, tail};

const PACKAGES: &str = "linux-image-amd64 qemu-system-x86 busybox-static kmod cpio";

/// The 14 checks `gvtg doctor` runs, in order.
const CHECK_IDS: [&str; 14] = [
    "cpu.generation",
    "gpu.igd",
    "kernel.support",
    "i915.enable-gvt",
    "i915.guc",
    "iommu.state",
    "modules.loaded",
    "kvm.device",
    "mdev.parent",
    "mdev.types",
    "vfio.permissions",
    "libvirt.qemu-conf",
    "libvirt.seccomp",
    "kernel.log",
];

/// Console-log wall-clock limit for one boot, in seconds (boot.sh kills QEMU after it).
const BOOT_TIMEOUT_S: u32 = 180;

fn missing(what: &str) -> ! {
    panic!(
        "real-kernel test cannot run: {what}\n\
         It needs these Debian packages: {PACKAGES}\n    \
         apt-get install -y {PACKAGES}"
    )
}

fn preflight(rel: &str) {
    let progs = [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("modprobe", "kmod"),
        ("modinfo", "kmod"),
        ("cpio", "cpio"),
        ("bash", "bash"),
        ("gzip", "gzip"),
        ("ldd", "libc-bin"),
        ("timeout", "coreutils"),
    ];
    rk::require(rel, &progs, missing);
    let vmlinuz = format!("/boot/vmlinuz-{rel}");
    if let Err(e) = std::fs::File::open(&vmlinuz) {
        panic!("real-kernel test cannot read {vmlinuz}: {e} (some distributions install it mode 0600: run as root)");
    }
    for f in ["modules.dep", "modules.builtin"] {
        let p = format!("/lib/modules/{rel}/{f}");
        if !Path::new(&p).is_file() {
            missing(&format!("{p} not found (kernel release {rel})"));
        }
    }
}

/// Collects every disagreement, each with the JSON of the check it is about.
struct Expect<'a> {
    doc: &'a Value,
    failures: Vec<String>,
}

impl<'a> Expect<'a> {
    fn check(&self, id: &str) -> Option<&'a Value> {
        self.doc["checks"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == id)
    }

    /// Asserts `pred` on check `id`; on failure records `what` and the check's JSON.
    fn on(&mut self, id: &str, what: &str, pred: impl FnOnce(&Value) -> bool) {
        match self.check(id) {
            Some(c) if pred(c) => {}
            Some(c) => self.failures.push(format!(
                "check {id}: expected {what}; got:\n{}",
                serde_json::to_string_pretty(c).unwrap()
            )),
            None => self.failures.push(format!(
                "check {id}: missing from the document (expected {what})"
            )),
        }
    }

    fn status(&mut self, id: &str, want: &str) {
        self.on(id, &format!("status \"{want}\""), |c| c["status"] == want);
    }

    fn top(&mut self, what: &str, ok: bool, got: &Value) {
        if !ok {
            self.failures.push(format!("{what}; got: {got}"));
        }
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// N from "N record(s) scanned" anywhere in `text`.
fn records_scanned(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].starts_with("record"))
        .and_then(|w| w[0].parse().ok())
}

fn evidence_has(c: &Value, pred: impl Fn(&str, &str) -> bool) -> bool {
    c["evidence"].as_array().is_some_and(|ev| {
        ev.iter()
            .any(|e| pred(str_of(&e["path"]), str_of(&e["excerpt"])))
    })
}

/// `field: value` lines of kmod-style modinfo output (continuation lines ignored).
fn modinfo_fields(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            m.entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    m
}

#[test]
fn doctor_on_a_real_kernel_under_qemu() {
    let t0 = Instant::now();
    let rel = rk::kernel_release(missing);
    preflight(&rel);

    let (_keep, dir) = rk::work_dir("gvtg-realkernel.");
    let initrd = dir.join("initramfs.cpio.gz");
    let log_path = dir.join("console.log");
    rk::mkinitramfs(&initrd, &rel, &[]);
    let t_built = t0.elapsed();

    let (boot, log) = rk::boot(
        &initrd,
        &rel,
        &log_path,
        &[("GVTG_BOOT_TIMEOUT", BOOT_TIMEOUT_S.to_string())],
        &[],
    );
    // Shown by the test harness only when the test fails (or with --nocapture).
    println!(
        "----- console log ({}) -----\n{log}\n----- end of console log -----",
        log_path.display()
    );
    println!(
        "initramfs built in {:.1}s, boot+run took {:.1}s",
        t_built.as_secs_f64(),
        (t0.elapsed() - t_built).as_secs_f64()
    );
    assert!(
        boot.status.success() && log.contains("=====GVTG-INIT-DONE====="),
        "the VM did not run to the end ({}; boot.sh stderr: {})\nlast console lines:\n{}",
        boot.status,
        String::from_utf8_lossy(&boot.stderr).trim(),
        tail(&log, 60)
    );

    let json = section(&log, "JSON")
        .unwrap_or_else(|| panic!("no JSON markers in the console log:\n{}", tail(&log, 60)));
    let doc: Value = serde_json::from_str(json).unwrap_or_else(|e| {
        panic!(
            "gvtg doctor --json printed no valid JSON ({e}); stderr:\n{}\noutput:\n{json}",
            section(&log, "JSON-STDERR").unwrap_or("")
        )
    });
    let text = section(&log, "TEXT").unwrap_or("");
    let modinfo = section(&log, "MODINFO").unwrap_or("");

    let mut x = Expect {
        doc: &doc,
        failures: Vec::new(),
    };

    // --- the document -----------------------------------------------------
    x.top(
        "schema_version == 1",
        doc["schema_version"] == 1,
        &doc["schema_version"],
    );
    x.top(
        "tool.name == \"gvtg\"",
        doc["tool"]["name"] == "gvtg",
        &doc["tool"],
    );
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .map(|a| a.iter().map(|c| str_of(&c["id"])).collect())
        .unwrap_or_default();
    x.top(
        &format!("check ids in order == {CHECK_IDS:?}"),
        ids == CHECK_IDS,
        &Value::from(ids.clone()),
    );
    let host = &doc["host"];
    x.top("host.live == true", host["live"] == true, host);
    x.top("host.as_root == true", host["as_root"] == true, host);
    x.top(
        &format!("host.kernel == {rel:?}"),
        host["kernel"] == rel.as_str(),
        host,
    );
    x.top(
        "host.igd == null (QEMU has no Intel iGPU)",
        host["igd"].is_null(),
        host,
    );
    x.top(
        "host.cpu names the QEMU Skylake model",
        str_of(&host["cpu"]).contains("Skylake"),
        host,
    );
    x.top(
        "host.os is set (etc/os-release is in the initramfs)",
        host["os"].as_str().is_some_and(|s| !s.is_empty()),
        host,
    );

    // --- per-check verdicts ----------------------------------------------
    // cpu.generation: QEMU's Skylake-Client is a GVT-g platform, but the hypervisor flag marks a
    // guest, which gvtg must say.
    x.on(
        "cpu.generation",
        "status warn and a summary that names the guest/hypervisor and Skylake",
        |c| {
            let s = str_of(&c["summary"]).to_lowercase();
            c["status"] == "warn"
                && (s.contains("guest") || s.contains("hypervisor"))
                && s.contains("skylake")
        },
    );
    x.status("gpu.igd", "fail");
    x.status("kernel.support", "pass");
    x.on("kernel.support", "evidence mentioning enable_gvt", |c| {
        evidence_has(c, |_, e| e.contains("enable_gvt"))
    });
    x.status("i915.enable-gvt", "pass");
    x.on(
        "i915.enable-gvt",
        "summary saying enable_gvt=Y (the live module parameter)",
        |c| str_of(&c["summary"]).contains("enable_gvt=Y"),
    );
    x.on(
        "iommu.state",
        "summary starting with \"IOMMU on\" and evidence /sys/class/iommu/dmar0",
        |c| {
            str_of(&c["summary"]).starts_with("IOMMU on")
                && evidence_has(c, |p, _| p == "/sys/class/iommu/dmar0")
        },
    );
    x.status("modules.loaded", "fail");
    x.on(
        "modules.loaded",
        "kvm_intel (and not kvmgt) in the summary's not-loaded list",
        |c| {
            let s = str_of(&c["summary"]);
            s.contains("kvm_intel") && !s.contains("kvmgt")
        },
    );
    x.on(
        "modules.loaded",
        "/proc/modules evidence showing kvmgt, kvm, vfio, vfio_iommu_type1 and mdev loaded",
        |c| {
            evidence_has(c, |p, e| {
                p == "/proc/modules"
                    && ["kvmgt", "kvm", "vfio", "vfio_iommu_type1", "mdev"]
                        .iter()
                        .all(|m| e.contains(&format!("{m} (loaded)")))
            })
        },
    );
    x.on("kvm.device", "status fail: no /dev/kvm without VT-x", |c| {
        c["status"] == "fail" && str_of(&c["summary"]).contains("/dev/kvm")
    });
    x.on(
        "mdev.parent",
        "status fail, blaming gpu.igd (there is no iGPU)",
        |c| c["status"] == "fail" && str_of(&c["summary"]).contains("gpu.igd"),
    );
    x.status("mdev.types", "skip");
    x.on(
        "kernel.log",
        "status pass, warn or fail (root reads /dev/kmsg) and \"N record(s) scanned\" with N > 100",
        |c| {
            matches!(str_of(&c["status"]), "pass" | "warn" | "fail")
                && records_scanned(str_of(&c["summary"])).is_some_and(|n| n > 100)
        },
    );
    x.on(
        "kernel.log",
        "evidence quoting the real \"DMAR: IOMMU enabled\" record from /dev/kmsg",
        |c| {
            evidence_has(c, |p, e| {
                p == "/dev/kmsg" && e.contains("DMAR: IOMMU enabled")
            })
        },
    );
    for id in CHECK_IDS {
        x.on(
            id,
            "no error status (every input is readable on a real kernel as root)",
            |c| c["status"] != "error",
        );
    }

    // --- summary ----------------------------------------------------------
    let mut counts: BTreeMap<&str, i64> = ["pass", "warn", "fail", "skip", "error"]
        .iter()
        .map(|s| (*s, 0))
        .collect();
    for c in doc["checks"].as_array().into_iter().flatten() {
        *counts.entry(str_of(&c["status"])).or_default() += 1;
    }
    for (k, n) in &counts {
        x.top(
            &format!("summary.{k} == {n} (the statuses counted)"),
            doc["summary"][*k] == *n,
            &doc["summary"],
        );
    }
    x.top(
        "summary.exit_code == 1",
        doc["summary"]["exit_code"] == 1,
        &doc["summary"],
    );
    let json_rc = section_rc(&log, "JSON");
    x.top(
        "`gvtg doctor --json` exits 1",
        json_rc == Some(1),
        &Value::from(json_rc),
    );

    // --- gvtg report, replayed with doctor --from ---------------------------
    x.top(
        "`gvtg report -o FILE` exits 0 on the live host",
        section_rc(&log, "REPORT") == Some(0),
        &Value::from(section_rc(&log, "REPORT")),
    );
    let from: Value = section(&log, "FROM")
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let verdicts = |d: &Value, with_summary: bool| -> Vec<String> {
        d["checks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        // The kernel log grows between the two runs: compare its status only.
                        let s = if with_summary && c["id"] != "kernel.log" {
                            str_of(&c["summary"])
                        } else {
                            ""
                        };
                        format!("{} {} {s}", str_of(&c["id"]), str_of(&c["status"]))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    x.top(
        "`gvtg doctor --from` on the report: same statuses and summaries as on the live host",
        !verdicts(&from, true).is_empty() && verdicts(&from, true) == verdicts(&doc, true),
        &Value::from(verdicts(&from, true)),
    );
    x.top(
        "the report is redacted: the host name does not reach doctor --from's output",
        !section(&log, "FROM")
            .unwrap_or("")
            .contains("gvtg-realkernel"),
        &Value::Null,
    );

    // --- text report ------------------------------------------------------
    let text_rc = section_rc(&log, "TEXT");
    x.top(
        "`gvtg doctor --color never -v` exits 1",
        text_rc == Some(1),
        &Value::from(text_rc),
    );
    for id in CHECK_IDS {
        if !text.contains(id) {
            x.failures
                .push(format!("the text report does not mention {id}"));
        }
    }
    if !text.contains("How to fix:") {
        x.failures
            .push("the text report has no \"How to fix:\"".into());
    }
    if text.contains('\u{1b}') {
        x.failures
            .push("the text report has ANSI escapes despite --color never".into());
    }

    // --- modinfo ----------------------------------------------------------
    let modinfo_rc = section_rc(&log, "MODINFO");
    x.top(
        "`gvtg modinfo kvmgt` exits 0",
        modinfo_rc == Some(0),
        &Value::from(modinfo_rc),
    );
    let got = modinfo_fields(modinfo);
    let want = Command::new(find_prog("modinfo").unwrap())
        .args(["-k", &rel, "kvmgt"])
        .output()
        .map(|o| modinfo_fields(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default();
    let first = |m: &BTreeMap<String, Vec<String>>, k: &str| {
        m.get(k)
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default()
    };
    if !first(&got, "filename").ends_with("/kvmgt.ko") {
        x.failures.push(format!(
            "gvtg modinfo kvmgt: filename: does not end in /kvmgt.ko:\n{modinfo}"
        ));
    }
    if !first(&got, "vermagic").split_whitespace().any(|w| w == rel) {
        x.failures.push(format!(
            "gvtg modinfo kvmgt: vermagic: does not contain {rel}:\n{modinfo}"
        ));
    }
    // The same fields kmod's modinfo reads from the same file on the host.
    for k in [
        "filename",
        "name",
        "depends",
        "vermagic",
        "license",
        "intree",
        "author",
        "import_ns",
        "retpoline",
        "parm",
    ] {
        if got.get(k) != want.get(k) {
            x.failures.push(format!(
                "gvtg modinfo kvmgt: {k}: {:?}, but kmod's `modinfo -k {rel} kvmgt` says {:?}",
                got.get(k),
                want.get(k)
            ));
        }
    }

    println!("total test time {:.1}s", t0.elapsed().as_secs_f64());
    if !x.failures.is_empty() {
        let mut msg = format!(
            "{} expectation(s) failed on kernel {rel}:\n",
            x.failures.len()
        );
        for f in &x.failures {
            let _ = writeln!(msg, "\n- {f}");
        }
        let _ = write!(
            msg,
            "\n`gvtg doctor` stderr:\n{}\n\ntext report:\n{text}",
            section(&log, "JSON-STDERR").unwrap_or("")
        );
        panic!("{msg}");
    }
}
