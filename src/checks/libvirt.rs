//! `libvirt.qemu-conf` and `libvirt.seccomp`: /etc/libvirt/qemu.conf read with libvirt's own
//! rules (src/util/virconf.c: the *first* occurrence of a key wins) and judged as far as it
//! affects how a vGPU reaches QEMU.
//!
//! Setting `cgroup_device_acl` *replaces* libvirt's default list (src/qemu/qemu.conf.in), so a
//! list copied from a guide that lacks `/dev/kvm` or `/dev/urandom` breaks every VM once the
//! devices controller is active. Host-device nodes such as `/dev/vfio/N` are added per domain by
//! libvirt itself and need not be listed.

use super::{support, Check, Outcome, Prior, Status};
use crate::host::{Probe, Snapshot};
use crate::parse::qemu_conf::{self, QemuConf};

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "libvirt.qemu-conf",
        title: "libvirt qemu.conf lets QEMU use the vGPU",
        requires: &[],
        explain: include_str!("../../checks/libvirt.qemu-conf.md"),
        run: check_libvirt_qemu_conf,
    },
    Check {
        id: "libvirt.seccomp",
        title: "QEMU seccomp sandbox",
        requires: &[],
        explain: include_str!("../../checks/libvirt.seccomp.md"),
        run: check_libvirt_seccomp,
    },
];

pub use super::support::DEFAULT_ACL;
/// Entries without which QEMU does not start (KVM, its terminal and RNG); the rest degrade.
const ESSENTIAL_ACL: &[&str] = &["/dev/null", "/dev/kvm", "/dev/ptmx", "/dev/urandom"];

enum Conf<'a> {
    Absent,
    Parsed(&'a str, QemuConf),
    Broken(Outcome),
}

fn load(s: &Snapshot) -> Conf<'_> {
    match &s.qemu_conf {
        Probe::Ok(f) => match qemu_conf::parse(&f.text) {
            Ok(c) => Conf::Parsed(&f.path, c),
            Err(e) => Conf::Broken(
                Outcome::fail(format!("{} does not parse: {e}; libvirtd refuses to start with it", f.path))
                    .with(f.path.clone(), f.text.lines().nth(e.line.saturating_sub(1)).unwrap_or("").to_string())
                    .fix(format!("Fix the syntax at line {}, column {} of {} (values are \"strings\", integers or [ \"lists\", ]), then `sudo systemctl restart libvirtd` (or virtqemud).", e.line, e.column, f.path)),
            ),
        },
        Probe::Missing => Conf::Absent,
        Probe::Denied => Conf::Broken(Outcome::skip("/etc/libvirt/qemu.conf is not readable: run with sudo")),
        Probe::Invalid(m) => Conf::Broken(Outcome::error(format!("/etc/libvirt/qemu.conf: {m}"))),
    }
}

