//! `i915.enable-gvt` and `i915.guc`: the two i915 parameters GVT-g depends on, judged from
//! every place they can be set (kernel command line, modprobe.d) and from the live value.
//!
//! Precedence follows the kernel and kmod: modprobe.d options are applied in file order, then the
//! command line's `i915.x=` (kmod appends it last, libkmod-module.c), and for a bool the last
//! value wins. A built-in i915 sees only the command line. The live value in
//! `/sys/module/i915/parameters/` is root-only for `enable_gvt` (0400, i915_params.c).

use super::support::{self, ParamSource};
use super::{Check, Outcome, Prior, Status};
use crate::host::{Probe, Snapshot};
use crate::parse::modprobe::ProblemKind;

pub(super) const CHECKS: &[Check] = &[
    Check {
        id: "i915.enable-gvt",
        title: "i915.enable_gvt=1 is set",
        requires: &[],
        explain: include_str!("../../checks/i915.enable-gvt.md"),
        run: check_i915_enable_gvt,
    },
    Check {
        id: "i915.guc",
        title: "GuC submission is not forced on",
        requires: &[],
        explain: include_str!("../../checks/i915.guc.md"),
        run: check_i915_guc,
    },
];

/// Places a parameter can be set that exist but could not be read (a link out of a captured
/// tree, a FIFO, an oversized file), as evidence lines: the verdict was reached without them.
fn unreadable_sources(s: &Snapshot) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut probe = |path: &str, state: Option<String>| {
        if let Some(m) = state {
            out.push((path.to_string(), format!("not read: {m}")));
        }
    };
    let why = |p: &Probe<()>| match p {
        Probe::Denied => Some("permission denied".to_string()),
        Probe::Invalid(m) => Some(m.clone()),
        _ => None,
    };
    probe("/proc/cmdline", why(&s.cmdline.as_ref().map(|_| ())));
    probe(
        "/etc/default/grub",
        why(&s.grub_default.as_ref().map(|_| ())),
    );
    probe(
        "/etc/kernel/cmdline",
        why(&s.kernel_cmdline_file.as_ref().map(|_| ())),
    );
    out.extend(
        s.modprobe_unreadable
            .iter()
            .map(|(p, m)| (p.clone(), format!("not read: {m}"))),
    );
    out
}

/// Mistakes in config files and the command line that mention a parameter, as evidence lines.
fn mistakes(s: &Snapshot, needle: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (file, mf) in &s.modprobe {
        for p in &mf.problems {
            if !p.raw.contains(needle) && !matches!(p.kind, ProblemKind::PlaceholderToken(_)) {
                continue;
            }
            let msg = match &p.kind {
                ProblemKind::CmdlineSyntax { suggestion } => format!(
                    "`{}` is kernel-command-line syntax; modprobe ignores this line. Write: {suggestion}",
                    p.raw.trim()
                ),
                ProblemKind::PlaceholderToken(t) => format!(
                    "`{}` holds the placeholder `{t}` copied from a guide; modprobe passes it to the module as-is",
                    p.raw.trim()
                ),
                ProblemKind::UnknownDirective(d) => {
                    format!("`{}`: unknown directive `{d}`, line ignored by modprobe", p.raw.trim())
                }
                ProblemKind::MissingArgument => format!("`{}`: missing argument, line ignored", p.raw.trim()),
            };
            if p.raw.contains(needle)
                || matches!(p.kind, ProblemKind::PlaceholderToken(_)) && p.raw.contains("i915")
            {
                out.push((format!("{file}:{}", p.line), msg));
            }
        }
    }
    if let Some(g) = s.grub_default.ok() {
        for a in g.misnamed_cmdline_vars() {
            if a.value.contains(needle) {
                out.push((
                    format!("/etc/default/grub:{}", a.line),
                    format!(
                        "`{}`: grub-mkconfig reads only GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT, so {} is never used",
                        a.raw.trim(),
                        a.name
                    ),
                ));
            }
        }
    }
    if let Some(c) = s.cmdline.ok() {
        for sus in crate::parse::cmdline::suspicious(c) {
            if sus.raw.contains("i915") || sus.raw.contains(needle) {
                out.push((
                    "/proc/cmdline".into(),
                    format!("`{}`: {}", sus.raw, sus.message),
                ));
            }
        }
    }
    out
}

