//! An mdev type's `description` sysfs file
//! (`/sys/.../mdev_supported_types/<type>/description`).
//!
//! GVT-g writes it in `intel_vgpu_show_description()` (drivers/gpu/drm/i915/gvt/kvmgt.c):
//! `low_gm_size: %dMB\nhigh_gm_size: %dMB\nfence: %d\nresolution: %s\nweight: %d\n`;
//! 4.10-era kernels lack `weight`, and an out-of-tree gvt-staging added `aggregation: yes/no`.
//! Tools reformat it: older `mdevctl types` printed it on one line separated by spaces with
//! a trailing space, newer ones join with ", ". Other vendor drivers print free text.
//!
//! So we tokenise on whitespace and commas, and every token that is an identifier followed by
//! `:` starts a `key: value` pair whose value is the following tokens up to the next key.
//! Known keys fill the typed fields (sizes accept `MB`, `M`, `GB`, `G`, or a bare number of
//! MB); everything else, including known keys whose value does not parse, goes to `extra`.
//! The text counts as a GVT description only if it has `low_gm_size`, `high_gm_size` or
//! `fence`: `resolution` and `weight` are too generic to identify GVT on their own.

use serde::Serialize;

/// A parsed GVT-g type description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GvtDescription {
    /// `low_gm_size` (aperture share) in MB.
    pub low_gm_mb: Option<u64>,
    /// `high_gm_size` (hidden GGTT share) in MB.
    pub high_gm_mb: Option<u64>,
    /// `fence` registers.
    pub fence: Option<u64>,
    /// `resolution`, e.g. `1920x1200`.
    pub resolution: Option<String>,
    /// `weight` (scheduler share, 16/n upstream).
    pub weight: Option<u64>,
    /// Other `key: value` pairs in order (capped at 64).
    pub extra: Vec<(String, String)>,
}

const MAX_EXTRA: usize = 64;

/// `low_gm_size:` → Some("low_gm_size"); `fence:4` → handled by the caller.
fn key_of(token: &str) -> Option<&str> {
    let k = token.strip_suffix(':')?;
    let ok = !k.is_empty()
        && k.len() <= 64
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    ok.then_some(k)
}

/// Sizes as GVT prints them (`128MB`), plus the spellings users and tools produce.
fn parse_mb(v: &str) -> Option<u64> {
    let v = v.trim();
    let lower = v.to_ascii_lowercase();
    let compact: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
    let (num, mult) = if let Some(n) = compact
        .strip_suffix("mb")
        .or_else(|| compact.strip_suffix("mib"))
        .or_else(|| compact.strip_suffix('m'))
    {
        (n, 1)
    } else if let Some(n) = compact
        .strip_suffix("gb")
        .or_else(|| compact.strip_suffix("gib"))
        .or_else(|| compact.strip_suffix('g'))
    {
        (n, 1024)
    } else {
        (compact.as_str(), 1)
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_count(v: &str) -> Option<u64> {
    v.trim().parse().ok()
}

/// Splits into tokens on whitespace and commas; a glued `key:value` becomes two tokens.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in text.split(|c: char| c.is_whitespace() || c == ',') {
        if t.is_empty() {
            continue;
        }
        match t.split_once(':') {
            Some((k, v)) if !v.is_empty() && key_of(&format!("{k}:")).is_some() => {
                out.push(format!("{k}:"));
                out.push(v.to_string());
            }
            _ => out.push(t.to_string()),
        }
    }
    out
}

