//! `gvtg passthrough bind|unbind` and `gvtg doctor --passthrough` on a real running kernel:
//! Debian's kernel boots twice under QEMU (TCG, q35) with emulated PCI devices (an e1000e NIC,
//! a second display device `bochs-display`, an `intel-hda` audio device behind a `pci-bridge`,
//! q35's own AHCI/SMBus/LPC functions and its boot VGA): once with the emulated VT-d
//! (`intel-iommu,snoop-control=on`, `intel_iommu=on`) and once without an IOMMU. Inside,
//! tests/realkernel/passthrough-tests.sh binds and unbinds through gvtg, checks the refusals,
//! and prints each result between marker lines; this file asserts them against what the real
//! kernel reported (addresses and IOMMU groups are discovered in the guest, not assumed).
//!
//! vfio-pci is shipped in the initramfs but not loaded, so `bind` has to run `modprobe vfio-pci`
//! itself; bochs (bochs-drm) is loaded, so unbinding the display hands it back to bochs-drm;
//! snd-hda-intel is not shipped, so the audio device goes back to no driver.
//!
//! Needs the Debian packages linux-image-amd64 qemu-system-x86 busybox-static kmod cpio and fails
//! (never skips) without them. GVTG_TEST_KEEP=1 keeps the temp dir (initramfs, console logs).

#[path = "realkernel/shared.rs"]
mod rk;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

const PACKAGES: &str = "linux-image-amd64 qemu-system-x86 busybox-static kmod cpio";

/// The emulated devices besides q35's own (the intel-iommu device comes first, from boot.sh).
const QEMU_DEVICES: &[&str] = &[
    "-nic",
    "none",
    "-netdev",
    "user,id=n0",
    "-device",
    "e1000e,netdev=n0,addr=0x4",
    "-device",
    "bochs-display,addr=0x5",
    "-device",
    "pci-bridge,id=br1,chassis_nr=1,addr=0x6",
    "-device",
    "intel-hda,bus=br1,addr=0x1",
];

fn missing(what: &str) -> ! {
    panic!(
        "real-kernel passthrough test cannot run: {what}\n\
         It needs these Debian packages: {PACKAGES}\n    \
         apt-get install -y {PACKAGES}"
    )
}

fn preflight(rel: &str) {
    let progs = [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("modprobe", "kmod"),
        ("cpio", "cpio"),
        ("bash", "bash"),
        ("gzip", "gzip"),
        ("ldd", "libc-bin"),
        ("timeout", "coreutils"),
    ];
    rk::require(rel, &progs, missing);
}

/// One line of the guest's `/tmp/lspci`.
#[derive(Debug, Clone)]
struct Func {
    id: String,
    class: u32,
    driver: Option<String>,
    group: Option<u32>,
    boot_vga: Option<bool>,
}

fn lspci(text: &str) -> BTreeMap<String, Func> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != 7 {
                return None;
            }
            let opt = |s: &str| (s != "-").then(|| s.to_string());
            Some((
                f[0].to_string(),
                Func {
                    id: format!(
                        "{}:{}",
                        f[1].trim_start_matches("0x"),
                        f[2].trim_start_matches("0x")
                    ),
                    class: u32::from_str_radix(f[3].trim_start_matches("0x"), 16).ok()?,
                    driver: opt(f[4]),
                    group: opt(f[5]).and_then(|g| g.parse().ok()),
                    boot_vga: opt(f[6]).map(|b| b == "1"),
                },
            ))
        })
        .collect()
}

/// The first function whose class matches.
fn by_class(t: &BTreeMap<String, Func>, pred: impl Fn(&Func) -> bool) -> Option<String> {
    t.iter().find(|(_, f)| pred(f)).map(|(a, _)| a.clone())
}

/// Collects every disagreement before failing.
struct Expect<'a> {
    log: &'a str,
    failures: Vec<String>,
}

impl<'a> Expect<'a> {
    fn new(log: &'a str) -> Self {
        Expect {
            log,
            failures: Vec::new(),
        }
    }

    fn that(&mut self, what: &str, ok: bool, got: impl std::fmt::Display) {
        if !ok {
            self.failures.push(format!("{what}\n    got: {got}"));
        }
    }