/// Whether `/etc/default/grub` (when present) would put `i915.<param>` on the next boot's
/// command line, and the value.
fn grub_next_boot(s: &Snapshot, key: &str) -> Option<String> {
    let g = s.grub_default.ok()?;
    for var in ["GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"] {
        if let Some(a) = g.get(var) {
            let c = crate::parse::cmdline::parse(&a.value);
            if let Some(p) = c.module_param("i915", key).last() {
                return Some(p.value.clone().unwrap_or_default());
            }
        }
    }
    None
}

/// Where the next boot's kernel command line turns enable_gvt on, when the running one does not
/// need to: `/etc/default/grub` (`GRUB_CMDLINE_LINUX[_DEFAULT]`) or `/etc/kernel/cmdline`
/// (systemd-boot, kernel-install, proxmox-boot-tool). This is what `gvtg fix` writes; the
/// running kernel only sees it after a reboot.
fn gvt_next_boot(s: &Snapshot) -> Option<&'static str> {
    let on = |v: String| support::kernel_bool(if v.is_empty() { "1" } else { &v }) == Some(true);
    if grub_next_boot(s, "enable_gvt").is_some_and(on) {
        return Some("/etc/default/grub");
    }
    let k = s.kernel_cmdline_file.ok()?;
    let c = crate::parse::cmdline::parse(k);
    let v = c.module_param("i915", "enable_gvt").last()?.value.clone();
    on(v.unwrap_or_default()).then_some("/etc/kernel/cmdline")
}

/// On a non-Intel CPU, i915 settings cannot apply. On an Intel host whose iGPU is not visible
/// (disabled in firmware, a guest) they are still judged: configuration is reported even when
/// the hardware checks fail, so one run shows everything there is to fix.
fn no_igd_skip(s: &Snapshot) -> Option<Outcome> {
    let vendor = s.cpuinfo.ok().and_then(|c| c.vendor_id.clone());
    match vendor.as_deref() {
        Some(v) if v != "GenuineIntel" && !support::has_intel_igd(s) => Some(Outcome::skip(
            format!("{v} CPU without an Intel iGPU: i915 settings do not apply"),
        )),
        _ => None,
    }
}