/// Parses a description; `None` when no GVT-style key (`low_gm_size`, `high_gm_size`,
/// `fence`) is present, e.g. another vendor's free text.
pub fn parse(text: &str) -> Option<GvtDescription> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for tok in tokens(text) {
        if let Some(k) = key_of(&tok) {
            pairs.push((k.to_string(), String::new()));
        } else if let Some((_, v)) = pairs.last_mut() {
            if !v.is_empty() {
                v.push(' ');
            }
            v.push_str(&tok);
        }
        // Tokens before the first key (a path, a prompt) are ignored.
    }

    let mut d = GvtDescription {
        low_gm_mb: None,
        high_gm_mb: None,
        fence: None,
        resolution: None,
        weight: None,
        extra: Vec::new(),
    };
    let mut gvt = false;
    for (k, v) in pairs {
        let parsed = match k.as_str() {
            "low_gm_size" => {
                gvt = true;
                d.low_gm_mb = d.low_gm_mb.or(parse_mb(&v));
                d.low_gm_mb.is_some()
            }
            "high_gm_size" => {
                gvt = true;
                d.high_gm_mb = d.high_gm_mb.or(parse_mb(&v));
                d.high_gm_mb.is_some()
            }
            "fence" => {
                gvt = true;
                d.fence = d.fence.or(parse_count(&v));
                d.fence.is_some()
            }
            "weight" => {
                d.weight = d.weight.or(parse_count(&v));
                d.weight.is_some()
            }
            "resolution" if !v.is_empty() => {
                d.resolution.get_or_insert(v.clone());
                true
            }
            _ => false,
        };
        if !parsed && !v.is_empty() && d.extra.len() < MAX_EXTRA {
            d.extra.push((k, v));
        }
    }
    gvt.then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `Description: ...` lines of an `mdevctl types` paste.
    fn mdevctl_descriptions(text: &str) -> Vec<&str> {
        text.lines()
            .filter_map(|l| l.trim_start().strip_prefix("Description:"))
            .collect()
    }

    /// Blocks of a paste that follow a `.../description` line (cat output).
    fn cat_blocks(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur: Option<String> = None;
        for l in text.lines() {
            if l.trim_end().ends_with("/description") {
                if let Some(c) = cur.take() {
                    out.push(c);
                }
                cur = Some(String::new());
            } else if let Some(c) = cur.as_mut() {
                if l.trim().is_empty() {
                    out.push(std::mem::take(c));
                    cur = None;
                } else {
                    c.push_str(l);
                    c.push('\n');
                }
            }
        }
        out.extend(cur);
        out
    }

    fn v5_4() -> GvtDescription {
        GvtDescription {
            low_gm_mb: Some(128),
            high_gm_mb: Some(512),
            fence: Some(4),
            resolution: Some("1920x1200".into()),
            weight: Some(4),
            extra: vec![],
        }
    }

    #[test]
    fn kernel_multiline_format() {
        assert_eq!(
            parse(sample!("mdev/gebim-description-V5_4.txt")),
            Some(v5_4())
        );
        let blocks = cat_blocks(sample!("mdev/jp-blog-whl-8665u-ls-and-descriptions.txt"));
        assert_eq!(blocks.len(), 2);
        assert_eq!(parse(&blocks[0]), Some(v5_4()));
        let v5_8 = parse(&blocks[1]).unwrap();
        assert_eq!((v5_8.low_gm_mb, v5_8.high_gm_mb), (Some(64), Some(384)));
        assert_eq!(v5_8.resolution.as_deref(), Some("1024x768"));
        assert_eq!(v5_8.weight, Some(2));
    }

    #[test]
    fn indented_paste() {
        let blocks = cat_blocks(sample!("mdev/fzinfz-description-V5_4-V5_8-multiline.txt"));
        assert_eq!(blocks.len(), 2);
        assert_eq!(parse(&blocks[0]), Some(v5_4()));
        assert_eq!(parse(&blocks[1]).and_then(|d| d.weight), Some(2));
    }

    #[test]
    fn mdevctl_comma_and_space_formats() {
        let text = sample!("mdev/phyllomeos-mdevctl-types.txt");
        let d: Vec<_> = mdevctl_descriptions(text).into_iter().map(parse).collect();
        assert_eq!(d.len(), 4);
        assert_eq!(d[2], Some(v5_4()));
        assert_eq!(d[0].as_ref().and_then(|d| d.low_gm_mb), Some(512));
        assert_eq!(d[0].as_ref().and_then(|d| d.weight), Some(16));

        // older mdevctl: space separated with a trailing space
        let text = sample!("mdev/mdevctl-readme-bdw-v4-list-and-types.txt");
        let d: Vec<_> = mdevctl_descriptions(text).into_iter().map(parse).collect();
        assert_eq!(d.len(), 4);
        let first = d[0].clone().unwrap();
        assert_eq!(
            (first.low_gm_mb, first.high_gm_mb, first.fence, first.weight),
            (Some(256), Some(1024), Some(4), Some(8))
        );
        assert_eq!(first.resolution.as_deref(), Some("1920x1200"));
        assert!(first.extra.is_empty());
    }

    #[test]
    fn hand_copied_weights_parse_as_written() {
        // ernytech's appendix: "- i915-GVTg_V5_1:" headers, weights 1/2/4/8
        let text = sample!("mdev/ernytech-appendix-types-suspicious-weights.txt");
        let chunks: Vec<&str> = text.split("- i915-").skip(1).collect();
        let d: Vec<_> = chunks.iter().filter_map(|c| parse(c)).collect();
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].low_gm_mb, Some(512));
        assert_eq!(d[0].weight, Some(1));
        // the `GVTg_V5_1:` header itself is an extra key without value → dropped
        assert!(d[0].extra.is_empty());
    }

    #[test]
    fn kata_indented_with_prompts() {
        let text = sample!("mdev/kata-docs-bdw-v4-types-description-available.txt");
        let start = text.find("$ cat description").unwrap_or(0);
        let end = text.find("$ cat available_instances").unwrap_or(text.len());
        let d = parse(&text[start..end]).unwrap();
        assert_eq!((d.low_gm_mb, d.weight), (Some(64), Some(2)));
    }

    #[test]
    fn old_kernel_other_drivers_and_extras() {
        let d = parse("low_gm_size: 64MB\nhigh_gm_size: 384MB\nfence: 4\nresolution: 1024x768\n")
            .unwrap();
        assert_eq!(d.weight, None);
        let d = parse("low_gm_size: 1G, high_gm_size:2GB, fence: x, aggregation: yes").unwrap();
        assert_eq!(
            (d.low_gm_mb, d.high_gm_mb, d.fence),
            (Some(1024), Some(2048), None)
        );
        assert_eq!(
            d.extra,
            vec![
                ("fence".into(), "x".into()),
                ("aggregation".into(), "yes".into())
            ]
        );
        assert_eq!(
            parse("num_heads=4, frl_config=60, framebuffer=1024M, max_resolution=5120x2880"),
            None
        );
        assert_eq!(parse("resolution: 1920x1080 weight: 3"), None);
        assert_eq!(parse(""), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_desc_like(s in "(low_gm_size|high_gm_size|fence|weight|resolution|:|,| |\n|[0-9]{1,25}|MB|G|x){0,60}") {
            if let Some(d) = parse(&s) {
                prop_assert!(d.extra.len() <= MAX_EXTRA);
            }
        }
    }
}
