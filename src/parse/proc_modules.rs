//! `/proc/modules` and `lsmod` output.
//!
//! Formats:
//! - `/proc/modules` (kernel/module/procfs.c `m_show()`): `name size refcount deps state
//!   addr [taint]`, where `deps` is `-` or a comma-terminated list (`kvmgt,vfio_mdev,`),
//!   `refcount` is `-` without CONFIG_MODULE_UNLOAD, state is `Live`/`Loading`/`Unloading`;
//! - `lsmod` (kmod tools/lsmod.c): a `Module  Size  Used by` header, then
//!   `name size refcount [a,b]` with the holders comma-separated, no trailing comma.
//!
//! Pasted copies are often mail-wrapped ("... Live" / "0x0000..." on the next line). A line
//! starts a record when it begins with a module-name-like token followed by a number;
//! otherwise, when every token on it looks like a piece of a record (an address, a state, a
//! taint, a holder list, `-`, a number) and at least one is unmistakably so, it is joined
//! onto the previous record. Lines that are neither (shell prompts, prose) are skipped.

use serde::Serialize;

/// One loaded module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Module {
    /// Module name as printed (`/proc/modules` always uses `_`).
    pub name: String,
    /// Size in bytes.
    pub size: Option<u64>,
    /// Reference count; `None` when printed as `-`.
    pub refcount: Option<u64>,
    /// Modules that use this one.
    pub used_by: Vec<String>,
    /// `Live`, `Loading` or `Unloading` (`/proc/modules` only).
    pub state: Option<String>,
}

fn is_name_like(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn is_number(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| c.is_ascii_digit())
}

fn is_state(t: &str) -> bool {
    matches!(t, "Live" | "Loading" | "Unloading")
}

fn is_address(t: &str) -> bool {
    t.strip_prefix("0x")
        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_taint(t: &str) -> bool {
    t.len() >= 3 && t.starts_with('(') && t.ends_with(')')
}

fn is_holder_list(t: &str) -> bool {
    t.contains(',') && t.split(',').all(|p| p.is_empty() || is_name_like(p))
}

fn starts_record(tokens: &[&str]) -> bool {
    matches!(tokens, [name, size, ..] if is_name_like(name) && is_number(size) && name.chars().any(|c| !c.is_ascii_digit()))
}

/// Whether a line is the wrapped tail of the previous record.
fn is_continuation(tokens: &[&str]) -> bool {
    let piece = |t: &&str| {
        is_state(t)
            || is_address(t)
            || is_taint(t)
            || is_holder_list(t)
            || *t == "-"
            || is_number(t)
            || is_name_like(t)
    };
    let strong =
        |t: &&str| is_state(t) || is_address(t) || is_taint(t) || is_holder_list(t) || *t == "-";
    !tokens.is_empty() && tokens.iter().all(piece) && tokens.iter().any(strong)
}

fn build(tokens: &[&str]) -> Option<Module> {
    let (name, rest) = tokens.split_first()?;
    let mut m = Module {
        name: name.to_string(),
        size: rest.first().and_then(|t| t.parse().ok()),
        refcount: rest.get(1).and_then(|t| t.parse().ok()),
        used_by: Vec::new(),
        state: None,
    };
    for t in rest.iter().skip(2) {
        if is_state(t) {
            m.state = Some(t.to_string());
        } else if is_address(t) || is_taint(t) || *t == "-" {
            // address and taint flags are not needed for diagnosis
        } else if m.used_by.is_empty() && m.state.is_none() {
            m.used_by = t
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
        }
    }
    Some(m)
}

/// Parses `/proc/modules` or `lsmod` text, tolerating wrapped lines and surrounding prose.
pub fn parse(text: &str) -> Vec<Module> {
    let mut records: Vec<Vec<&str>> = Vec::new();
    // Whether the last non-blank line belonged to a record; a wrapped tail must follow it
    // directly.
    let mut after_record = false;
    for line in text.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        if matches!(tokens.as_slice(), ["Module", "Size", "Used", "by", ..]) {
            after_record = false;
            continue;
        }
        if starts_record(&tokens) {
            records.push(tokens);
            after_record = true;
        } else if after_record && is_continuation(&tokens) {
            if let Some(last) = records.last_mut() {
                last.extend(tokens);
            }
        } else {
            after_record = false;
        }
    }
    records.iter().filter_map(|t| build(t)).collect()
}

