//! The command line as users and scripts meet it: exit codes, formats, errors.

use std::process::{Command, Output};

fn gvtg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gvtg"))
        .args(args)
        .env_remove("GVTG_ROOT")
        .env_remove("NO_COLOR")
        .output()
        .expect("running gvtg")
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}/root", env!("CARGO_MANIFEST_DIR"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn healthy_host_exits_0_and_broken_host_exits_1() {
    let ok = gvtg(&[
        "doctor",
        "--root",
        &fixture("bdw-healthy"),
        "--color",
        "never",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    let bad = gvtg(&[
        "doctor",
        "--root",
        &fixture("skl-no-enable-gvt"),
        "--color",
        "never",
    ]);
    assert_eq!(bad.status.code(), Some(1), "{}", stdout(&bad));
    assert!(stdout(&bad).contains("How to fix:"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["doctor", "--bogus"],
        vec!["doctor", "--only", "no.such-check"],
        vec!["explain", "no.such-check"],
        vec!["doctor", "--root", "/nonexistent/tree"],
        vec!["frobnicate"],
    ] {
        let o = gvtg(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.stderr.is_empty(), "{args:?} printed no error");
    }
    let o = gvtg(&["doctor", "--only", "mdev.type"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("Did you mean 'mdev.types'"));
}

#[test]
fn only_and_skip_select_checks() {
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("bdw-healthy"),
        "--json",
        "--only",
        "cpu.generation,gpu.igd",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cpu.generation", "gpu.igd"]);
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("bdw-healthy"),
        "--json",
        "--skip",
        "kernel.log",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["checks"].as_array().unwrap().len(), 13);
}

#[test]
fn prometheus_format() {
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("skl-no-enable-gvt"),
        "--format",
        "prometheus",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let t = stdout(&o);
    assert!(
        t.contains("gvtg_check_status{check=\"i915.enable-gvt\",status=\"fail\"} 1"),
        "{t}"
    );
    assert!(t.contains("gvtg_doctor_exit_code 1"));
    assert_eq!(
        t.lines()
            .filter(|l| l.starts_with("gvtg_check_status{"))
            .count(),
        14 * 5
    );
}

#[test]
fn color_always_colours_and_never_does_not() {
    let c = gvtg(&[
        "doctor",
        "--root",
        &fixture("bdw-healthy"),
        "--color",
        "always",
    ]);
    assert!(stdout(&c).contains("\u{1b}["));
    let n = gvtg(&[
        "doctor",
        "--root",
        &fixture("bdw-healthy"),
        "--color",
        "never",
    ]);
    assert!(!stdout(&n).contains("\u{1b}["));
}

#[test]
fn explain_prints_the_embedded_document() {
    let o = gvtg(&["explain", "mdev.types"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("# mdev.types"));
    let l = gvtg(&["explain", "--list"]);
    let list = stdout(&l);
    // The 14 GVT-g checks, then the 9 passthrough checks (`doctor --passthrough PCI`).
    assert_eq!(
        list.lines()
            .filter(|l| !l.starts_with("passthrough."))
            .count(),
        14
    );
    assert_eq!(
        list.lines()
            .filter(|l| l.starts_with("passthrough."))
            .count(),
        9
    );
}

#[test]
fn completions_and_man_page() {
    let o = gvtg(&["completions", "bash"]);
    assert!(stdout(&o).contains("gvtg"));
    assert!(stdout(&o).contains("doctor"));
    let m = gvtg(&["man"]);
    assert!(stdout(&m).contains(".TH gvtg"));
}

#[test]
fn live_smoke_test_completes_with_a_valid_report() {
    // The only test that reads the build machine itself: it asserts nothing about the verdicts,
    // only that the doctor completes and the report is well formed.
    let o = gvtg(&["doctor", "--json"]);
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["host"]["live"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), 14);
}

#[test]
fn broken_pipe_is_not_an_error() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_gvtg"))
        .args(["explain", "kernel.log"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.is_empty() || !err.contains("panicked"), "{err}");
    assert!(matches!(status.code(), Some(0)), "{status:?} {err}");
}

#[test]
fn passthrough_without_a_device_lists_candidates_and_exits_0() {
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("pch-group-shared-usb"),
        "--color",
        "never",
        "--passthrough",
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("0000:03:00.0 (10de:1b81 NVIDIA VGA controller, vfio-pci)"),
        "{out}"
    );
    assert!(
        out.contains("  sibling  0000:03:00.1 (10de:10f0 NVIDIA audio device, vfio-pci)"),
        "{out}"
    );
    assert!(
        out.contains("0000:02:00.0 (1b21:2142 ASMedia USB controller, xhci_hcd)"),
        "{out}"
    );
    assert!(
        out.contains("gvtg doctor --passthrough 0000:01:00.0"),
        "{out}"
    );
    assert!(
        !out.contains("cpu.generation"),
        "the listing runs no checks: {out}"
    );
}

#[test]
fn passthrough_unknown_device_is_a_usage_error_naming_candidates() {
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("pch-group-shared-usb"),
        "--passthrough",
        "05:00.0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no PCI function '05:00.0'"), "{err}");
    assert!(err.contains("0000:03:00.0 (10de:1b81"), "{err}");
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("pch-group-shared-usb"),
        "--only",
        "passthrough.group",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("passthrough.group judges a device"));
}

