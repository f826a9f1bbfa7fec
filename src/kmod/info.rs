//! `modinfo` for one module: locate it, read it, and print it as kmod does.
//!
//! The rendering reproduces kmod's tools/modinfo.c `modinfo_do()` (kmod 30,
//! the version Debian 12 ships) byte for byte for everything that comes from
//! `.modinfo` / modules.builtin.modinfo, and for the `sig_id`, `signer`,
//! `sig_key`, `sig_hashalgo` and `signature` lines kmod appends for signed
//! modules (libkmod-signature.c, decoded as kmod built with OpenSSL decodes the
//! PKCS#7 blob: see [`super::signature`]). [`ModInfo::signed`] says whether a
//! structurally valid signature trailer is present; [`ModInfo::signature`] holds
//! the decoded lines, and [`ModInfo::signature_error`] why a present signature
//! could not be decoded (kmod then prints no signature lines, and neither does
//! [`ModInfo::render_kmod_style`]).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::depmod::{path_to_modname, ModuleIndex};
use super::error::KmodError;
use super::modinfo::{
    compression_of, decompress, modinfo_fields, modinfo_fields_at, signature_info, SignatureInfo,
    ELF_MAGIC,
};
use super::signature::Signature;

/// What kmod prints as the file name of a built-in module.
pub const BUILTIN_FILENAME: &str = "(builtin)";

/// Largest module file read from disk (compressed or not).
const MAX_MODULE_FILE: u64 = super::modinfo::MAX_DECOMPRESSED as u64;

/// Everything `modinfo` knows about one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModInfo {
    /// Normalised module name (`-` replaced by `_`).
    pub name: String,
    /// Absolute path of the module file, or `"(builtin)"`.
    pub filename: String,
    /// `.modinfo` records in file order (`key`, `value`); a record without
    /// `=` has an empty value, as in kmod.
    pub fields: Vec<(String, String)>,
    /// Whether the (decompressed) file ends with an appended module
    /// signature; always false for built-in modules.
    pub signed: bool,
    /// The decoded signature lines, when [`ModInfo::signed`] and decoding worked.
    pub signature: Option<Signature>,
    /// Why a present signature could not be decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_error: Option<String>,
    /// `"xz"`, `"zstd"` or `"gzip"` if the file was compressed.
    pub compression: Option<&'static str>,
}

/// One module parameter, merged from its `parm` and `parmtype` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    /// Parameter name (text before the first `:`).
    pub name: String,
    /// From `parm=NAME:DESC` (`MODULE_PARM_DESC`), last one wins like kmod.
    pub description: Option<String>,
    /// From `parmtype=NAME:TYPE` (`module_param*()`), e.g. `bool`, `int`,
    /// `charp`, `array of int`; last one wins like kmod.
    pub ptype: Option<String>,
}

