//! A kernel `.config` (`/boot/config-$(uname -r)`, or `/proc/config.gz` after the caller
//! decompressed it).
//!
//! Format as written by scripts/kconfig/confdata.c (`conf_write()`, read back by
//! `conf_read_simple()`):
//! - `CONFIG_NAME=y` / `=m` for bool/tristate, `# CONFIG_NAME is not set` for n;
//! - `CONFIG_NAME="text"` for strings, with `\"` and `\\` escaped;
//! - `CONFIG_NAME=123` / `=-1` / `=0x1f` for int and hex symbols;
//! - other `#` lines are comments.
//!
//! Keys are stored WITHOUT the `CONFIG_` prefix. A symbol assigned twice keeps the last
//! value (conf_read_simple() overrides and warns). We also accept lines prefixed by a file
//! name as `grep CONFIG_X /boot/config-*` prints them (`/boot/config-6.1:CONFIG_X=y`),
//! because users paste that.

use std::collections::BTreeMap;

use serde::Serialize;

/// A symbol's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum KValue {
    /// `=y`
    Yes,
    /// `=m`
    Module,
    /// `# CONFIG_X is not set` (or a hand-written `=n`).
    NotSet,
    /// A quoted string, unescaped.
    Str(String),
    /// A decimal or `0x` hex number, as written.
    Num(String),
}

/// All symbols of a .config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kconfig {
    /// Symbol name (without `CONFIG_`) → (value, 1-based line).
    pub values: BTreeMap<String, (KValue, usize)>,
}

const PREFIX: &str = "CONFIG_";

fn is_symbol(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_number(v: &str) -> bool {
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

/// Undoes confdata.c's string escaping (`\"` and `\\`; any other `\c` is `c`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_value(v: &str) -> KValue {
    match v {
        "y" => KValue::Yes,
        "m" => KValue::Module,
        "n" => KValue::NotSet,
        _ => {
            if let Some(inner) = v.strip_prefix('"') {
                KValue::Str(unescape(inner.strip_suffix('"').unwrap_or(inner)))
            } else if is_number(v) {
                KValue::Num(v.to_string())
            } else {
                // Not something kconfig writes; keep it rather than lose the line.
                KValue::Str(v.to_string())
            }
        }
    }
}

/// Parses a .config text. Lines that are neither assignments nor "is not set" are ignored.
pub fn parse(text: &str) -> Kconfig {
    let mut values = BTreeMap::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(sym) = rest
                .strip_suffix(" is not set")
                .and_then(|s| s.strip_prefix(PREFIX))
                .filter(|s| is_symbol(s))
            {
                values.insert(sym.to_string(), (KValue::NotSet, idx + 1));
            }
            continue;
        }
        // Tolerate `path:CONFIG_X=y` from grep over several files.
        let line = match line.find(":CONFIG_") {
            Some(i) if !line.starts_with(PREFIX) => line.get(i + 1..).unwrap_or(""),
            _ => line,
        };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let Some(sym) = key.trim().strip_prefix(PREFIX).filter(|s| is_symbol(s)) else {
            continue;
        };
        values.insert(sym.to_string(), (parse_value(value.trim()), idx + 1));
    }
    Kconfig { values }
}

impl Kconfig {
    /// The value of a symbol, named with or without `CONFIG_`.
    pub fn get(&self, name: &str) -> Option<&KValue> {
        self.entry(name).map(|(v, _)| v)
    }

    /// The 1-based line where the symbol was (last) set.
    pub fn line(&self, name: &str) -> Option<usize> {
        self.entry(name).map(|(_, l)| *l)
    }

    fn entry(&self, name: &str) -> Option<&(KValue, usize)> {
        // Strip the prefix first; fall back to the name as given for symbols whose own
        // name starts with CONFIG_ (`CONFIG_CONFIG_X`).
        let key = name.strip_prefix(PREFIX).unwrap_or(name);
        self.values.get(key).or_else(|| self.values.get(name))
    }

    /// True when the symbol is `y` or `m`.
    pub fn enabled(&self, name: &str) -> bool {
        matches!(self.get(name), Some(KValue::Yes | KValue::Module))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn debian_6_1_config() {
        let k = parse(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/kconfig/config-6.1.0-56-amd64"
        )));
        assert_eq!(k.get("CONFIG_DRM_I915_GVT_KVMGT"), Some(&KValue::Module));
        assert_eq!(k.get("DRM_I915_GVT"), Some(&KValue::Yes));
        assert_eq!(k.get("VFIO_MDEV"), Some(&KValue::Module));
        assert_eq!(k.get("VFIO"), Some(&KValue::Module));
        assert!(k.enabled("VFIO_IOMMU_TYPE1"));
        assert!(k.enabled("KVM_INTEL"));
        assert!(k.enabled("CONFIG_DRM_I915"));
        assert_eq!(k.line("DRM_I915_GVT_KVMGT"), Some(6257));
        assert_eq!(
            k.get("CC_VERSION_TEXT"),
            Some(&KValue::Str(
                "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0".into()
            ))
        );
        assert!(matches!(k.get("NR_CPUS"), Some(KValue::Num(_))));
        assert!(k.values.len() > 5000);
        assert!(!k.enabled("NO_SUCH_SYMBOL"));
        // a `# CONFIG_X is not set` line
        let not_set = k
            .values
            .iter()
            .filter(|(_, (v, _))| *v == KValue::NotSet)
            .count();
        assert!(not_set > 100);
    }

    #[test]
    fn value_kinds() {
        let k = parse(
            "CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=\"x \\\"q\\\" \\\\\"\n\
             CONFIG_E=0x1f\nCONFIG_F=-3\nCONFIG_A=m\n/boot/config-5.4:CONFIG_G=y\n\
             # comment\nNOT_CONFIG=y\nCONFIG_H=weird\n",
        );
        assert_eq!(k.get("A"), Some(&KValue::Module));
        assert_eq!(k.line("A"), Some(7));
        assert_eq!(k.get("C"), Some(&KValue::NotSet));
        assert!(!k.enabled("C"));
        assert_eq!(k.get("D"), Some(&KValue::Str("x \"q\" \\".into())));
        assert_eq!(k.get("E"), Some(&KValue::Num("0x1f".into())));
        assert_eq!(k.get("F"), Some(&KValue::Num("-3".into())));
        assert_eq!(k.get("G"), Some(&KValue::Yes));
        assert_eq!(k.get("H"), Some(&KValue::Str("weird".into())));
        assert_eq!(k.values.len(), 8);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_config_like(s in "(CONFIG_|# |is not set|[A-Z_]|=|y|m|\"|\\\\|0x|:|\n){0,80}") {
            let k = parse(&s);
            for name in k.values.keys() {
                prop_assert!(k.get(name).is_some());
            }
        }
    }
}
