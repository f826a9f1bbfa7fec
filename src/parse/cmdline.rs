//! The kernel command line (`/proc/cmdline`, a GRUB `GRUB_CMDLINE_*` value, a guide's
//! parameter list), split exactly like the kernel does it.
//!
//! Splitting follows `next_arg()` (lib/cmdline.c, formerly kernel/params.c) and
//! `parse_args()` (kernel/params.c):
//! - arguments are separated by unquoted whitespace (the kernel's `isspace`: space, `\t`,
//!   `\n`, `\v`, `\f`, `\r`);
//! - a `"` toggles quoting anywhere in an argument, so `a="b c"` and `"a=b c"` are one
//!   argument each;
//! - the key ends at the first `=` that is not the argument's first character (a quirk of
//!   `next_arg()`: `equals == 0` doubles as "not found");
//! - a leading quote of the value is removed, and so is a trailing quote when the value or
//!   the whole argument started quoted; quotes in the middle stay;
//! - a bare `--` (no value) ends the kernel parameters: everything after it is for init.
//!
//! Parameter names compare with `-` equal to `_` (`parameq()` in kernel/params.c), and that
//! includes the module part of `module.param`.
//!
//! [`suspicious`] is heuristics on top: it flags typos and syntax that the kernel silently
//! ignores or passes on to init, using the i915 / IOMMU / KVM / vfio-pci parameters that
//! matter for GVT-g (see `shared/knowledge/gvt-g.md` §1.1).

use serde::Serialize;

/// One kernel argument as `next_arg()` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    /// The parameter name (`i915.enable_gvt`), quotes removed, as written (not normalised).
    pub key: String,
    /// The value after the first `=`, with the kernel's quote removal; `None` without `=`.
    pub value: Option<String>,
    /// The argument exactly as it appeared in the input, quotes included.
    pub raw: String,
}

/// A whole kernel command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmdline {
    /// Kernel parameters in order (everything before a bare `--`).
    pub params: Vec<Param>,
    /// Arguments after a bare `--`, as init receives them (`key` or `key=value`).
    pub init_args: Vec<String>,
}

/// A parameter that is probably not doing what its author wanted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suspicion {
    /// The argument as written on the command line.
    pub raw: String,
    /// Human-readable explanation, with a suggested fix where one is obvious.
    pub message: String,
}

/// The kernel's `isspace()` for the ASCII range (the kernel also counts Latin-1 0xA0, which
/// cannot appear as a character of its own in UTF-8 text).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn skip_spaces(s: &str) -> &str {
    s.trim_start_matches(is_space)
}

/// One step of `next_arg()`: splits the first argument off `s` (which must not start with
/// whitespace). Returns the argument and the rest with leading whitespace removed.
fn next_arg(s: &str) -> (Param, &str) {
    let quoted = s.starts_with('"');
    let body_start = usize::from(quoted);
    let args = s.get(body_start..).unwrap_or("");

    let mut in_quote = quoted;
    let mut equals: Option<usize> = None;
    let mut end = args.len();
    let mut sep_len = 0;
    for (i, c) in args.char_indices() {
        if is_space(c) && !in_quote {
            end = i;
            sep_len = c.len_utf8();
            break;
        }
        // next_arg() stores the index in `equals` and tests it against 0, so an '=' at
        // index 0 is never taken as the separator.
        if equals.is_none() && c == '=' && i != 0 {
            equals = Some(i);
        }
        if c == '"' {
            in_quote = !in_quote;
        }
    }
    let arg = args.get(..end).unwrap_or("");
    let raw = s.get(..body_start + end).unwrap_or(s);

    let (key, value) = match equals {
        None => {
            let key = if quoted {
                arg.strip_suffix('"').unwrap_or(arg)
            } else {
                arg
            };
            (key, None)
        }
        Some(eq) => {
            let key = arg.get(..eq).unwrap_or("");
            let mut v = arg.get(eq + 1..).unwrap_or("");
            let val_quoted = v.starts_with('"');
            if val_quoted {
                v = v.get(1..).unwrap_or("");
            }
            // The kernel clears args[i-1] when it is a quote and either the value or the
            // whole argument was quoted; when the value is empty that quote was the opening
            // one, already skipped above.
            if val_quoted || quoted {
                v = v.strip_suffix('"').unwrap_or(v);
            }
            (key, Some(v.to_string()))
        }
    };

    let rest = args.get(end + sep_len..).unwrap_or("");
    (
        Param {
            key: key.to_string(),
            value,
            raw: raw.to_string(),
        },
        skip_spaces(rest),
    )
}