/// Whether kmod's `modinfo` would treat the argument as a file: we accept
/// any argument containing `/` or ending in a module extension.
fn looks_like_path(arg: &str) -> bool {
    arg.contains('/')
        || [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
            .iter()
            .any(|ext| arg.len() > ext.len() && arg.ends_with(ext))
}

/// Locate and read NAME (or an explicit path when `name_or_path` contains
/// '/' or ends in .ko[.xz|.zst|.gz], resolved relative to root when root
/// isn't "/").
///
/// With root `/` a relative path is taken relative to the current directory
/// and made absolute by joining (kmod's `path_make_absolute_cwd()`, no
/// symlink resolution). Otherwise both absolute and relative paths are
/// taken inside `root`. Names are looked up with [`ModuleIndex`] for
/// `release` (module names first, then aliases).
pub fn modinfo(root: &Path, release: &str, name_or_path: &str) -> Result<ModInfo> {
    if looks_like_path(name_or_path) {
        let rel = Path::new(name_or_path);
        let path: PathBuf = if root == Path::new("/") {
            if rel.is_absolute() {
                rel.to_path_buf()
            } else {
                std::env::current_dir()
                    .context("cannot determine the current directory")?
                    .join(rel)
            }
        } else {
            root.join(name_or_path.trim_start_matches('/'))
        };
        return modinfo_file(&path);
    }
    // Fastest path: the name in modules.dep.bin, as kmod finds it (a few node reads).
    if let Some(super::depmod::Located::File { path, .. }) =
        super::depmod::lookup_dep_bin(root, release, name_or_path)
    {
        let mut mi = modinfo_file(&path)?;
        mi.name = super::depmod::normalize_name(name_or_path);
        return Ok(mi);
    }
    // Fast path: a module name found by one pass over modules.dep. Built-ins and aliases need
    // the whole index.
    if let Ok(found) = super::depmod::locate_modules(root, release, &[name_or_path]) {
        if let Some(super::depmod::Located::File { path, .. }) = found.into_values().next() {
            let mut mi = modinfo_file(&path)?;
            mi.name = super::depmod::normalize_name(name_or_path);
            return Ok(mi);
        }
    }
    ModuleIndex::load(root, release)?.modinfo(name_or_path)
}

/// kmod's `modinfo -m NAME`: the module *named* `name` (modules.dep, then modules.builtin),
/// never a path or an alias.
pub fn modinfo_by_name(root: &Path, release: &str, name: &str) -> Result<ModInfo> {
    if let Some(super::depmod::Located::File { path, .. }) =
        super::depmod::lookup_dep_bin(root, release, name)
    {
        let mut mi = modinfo_file(&path)?;
        mi.name = super::depmod::normalize_name(name);
        return Ok(mi);
    }
    ModuleIndex::load(root, release)?.modinfo_by_name(name)
}

/// Reads one module file (plain or compressed); the name is derived from the
/// file name like kmod's `path_to_modname()`.
pub fn modinfo_file(path: &Path) -> Result<ModInfo> {
    let display = path.display().to_string();
    let mut file = File::open(path).with_context(|| format!("cannot open module {display}"))?;
    let name = path
        .to_str()
        .and_then(path_to_modname)
        .unwrap_or_else(|| display.clone());
    // An uncompressed module in a regular file: read only its headers, `.modinfo` and the
    // signature trailer (i915.ko is 6 MB, its `.modinfo` 20 kB).
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read module {display}"))?;
    if meta.is_file() && meta.len() <= MAX_MODULE_FILE {
        let mut magic = [0u8; 4];
        let n = file
            .read_at(&mut magic, 0)
            .with_context(|| format!("cannot read module {display}"))?;
        if magic.get(..n) == Some(&ELF_MAGIC[..]) {
            let (fields, sig) = modinfo_fields_at(&mut file, meta.len())
                .with_context(|| format!("cannot read .modinfo of {display}"))?;
            return Ok(ModInfo::with_signature(name, display, fields, sig, None));
        }
    }
    let mut raw = Vec::new();
    file.take(MAX_MODULE_FILE + 1)
        .read_to_end(&mut raw)
        .with_context(|| format!("cannot read module {display}"))?;
    if raw.len() as u64 > MAX_MODULE_FILE {
        return Err(KmodError::TooLarge {
            name: display,
            format: "file",
            limit: super::modinfo::MAX_DECOMPRESSED,
        }
        .into());
    }
    let compression = compression_of(&raw);
    let elf = decompress(&display, &raw)?;
    let fields =
        modinfo_fields(&elf).with_context(|| format!("cannot read .modinfo of {display}"))?;
    Ok(ModInfo::with_signature(
        name,
        display,
        fields,
        signature_info(&elf),
        compression,
    ))
}

/// Appends `label` padded like C's `%-16s` (or kmod's `%s:%-*s` with width
/// `15 - keylen`; printf treats a negative width as left-justified with the
/// absolute width, so keys longer than 15 bytes get `keylen - 15` spaces).
fn push_key(out: &mut String, key: &str) {
    out.push_str(key);
    out.push(':');
    let pad = 15usize.abs_diff(key.len());
    out.extend(std::iter::repeat_n(' ', pad));
}

impl ModInfo {
    /// A loadable module's info from its parts.
    fn with_signature(
        name: String,
        filename: String,
        fields: Vec<(String, String)>,
        sig: SignatureInfo,
        compression: Option<&'static str>,
    ) -> Self {
        let (signature, signature_error) = match sig {
            Some(Ok(s)) => (Some(s), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        ModInfo {
            name,
            filename,
            fields,
            signed: signature.is_some() || signature_error.is_some(),
            signature,
            signature_error,
            compression,
        }
    }

    /// Text exactly as kmod's `modinfo` prints it.
    ///
    /// Follows tools/modinfo.c `modinfo_do()`: built-in modules start with
    /// `name:`; then `filename:`; then every field in file order as
    /// `printf("%s:%-*s%s\n", key, 15 - keylen, "", value)` except `parm`
    /// and `parmtype`, which are merged per parameter name (`add_param()`:
    /// the list is prepended to, so parameters come out in *reverse* order
    /// of first appearance, and a later record for the same name overwrites
    /// the text) and printed last as `parm:           NAME:DESC (TYPE)`,
    /// `NAME:DESC` (no type) or `NAME:TYPE` (no description, and no
    /// parentheses). Records of those two keys without a `:` are dropped
    /// (kmod prints an error on stderr). `name:` and `vermagic:` of
    /// loadable modules are ordinary fields (modpost puts them near the end
    /// of `.modinfo`), so they appear where the file has them. The signature
    /// lines (`sig_id`, `signer`, `sig_key`, `sig_hashalgo`, `signature`; see
    /// [`Signature::fields`]) come after the other fields and before the
    /// parameters, since kmod appends them to the field list.
    pub fn render_kmod_style(&self) -> String {
        self.render_kmod(None, '\n')
    }

    /// kmod's `modinfo [-F FIELD] [-0]` output for this module: `field` selects one field
    /// (`-F`), `sep` ends every record (`'\n'`, or `'\0'` for `-0`).
    ///
    /// With a field (tools/modinfo.c `modinfo_do()`): `filename` prints the file name (or
    /// `(builtin)`) and nothing else; `name` of a built-in module prints its name, then any
    /// `name` records; `parm` prints the merged parameters without the `parm:` label
    /// (`modinfo_params_do()`: `NAME:DESC (TYPE)`, `NAME:DESC`, or `NAME: (TYPE)` when there is
    /// no description); any other field prints the value of every record with that key, the
    /// signature fields included, in the order of [`ModInfo::render_kmod_style`]. With `'\0'`
    /// and no field, ordinary records are printed as `key=value` while `name:`, `filename:`
    /// and `parm:` keep their padded labels, as kmod does.
    pub fn render_kmod(&self, field: Option<&str>, sep: char) -> String {
        // Room for every record: its key, its value and (for keys of up to 31 bytes) its label
        // and padding; only a first allocation, the string grows if needed.
        let size: usize = self
            .fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 17)
            .sum();
        let mut out = String::with_capacity(size + self.filename.len() + 64);
        let builtin = self.filename == BUILTIN_FILENAME;
        let line = |out: &mut String, parts: &[&str]| {
            for p in parts {
                out.push_str(p);
            }
            out.push(sep);
        };
        if let Some(field) = field {
            if builtin && field == "name" {
                line(&mut out, &[&self.name]);
            }
            if field == "filename" {
                line(&mut out, &[&self.filename]);
                return out;
            }
            if field == "parm" {
                for p in self.params().iter().rev() {
                    match (&p.description, &p.ptype) {
                        (Some(d), Some(t)) => line(&mut out, &[&p.name, ":", d, " (", t, ")"]),
                        (Some(d), None) => line(&mut out, &[&p.name, ":", d]),
                        (None, Some(t)) => line(&mut out, &[&p.name, ": (", t, ")"]),
                        (None, None) => line(&mut out, &[&p.name, ":"]),
                    }
                }
                return out;
            }
            for (_, value) in self.fields.iter().filter(|(k, _)| k == field) {
                line(&mut out, &[value]);
            }
            let sig_field = matches!(
                field,
                "sig_id" | "signer" | "sig_key" | "sig_hashalgo" | "signature"
            );
            if let Some(sig) = self.signature.as_ref().filter(|_| sig_field) {
                for (_, value) in sig.fields().into_iter().filter(|(k, _)| *k == field) {
                    line(&mut out, &[&value]);
                }
            }
            return out;
        }
        let padded = |out: &mut String, key: &str, value: &str| {
            push_key(out, key);
            out.push_str(value);
            out.push(sep);
        };
        let record = |out: &mut String, key: &str, value: &str| {
            if sep == '\0' {
                out.push_str(key);
                out.push('=');
                out.push_str(value);
                out.push(sep);
            } else {
                padded(out, key, value);
            }
        };
        if builtin {
            padded(&mut out, "name", &self.name);
        }
        padded(&mut out, "filename", &self.filename);
        for (key, value) in &self.fields {
            if key == "parm" || key == "parmtype" {
                continue;
            }
            record(&mut out, key, value);
        }
        if let Some(sig) = &self.signature {
            for (key, value) in sig.fields() {
                record(&mut out, key, &value);
            }
        }
        for p in self.params().iter().rev() {
            push_key(&mut out, "parm");
            out.push_str(&p.name);
            out.push(':');
            match (&p.description, &p.ptype) {
                (Some(d), Some(t)) => {
                    out.push_str(d);
                    out.push_str(" (");
                    out.push_str(t);
                    out.push(')');
                }
                (Some(d), None) => out.push_str(d),
                (None, Some(t)) => out.push_str(t),
                (None, None) => {}
            }
            out.push(sep);
        }
        out
    }

    /// Values of every field called `key`, in file order.
    pub fn get(&self, key: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Parameters merged from `parm`/`parmtype` records, in order of first
    /// appearance in the file (kmod prints them in the reverse order; see
    /// [`ModInfo::render_kmod_style`]). Records without `:` are skipped.
    pub fn params(&self) -> Vec<Param> {
        let mut params: Vec<Param> = Vec::new();
        for (key, value) in &self.fields {
            let is_desc = match key.as_str() {
                "parm" => true,
                "parmtype" => false,
                _ => continue,
            };
            // kmod's process_parm(): split at the first ':'.
            let Some((name, text)) = value.split_once(':') else {
                continue;
            };
            let idx = match params.iter().position(|p| p.name == name) {
                Some(i) => i,
                None => {
                    params.push(Param {
                        name: name.to_string(),
                        description: None,
                        ptype: None,
                    });
                    params.len() - 1
                }
            };
            if let Some(p) = params.get_mut(idx) {
                if is_desc {
                    p.description = Some(text.to_string());
                } else {
                    p.ptype = Some(text.to_string());
                }
            }
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi(fields: &[(&str, &str)]) -> ModInfo {
        ModInfo {
            name: "m".into(),
            filename: "/x/m.ko".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            signed: false,
            signature: None,
            signature_error: None,
            compression: None,
        }
    }

    #[test]
    fn render_params_reverse_and_merge() {
        let m = mi(&[
            ("parm", "a:desc a"),
            ("parmtype", "a:int"),
            ("license", "GPL"),
            ("parmtype", "b:bool"),
            ("parm", "c:only desc"),
            ("parm", "bad"),
            ("parm", "d:"),
            ("parmtype", "d:uint"),
            ("averyveryverylongkey", "v"),
            ("fifteen_chars_k", "w"),
        ]);
        let want = "filename:       /x/m.ko\n\
                    license:        GPL\n\
                    averyveryverylongkey:     v\n\
                    fifteen_chars_k:w\n\
                    parm:           d: (uint)\n\
                    parm:           c:only desc\n\
                    parm:           b:bool\n\
                    parm:           a:desc a (int)\n";
        assert_eq!(m.render_kmod_style(), want);
        assert_eq!(m.get("license"), vec!["GPL"]);
        let p = m.params();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].ptype.as_deref(), Some("int"));
    }

    #[test]
    fn render_builtin() {
        let mut m = mi(&[("license", "GPL")]);
        m.filename = BUILTIN_FILENAME.into();
        assert_eq!(
            m.render_kmod_style(),
            "name:           m\nfilename:       (builtin)\nlicense:        GPL\n"
        );
    }

    #[test]
    fn path_detection() {
        assert!(looks_like_path("./i915"));
        assert!(looks_like_path("i915.ko"));
        assert!(looks_like_path("i915.ko.zst"));
        assert!(!looks_like_path("i915"));
        assert!(!looks_like_path(".ko"));
    }
}