/// Finds a module by name, with '-' equal to '_' like the kernel.
pub fn find<'a>(modules: &'a [Module], name: &str) -> Option<&'a Module> {
    let want = super::cmdline::normalize(name);
    modules
        .iter()
        .find(|m| super::cmdline::normalize(&m.name) == want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn proc_modules_gvt_host() {
        let m = parse(sample!(
            "procmodules/lkml-bugreport-proc-modules-kvmgt-gvt-host.txt"
        ));
        assert_eq!(m.len(), 22);
        let mdev = find(&m, "mdev").unwrap();
        assert_eq!(mdev.size, Some(20480));
        assert_eq!(mdev.refcount, Some(2));
        assert_eq!(mdev.used_by, vec!["kvmgt", "vfio_mdev"]);
        assert_eq!(mdev.state.as_deref(), Some("Live"));
        let i915 = find(&m, "i915").unwrap();
        assert!(i915.used_by.is_empty());
        assert_eq!(i915.refcount, Some(18));
        assert!(find(&m, "vfio-iommu-type1").is_some());
    }

    #[test]
    fn proc_modules_mail_wrapped() {
        let m = parse(sample!(
            "procmodules/lkml-bugreport-proc-modules-kvmgt-mailwrapped.txt"
        ));
        assert_eq!(m.len(), 20);
        let soc = find(&m, "snd_soc_core").unwrap();
        assert_eq!(soc.used_by, vec!["snd_soc_skl", "snd_soc_hdac_hda"]);
        assert_eq!(soc.state.as_deref(), Some("Live"));
        let vb = find(&m, "videobuf2_common").unwrap();
        assert_eq!(vb.used_by, vec!["uvcvideo", "videobuf2_v4l2"]);
        // the next record after a wrapped one is intact
        assert_eq!(find(&m, "irqbypass").unwrap().used_by, vec!["kvm"]);
        // a name starting with a digit
        assert_eq!(find(&m, "8250_dw").unwrap().size, Some(28672));
        assert!(find(&m, "kvm")
            .unwrap()
            .used_by
            .contains(&"kvmgt".to_string()));
    }

    #[test]
    fn lsmod_format() {
        let m = parse(sample!("procmodules/gvt-linux-177-lsmod-kvmgt.txt"));
        assert_eq!(m.len(), 6);
        assert_eq!(find(&m, "kvmgt").unwrap().refcount, Some(0));
        assert_eq!(find(&m, "vfio").unwrap().used_by.len(), 3);
        assert_eq!(find(&m, "kvm").unwrap().state, None);
    }

    #[test]
    fn lsmod_inside_prose_and_header() {
        // from the mdev/ gvt-linux-6 sample: an lsmod paste between shell commands
        let m = parse(sample!("mdev/gvt-linux-6-kbl-i5-7500-create-einval.txt"));
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "kvm_intel",
                "kvmgt",
                "mdev",
                "vfio",
                "kvm",
                "irqbypass",
                "drm"
            ]
        );
        let m =
            parse("Module                  Size  Used by\nkvmgt 1 0\nlsmod | grep kvm\n- Live\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].state, None);
    }

    #[test]
    fn dash_refcount_and_taint() {
        let m = parse("nvidia 1234 - - Live 0xffffffffc0000000 (POE)\n");
        assert_eq!(m[0].refcount, None);
        assert_eq!(m[0].state.as_deref(), Some("Live"));
        assert!(m[0].used_by.is_empty());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_modules_like(s in "([a-z_0-9]{1,6}| |\n|,|-|Live|0x[0-9a-f]{1,4}|\\(OE\\)|[0-9]{1,6}){0,60}") {
            for m in parse(&s) {
                prop_assert!(!m.name.is_empty());
            }
        }
    }
}
