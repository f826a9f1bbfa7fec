//! A tolerant `/proc/cpuinfo` parser.
//!
//! We deliberately do not use the procfs crate: users paste cpuinfo from mails (wrapped
//! lines), from `grep` (partial), or start in the middle (the block of `processor : 15`).
//!
//! Format (arch/x86/kernel/cpu/proc.c `show_cpuinfo()`): one `key<TAB...>: value` line per
//! field, a blank line between processors. Keys are matched after trimming spaces and tabs
//! on both sides, so `key\t: v`, `key : v` and the space+tab mixes seen in pastes all work.
//! Numbers are printed with `%u`, so `cpu family`, `model` and `stepping` are decimal.
//!
//! Rules:
//! - every field is taken from the FIRST line that carries it and parses (so the first
//!   processor block that has it);
//! - `processors` counts `processor` lines;
//! - x86 `flags` and arm `Features` give the flag set; a line without a colon right after a
//!   list-valued field (`flags`, `Features`, `bugs`, `vmx flags`) whose words all look like
//!   flag tokens is a mail-wrapped continuation and is appended to that field;
//! - anything else that is skipped is recorded in `warnings` ("line 12: no ':' separator");
//! - a partial file simply yields `None` for the fields it lacks.

use std::collections::BTreeSet;

use serde::Serialize;

/// What we learned from a cpuinfo text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuInfo {
    /// `vendor_id` (`GenuineIntel`, `AuthenticAMD`).
    pub vendor_id: Option<String>,
    /// `cpu family` (decimal).
    pub family: Option<u32>,
    /// `model` (decimal, as cpuinfo prints it; 142 = 0x8E).
    pub model: Option<u32>,
    /// `stepping` (decimal).
    pub stepping: Option<u32>,
    /// `model name`.
    pub model_name: Option<String>,
    /// The `flags` (x86) or `Features` (arm) words; `None` when no such line was seen.
    pub flags: Option<BTreeSet<String>>,
    /// Number of `processor` lines.
    pub processors: usize,
    /// Lines that were skipped and why (1-based line numbers), capped.
    pub warnings: Vec<String>,
}

const MAX_WARNINGS: usize = 200;

/// Which list-valued field a wrapped continuation line belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Continue {
    /// Append to `flags`.
    Flags,
    /// A list field we do not keep (`bugs`, a later block's `flags`): swallow silently.
    Swallow,
}

/// A word as it appears in flags lists: `sse4_1`, `3dnowprefetch`, `avx512_vnni`, `fp`.
fn is_flag_token(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

/// Keys look like `cpu family`, `model name`, `CPU implementer`, `power management`.
fn is_plausible_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 40
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '\t' | '_' | '(' | ')'))
}

fn parse_u32(v: &str) -> Option<u32> {
    v.trim().parse::<u32>().ok()
}

/// Parses cpuinfo text (whole, partial or mail-wrapped). Never fails.
pub fn parse(text: &str) -> CpuInfo {
    let mut info = CpuInfo {
        vendor_id: None,
        family: None,
        model: None,
        stepping: None,
        model_name: None,
        flags: None,
        processors: 0,
        warnings: Vec::new(),
    };
    let mut cont: Option<Continue> = None;

    for (idx, raw_line) in text.lines().enumerate() {
        let lineno = idx + 1;
        let line = raw_line.trim_end_matches('\r');
        if line.trim().is_empty() {
            // A blank line ends a processor block, and with it any wrapped field.
            cont = None;
            continue;
        }

        let Some((k, v)) = line.split_once(':') else {
            let words: Vec<&str> = line.split_whitespace().collect();
            match cont {
                Some(target) if words.iter().all(|w| is_flag_token(w)) => {
                    if target == Continue::Flags {
                        if let Some(flags) = info.flags.as_mut() {
                            flags.extend(words.iter().map(|w| w.to_string()));
                        }
                    }
                }
                _ => {
                    cont = None;
                    push_warning(&mut info, format!("line {lineno}: no ':' separator"));
                }
            }
            continue;
        };

        let key = k.trim_matches([' ', '\t']);
        let value = v.trim();
        cont = None;
        if !is_plausible_key(key) {
            push_warning(&mut info, format!("line {lineno}: not a cpuinfo field"));
            continue;
        }

        match key {
            "processor" => info.processors += 1,
            "vendor_id" => set_string(&mut info.vendor_id, value),
            "model name" => set_string(&mut info.model_name, value),
            "cpu family" => set_number(&mut info, Field::Family, value, lineno),
            "model" => set_number(&mut info, Field::Model, value, lineno),
            "stepping" => set_number(&mut info, Field::Stepping, value, lineno),
            "flags" | "Features" => {
                if info.flags.is_none() {
                    info.flags = Some(value.split_whitespace().map(str::to_string).collect());
                    cont = Some(Continue::Flags);
                } else {
                    cont = Some(Continue::Swallow);
                }
            }
            "bugs" | "vmx flags" => cont = Some(Continue::Swallow),
            _ => {}
        }
    }
    info
}