fn check_i915_enable_gvt(s: &Snapshot, _: &Prior) -> Outcome {
    if let Some(o) = no_igd_skip(s) {
        return o;
    }
    let sources: Vec<ParamSource> = support::configured_param(s, "i915", "enable_gvt");
    let live = s
        .i915_params
        .get("enable_gvt")
        .cloned()
        .unwrap_or(Probe::Missing);
    let effective = sources.last();
    let configured_on = effective
        .and_then(|p| support::kernel_bool(p.value.as_deref().unwrap_or("1")))
        .unwrap_or(false);
    let problems = mistakes(s, "enable_gvt");
    let fix = format!(
        "{}\n(or for a modular i915: `options i915 enable_gvt=1` in /etc/modprobe.d/i915-gvt.conf, then {} and reboot)",
        support::add_kernel_params(s, "i915.enable_gvt=1"),
        support::regen_initramfs(s)
    );

    let mut o = match (&live, configured_on) {
        (Probe::Ok(v), _) if support::kernel_bool(v) == Some(true) => {
            Outcome::pass("i915 is running with enable_gvt=Y")
        }
        (Probe::Ok(v), on) => {
            let mut o = Outcome::fail(format!("i915 is running with enable_gvt={v}"));
            if on {
                o.summary.push_str(
                    ", although the configuration sets it: the setting has not taken effect",
                );
                o = o.fix(format!(
                    "The value is configured but i915 loaded without it. If it is in modprobe.d, i915 was probably loaded from the initramfs: {} and reboot. If it is on the kernel command line of the next boot only, reboot.",
                    support::regen_initramfs(s)
                ));
            } else {
                o = o.fix(fix.clone());
            }
            o
        }
        (Probe::Missing, _)
            if s.module_present("i915") && s.modules.sys_module.contains("i915") =>
        {
            // i915 is loaded but has no enable_gvt parameter: a kernel without CONFIG_DRM_I915_GVT.
            Outcome::fail("i915 is loaded but has no enable_gvt parameter: this kernel was built without GVT-g (see kernel.support)")
                .fix("Boot a kernel built with CONFIG_DRM_I915_GVT_KVMGT (see `gvtg explain kernel.support`).")
        }
        (_, true) => {
            let how = match &live {
                Probe::Denied => " (live value not readable: /sys/module/i915/parameters/enable_gvt is root-only; run with sudo to confirm)",
                Probe::Missing => " (i915 is not loaded, so there is no live value)",
                _ => "",
            };
            Outcome::pass(format!(
                "enable_gvt=1 configured in {}{how}",
                effective.map(|e| e.origin.as_str()).unwrap_or("?")
            ))
        }
        (_, false) => {
            let mut o = Outcome::fail(match effective {
                Some(e) => format!(
                    "enable_gvt is set to {:?} in {}, which disables GVT-g",
                    e.value.as_deref().unwrap_or(""),
                    e.origin
                ),
                None => {
                    "i915.enable_gvt=1 is set neither on the kernel command line nor in modprobe.d"
                        .into()
                }
            });
            if let Probe::Denied = live {
                o.summary
                    .push_str(" (live value is root-only: run with sudo to read it)");
            }
            o.fix(fix.clone())
        }
    };
    if o.status == Status::Fail && !o.summary.contains("without GVT-g") {
        if let Some(origin) = gvt_next_boot(s) {
            o.status = Status::Warn;
            o.summary.push_str(&format!(
                "; {origin} sets i915.enable_gvt=1 for the next boot: reboot for it to take effect"
            ));
            o.evidence.push(crate::checks::Evidence {
                path: origin.to_string(),
                excerpt: "i915.enable_gvt=1 (next boot)".into(),
            });
            o.remedy = Some("Configured for the next boot: reboot (after regenerating the boot configuration, e.g. update-grub, if that has not been done).".into());
        }
    }
    if o.status == Status::Pass
        && grub_next_boot(s, "enable_gvt").is_some_and(|v| {
            support::kernel_bool(if v.is_empty() { "1" } else { &v }) == Some(false)
        })
    {
        o.status = Status::Warn;
        o.summary
            .push_str("; but /etc/default/grub sets it off for the next boot");
    }
    if o.status == Status::Fail && !configured_on {
        if let Some(v) = grub_next_boot(s, "enable_gvt") {
            if support::kernel_bool(if v.is_empty() { "1" } else { &v }) == Some(true) {
                o.summary.push_str("; /etc/default/grub has it, so grub.cfg was not regenerated or the machine was not rebooted since");
            }
        }
    }
    for src in &sources {
        o.push(
            src.origin.clone(),
            format!(
                "i915 enable_gvt={}",
                src.value.as_deref().unwrap_or("(no value: means 1)")
            ),
        );
    }
    match &live {
        Probe::Ok(v) => o.push("/sys/module/i915/parameters/enable_gvt", v.clone()),
        Probe::Denied => o.push(
            "/sys/module/i915/parameters/enable_gvt",
            "permission denied (root-only)",
        ),
        _ => {}
    }
    if !problems.is_empty() {
        if o.status == Status::Fail {
            o.summary.push_str(&format!(
                "; {} configuration line(s) meant to set it are ignored (see the evidence)",
                problems.len()
            ));
        }
        if o.status == Status::Pass {
            o.status = Status::Warn;
            o.summary
                .push_str("; the configuration also holds mistakes");
        }
        for (p, m) in problems {
            o.push(p, m);
        }
    }
    for (p, m) in unreadable_sources(s) {
        o.push(p, m);
    }
    o
}

/// Parses an `enable_guc` value as the kernel does (kstrtoint, base auto-detected).
fn guc_value(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else {
        v.parse().ok()
    }
}

