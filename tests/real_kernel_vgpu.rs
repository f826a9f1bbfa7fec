//! `gvtg vgpu` on a real running kernel: Debian's kernel boots under QEMU (TCG) with a busybox
//! initramfs that loads vfio, vfio_iommu_type1, mdev and the kernel's sample mdev drivers
//! (samples/vfio-mdev: mtty, mdpy, mbochs), built out of tree from linux-source-6.1 against
//! linux-headers-amd64 and cached under target/. Inside the VM, tests/realkernel/vgpu-tests.sh
//! creates, lists, exhausts and removes mtty devices through `gvtg vgpu` and prints each result
//! between marker lines; this file asserts them.
//!
//! Needs the Debian packages linux-image-amd64 qemu-system-x86 busybox-static kmod cpio
//! linux-headers-amd64 linux-source-6.1 make, and fails (never skips) without them.
//! GVTG_TEST_KEEP=1 keeps the temp dir (initramfs, console log).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

#[path = "realkernel/shared.rs"]
mod rk;

use rk::{script_dir, tail};

const PACKAGES: &str =
    "linux-image-amd64 qemu-system-x86 busybox-static kmod cpio linux-headers-amd64 linux-source-6.1 make";
const U1: &str = "11111111-2222-4333-8444-555555555555";
const U2: &str = "22222222-3333-4444-8555-666666666666";

fn missing(what: &str) -> ! {
    panic!(
        "real-kernel vgpu test cannot run: {what}\n\
         It needs these Debian packages: {PACKAGES}\n    \
         apt-get install -y {PACKAGES}"
    )
}

fn preflight(rel: &str) {
    for (path, pkg) in [
        (format!("/boot/vmlinuz-{rel}"), "linux-image-amd64"),
        (
            "/usr/src/linux-source-6.1.tar.xz".to_string(),
            "linux-source-6.1",
        ),
        (
            format!("/lib/modules/{rel}/build/Makefile"),
            "linux-headers-amd64",
        ),
    ] {
        if !Path::new(&path).exists() {
            missing(&format!("{path} not found (package {pkg})"));
        }
    }
    let has = |p: &str| {
        ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
            .iter()
            .any(|d| Path::new(d).join(p).is_file())
    };
    for (prog, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("make", "make"),
        ("modprobe", "kmod"),
        ("cpio", "cpio"),
        ("busybox", "busybox-static"),
    ] {
        if !has(prog) {
            missing(&format!("`{prog}` not found (package {pkg})"));
        }
    }
}

fn section<'a>(log: &'a str, name: &str) -> &'a str {
    rk::section(log, name).unwrap_or("")
}

fn rc(log: &str, name: &str) -> Option<i64> {
    rk::section_rc(log, name)
}

fn stderr<'a>(log: &'a str, name: &str) -> &'a str {
    section(log, &format!("{name}-STDERR"))
}