enum Field {
    Family,
    Model,
    Stepping,
}

fn set_string(slot: &mut Option<String>, value: &str) {
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value.to_string());
    }
}

fn set_number(info: &mut CpuInfo, field: Field, value: &str, lineno: usize) {
    let slot = match field {
        Field::Family => &mut info.family,
        Field::Model => &mut info.model,
        Field::Stepping => &mut info.stepping,
    };
    if slot.is_some() {
        return;
    }
    match parse_u32(value) {
        Some(n) => *slot = Some(n),
        None => push_warning(
            info,
            format!("line {lineno}: not a decimal number: {value:.40}"),
        ),
    }
}

fn push_warning(info: &mut CpuInfo, msg: String) {
    super::push_capped(&mut info.warnings, MAX_WARNINGS, msg);
}

impl CpuInfo {
    /// Whether flag `f` is present; `None` when no flags line was seen (partial input), so
    /// callers can tell "no vmx" from "don't know".
    pub fn has_flag(&self, f: &str) -> Option<bool> {
        self.flags.as_ref().map(|s| s.contains(f))
    }

    /// True when `vendor_id` is `GenuineIntel`; `None` when it is unknown.
    pub fn is_intel(&self) -> Option<bool> {
        self.vendor_id.as_deref().map(|v| v == "GenuineIntel")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn broadwell_mail_wrapped_flags_are_joined() {
        let c = parse(sample!("cpuinfo/broadwell-i7-5500U-lkml-mailwrapped.txt"));
        assert_eq!(c.vendor_id.as_deref(), Some("GenuineIntel"));
        assert_eq!(
            (c.family, c.model, c.stepping),
            (Some(6), Some(61), Some(4))
        );
        assert_eq!(c.has_flag("vmx"), Some(true));
        assert_eq!(c.has_flag("flush_l1d"), Some(true));
        assert_eq!(c.has_flag("fpu"), Some(true));
        // the wrapped `bugs` line must not leak into flags
        assert_eq!(c.has_flag("swapgs"), Some(false));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.processors, 1);
    }

    #[test]
    fn westmere_starts_at_processor_15() {
        let c = parse(sample!("cpuinfo/xeon-e5620-westmere.txt"));
        assert_eq!(c.processors, 1);
        assert_eq!(c.model, Some(44));
        assert_eq!(
            c.model_name.as_deref(),
            Some("Intel(R) Xeon(R) CPU           E5620  @ 2.40GHz")
        );
        assert_eq!(c.has_flag("vmx"), Some(true));
    }

    #[test]
    fn skylake_grep_partial() {
        let c = parse(sample!("cpuinfo/skylake-i5-6200U-grep.txt"));
        assert_eq!(c.vendor_id, None);
        assert_eq!(c.flags, None);
        assert_eq!(c.has_flag("vmx"), None);
        assert_eq!(c.family, None);
        assert_eq!((c.model, c.stepping), (Some(78), Some(3)));
        assert_eq!(c.processors, 0);
        // the `$ grep ...` prompt line is skipped with a warning
        assert_eq!(c.warnings, vec!["line 1: no ':' separator".to_string()]);
    }