    fn out(&self, name: &str) -> &'a str {
        rk::section(self.log, name).unwrap_or("")
    }

    fn rc(&self, name: &str) -> Option<i64> {
        rk::section_rc(self.log, name)
    }

    fn json(&mut self, name: &str) -> Value {
        match serde_json::from_str(self.out(name)) {
            Ok(v) => v,
            Err(e) => {
                self.failures.push(format!(
                    "{name}: no JSON ({e}); stderr: {}",
                    rk::section(self.log, &format!("{name}-STDERR")).unwrap_or("")
                ));
                Value::Null
            }
        }
    }

    /// `name` exited `want`, with its output shown otherwise.
    fn exit(&mut self, name: &str, want: i64) {
        let got = self.rc(name);
        self.that(
            &format!("{name} exits {want}"),
            got == Some(want),
            format!(
                "{got:?}\n{}\nstderr: {}",
                self.out(name),
                rk::section(self.log, &format!("{name}-STDERR")).unwrap_or("")
            ),
        );
    }

    fn finish(self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} expectation(s) failed:\n\n{}",
            self.failures.len(),
            self.failures.join("\n\n")
        );
    }
}

fn check<'v>(doc: &'v Value, id: &str) -> &'v Value {
    doc["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or(&Value::Null)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

#[test]
fn bind_and_unbind_on_a_real_kernel_with_and_without_the_iommu() {
    let t0 = Instant::now();
    let rel = rk::kernel_release(missing);
    preflight(&rel);
    let (_keep, dir) = rk::work_dir("gvtg-realkernel-passthrough.");
    let initrd = dir.join("initramfs.cpio.gz");
    rk::mkinitramfs(
        &initrd,
        &rel,
        &[
            (
                "GVTG_RK_MODULES",
                "vfio vfio_iommu_type1 e1000e bochs".into(),
            ),
            ("GVTG_RK_SHIP", "vfio-pci".into()),
            (
                "GVTG_RK_TESTS",
                rk::script_dir()
                    .join("passthrough-tests.sh")
                    .display()
                    .to_string(),
            ),
        ],
    );
    let t_built = t0.elapsed();

    // ---- IOMMU on ----------------------------------------------------------------------------
    let on_log = dir.join("console-iommu-on.log");
    let (boot, log) = rk::boot(
        &initrd,
        &rel,
        &on_log,
        &[
            // vfio refuses groups whose IOMMU cannot enforce cache coherency: QEMU's VT-d
            // offers snoop control only when asked.
            ("GVTG_QEMU_IOMMU", "intel-iommu,snoop-control=on".into()),
            ("GVTG_KERNEL_APPEND", "GVTG_PT_MODE=on".into()),
            ("GVTG_BOOT_TIMEOUT", "120".into()),
        ],
        QEMU_DEVICES,
    );
    let t_on = t0.elapsed();
    println!("----- console log (IOMMU on) -----\n{log}\n----- end -----");
    assert!(
        boot.status.success() && log.contains("=====GVTG-INIT-DONE====="),
        "the IOMMU-on boot did not finish: {}\n{}",
        String::from_utf8_lossy(&boot.stderr),
        rk::tail(&log, 60)
    );
    let mut e = Expect::new(&log);
    let table = lspci(e.out("LSPCI"));
    let vga2 = by_class(&table, |f| {
        f.class >> 16 == 0x03 && f.boot_vga != Some(true)
    });
    let bootvga = by_class(&table, |f| f.boot_vga == Some(true));
    let nic = by_class(&table, |f| f.class >> 16 == 0x02);
    let audio = by_class(&table, |f| f.class >> 8 == 0x0403);
    let ahci = by_class(&table, |f| f.class >> 8 == 0x0106);
    let smbus = by_class(&table, |f| f.class >> 8 == 0x0c05);
    let bridge = by_class(&table, |f| f.class >> 8 == 0x0604);
    let (Some(vga2), Some(bootvga), Some(nic), Some(audio), Some(ahci), Some(smbus), Some(bridge)) =
        (vga2, bootvga, nic, audio, ahci, smbus, bridge)
    else {
        panic!(
            "the guest does not show the emulated devices:\n{}",
            e.out("LSPCI")
        );
    };
    let f = |a: &str| table[a].clone();
    let g_vga2 = f(&vga2).group;
    let g_audio = f(&audio).group;
    e.that(
        "every function is in an IOMMU group under VT-d",
        table.values().all(|x| x.group.is_some()),
        e.out("LSPCI"),
    );
    e.that(
        "the audio device shares its group with the PCI bridge it sits behind",
        g_audio.is_some() && f(&bridge).group == g_audio && !audio.starts_with("0000:00:"),
        format!("{audio} {g_audio:?}, {bridge} {:?}", f(&bridge).group),
    );
    e.that(
        "AHCI and SMBus (q35's multifunction 00:1f) share a group",
        f(&ahci).group.is_some() && f(&ahci).group == f(&smbus).group,
        format!("{:?} {:?}", f(&ahci).group, f(&smbus).group),
    );
    e.that(
        "the second display and the NIC start on their host drivers",
        f(&vga2).driver.as_deref() == Some("bochs-drm")
            && f(&vga2).id == "1234:1111"
            && f(&nic).driver.as_deref() == Some("e1000e"),
        format!("{:?} {:?}", f(&vga2), f(&nic)),
    );
    let groups_listed = e.out("GROUPS");
    e.that(
        "/sys/kernel/iommu_groups agrees with each device's iommu_group link",
        table.iter().all(|(a, x)| {
            x.group.is_some_and(|g| {
                groups_listed
                    .lines()
                    .any(|l| l == format!("/sys/kernel/iommu_groups/{g}/devices/{a}"))
            })
        }),
        groups_listed,
    );
    let g = g_vga2.unwrap_or(u32::MAX);

    // The candidate listing.
    e.exit("LIST", 0);
    let list = e.out("LIST");
    e.that(
        "the listing names both display devices, their groups, and the boot VGA",
        list.contains(&format!(
            "{vga2} (1234:1111 display controller, bochs-drm)\n  IOMMU group {g}: the device alone"
        )) && list.contains(&format!(
            "{bootvga} (1234:1111 VGA controller, bochs-drm) [boot VGA]"
        )),
        list,
    );

    // Doctor before: the group is not viable while bochs-drm holds the device.
    let d1 = e.json("DOCTOR1");
    e.exit("DOCTOR1", 1);
    let grp = check(&d1, "passthrough.group");
    e.that(
        "doctor before the bind: passthrough.group fails on bochs-drm",
        grp["status"] == "fail"
            && s(&grp["summary"]).contains(&format!("{vga2} in group {g} is bound to bochs-drm")),
        grp,
    );
    let nodes = check(&d1, "passthrough.vfio-nodes");
    e.that(
        "doctor before the bind: no /dev/vfio node yet",
        s(&nodes["summary"]).contains(&format!("no group node yet (/dev/vfio/{g})")),
        nodes,
    );

    // Dry run: the exact writes, nothing done.
    e.that(
        "vfio-pci is not loaded before the bind (so bind must modprobe it)",
        e.out("VFIOBEFORE") == "absent",
        e.out("VFIOBEFORE"),
    );
    e.exit("DRYRUN", 0);
    let dry = e.out("DRYRUN");
    let want_dry = format!(
        "modprobe vfio-pci\necho vfio-pci > /sys/bus/pci/devices/{vga2}/driver_override\necho {vga2} > /sys/bus/pci/devices/{vga2}/driver/unbind\necho {vga2} > /sys/bus/pci/drivers_probe"
    );
    e.that(
        "the dry run prints the writes in order",
        dry.contains("Dry run: nothing is written") && dry.ends_with(&want_dry),
        dry,
    );
    e.that(
        "the dry run changed nothing",
        e.out("DRYDRIVER") == "bochs-drm",
        e.out("DRYDRIVER"),
    );

    // Bind.
    let bind = e.json("BIND");
    e.exit("BIND", 0);
    let dev0 = &bind["devices"][0];
    e.that(
        "bind: done, vfio-pci loaded by gvtg, the device verified on vfio-pci, /dev/vfio/N reported",
        bind["result"] == "done"
            && bind["live"] == true
            && bind["modprobe"]["ran"] == true
            && dev0["address"] == vga2.as_str()
            && dev0["driver_before"] == "bochs-drm"
            && dev0["driver_after"] == "vfio-pci"
            && dev0["verified"] == true
            && bind["groups"][0]["number"] == g
            && bind["groups"][0]["node"] == format!("/dev/vfio/{g}")
            && bind["groups"][0]["present"] == true,
        &bind,
    );
    let bound: Vec<&str> = e.out("BOUND").lines().collect();
    e.that(
        "after the bind the kernel shows the driver link, the override and the group node",
        bound.len() == 3
            && bound[0].ends_with("/drivers/vfio-pci")
            && bound[1] == "vfio-pci"
            && bound[2].starts_with('c')
            && bound[2].ends_with(&format!("/dev/vfio/{g}")),
        e.out("BOUND"),
    );
    let d2 = e.json("DOCTOR2");
    let grp = check(&d2, "passthrough.group");
    e.that(
        "doctor after the bind: the group is viable",
        grp["status"] == "pass" && s(&grp["summary"]).starts_with("viable"),
        grp,
    );
    let nodes = check(&d2, "passthrough.vfio-nodes");
    e.that(
        "doctor after the bind: /dev/vfio/N ready",
        nodes["status"] == "pass" && s(&nodes["summary"]).contains(&format!("/dev/vfio/{g} ready")),
        nodes,
    );
    let binding = check(&d2, "passthrough.binding");
    e.that(
        "doctor after the bind: driver_override shown, not lasting",
        binding["status"] == "warn"
            && s(&binding["summary"]).contains("driver_override=vfio-pci")
            && binding["evidence"].as_array().is_some_and(|ev| {
                ev.iter().any(|x| {
                    x["path"] == format!("/sys/bus/pci/devices/{vga2}/driver_override")
                        && s(&x["excerpt"]).contains("/etc/driverctl.d")
                })
            }),
        binding,
    );

    // Unbind: bochs-drm takes it back, the node goes.
    let unbind = e.json("UNBIND");
    e.exit("UNBIND", 0);
    e.that(
        "unbind: back on bochs-drm, verified, node gone",
        unbind["result"] == "done"
            && unbind["devices"][0]["driver_after"] == "bochs-drm"
            && unbind["devices"][0]["verified"] == true
            && unbind["groups"][0]["present"] == false,
        &unbind,
    );
    e.that(
        "after the unbind the kernel shows bochs-drm, no override, no node",
        e.out("UNBOUND") == "driver=bochs-drm\noverride=(null)\nnode=absent",
        e.out("UNBOUND"),
    );

    // The audio device behind the bridge: the bridge is left alone.
    let ab = e.json("AUDIOBIND");
    e.exit("AUDIOBIND", 0);
    let ga = g_audio.unwrap_or(u32::MAX);
    e.that(
        "audio bind: only the endpoint, the bridge left alone, /dev/vfio/N present",
        ab["devices"].as_array().map(Vec::len) == Some(1)
            && ab["devices"][0]["address"] == audio.as_str()
            && ab["devices"][0]["driver_after"] == "vfio-pci"
            && ab["skipped"][0]["address"] == bridge.as_str()
            && s(&ab["skipped"][0]["reason"]).contains("PCI bridge stays with the host")
            && ab["groups"][0]["number"] == ga
            && ab["groups"][0]["present"] == true,
        &ab,
    );
    e.that(
        "the kernel has the audio device on vfio-pci",
        e.out("AUDIODRIVER") == "vfio-pci",
        e.out("AUDIODRIVER"),
    );
    e.exit("AUDIOUNBIND", 0);
    let au = e.out("AUDIOUNBIND");
    e.that(
        "audio unbind: no driver afterwards (snd-hda-intel is not in the initramfs), node gone",
        au.contains(&format!(
            "{audio}: vfio-pci -> no driver (no loaded driver claims it; load one: modprobe snd_hda_intel)"
        )) && au.contains(&format!("/dev/vfio/{ga}: gone")),
        au,
    );
    e.that(
        "the kernel has no driver on the audio device",
        e.out("AUDIOAFTER") == "none",
        e.out("AUDIOAFTER"),
    );

    // Refusals.
    e.exit("NIC", 3);
    let nic_text = e.out("NIC");
    e.that(
        "the only NIC is refused, nothing written",
        nic_text.contains(&format!("refused (only-nic): {nic} (8086:10d3 Intel network controller, e1000e) is the host's only network controller"))
            && nic_text.contains("(--force overrides this)")
            && nic_text.ends_with("Nothing was written."),
        nic_text,
    );
    let nj = e.json("NICJSON");
    e.that(
        "the only NIC in JSON",
        nj["result"] == "refused"
            && nj["exit_code"] == 3
            && nj["refusals"][0]["kind"] == "only-nic"
            && nj["refusals"][0]["overridable"] == true,
        &nj,
    );
    e.exit("NICFORCEDRY", 0);
    e.that(
        "--force with --dry-run warns and plans",
        e.out("NICFORCEDRY").contains("WARNING (--force, only-nic)")
            && e.out("NICFORCEDRY")
                .ends_with(&format!("echo {nic} > /sys/bus/pci/drivers_probe")),
        e.out("NICFORCEDRY"),
    );
    e.that(
        "the NIC stays on e1000e",
        e.out("NICDRIVER") == "e1000e",
        e.out("NICDRIVER"),
    );
    let st = e.json("STORAGE");
    e.exit("STORAGE", 3);
    e.that(
        "binding the SMBus function is refused: its group holds the AHCI controller",
        st["refusals"].as_array().map(Vec::len) == Some(1)
            && st["refusals"][0]["kind"] == "storage"
            && st["refusals"][0]["address"] == ahci.as_str()
            && s(&st["refusals"][0]["message"]).contains("storage controller")
            && s(&st["refusals"][0]["message"])
                .contains("the root filesystem is rootfs (rootfs), on no disk"),
        &st,
    );
    e.that(
        "the AHCI controller stays unbound",
        e.out("STORAGEDRIVER") == "none",
        e.out("STORAGEDRIVER"),
    );
    let bv = e.json("BOOTVGA");
    e.exit("BOOTVGA", 3);
    e.that(
        "the boot VGA with bochs-drm and fbcon on it needs --force",
        bv["refusals"][0]["kind"] == "boot-vga"
            && bv["refusals"][0]["overridable"] == true
            && s(&bv["refusals"][0]["message"]).contains("driven by bochs-drm")
            && s(&bv["refusals"][0]["message"]).contains("frame buffer device"),
        &bv,
    );
    e.that(
        "the boot VGA stays on bochs-drm",
        e.out("BOOTVGADRIVER") == "bochs-drm",
        e.out("BOOTVGADRIVER"),
    );
    e.finish("IOMMU on");

    // ---- IOMMU off ---------------------------------------------------------------------------
    let off_log = dir.join("console-iommu-off.log");
    let (boot, log) = rk::boot(
        &initrd,
        &rel,
        &off_log,
        &[
            ("GVTG_QEMU_IOMMU", "off".into()),
            ("GVTG_KERNEL_APPEND", "GVTG_PT_MODE=off".into()),
            ("GVTG_BOOT_TIMEOUT", "120".into()),
        ],
        QEMU_DEVICES,
    );
    println!("----- console log (IOMMU off) -----\n{log}\n----- end -----");
    println!(
        "initramfs {:.1}s, IOMMU-on boot {:.1}s, IOMMU-off boot {:.1}s",
        t_built.as_secs_f64(),
        (t_on - t_built).as_secs_f64(),
        (t0.elapsed() - t_on).as_secs_f64()
    );
    assert!(
        boot.status.success() && log.contains("=====GVTG-INIT-DONE====="),
        "the IOMMU-off boot did not finish: {}\n{}",
        String::from_utf8_lossy(&boot.stderr),
        rk::tail(&log, 60)
    );
    let mut e = Expect::new(&log);
    let table = lspci(e.out("LSPCI"));
    e.that(
        "the same devices, none in an IOMMU group",
        table.len() >= 8 && table.values().all(|x| x.group.is_none()) && table.contains_key(&vga2),
        e.out("LSPCI"),
    );
    e.that(
        "/sys/kernel/iommu_groups is empty",
        e.out("GROUPS").is_empty(),
        e.out("GROUPS"),
    );
    let od = e.json("OFFDOCTOR");
    let st = check(&od, "iommu.state");
    e.that(
        "doctor: the IOMMU is off",
        s(&st["summary"]).starts_with("no IOMMU"),
        st,
    );
    let pio = check(&od, "passthrough.iommu");
    e.that(
        "doctor: passthrough.iommu fails (not a mere VM warning) and names the VM",
        pio["status"] == "fail"
            && s(&pio["summary"]).starts_with("no Intel VT-d: the firmware has no ACPI DMAR table")
            && s(&pio["summary"]).contains("running inside a VM"),
        pio,
    );
    let grp = check(&od, "passthrough.group");
    e.that(
        "doctor: the group check is skipped behind the IOMMU failure",
        grp["status"] == "skip" && s(&grp["summary"]).contains("needs passthrough.iommu"),
        grp,
    );
    let ob = e.json("OFFBIND");
    e.exit("OFFBIND", 3);
    e.that(
        "bind with the IOMMU off is refused, not overridable",
        ob["result"] == "refused"
            && ob["refusals"].as_array().map(Vec::len) == Some(1)
            && ob["refusals"][0]["kind"] == "iommu-off"
            && ob["refusals"][0]["overridable"] == false
            && s(&ob["refusals"][0]["remedy"]).contains("no-IOMMU mode"),
        &ob,
    );
    e.exit("OFFFORCE", 3);
    e.that(
        "--force does not override the IOMMU being off",
        e.out("OFFFORCE").contains("refused (iommu-off)")
            && e.out("OFFFORCE")
                .contains("(--force does not override this)"),
        e.out("OFFFORCE"),
    );
    e.that(
        "the device stays on bochs-drm",
        e.out("OFFDRIVER") == "bochs-drm",
        e.out("OFFDRIVER"),
    );
    e.finish("IOMMU off");
}