fn check_libvirt_qemu_conf(s: &Snapshot, _: &Prior) -> Outcome {
    let (path, conf) = match load(s) {
        Conf::Absent if !s.libvirt_present => {
            return Outcome::skip("libvirt is not installed (no /etc/libvirt): nothing to judge")
        }
        Conf::Absent => return Outcome::pass("no /etc/libvirt/qemu.conf: libvirt's built-in defaults apply (devices cgroup ACL includes /dev/kvm)"),
        Conf::Broken(o) => return o,
        Conf::Parsed(p, c) => (p.to_string(), c),
    };
    let mut o = Outcome::pass("");
    let mut notes: Vec<String> = Vec::new();
    let mut fixes: Vec<String> = Vec::new();

    for (name, lines) in conf.duplicates() {
        o.at_least(Status::Warn);
        notes.push(format!(
            "`{name}` is set {} times; libvirt uses only the first (line {})",
            lines.len(),
            lines[0]
        ));
        o.push(
            format!(
                "{path}:{}",
                lines[1..]
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            format!("{name}: ignored later occurrence(s)"),
        );
        fixes.push(format!("Delete the later `{name} = …` lines (or edit the first one): qemu.conf's first occurrence wins."));
    }

    let controllers: Vec<String> = match conf.get_list("cgroup_controllers") {
        Some(l) => l.into_iter().map(str::to_string).collect(),
        None => ["cpu", "devices", "memory", "blkio", "cpuset", "cpuacct"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let devices_on = controllers.iter().any(|c| c == "devices");
    if let Some(e) = conf.get("cgroup_controllers") {
        o.push(
            format!("{path}:{}", e.line),
            format!("cgroup_controllers = [{}]", controllers.join(", ")),
        );
    }
    if let Some(acl) = conf.get_list("cgroup_device_acl") {
        let line = conf.get("cgroup_device_acl").map(|e| e.line).unwrap_or(0);
        let missing: Vec<&str> = DEFAULT_ACL
            .iter()
            .copied()
            .filter(|d| !acl.contains(d))
            .collect();
        let essential: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|d| ESSENTIAL_ACL.contains(d))
            .collect();
        o.push(
            format!("{path}:{line}"),
            format!("cgroup_device_acl = [{}]", acl.join(", ")),
        );
        if devices_on && !essential.is_empty() {
            o.at_least(Status::Fail);
            notes.push(format!(
                "cgroup_device_acl replaces libvirt's default list and lacks {}: QEMU cannot open them while the devices controller is active",
                essential.join(", ")
            ));
        } else if devices_on && !missing.is_empty() {
            o.at_least(Status::Warn);
            notes.push(format!(
                "cgroup_device_acl lacks default entries {}",
                missing.join(", ")
            ));
        }
        if !missing.is_empty() {
            let mut merged: Vec<String> = acl.iter().map(|s| s.to_string()).collect();
            for m in &missing {
                merged.push(m.to_string());
            }
            fixes.push(format!(
                "Setting cgroup_device_acl replaces the defaults; keep them and add yours:\n    cgroup_device_acl = [\n{}\n    ]\nthen restart libvirtd (or virtqemud).",
                merged.iter().map(|m| format!("        \"{m}\",")).collect::<Vec<_>>().join("\n")
            ));
        }
        for obsolete in ["/dev/kqemu", "/dev/rtc", "/dev/hpet"] {
            if acl.contains(&obsolete) {
                notes.push(format!(
                    "{obsolete} in cgroup_device_acl is from an old default (harmless)"
                ));
            }
        }
    }

    // user/group: root, placeholders, unknown accounts.
    let id = support::qemu_identity(s);
    for (key, val) in [
        ("user", conf.get_str("user")),
        ("group", conf.get_str("group")),
    ] {
        let Some(v) = val else { continue };
        let line = conf.get(key).map(|e| e.line).unwrap_or(0);
        o.push(format!("{path}:{line}"), format!("{key} = \"{v}\""));
        if v.starts_with('$') || v.contains('<') || v.contains("USER") {
            o.at_least(Status::Fail);
            notes.push(format!("{key} = \"{v}\" is a placeholder copied from a guide (qemu.conf does not expand variables)"));
            fixes.push(format!("Replace {key} = \"{v}\" with a real account name, or delete the line to use the packaged default."));
        } else if v == "root" || v == "+0" {
            if key == "user" {
                o.at_least(Status::Warn);
                notes.push(
                    "QEMU runs as root: a VM escape owns the host; GVT-g does not need it".into(),
                );
                fixes.push("Remove `user = \"root\"` (and group) so QEMU runs as the packaged unprivileged user; vGPU access is granted per VM by libvirt.".into());
            }
        } else if key == "user" && s.users.is_ok() && support::resolve_user(s, v).is_none() {
            o.at_least(Status::Fail);
            notes.push(format!(
                "user \"{v}\" does not exist in /etc/passwd: libvirt cannot start any VM"
            ));
            fixes.push(format!(
                "Create the account or set `user` to an existing one (currently resolved from {}).",
                id.source
            ));
        }
    }
    if let Some(sd) = conf.get("security_driver") {
        let v = match &sd.value {
            qemu_conf::Value::Str(s) => s.clone(),
            qemu_conf::Value::List(l) => format!("{l:?}"),
            qemu_conf::Value::Int(i) => i.to_string(),
        };
        o.push(
            format!("{path}:{}", sd.line),
            format!("security_driver = {v}"),
        );
        if v.contains("none") {
            o.at_least(Status::Warn);
            notes.push("security_driver = \"none\" turns off SELinux/AppArmor confinement of QEMU; vGPUs work without doing that".into());
        }
    }
    if conf.get_int("dynamic_ownership") == Some(0) {
        o.push(path.clone(), "dynamic_ownership = 0");
        notes.push("dynamic_ownership = 0: libvirt will not chown /dev/vfio/N for the VM; a udev rule must give the QEMU user access (see vfio.permissions)".into());
    }
    if notes.is_empty() {
        o.summary = format!(
            "{path} parses; QEMU runs as {}:{}{}",
            id.user,
            id.group,
            if devices_on {
                "; devices cgroup ACL keeps /dev/kvm"
            } else {
                ""
            }
        );
    } else {
        o.summary = notes.join("; ");
    }
    if !fixes.is_empty() {
        o.remedy = Some(fixes.join("\n"));
    }
    o
}

fn check_libvirt_seccomp(s: &Snapshot, _: &Prior) -> Outcome {
    let (path, conf) = match load(s) {
        Conf::Absent if !s.libvirt_present => return Outcome::skip("libvirt is not installed"),
        Conf::Absent => {
            return Outcome::pass(
                "seccomp_sandbox not set: libvirt's default (QEMU's -sandbox on) applies",
            )
        }
        Conf::Broken(o) => {
            return if o.status == Status::Fail {
                Outcome::skip("qemu.conf does not parse (see libvirt.qemu-conf)")
            } else {
                o
            }
        }
        Conf::Parsed(p, c) => (p.to_string(), c),
    };
    let mut o = match conf.get("seccomp_sandbox") {
        None => Outcome::pass(
            "seccomp_sandbox not set: libvirt's default applies (QEMU's syscall filter on)",
        ),
        Some(e) => {
            let ev = format!("{path}:{}", e.line);
            match conf.get_int("seccomp_sandbox") {
                Some(1) => Outcome::pass("seccomp_sandbox = 1: QEMU runs with its syscall filter").with(ev, "seccomp_sandbox = 1"),
                Some(0) => Outcome::warn("seccomp_sandbox = 0: QEMU runs without its syscall filter; nothing in GVT-g needs it off")
                    .with(ev, "seccomp_sandbox = 0")
                    .fix(format!("Delete the line (or set seccomp_sandbox = 1) in {path} and restart libvirtd; if a VM then fails with SIGSYS, report the QEMU version and keep it off only for that.")),
                Some(-1) => Outcome::pass("seccomp_sandbox = -1: QEMU's own default").with(ev, "seccomp_sandbox = -1"),
                _ => Outcome::warn("seccomp_sandbox has an unexpected value (expected 1, 0 or -1)").with(ev, "seccomp_sandbox = ?"),
            }
        }
    };
    if let Some(e) = conf.get("clear_emulator_capabilities") {
        if conf.get_int("clear_emulator_capabilities") == Some(0) {
            o.at_least(Status::Warn);
            o.summary
                .push_str("; clear_emulator_capabilities = 0 lets QEMU keep its privileges");
            o.push(
                format!("{path}:{}", e.line),
                "clear_emulator_capabilities = 0",
            );
        }
    }
    for misspelt in [
        "clear_emulation_capabilities",
        "seccomp_sandbox_mode",
        "seccomp",
    ] {
        if let Some(e) = conf.get(misspelt) {
            o.at_least(Status::Warn);
            o.summary.push_str(&format!(
                "; `{misspelt}` is not a qemu.conf key and is ignored"
            ));
            o.push(
                format!("{path}:{}", e.line),
                format!("{misspelt} (unknown key)"),
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{sample, snapshot_with};

    fn conf(text: &str) -> Snapshot {
        snapshot_with(|t| {
            t.file("etc/libvirt/qemu.conf", text);
            t.file(
                "etc/passwd",
                "root:x:0:0::/:/bin/sh\nlibvirt-qemu:x:64055:64055::/:/bin/false\n",
            );
        })
    }

    #[test]
    fn stock_conf_passes() {
        let s = conf(&sample(
            "qemuconf/libvirt-upstream-qemu.conf.in-excerpt.conf",
        ));
        let o = check_libvirt_qemu_conf(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
    }

    #[test]
    fn replaced_acl_without_kvm_fails_and_fix_merges() {
        let s = conf(&sample(
            "qemuconf/akiko97-vtcm-cgroup-device-acl-append.conf",
        ));
        let o = check_libvirt_qemu_conf(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("/dev/kvm"));
        assert!(o.remedy.unwrap().contains("\"/dev/kvm\","));
    }

    #[test]
    fn first_key_wins_and_root_warns() {
        let s = conf("user = \"root\"\nuser = \"libvirt-qemu\"\n");
        let o = check_libvirt_qemu_conf(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Warn);
        assert!(o.summary.contains("only the first"));
        assert!(o.summary.contains("root"));
    }

    #[test]
    fn placeholder_user_fails() {
        let s = conf(&sample(
            "qemuconf/peterge1998-qemu.conf-user-kvm-evdev-acl.conf",
        ));
        let o = check_libvirt_qemu_conf(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("placeholder"));
    }

    #[test]
    fn syntax_error_is_located() {
        let s = conf("user = \"qemu\"\ncgroup_device_acl = [ \"/dev/null\" \"/dev/kvm\" ]\n");
        let o = check_libvirt_qemu_conf(&s, &Prior { done: &[] });
        assert_eq!(o.status, Status::Fail);
        assert!(o.summary.contains("line 2"), "{}", o.summary);
        assert_eq!(
            check_libvirt_seccomp(&s, &Prior { done: &[] }).status,
            Status::Skip
        );
    }

    #[test]
    fn seccomp_off_warns() {
        let s = conf("seccomp_sandbox = 0\n");
        assert_eq!(
            check_libvirt_seccomp(&s, &Prior { done: &[] }).status,
            Status::Warn
        );
        let s = conf("seccomp_sandbox = 1\n");
        assert_eq!(
            check_libvirt_seccomp(&s, &Prior { done: &[] }).status,
            Status::Pass
        );
    }
}