    #[test]
    fn broadwell_space_tab_alignment() {
        let c = parse(sample!("cpuinfo/broadwell-i5-5300U.txt"));
        assert_eq!(
            (c.family, c.model, c.stepping),
            (Some(6), Some(61), Some(4))
        );
        assert_eq!(c.has_flag("vmx"), Some(true));
        // `vmx flags` is a different field
        assert_eq!(c.has_flag("ept_x_only"), Some(false));
    }

    #[test]
    fn cometlake_space_colon_space() {
        let c = parse(sample!("cpuinfo/cometlake-u-i7-10710U-model166.txt"));
        assert_eq!((c.family, c.model), (Some(6), Some(166)));
        assert_eq!(c.is_intel(), Some(true));
        assert_eq!(c.has_flag("vmx"), Some(true));
    }

    #[test]
    fn guests_have_hypervisor_without_vmx() {
        for text in [
            sample!("cpuinfo/haswell-crystalwell-i7-4770HQ.txt"),
            sample!("cpuinfo/skylake-i7-6600U.txt"),
        ] {
            let c = parse(text);
            assert_eq!(c.has_flag("hypervisor"), Some(true));
            assert_eq!(c.has_flag("vmx"), Some(false));
        }
    }

    #[test]
    fn amd_and_no_processor_line() {
        let c = parse(sample!("cpuinfo/amd-ryzen5-5500.txt"));
        assert_eq!(c.is_intel(), Some(false));
        assert_eq!((c.family, c.model), (Some(25), Some(80)));
        let c = parse(sample!("cpuinfo/cannonlake-i3-8121U-igpu-disabled.txt"));
        assert_eq!(c.processors, 0);
        assert_eq!(c.model, Some(102));
    }

    #[test]
    fn all_full_samples_have_flags_and_model() {
        let samples = [
            sample!("cpuinfo/kabylake-r-i7-8550U.txt"),
            sample!("cpuinfo/whiskeylake-i5-8265U.txt"),
            sample!("cpuinfo/cometlake-u-i7-10510U-model142.txt"),
            sample!("cpuinfo/geminilake-celeron-N4100.txt"),
            sample!("cpuinfo/apollolake-celeron-J3455.txt"),
            sample!("cpuinfo/sandybridge-i7-2600.txt"),
        ];
        let models: Vec<_> = samples.iter().map(|s| parse(s).model).collect();
        assert_eq!(
            models,
            vec![
                Some(142),
                Some(142),
                Some(142),
                Some(122),
                Some(92),
                Some(42)
            ]
        );
        assert_eq!(parse(samples[5]).has_flag("vmx"), Some(false));
    }

    #[test]
    fn arm_features_and_first_block_wins() {
        let text = "processor\t: 0\nFeatures\t: fp asimd evtstrm\nCPU part\t: 0xd08\n\n\
                    processor\t: 1\nFeatures\t: other\nmodel\t: x\nmodel\t: 5\n";
        let c = parse(text);
        assert_eq!(c.processors, 2);
        assert_eq!(c.has_flag("asimd"), Some(true));
        assert_eq!(c.has_flag("other"), Some(false));
        // the unparsable model warns, the next one is used
        assert_eq!(c.model, Some(5));
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn garbage_lines_warn_but_do_not_join() {
        let c = parse("flags : a b\nHello World\nc d\n==> x <== : 1\n");
        assert_eq!(c.has_flag("c"), Some(false));
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
    }

    #[test]
    fn warnings_are_capped() {
        let text = "nonsense\n".repeat(1000);
        let c = parse(&text);
        assert_eq!(c.warnings.len(), MAX_WARNINGS + 1);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,400}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_cpuinfo_like(s in "[a-z :\t\n0-9_]{0,400}") {
            let c = parse(&s);
            prop_assert!(c.processors <= s.len());
        }
    }
}