#[test]
fn passthrough_by_short_address_runs_both_catalogs() {
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("pch-group-shared-usb"),
        "--json",
        "--passthrough",
        "03:00.0",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 23);
    assert_eq!(ids[0], "cpu.generation");
    assert_eq!(ids[22], "passthrough.looking-glass");
    assert_eq!(ids[14], "passthrough.iommu");
    let explain = gvtg(&["explain", "passthrough.group"]);
    assert_eq!(explain.status.code(), Some(0));
    assert!(stdout(&explain).starts_with("# "));
}

#[test]
fn passthrough_listing_as_json_and_prometheus() {
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("pch-group-shared-usb"),
        "--passthrough",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["host"]["kernel"], "5.15.0-91-generic");
    let c = doc["candidates"].as_array().unwrap();
    assert_eq!(c.len(), 2, "{doc}");
    let nv = c.iter().find(|x| x["address"] == "0000:03:00.0").unwrap();
    assert_eq!(nv["id"], "10de:1b81");
    assert_eq!(nv["class"], "0x030000");
    assert_eq!(nv["driver"], "vfio-pci");
    assert_eq!(nv["boot_vga"], false);
    assert_eq!(nv["reset_method"], "bus");
    assert_eq!(nv["iommu_group"], 4);
    assert_eq!(nv["siblings"][0]["address"], "0000:03:00.1");
    assert_eq!(nv["siblings"][0]["driver"], "vfio-pci");
    // The ASMedia USB controller on xhci_hcd keeps group 4 from being viable.
    assert_eq!(nv["viable"], false);
    let usb = nv["group_members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == "0000:02:00.0")
        .unwrap();
    assert_eq!(usb["driver"], "xhci_hcd");
    assert_eq!(usb["blocks"], true);
    let bridge = nv["group_members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["address"] == "0000:00:1c.0")
        .unwrap();
    assert_eq!(
        (bridge["bridge"].clone(), bridge["blocks"].clone()),
        (true.into(), false.into())
    );
    let igd = c.iter().find(|x| x["address"] == "0000:00:02.0").unwrap();
    assert_eq!(igd["boot_vga"], true);
    assert_eq!(igd["viable"], true);

    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("pch-group-shared-usb"),
        "--passthrough",
        "--format",
        "prometheus",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("gvtg_passthrough_candidates 2\n"), "{out}");
    assert!(
        out.contains("gvtg_passthrough_candidate{address=\"0000:03:00.0\",id=\"10de:1b81\",driver=\"vfio-pci\",iommu_group=\"4\",boot_vga=\"false\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("gvtg_passthrough_group_viable{address=\"0000:03:00.0\",iommu_group=\"4\"} 0"),
        "{out}"
    );
    assert!(
        out.contains("gvtg_passthrough_group_viable{address=\"0000:00:02.0\",iommu_group=\"1\"} 1"),
        "{out}"
    );
}

#[test]
fn acs_override_fixture_reports_the_assumed_isolation() {
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("amd-acs-override"),
        "--json",
        "--passthrough",
        "0000:1f:00.0",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let g = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "passthrough.group")
        .unwrap();
    assert_eq!(g["status"], "warn");
    let summary = g["summary"].as_str().unwrap();
    assert!(summary.contains("pcie_acs_override is in use"), "{summary}");
    assert!(summary.contains("not from hardware isolation"), "{summary}");
    assert!(
        g["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["excerpt"] == "pcie_acs_override=downstream,multifunction"),
        "{g}"
    );
    // The listing calls the overridden group viable too: it is, to VFIO.
    let o = gvtg(&[
        "doctor",
        "--root",
        &fixture("amd-acs-override"),
        "--json",
        "--passthrough",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let gpu = doc["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "0000:1f:00.0")
        .unwrap();
    assert_eq!(gpu["viable"], true, "{gpu}");
    assert_eq!(gpu["group_members"].as_array().unwrap().len(), 0, "{gpu}");
}