/// Splits text into arguments with `next_arg()` semantics, without treating `--` specially.
/// Used for `options` lines in modprobe.d too, whose parameters the kernel splits the same way.
pub fn split_args(text: &str) -> Vec<Param> {
    let mut out = Vec::new();
    let mut rest = skip_spaces(text);
    while !rest.is_empty() {
        let before = rest.len();
        let (param, next) = next_arg(rest);
        out.push(param);
        // Every step consumes at least one character; the check only guards refactors.
        if next.len() >= before {
            break;
        }
        rest = next;
    }
    out
}

/// Parses a kernel command line. Newlines count as whitespace, so a multi-line paste works.
pub fn parse(text: &str) -> Cmdline {
    let mut params = Vec::new();
    let mut init_args = Vec::new();
    let mut after_dashes = false;
    for p in split_args(text) {
        if after_dashes {
            // set_init_arg() gets the argument with the '=' put back (repair_env_string()).
            init_args.push(match &p.value {
                Some(v) => format!("{}={}", p.key, v),
                None => p.key.clone(),
            });
        } else if p.value.is_none() && p.key == "--" {
            after_dashes = true;
        } else {
            params.push(p);
        }
    }
    Cmdline { params, init_args }
}

/// Normalises a parameter or module name the way the kernel compares them ('-' == '_').
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

impl Cmdline {
    /// Every value given to `module.param` in order (kernel treats '-' and '_' as equal in
    /// param names; the module name part too). Last one wins for the kernel.
    pub fn module_param(&self, module: &str, param: &str) -> Vec<&Param> {
        let want = format!("{}.{}", normalize(module), normalize(param));
        self.params
            .iter()
            .filter(|p| normalize(&p.key) == want)
            .collect()
    }

    /// Every occurrence of a plain key like `intel_iommu`, dash/underscore-insensitive.
    pub fn get(&self, key: &str) -> Vec<&Param> {
        let want = normalize(key);
        self.params
            .iter()
            .filter(|p| normalize(&p.key) == want)
            .collect()
    }

    /// The value the kernel ends up with for `key` (last occurrence wins); `Some(None)` when
    /// the last occurrence has no `=`.
    pub fn last_value(&self, key: &str) -> Option<Option<&str>> {
        self.get(key).last().map(|p| p.value.as_deref())
    }
}

/// The i915 parameters that matter for GVT-g / SR-IOV diagnosis (normalised names).
const KEY_I915: &[&str] = &[
    "enable_gvt",
    "enable_guc",
    "force_probe",
    "max_vfs",
    "enable_fbc",
    "enable_psr",
    "modeset",
];

/// Real i915 parameter names (current and historical, from i915_params.h and
/// display/intel_display_params.h). A name in here is never reported as a near-miss.
const REAL_I915: &[&str] = &[
    "alpha_support",
    "disable_display",
    "disable_power_well",
    "dmc_firmware_path",
    "edp_vswing",
    "enable_cmd_parser",
    "enable_dc",
    "enable_dmc",
    "enable_dp_mst",
    "enable_dpcd_backlight",
    "enable_dpt",
    "enable_dsb",
    "enable_execlists",
    "enable_fbc",
    "enable_guc",
    "enable_guc_loading",
    "enable_guc_submission",
    "enable_gvt",
    "enable_hangcheck",
    "enable_ips",
    "enable_ppgtt",
    "enable_psr",
    "enable_psr2_sel_fetch",
    "enable_rc6",
    "enable_sagv",
    "error_capture",
    "fastboot",
    "force_probe",
    "force_reset_modeset_test",
    "gsc_firmware_path",
    "guc_firmware_path",
    "guc_log_level",
    "huc_firmware_path",
    "inject_probe_failure",
    "invert_brightness",
    "lmem_bar_size",
    "lmem_size",
    "load_detect_test",
    "lvds_channel_mode",
    "max_vfs",
    "memtest",
    "mmio_debug",
    "modeset",
    "nuclear_pageflip",
    "panel_use_ssc",
    "prefault_disable",
    "psr_safest_params",
    "request_timeout_ms",
    "reset",
    "semaphores",
    "vbt_firmware",
    "vbt_sdvo_panel_type",
    "verbose_state_checks",
];

/// XenGT-era i915 parameters that upstream KVMGT kernels never had.
const XENGT_ONLY: &[&str] = &["hvm_boot_foreground"];

/// Non-i915 keys worth checking for typos (normalised).
const KEY_OTHER: &[&str] = &["intel_iommu", "iommu", "kvm.ignore_msrs", "vfio_pci.ids"];