fn check_i915_guc(s: &Snapshot, _: &Prior) -> Outcome {
    if let Some(o) = no_igd_skip(s) {
        return o;
    }
    let sources = support::configured_param(s, "i915", "enable_guc");
    let live = s
        .i915_params
        .get("enable_guc")
        .and_then(|p| p.ok())
        .and_then(|v| guc_value(v));
    let configured = sources
        .last()
        .and_then(|p| p.value.as_deref().and_then(guc_value));
    let value = live.or(configured);
    let origin = if live.is_some() {
        "/sys/module/i915/parameters/enable_guc".to_string()
    } else {
        sources.last().map(|p| p.origin.clone()).unwrap_or_default()
    };
    let remove_fix = "Remove `i915.enable_guc=…` from the kernel command line and `enable_guc=…` from `options i915` in /etc/modprobe.d (auto already disables GuC submission below Gen12, and GVT-g platforms are Gen8/Gen9); regenerate the boot configuration and initramfs, then reboot.";
    let mut o = match value {
        None => Outcome::pass(
            "enable_guc is not set (auto): GuC submission stays off on GVT-g platforms (Gen8/Gen9)",
        ),
        Some(-1) => Outcome::pass(
            "enable_guc is auto (-1): GuC submission stays off on GVT-g platforms (Gen8/Gen9)",
        ),
        Some(0) => Outcome::pass(
            "enable_guc=0 (GuC and HuC off); harmless, though unnecessary on current kernels",
        ),
        Some(2) => Outcome::pass("enable_guc=2 (HuC firmware load only); compatible with GVT-g"),
        Some(v) if v & !3 != 0 => Outcome::warn(format!(
            "enable_guc={v} has undocumented bits (only 1 = GuC submission and 2 = HuC exist); i915 logs 'Incompatible option enable_guc={v} - undocumented flag'"
        ))
        .fix(remove_fix),
        Some(v) => Outcome::warn(format!(
            "enable_guc={v} asks for GuC submission. On Gen9 current kernels ignore it ('Incompatible option enable_guc={v} - GuC submission is N/A'), but kernels before about 5.7 refused GVT-g ('Graphics virtualization is not yet supported with GuC submission') and older ones failed the whole i915 probe; the parameter also taints the kernel"
        ))
        .fix(remove_fix),
    };
    if let Some(v) = value {
        o.push(origin, format!("enable_guc={v}"));
    }
    for src in sources.iter().rev().skip(usize::from(live.is_none())) {
        o.push(
            src.origin.clone(),
            format!("enable_guc={}", src.value.as_deref().unwrap_or("")),
        );
    }
    // A GuC error in the log makes this a hard failure whatever the value.
    if let Some(log) = s.kernel_log.ok() {
        let path = &log.path;
        if let Some(r) = log
            .containing(&["not yet supported with GuC submission"])
            .next()
        {
            o.status = Status::Fail;
            o.summary = format!(
                "GVT-g refused to start because of GuC submission ({})",
                o.summary
            );
            o.push(path.clone(), r.text.clone());
            if o.remedy.is_none() {
                o.remedy = Some(remove_fix.into());
            }
        }
    }
    for (p, m) in unreadable_sources(s) {
        o.push(p, m);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::snapshot_with;

    fn gvt(s: &Snapshot) -> Outcome {
        check_i915_enable_gvt(s, &Prior { done: &[] })
    }

    #[test]
    fn cmdline_sets_it() {
        let s = snapshot_with(|t| {
            t.file(
                "proc/cmdline",
                "BOOT_IMAGE=/vmlinuz root=/dev/sda1 i915.enable_gvt=1 quiet\n",
            );
        });
        assert_eq!(gvt(&s).status, Status::Pass);
    }

    #[test]
    fn modprobe_cmdline_syntax_is_caught() {
        let s = snapshot_with(|t| {
            t.file("proc/cmdline", "quiet\n");
            t.file("etc/modprobe.d/i915.conf", "i915.enable_gvt=1\n");
        });
        let o = gvt(&s);
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.evidence
                .iter()
                .any(|e| e.excerpt.contains("options i915 enable_gvt=1")),
            "{o:?}"
        );
    }

    #[test]
    fn unreadable_sources_are_named_in_the_evidence() {
        let s = snapshot_with(|t| {
            t.file("proc/cmdline", "quiet\n");
            t.file("sys/module/i915/parameters/enable_gvt", "Y\n");
            t.dir("etc/modprobe.d/i915.conf");
            t.link("etc/default/grub", "/etc/passwd");
        });
        let o = gvt(&s);
        assert_eq!(
            o.status,
            Status::Pass,
            "the live value still decides: {o:?}"
        );
        let has = |path: &str, text: &str| {
            o.evidence
                .iter()
                .any(|e| e.path == path && e.excerpt.contains(text))
        };
        assert!(has("/etc/modprobe.d/i915.conf", "is a directory"), "{o:?}");
        assert!(
            has("/etc/default/grub", "outside the captured tree"),
            "{o:?}"
        );
        let guc = check_i915_guc(&s, &Prior { done: &[] });
        assert!(
            guc.evidence
                .iter()
                .any(|e| e.path == "/etc/modprobe.d/i915.conf"),
            "{guc:?}"
        );
    }

    #[test]
    fn cmdline_wins_over_modprobe() {
        let s = snapshot_with(|t| {
            t.file("proc/cmdline", "i915.enable_gvt=0\n");
            t.file("etc/modprobe.d/i915.conf", "options i915 enable_gvt=1\n");
        });
        assert_eq!(gvt(&s).status, Status::Fail);
    }

    #[test]
    fn live_value_decides() {
        let s = snapshot_with(|t| {
            t.file("proc/cmdline", "quiet\n");
            t.file("sys/module/i915/parameters/enable_gvt", "Y\n");
        });
        assert_eq!(gvt(&s).status, Status::Pass);
        let s = snapshot_with(|t| {
            t.file("proc/cmdline", "quiet\n");
            t.file("etc/modprobe.d/gvt.conf", "options i915 enable_gvt=1\n");
            t.file("sys/module/i915/parameters/enable_gvt", "N\n");
        });
        let o = gvt(&s);
        assert_eq!(o.status, Status::Fail);
        assert!(o.remedy.unwrap().contains("initramfs"));
        assert!(o.summary.contains("has not taken effect"));
    }

    #[test]
    fn configured_for_next_boot_warns() {
        let s = snapshot_with(|t| {
            t.file("proc/cmdline", "quiet\n");
            t.file("sys/module/i915/parameters/enable_gvt", "N\n");
            t.file(
                "etc/default/grub",
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet i915.enable_gvt=1\"\n",
            );
        });
        let o = gvt(&s);
        assert_eq!(o.status, Status::Warn, "{o:?}");
        assert!(o.summary.contains("next boot"), "{o:?}");
        let s = snapshot_with(|t| {
            t.file("proc/cmdline", "quiet\n");
            t.file("etc/kernel/cmdline", "root=/dev/sda1 i915.enable_gvt=1\n");
        });
        let o = gvt(&s);
        assert_eq!(o.status, Status::Warn, "{o:?}");
        assert!(o.summary.contains("/etc/kernel/cmdline"), "{o:?}");
        let s = snapshot_with(|t| {
            t.file("proc/cmdline", "quiet\n");
            t.file("etc/kernel/cmdline", "root=/dev/sda1 i915.enable_gvt=0\n");
        });
        assert_eq!(gvt(&s).status, Status::Fail);
    }

    #[test]
    fn wrong_grub_variable_is_named() {
        let s = snapshot_with(|t| {
            t.file("proc/cmdline", "quiet\n");
            t.file(
                "etc/default/grub",
                "GRUB_CMDLINE_DEFAULT=\"quiet i915.enable_gvt=1\"\n",
            );
        });
        let o = gvt(&s);
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.evidence
                .iter()
                .any(|e| e.excerpt.contains("GRUB_CMDLINE_DEFAULT")),
            "{o:?}"
        );
    }

    #[test]
    fn guc_values() {
        let g = |c: &str| {
            let s = snapshot_with(|t| {
                t.file("proc/cmdline", c);
            });
            check_i915_guc(&s, &Prior { done: &[] })
        };
        assert_eq!(g("quiet").status, Status::Pass);
        assert_eq!(g("i915.enable_guc=0").status, Status::Pass);
        assert_eq!(g("i915.enable_guc=2").status, Status::Pass);
        assert_eq!(g("i915.enable_guc=3").status, Status::Warn);
        assert!(g("i915.enable_guc=7").summary.contains("undocumented"));
    }
}