#[test]
fn vgpu_on_sample_mdev_drivers_under_qemu() {
    let t0 = Instant::now();
    let rel = rk::kernel_release(missing);
    preflight(&rel);

    // The build is cached per kernel release: extracting and compiling takes ~20 s.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("mdev-samples")
        .join(&rel);
    std::fs::create_dir_all(&cache).unwrap();
    let b = Command::new("bash")
        .arg(script_dir().join("build-mdev-samples.sh"))
        .arg(&cache)
        .arg(&rel)
        .output()
        .expect("running tests/realkernel/build-mdev-samples.sh");
    assert!(
        b.status.success(),
        "build-mdev-samples.sh failed:\n{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let t_samples = t0.elapsed();

    let (_keep, dir) = rk::work_dir("gvtg-realkernel-vgpu.");
    let initrd = dir.join("initramfs.cpio.gz");
    let log_path = dir.join("console.log");
    let ko: Vec<String> = ["mtty", "mdpy", "mbochs"]
        .iter()
        .map(|m| cache.join(format!("{m}.ko")).display().to_string())
        .collect();
    rk::mkinitramfs(
        &initrd,
        &rel,
        &[
            ("GVTG_RK_MODULES", "vfio vfio_iommu_type1 mdev".into()),
            ("GVTG_RK_EXTRA_KO", ko.join(" ")),
            (
                "GVTG_RK_TESTS",
                script_dir().join("vgpu-tests.sh").display().to_string(),
            ),
        ],
    );
    let t_built = t0.elapsed();
    let (boot, log) = rk::boot(
        &initrd,
        &rel,
        &log_path,
        &[("GVTG_BOOT_TIMEOUT", "150".into())],
        &[],
    );
    println!("----- console log -----\n{log}\n----- end of console log -----");
    println!(
        "samples ready in {:.1}s, initramfs in {:.1}s, boot+run {:.1}s",
        t_samples.as_secs_f64(),
        (t_built - t_samples).as_secs_f64(),
        (t0.elapsed() - t_built).as_secs_f64()
    );
    assert!(
        boot.status.success() && log.contains("=====GVTG-INIT-DONE====="),
        "the VM did not run to the end ({}):\n{}",
        boot.status,
        tail(&log, 60)
    );
    for m in ["mtty", "mdpy", "mbochs"] {
        assert!(
            log.contains(&format!("insmod {m} "))
                && !log.contains(&format!("insmod {m}  : FAILED")),
            "{m} did not load:\n{}",
            tail(&log, 80)
        );
    }

    let mut fails: Vec<String> = Vec::new();
    let mut expect = |ok: bool, what: &str, name: &str| {
        if !ok {
            fails.push(format!(
                "{what}\n  [{name}] rc={:?}\n  stdout: {}\n  stderr: {}",
                rc(&log, name),
                section(&log, name),
                stderr(&log, name)
            ));
        }
    };

    // types --json: the mtty parent with mtty-1 and mtty-2; mdpy and mbochs are there too.
    let types: Value = serde_json::from_str(section(&log, "TYPES")).unwrap_or(Value::Null);
    let parents = types["parents"].as_array().cloned().unwrap_or_default();
    let mtty = parents.iter().find(|p| p["name"] == "mtty");
    let ty = |id: &str| {
        mtty.and_then(|p| p["types"].as_array())
            .and_then(|ts| ts.iter().find(|t| t["id"] == id))
            .cloned()
    };
    expect(
        types["schema_version"] == 1,
        "types: schema_version 1",
        "TYPES",
    );
    expect(
        ty("mtty-1")
            .is_some_and(|t| t["available_instances"] == 24 && t["device_api"] == "vfio-pci")
            && ty("mtty-2").is_some_and(|t| t["available_instances"] == 12),
        "types: parent mtty with mtty-1 (24 available) and mtty-2 (12 available)",
        "TYPES",
    );
    for p in ["mdpy", "mbochs"] {
        expect(
            parents.iter().any(|x| x["name"] == p),
            &format!("types: parent {p} listed"),
            "TYPES",
        );
    }
    expect(
        section(&log, "TYPESTEXT").contains("mtty-2"),
        "types --parent mtty (text)",
        "TYPESTEXT",
    );

    // create: the device directory with its mdev_type link.
    expect(
        rc(&log, "CREATE") == Some(0) && section(&log, "CREATE").contains(&format!("created {U1}")),
        "create mtty-2 succeeds",
        "CREATE",
    );
    expect(
        rc(&log, "DEVDIR") == Some(0)
            && section(&log, "DEVDIR").ends_with("mdev_supported_types/mtty-2"),
        "the device dir exists with an mdev_type link to mtty-2",
        "DEVDIR",
    );

    // list --json: U1 with parent, type and an IOMMU group; root in the VM, so in_use is known.
    let list: Value = serde_json::from_str(section(&log, "LIST")).unwrap_or(Value::Null);
    let m = list["mdevs"]
        .as_array()
        .and_then(|v| v.iter().find(|m| m["uuid"] == U1).cloned());
    expect(
        m.as_ref().is_some_and(|m| {
            m["parent"] == "mtty"
                && m["type"] == "mtty-2"
                && m["iommu_group"].is_u64()
                && m["in_use"] == false
                && m["persisted"].as_array().is_some_and(|p| p.is_empty())
        }),
        "list: U1 on mtty, type mtty-2, with an IOMMU group, not in use, not persisted",
        "LIST",
    );

    // Duplicates: our own check and the kernel's EEXIST both say so.
    expect(
        rc(&log, "DUP") == Some(2) && stderr(&log, "DUP").contains("already in use"),
        "duplicate UUID refused (precheck)",
        "DUP",
    );
    expect(
        rc(&log, "DUPKERNEL") == Some(2)
            && stderr(&log, "DUPKERNEL").contains("already in use by another mdev (EEXIST)"),
        "duplicate UUID: the kernel's EEXIST mapped",
        "DUPKERNEL",
    );

    // --persist: mdevctl's JSON (and, without mdevctl in the VM, our unit).
    expect(
        rc(&log, "PERSIST") == Some(0)
            && section(&log, "PERSIST").contains(&format!("/etc/mdevctl.d/mtty/{U2}"))
            && section(&log, "PERSIST").contains("systemctl enable"),
        "create --persist succeeds",
        "PERSIST",
    );
    let def: Value = serde_json::from_str(section(&log, "PERSISTED")).unwrap_or(Value::Null);
    expect(
        def == serde_json::json!({"mdev_type": "mtty-1", "start": "auto", "attrs": []}),
        "the mdevctl definition",
        "PERSISTED",
    );
    let list2: Value = serde_json::from_str(section(&log, "LIST2")).unwrap_or(Value::Null);
    expect(
        list2["mdevs"].as_array().is_some_and(|v| {
            v.iter().any(|m| {
                m["uuid"] == U2 && m["persisted"] == serde_json::json!(["mdevctl", "systemd"])
            })
        }),
        "list: U2 persisted (mdevctl, systemd)",
        "LIST2",
    );

    // Exhaustion: our check gives the instances error; the kernel's own answer is mapped.
    expect(
        rc(&log, "EXHAUSTED") == Some(2)
            && stderr(&log, "EXHAUSTED").contains("available_instances is 0"),
        "create with no instances left",
        "EXHAUSTED",
    );
    let raw_err = stderr(&log, "RAWKERNEL");
    expect(
        rc(&log, "RAWKERNEL") == Some(2)
            && (raw_err.contains("(ENOSPC)") || raw_err.contains("(EUSERS)")),
        "the kernel's ENOSPC/EUSERS is mapped",
        "RAWKERNEL",
    );
    expect(
        section(&log, "U3GONE") == "absent",
        "a failed create leaves no device",
        "U3GONE",
    );

    // A holder of /dev/vfio/GROUP: in use, remove refused.
    let held: Value = serde_json::from_str(section(&log, "HELDLIST")).unwrap_or(Value::Null);
    expect(
        held["mdevs"].as_array().is_some_and(|v| {
            v.iter().any(|m| {
                m["uuid"] == U1
                    && m["in_use"] == true
                    && m["holders"][0]["comm"] == "sleep"
                    && m["holders"][0]["node"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("/dev/vfio/"))
            })
        }),
        "list: U1 in use by the sleep holding its group node",
        "HELDLIST",
    );
    expect(
        rc(&log, "HELDREMOVE") == Some(2)
            && stderr(&log, "HELDREMOVE").contains("it is in use (pid "),
        "remove refused while held",
        "HELDREMOVE",
    );
    // A failed --persist removes the device it just created.
    expect(
        rc(&log, "PERSISTFAIL") == Some(2)
            && stderr(&log, "PERSISTFAIL")
                .contains("removed 44444444-5555-4666-8777-888888888888 again")
            && section(&log, "U4GONE") == "absent",
        "a failed --persist leaves no device",
        "PERSISTFAIL",
    );

    // remove.
    expect(
        rc(&log, "REMOVE") == Some(0) && section(&log, "U1GONE") == "absent",
        "remove U1: device gone",
        "REMOVE",
    );
    expect(
        rc(&log, "REMOVEPERSIST") == Some(0) && section(&log, "U2DEF") == "absent",
        "remove --persist deletes the definition",
        "REMOVEPERSIST",
    );
    println!("total test time {:.1}s", t0.elapsed().as_secs_f64());
    assert!(fails.is_empty(), "{}", fails.join("\n\n"));
}