/// Real kernel parameters that happen to be within a small edit distance of [`KEY_OTHER`].
const REAL_NEAR_OTHER: &[&str] = &["iomem", "amd_iommu", "kvm.ignore_msrs"];

/// i915 names distinctive enough that a bare `name=` is certainly a missing `i915.` prefix.
const BARE_I915: &[&str] = &[
    "enable_gvt",
    "enable_guc",
    "force_probe",
    "max_vfs",
    "enable_fbc",
    "enable_psr",
];

/// Levenshtein distance, computed only for short strings (names); `None` when either side is
/// longer than 64 characters, which keeps the cost bounded on garbage input.
fn edit_distance(a: &str, b: &str) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len() > 64 || b.len() > 64 {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = sub.min(del).min(ins);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied()
}

/// The closest candidate within the allowed distance (1 for names of 5 characters or less,
/// where 2 edits would turn `iommu` into the real `iomem`; 2 otherwise).
fn near_miss<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = if name.chars().count() <= 5 { 1 } else { 2 };
    candidates
        .iter()
        // The distance is at least the difference in length.
        .filter(|c| c.len().abs_diff(name.len()) <= limit * 4)
        .filter(|c| c.chars().count().abs_diff(name.chars().count()) <= limit)
        .filter_map(|c| edit_distance(name, c).map(|d| (d, *c)))
        .filter(|(d, _)| *d > 0 && *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn value_suffix(p: &Param) -> String {
    p.value
        .as_ref()
        .map(|v| format!("={v}"))
        .unwrap_or_default()
}

/// Loose-match suspicious parameters: returns (param raw text, explanation) for things like
/// `i915.force=probe=*` (a '=' where a '_' was meant), module parameters without their module
/// prefix (`i915_enable_gvt=1`, `enable_gvt=1`), `i915.enable_gvt` without a value, the
/// XenGT-only `i915.hvm_boot_foreground`, and near-misses (edit distance <= 2) of the i915
/// parameters enable_gvt, enable_guc, force_probe, max_vfs, enable_fbc, enable_psr, modeset
/// and of intel_iommu, iommu, kvm.ignore_msrs, vfio-pci.ids. At most one finding per
/// parameter. `i915.enable-gvt` is fine: the kernel treats '-' and '_' alike.
pub fn suspicious(cmdline: &Cmdline) -> Vec<Suspicion> {
    let known_full: Vec<String> = KEY_I915
        .iter()
        .map(|n| format!("i915.{n}"))
        .chain(KEY_OTHER.iter().map(|s| s.to_string()))
        .collect();
    let known: Vec<&str> = known_full.iter().map(String::as_str).collect();
    cmdline
        .params
        .iter()
        .filter_map(|p| suspicion_for(p, &known))
        .collect()
}

/// `known` = every key we check for typos, with its module prefix.
fn suspicion_for(p: &Param, known: &[&str]) -> Option<Suspicion> {
    let nk = normalize(&p.key);
    let hit = |message: String| {
        Some(Suspicion {
            raw: p.raw.clone(),
            message,
        })
    };

    // `i915.force=probe=*`: the kernel takes `i915.force` as the name, which i915 does not
    // have, so the whole argument is ignored.
    if nk.contains('.') {
        if let Some((left, right)) = p.value.as_deref().and_then(|v| v.split_once('=')) {
            if !left.is_empty() && !left.contains(is_space) {
                return hit(format!(
                    "value of '{}' contains '=': did you mean {}_{}={}?",
                    p.key, p.key, left, right
                ));
            }
        }
    }

    if let Some((module, name)) = nk.split_once('.') {
        if module == "i915" {
            if XENGT_ONLY.contains(&name) {
                return hit(format!(
                    "i915.{name} is a XenGT-only parameter that KVMGT kernels never had; \
                     i915 ignores it (\"unknown parameter\"), remove it"
                ));
            }
            if KEY_I915.contains(&name) {
                if p.value.is_none() {
                    let message = if name == "enable_gvt" {
                        "i915.enable_gvt has no value: the kernel reads a bare bool as true, \
                         but write i915.enable_gvt=1 to be explicit"
                            .to_string()
                    } else {
                        format!("i915.{name} has no value: it needs one (e.g. i915.{name}=0)")
                    };
                    return hit(message);
                }
                return None;
            }
            if !REAL_I915.contains(&name) {
                if let Some(c) = near_miss(name, KEY_I915) {
                    return hit(format!(
                        "i915 has no parameter '{name}': did you mean i915.{c}{}?",
                        value_suffix(p)
                    ));
                }
            }
            return None;
        }
    } else {
        // Module parameters written without the `module.` prefix go to init, not the module.
        if let Some(name) = nk.strip_prefix("i915_") {
            if KEY_I915.contains(&name) {
                return hit(format!(
                    "'{}' is not a kernel parameter (it is passed to init): did you mean \
                     i915.{name}{}?",
                    p.key,
                    value_suffix(p)
                ));
            }
        }
        if BARE_I915.contains(&nk.as_str()) {
            return hit(format!(
                "'{}' lacks the module prefix and is passed to init: did you mean i915.{nk}{}?",
                p.key,
                value_suffix(p)
            ));
        }
        for full in KEY_OTHER {
            if let Some((module, name)) = full.split_once('.') {
                if nk == format!("{module}_{name}") || (nk == name && name != "ids") {
                    return hit(format!(
                        "'{}' lacks the module prefix and is passed to init: did you mean \
                         {full}{}?",
                        p.key,
                        value_suffix(p)
                    ));
                }
            }
        }
    }

    // Typos of the other keys, including typos of the module name (`i195.enable_gvt`).
    if known.contains(&nk.as_str()) || REAL_NEAR_OTHER.contains(&nk.as_str()) {
        return None;
    }
    near_miss(&nk, known).and_then(|c| {
        hit(format!(
            "unknown parameter '{}': did you mean {c}{}?",
            p.key,
            value_suffix(p)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(c: &Cmdline) -> Vec<&str> {
        c.params.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn quoting_like_next_arg() {
        let c = parse(r#"a="b c" "d=e f" "g h" x=y"z" k="" =v q=" =w"#);
        let got: Vec<(&str, Option<&str>)> = c
            .params
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", Some("b c")),
                ("d", Some("e f")),
                ("g h", None),
                // quote in the middle of an unquoted value stays
                ("x", Some("y\"z\"")),
                ("k", Some("")),
                // '=' at index 0 is not a separator in next_arg()
                ("=v", None),
                // an unterminated quote runs to the end, spaces included
                ("q", Some(" =w")),
            ]
        );
        assert_eq!(c.params[0].raw, r#"a="b c""#);
        assert_eq!(c.params[1].raw, r#""d=e f""#);
    }

    #[test]
    fn unterminated_quote_runs_to_end() {
        let c = parse("a=\"b c d\nroot=/dev/x");
        assert_eq!(c.params.len(), 1);
        assert_eq!(c.params[0].value.as_deref(), Some("b c d\nroot=/dev/x"));
    }

    #[test]
    fn dashes_end_kernel_params() {
        let c = parse("ro quiet -- single x=\"1 2\" --");
        assert_eq!(keys(&c), vec!["ro", "quiet"]);
        assert_eq!(c.init_args, vec!["single", "x=1 2", "--"]);
        // `--=x` is a parameter with a value, not the separator
        let c = parse("--=x a");
        assert_eq!(keys(&c), vec!["--", "a"]);
        assert!(c.init_args.is_empty());
    }

    #[test]
    fn module_param_and_get_are_dash_insensitive() {
        let c = parse("i915.enable-gvt=1 vfio-pci.ids=8086:1 i915.enable_gvt=0 intel-iommu=on");
        let v: Vec<_> = c
            .module_param("i915", "enable_gvt")
            .iter()
            .map(|p| p.value.as_deref())
            .collect();
        assert_eq!(v, vec![Some("1"), Some("0")]);
        assert_eq!(c.module_param("vfio_pci", "ids").len(), 1);
        assert_eq!(c.get("intel_iommu").len(), 1);
        assert_eq!(c.last_value("i915.enable_gvt"), Some(Some("0")));
        assert_eq!(normalize("vfio-pci.ids"), "vfio_pci.ids");
    }

    #[test]
    fn real_proc_cmdline_xps13() {
        let c = parse(sample!("cmdline/gvt-linux-172-xps13-proc-cmdline.txt"));
        assert_eq!(c.params[0].key, "BOOT_IMAGE");
        assert_eq!(
            c.params[0].value.as_deref(),
            Some("(hd0,gpt7)/vmlinuz-5.8.12-250.vanilla.knurd.1.fc32.x86_64")
        );
        assert_eq!(
            c.module_param("i915", "enable_gvt")[0].value.as_deref(),
            Some("1")
        );
        assert_eq!(
            c.module_param("i915", "enable_guc")[0].value.as_deref(),
            Some("0")
        );
        assert_eq!(c.module_param("kvm", "ignore_msrs").len(), 1);
        assert_eq!(c.get("intel_iommu")[0].value.as_deref(), Some("on"));
        assert!(c.get("rhgb")[0].value.is_none());
        assert!(suspicious(&c).is_empty(), "{:?}", suspicious(&c));
    }

    #[test]
    fn real_proc_cmdline_debian_4_19() {
        let c = parse(sample!("cmdline/gvt-linux-177-i7-8700-debian-cmdline.txt"));
        assert_eq!(c.params.len(), 8);
        assert_eq!(c.module_param("i915", "enable_gvt").len(), 1);
        assert!(suspicious(&c).is_empty());
    }

    #[test]
    fn real_threadripper_quotes_and_backslashes() {
        let c = parse(sample!("cmdline/sirspudd-threadripper-proc-cmdline.txt"));
        assert_eq!(c.params[0].value.as_deref(), Some(r"\amd-ucode.img"));
        assert_eq!(
            c.module_param("vfio-pci", "ids")[0].value.as_deref(),
            Some("1002:66af,1002:ab20,144d:a808,1b73:1100,1d6a:d107")
        );
        let cg = c.get("cgroup_no_v1");
        assert_eq!(cg[0].value.as_deref(), Some("all"));
        assert_eq!(cg[0].raw, "cgroup_no_v1=\"all\"");
        assert_eq!(c.get("amd_iommu")[0].value.as_deref(), Some("on"));
        // nothing GVT-relevant is misspelt on this AMD host
        assert!(suspicious(&c).is_empty(), "{:?}", suspicious(&c));
    }

    #[test]
    fn real_force_probe_typo() {
        let text = sample!("cmdline/kvm-target-grub-opts-force-probe-typo.txt");
        let c = parse(text);
        let s = suspicious(&c);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].raw, "i915.force=probe=*)");
        assert!(
            s[0].message.contains("i915.force_probe="),
            "{}",
            s[0].message
        );
        assert_eq!(
            c.get("intel_iommu")[0].value.as_deref(),
            Some("on,igfx_off")
        );
    }

    #[test]
    fn real_xengt_param_flagged() {
        let c = parse(sample!("cmdline/fzinfz-grub-kvmgt-igfx_off.txt"));
        let s = suspicious(&c);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].raw, "i915.hvm_boot_foreground=1");
        assert!(s[0].message.contains("XenGT"));
        assert_eq!(c.get("intel_iommu")[0].value.as_deref(), Some("igfx_off"));
    }

    #[test]
    fn real_xe_force_probe_negation() {
        let c = parse(sample!(
            "cmdline/archwiki-intel-graphics-xe-force-probe-tgl.txt"
        ));
        assert_eq!(
            c.module_param("i915", "force_probe")[0].value.as_deref(),
            Some("!9a49")
        );
        assert_eq!(
            c.module_param("xe", "force_probe")[0].value.as_deref(),
            Some("9a49")
        );
        assert!(suspicious(&c).is_empty(), "{:?}", suspicious(&c));
    }

    #[test]
    fn synthetic_suspicions() {
        let c = parse(
            "i915.enable-gvt=1 i915_enable_gvt=1 enable_gvt=1 i915.enable_gvt \
             i915.enable_gtv=1 intel_iomu=on kvm.ignore_msr=1 vfio_pci.id=1 ignore_msrs=1 \
             i915.enable_dc=0 iomem=relaxed i195.enable_gvt=1 i915.enable_guc",
        );
        let s = suspicious(&c);
        let raws: Vec<&str> = s.iter().map(|x| x.raw.as_str()).collect();
        assert_eq!(
            raws,
            vec![
                "i915_enable_gvt=1",
                "enable_gvt=1",
                "i915.enable_gvt",
                "i915.enable_gtv=1",
                "intel_iomu=on",
                "kvm.ignore_msr=1",
                "vfio_pci.id=1",
                "ignore_msrs=1",
                "i195.enable_gvt=1",
                "i915.enable_guc",
            ]
        );
        assert!(
            s[3].message.contains("i915.enable_gvt=1"),
            "{}",
            s[3].message
        );
        assert!(s[4].message.contains("intel_iommu=on"));
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("kitten", "sitting"), Some(3));
        assert_eq!(edit_distance("", "abc"), Some(3));
        assert_eq!(edit_distance("iommu", "iomem"), Some(2));
        assert_eq!(edit_distance(&"a".repeat(65), "a"), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let c = parse(&s);
            let _ = suspicious(&c);
        }

        #[test]
        fn never_panics_on_cmdline_like(s in "[a-z0-9_.=\" \t\n,*!-]{0,200}") {
            let c = parse(&s);
            let _ = suspicious(&c);
            // Every key and value came from the input.
            for p in &c.params {
                prop_assert!(s.contains(p.raw.as_str()));
            }
        }
    }
}
