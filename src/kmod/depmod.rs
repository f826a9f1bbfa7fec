//! Locating a module by name the way modprobe/modinfo do, from the text
//! indexes depmod writes under `lib/modules/<release>/`.
//!
//! kmod itself reads the binary `*.bin` tries; `gvtg modinfo NAME` reads
//! modules.dep.bin the same way ([`lookup_dep_bin`]) when it is there, and otherwise,
//! for everything else, we read the text files depmod
//! writes next to them (tools/depmod.c `output_deps()`, `output_aliases()`,
//! `output_symbols()`; the kernel build writes modules.builtin and
//! modules.builtin.modinfo), which carry the same data and are easier to
//! capture from a remote host:
//! - `modules.dep`: `kernel/path/x.ko[.xz]: dep dep ...` (required);
//! - `modules.builtin`: one `kernel/path/x.ko` per built-in module;
//! - `modules.builtin.modinfo`: NUL-separated `module.key=value` records;
//! - `modules.alias` / `modules.symbols`: `alias PATTERN module` lines.
//!
//! Lookup order of [`ModuleIndex::locate`]: module names in modules.dep,
//! then modules.builtin, then (only if the name is not a module) `symbol:`
//! names in modules.symbols, aliases in modules.alias, and finally aliases of
//! built-in modules from modules.builtin.modinfo. kmod's
//! `kmod_module_new_from_lookup()` (libkmod/libkmod-module.c) checks
//! modules.alias *before* modules.builtin and also consults
//! /etc/modprobe.d aliases and install commands first; we deliberately
//! resolve real module names first and ignore modprobe.d configuration.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::error::KmodError;
use super::glob;
use super::info::{self, ModInfo};
use super::modinfo::{split_key_value, split_strings};

/// Cap on any index file we read (the Debian 6.1 modules.alias is ~1 MiB).
const MAX_INDEX_FILE: u64 = 64 << 20;

/// Where a module lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// A loadable module file listed in modules.dep.
    File {
        /// Absolute path of the file under the index's root.
        path: PathBuf,
        /// The path exactly as written in modules.dep.
        rel: String,
        /// Its dependencies exactly as written in modules.dep.
        deps: Vec<String>,
    },
    /// A module built into the kernel image (listed in modules.builtin).
    Builtin {
        /// Its modinfo records from modules.builtin.modinfo (without the
        /// `module.` prefix); empty if that file has none for it.
        fields: Vec<(String, String)>,
    },
}

#[derive(Debug)]
struct DepEntry {
    rel: String,
    deps: String,
}

/// `alias PATTERN module` lines, with a fast path for literal patterns.
#[derive(Debug, Default)]
struct AliasTable {
    /// Literal pattern -> index (in file order) of its first entry.
    exact: HashMap<String, usize>,
    /// Wildcard entries: (file-order index, pattern), in file order.
    wild: Vec<(usize, String)>,
    /// Module of each entry, by file-order index.
    modules: Vec<String>,
}

impl AliasTable {
    fn insert(&mut self, pattern: String, module: String) {
        let idx = self.modules.len();
        self.modules.push(module);
        if glob::is_pattern(&pattern) {
            self.wild.push((idx, pattern));
        } else {
            self.exact.entry(pattern).or_insert(idx);
        }
    }

    /// The module of the first entry (in file order) matching `name`.
    fn lookup(&self, name: &str) -> Option<&str> {
        let exact = self.exact.get(name).copied();
        let wild = self
            .wild
            .iter()
            .take_while(|(i, _)| exact.is_none_or(|e| *i < e))
            .find(|(_, p)| glob::fnmatch(p, name))
            .map(|(i, _)| *i);
        let idx = wild.or(exact)?;
        self.modules.get(idx).map(String::as_str)
    }
}

/// The depmod indexes of one kernel release under one root directory.
#[derive(Debug)]
pub struct ModuleIndex {
    root: PathBuf,
    dir: PathBuf,
    deps: HashMap<String, DepEntry>,
    builtin: HashSet<String>,
    builtin_fields: HashMap<String, Vec<(String, String)>>,
    order: Vec<String>,
    /// modules.alias and modules.symbols hold ~40k lines on a distribution kernel and parsing
    /// them is most of the cost of `load`; they are only needed when a name is not a module, so
    /// they are read on first use.
    aliases: std::sync::OnceLock<std::result::Result<AliasTable, String>>,
    symbols: std::sync::OnceLock<std::result::Result<AliasTable, String>>,
    builtin_aliases: AliasTable,
}

static EMPTY_TABLE: std::sync::LazyLock<AliasTable> = std::sync::LazyLock::new(AliasTable::default);

/// kmod's `modname_normalize()` (shared/util.c) for names typed by a user:
/// `-` and `_` are the same character in module names.
pub fn normalize_name(name: &str) -> String {
    name.replace('-', "_")
}

/// kmod's `path_to_modname()`: the basename up to its first `.`, normalised.
pub fn path_to_modname(path: &str) -> Option<String> {
    let base = path.rsplit('/').next()?;
    let stem = base.split('.').next()?;
    if stem.is_empty() {
        return None;
    }
    Some(normalize_name(stem))
}

/// kmod's `alias_normalize()` (shared/util.c): `-` becomes `_` except inside
/// `[...]`; an unmatched bracket makes the alias invalid (`None`).
pub fn normalize_alias(alias: &str) -> Option<String> {
    let mut out = String::with_capacity(alias.len());
    let mut chars = alias.chars();
    while let Some(c) = chars.next() {
        match c {
            '-' => out.push('_'),
            ']' => return None,
            '[' => {
                out.push('[');
                loop {
                    match chars.next() {
                        Some(']') => {
                            out.push(']');
                            break;
                        }
                        Some(x) => out.push(x),
                        None => return None,
                    }
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// Reads a whole file, refusing files over `MAX_INDEX_FILE` bytes.
/// `Ok(None)` when the file does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    let mut buf = Vec::new();
    file.take(MAX_INDEX_FILE + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if buf.len() as u64 > MAX_INDEX_FILE {
        bail!("{}: larger than {MAX_INDEX_FILE} bytes", path.display());
    }
    Ok(Some(buf))
}

fn text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))
}

/// Parses `alias PATTERN MODULE` lines (modules.alias, modules.symbols).
fn parse_alias_file(path: &Path, bytes: &[u8]) -> Result<AliasTable> {
    let mut table = AliasTable::default();
    for (n, line) in text(path, bytes)?.lines().enumerate() {
        let line = line.trim();
        // depmod writes a "# Aliases extracted from modules themselves."
        // header; modprobe.d syntax allows comments too.
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some("alias"), Some(pattern), Some(module), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            bail!(
                "{}:{}: expected `alias PATTERN MODULE`, got {line:?}",
                path.display(),
                n + 1
            );
        };
        // depmod's output_aliases_bin() normalises patterns and skips ones
        // with unmatched brackets (with a warning); so do we.
        if let Some(p) = normalize_alias(pattern) {
            table.insert(p, normalize_name(module));
        }
    }
    Ok(table)
}

impl ModuleIndex {
    /// Reads `<root>/lib/modules/<release>/{modules.dep, modules.builtin,
    /// modules.builtin.modinfo, modules.alias, modules.symbols}`.
    ///
    /// `root` mirrors `/` (`/` itself or a captured tree). modules.dep is
    /// required; the others are optional, as they are for kmod. Malformed
    /// lines are errors naming the file and line (record for
    /// modules.builtin.modinfo). If a module name appears twice in
    /// modules.dep the first line wins.
    pub fn load(root: &Path, release: &str) -> Result<ModuleIndex> {
        let (dir, dep_path, dep_bytes) = read_modules_dep(root, release)?;
        let mut deps = HashMap::new();
        let mut order = Vec::new();
        for (n, line) in text(&dep_path, &dep_bytes)?.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Some((rel, rest)) = line.split_once(':') else {
                bail!("{}:{}: missing ':' in {line:?}", dep_path.display(), n + 1);
            };
            let rel = rel.trim();
            let Some(name) = path_to_modname(rel) else {
                bail!(
                    "{}:{}: no module file name in {line:?}",
                    dep_path.display(),
                    n + 1
                );
            };
            if deps.contains_key(&name) {
                continue;
            }
            order.push(name.clone());
            // Dependencies stay one string until a lookup needs them: splitting every line
            // into owned words was most of the cost of loading a distribution's index.
            let entry = DepEntry {
                rel: rel.to_string(),
                deps: rest.trim().to_string(),
            };
            deps.insert(name, entry);
        }

        let mut builtin = HashSet::new();
        let builtin_path = dir.join("modules.builtin");
        if let Some(bytes) = read_optional(&builtin_path)? {
            for (n, line) in text(&builtin_path, &bytes)?.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let Some(name) = path_to_modname(line) else {
                    bail!(
                        "{}:{}: no module name in {line:?}",
                        builtin_path.display(),
                        n + 1
                    );
                };
                if builtin.insert(name.clone()) && !deps.contains_key(&name) {
                    order.push(name);
                }
            }
        }

        let mut builtin_fields: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut builtin_aliases = AliasTable::default();
        let info_path = dir.join("modules.builtin.modinfo");
        if let Some(bytes) = read_optional(&info_path)? {
            // Records are grouped per object file. kmod's
            // kmod_builtin_get_modinfo() (libkmod/libkmod-builtin.c) returns
            // only the *first* contiguous block whose prefix matches, so a
            // module whose records are split in two blocks shows only the
            // first; we keep that behaviour. Aliases come from every block,
            // like depmod's output_builtin_alias_bin().
            let mut current: Option<String> = None;
            let mut seen: HashSet<String> = HashSet::new();
            let mut keep = false;
            for (n, rec) in split_strings(&bytes).enumerate() {
                let Some(dot) = rec.iter().position(|&b| b == b'.') else {
                    bail!(
                        "{}: record {}: no `module.` prefix in {:?}",
                        info_path.display(),
                        n + 1,
                        String::from_utf8_lossy(rec)
                    );
                };
                let (module, rest) = rec.split_at(dot);
                let module = String::from_utf8_lossy(module).into_owned();
                let (key, value) = split_key_value(rest.get(1..).unwrap_or_default());
                if current.as_deref() != Some(module.as_str()) {
                    keep = seen.insert(module.clone());
                    current = Some(module.clone());
                }
                if key == "alias" {
                    if let Some(p) = normalize_alias(&value) {
                        builtin_aliases.insert(p, module.clone());
                    }
                }
                if keep {
                    builtin_fields.entry(module).or_default().push((key, value));
                }
            }
        }

        Ok(ModuleIndex {
            root: root.to_path_buf(),
            dir,
            deps,
            builtin,
            builtin_fields,
            order,
            aliases: std::sync::OnceLock::new(),
            symbols: std::sync::OnceLock::new(),
            builtin_aliases,
        })
    }

    /// Reads an alias-style index (`alias PATTERN module`) on first use. A malformed file
    /// makes alias lookups find nothing (module names still resolve), and its located error is
    /// reported by [`ModuleIndex::modinfo`] when a name is not found.
    fn lazy_table<'a>(
        &'a self,
        cell: &'a std::sync::OnceLock<std::result::Result<AliasTable, String>>,
        file: &str,
    ) -> &'a std::result::Result<AliasTable, String> {
        cell.get_or_init(|| {
            let path = self.dir.join(file);
            match read_optional(&path) {
                Ok(Some(b)) => parse_alias_file(&path, &b).map_err(|e| format!("{e:#}")),
                Ok(None) => Ok(AliasTable::default()),
                Err(e) => Err(format!("{e:#}")),
            }
        })
    }

    fn aliases(&self) -> &AliasTable {
        self.lazy_table(&self.aliases, "modules.alias")
            .as_ref()
            .unwrap_or(&EMPTY_TABLE)
    }

    fn symbols(&self) -> &AliasTable {
        self.lazy_table(&self.symbols, "modules.symbols")
            .as_ref()
            .unwrap_or(&EMPTY_TABLE)
    }

    /// Errors of the alias indexes (read now if they were not yet).
    pub fn alias_index_errors(&self) -> Vec<&str> {
        [
            self.lazy_table(&self.aliases, "modules.alias"),
            self.lazy_table(&self.symbols, "modules.symbols"),
        ]
        .into_iter()
        .filter_map(|r| r.as_ref().err().map(String::as_str))
        .collect()
    }

    /// The `<root>/lib/modules/<release>` directory this index was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Finds a module by name (`-` and `_` are equivalent) or, if no module
    /// has that name, by alias (see the module docs for the order). An alias
    /// matching several modules yields the first in file order; kmod's
    /// `modinfo ALIAS` prints all of them.
    pub fn locate(&self, name: &str) -> Option<Located> {
        self.find(name).map(|(_, l)| l)
    }

    /// The normalised module name `name` refers to (itself or via an alias).
    pub fn resolve(&self, name: &str) -> Option<String> {
        self.find(name).map(|(n, _)| n)
    }

    fn find(&self, name: &str) -> Option<(String, Located)> {
        let norm = normalize_name(name);
        if let Some(l) = self.locate_module(&norm) {
            return Some((norm, l));
        }
        let alias = normalize_alias(name)?;
        let symbol = if alias.starts_with("symbol:") {
            self.symbols().lookup(&alias)
        } else {
            None
        };
        if let Some(m) = symbol.or_else(|| self.aliases().lookup(&alias)) {
            let m = normalize_name(m);
            return self.locate_module(&m).map(|l| (m, l));
        }
        // kmod's kmod_lookup_alias_from_kernel_builtin_file() marks the
        // target built-in even if modules.builtin does not list it.
        let m = self.builtin_aliases.lookup(&alias)?;
        let fields = self.builtin_fields.get(m).cloned().unwrap_or_default();
        Some((m.to_string(), Located::Builtin { fields }))
    }

    /// Looks `name` up as a module name only (like `modinfo -m`): no aliases.
    pub fn locate_module(&self, name: &str) -> Option<Located> {
        let norm = normalize_name(name);
        if let Some(e) = self.deps.get(&norm) {
            let path = match e.rel.strip_prefix('/') {
                // kmod uses an absolute modules.dep path as is; we keep it
                // inside `root` so a captured tree never escapes to the host.
                Some(abs) => self.root.join(abs),
                None => self.dir.join(&e.rel),
            };
            return Some(Located::File {
                path,
                rel: e.rel.clone(),
                deps: e.deps.split_whitespace().map(str::to_string).collect(),
            });
        }
        if self.builtin.contains(&norm) {
            let fields = self.builtin_fields.get(&norm).cloned().unwrap_or_default();
            return Some(Located::Builtin { fields });
        }
        None
    }

    /// Every module in modules.dep (file order) then every built-in module
    /// from modules.builtin not already listed; normalised names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// Whether `name` is listed in modules.builtin.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize_name(name))
    }

    /// Module names that have records in modules.builtin.modinfo (kmod's
    /// `modinfo` finds these only if they are also in modules.builtin or
    /// match a built-in alias).
    pub fn builtin_modinfo_names(&self) -> impl Iterator<Item = &str> {
        self.builtin_fields.keys().map(String::as_str)
    }

    /// Locates `name` (module or alias) and reads its modinfo.
    pub fn modinfo(&self, name: &str) -> Result<ModInfo> {
        let found = self.find(name);
        self.info_of(name, found)
    }

    /// Reads the modinfo of the module *named* `name` (modules.dep, then modules.builtin),
    /// never resolving it as an alias: kmod's `modinfo -m`.
    pub fn modinfo_by_name(&self, name: &str) -> Result<ModInfo> {
        let norm = normalize_name(name);
        let found = self.locate_module(&norm).map(|l| (norm, l));
        self.info_of(name, found)
    }

    fn info_of(&self, name: &str, found: Option<(String, Located)>) -> Result<ModInfo> {
        let Some((module, located)) = found else {
            let not_found = anyhow::Error::new(KmodError::NotFound {
                name: name.to_string(),
                dir: self.dir.clone(),
            });
            let errs = self.alias_index_errors();
            return Err(if errs.is_empty() {
                not_found
            } else {
                not_found.context(format!("alias lookup impossible: {}", errs.join("; ")))
            });
        };
        match located {
            Located::File { path, .. } => {
                let mut mi = info::modinfo_file(&path)?;
                mi.name = module;
                Ok(mi)
            }
            Located::Builtin { fields } => Ok(ModInfo {
                name: module,
                filename: info::BUILTIN_FILENAME.to_string(),
                fields,
                signed: false,
                signature: None,
                signature_error: None,
                compression: None,
            }),
        }
    }
}

/// Validates `release` (one path component) and reads `<root>/lib/modules/<release>/modules.dep`.
/// Returns the module directory, the file's path and its bytes.
fn read_modules_dep(root: &Path, release: &str) -> Result<(PathBuf, PathBuf, Vec<u8>)> {
    if release.is_empty() || release.contains('/') || release == "." || release == ".." {
        bail!("invalid kernel release {release:?}");
    }
    let dir = root.join("lib/modules").join(release);
    let dep_path = dir.join("modules.dep");
    let dep_bytes = read_optional(&dep_path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} not found (is kernel {release} installed, and depmod run?)",
            dep_path.display()
        )
    })?;
    Ok((dir, dep_path, dep_bytes))
}

/// Magic and version of kmod's binary indexes (libkmod-index.c `INDEX_MAGIC`,
/// `INDEX_VERSION`).
const INDEX_MAGIC: u32 = 0xB007_F457;
const INDEX_VERSION: u32 = 0x0002_0001;
/// Node offset flags (libkmod-index.c `INDEX_NODE_*`).
const NODE_PREFIX: u32 = 0x8000_0000;
const NODE_VALUES: u32 = 0x4000_0000;
const NODE_CHILDS: u32 = 0x2000_0000;
const NODE_MASK: u32 = 0x0FFF_FFFF;

/// Random access to one binary index file, by `pread`.
struct BinIndex {
    file: File,
    len: u64,
}

impl BinIndex {
    fn bytes(&self, off: u64, n: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        if off.checked_add(n as u64)? > self.len {
            return None;
        }
        let mut buf = vec![0u8; n];
        self.file.read_exact_at(&mut buf, off).ok()?;
        Some(buf)
    }

    fn u32(&self, off: u64) -> Option<u32> {
        let b = self.bytes(off, 4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    /// The NUL-terminated string at `off` and the offset after its NUL (bounded: 64 KiB).
    fn cstr(&self, off: u64) -> Option<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut at = off;
        while out.len() < 64 * 1024 {
            let n = usize::try_from((self.len.checked_sub(at)?).min(256)).ok()?;
            if n == 0 {
                return None;
            }
            let chunk = self.bytes(at, n)?;
            match chunk.iter().position(|&b| b == 0) {
                Some(i) => {
                    out.extend_from_slice(chunk.get(..i)?);
                    let next = off + out.len() as u64 + 1;
                    return Some((out, next));
                }
                None => out.extend_from_slice(&chunk),
            }
            at += n as u64;
        }
        None
    }
}

/// Looks a module *name* up in `modules.dep.bin`, the trie kmod itself reads
/// (libkmod-index.c `index_search()`: follow the node prefixes and the child for each key
/// byte; at the end of the key the node's first value is the modules.dep line: depmod writes
/// one per module). Reads only the nodes on the key's path. `None` when the file is absent,
/// does not hold the name, or is malformed in any way: the caller then reads modules.dep.
pub fn lookup_dep_bin(root: &Path, release: &str, name: &str) -> Option<Located> {
    if release.is_empty() || release.contains('/') || release == "." || release == ".." {
        return None;
    }
    let dir = root.join("lib/modules").join(release);
    let file = File::open(dir.join("modules.dep.bin")).ok()?;
    let len = file.metadata().ok()?.len();
    let idx = BinIndex { file, len };
    if idx.u32(0)? != INDEX_MAGIC || idx.u32(4)? != INDEX_VERSION {
        return None;
    }
    let key = normalize_name(name);
    let key = key.as_bytes();
    let mut node = idx.u32(8)?;
    let mut i = 0usize;
    // Each step consumes at least one key byte, so the walk is bounded by the key length.
    loop {
        let mut off = u64::from(node & NODE_MASK);
        if off == 0 {
            return None;
        }
        if node & NODE_PREFIX != 0 {
            let (prefix, next) = idx.cstr(off)?;
            if key.get(i..i + prefix.len())? != prefix.as_slice() {
                return None;
            }
            i += prefix.len();
            off = next;
        }
        let mut children: Option<(u8, u8, u64)> = None;
        if node & NODE_CHILDS != 0 {
            let fl = idx.bytes(off, 2)?;
            let (first, last) = (*fl.first()?, *fl.get(1)?);
            if last < first {
                return None;
            }
            children = Some((first, last, off + 2));
            off += 2 + 4 * (u64::from(last - first) + 1);
        }
        let Some(&ch) = key.get(i) else {
            if node & NODE_VALUES == 0 {
                return None;
            }
            if idx.u32(off)? == 0 {
                return None;
            }
            // Values follow the count: (u32 priority, string); the first one is returned.
            let (value, _) = idx.cstr(off + 8)?;
            let line = String::from_utf8(value).ok()?;
            let (rel, rest) = line.split_once(':')?;
            let rel = rel.trim();
            let path = match rel.strip_prefix('/') {
                Some(abs) => root.join(abs),
                None => dir.join(rel),
            };
            return Some(Located::File {
                path,
                rel: rel.to_string(),
                deps: rest.split_whitespace().map(str::to_string).collect(),
            });
        };
        let (first, last, table) = children?;
        if ch < first || ch > last {
            return None;
        }
        node = idx.u32(table + 4 * u64::from(ch - first))?;
        i += 1;
    }
}

/// Whether `stem` (a file-name stem from modules.dep) names module `norm` (already normalised),
/// comparing `-` and `_` as equal without allocating.
fn stem_is(stem: &str, norm: &str) -> bool {
    stem.len() == norm.len()
        && stem
            .bytes()
            .zip(norm.bytes())
            .all(|(a, b)| a == b || (a == b'-' && b == b'_'))
}

/// Locates a few modules by *module name* (no aliases, like `modinfo -m`) with one streaming
/// pass over modules.dep, then modules.builtin for the rest, without building the whole index.
/// This is what the doctor and `gvtg modinfo NAME` need: a distribution's modules.dep has
/// thousands of lines, and indexing all of them to answer one question costs more than the
/// question. The first modules.dep line of a name wins, as in [`ModuleIndex::load`].
/// Names in neither file are absent from the result.
pub fn locate_modules(
    root: &Path,
    release: &str,
    names: &[&str],
) -> Result<HashMap<String, Located>> {
    let (dir, dep_path, dep_bytes) = read_modules_dep(root, release)?;
    let wanted: Vec<String> = names.iter().map(|n| normalize_name(n)).collect();
    let mut found: HashMap<String, Located> = HashMap::new();
    for (n, line) in text(&dep_path, &dep_bytes)?.lines().enumerate() {
        if found.len() == wanted.len() {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let Some((rel, rest)) = line.split_once(':') else {
            bail!("{}:{}: missing ':' in {line:?}", dep_path.display(), n + 1);
        };
        let rel = rel.trim();
        let stem = rel
            .rsplit('/')
            .next()
            .unwrap_or("")
            .split('.')
            .next()
            .unwrap_or("");
        let Some(w) = wanted.iter().find(|w| stem_is(stem, w)) else {
            continue;
        };
        if found.contains_key(w) {
            continue;
        }
        let path = match rel.strip_prefix('/') {
            Some(abs) => root.join(abs),
            None => dir.join(rel),
        };
        found.insert(
            w.clone(),
            Located::File {
                path,
                rel: rel.to_string(),
                deps: rest.split_whitespace().map(str::to_string).collect(),
            },
        );
    }
    let rest: Vec<&String> = wanted.iter().filter(|w| !found.contains_key(*w)).collect();
    if rest.is_empty() {
        return Ok(found);
    }
    let builtin_path = dir.join("modules.builtin");
    let Some(bytes) = read_optional(&builtin_path)? else {
        return Ok(found);
    };
    let builtin: Vec<String> = text(&builtin_path, &bytes)?
        .lines()
        .filter_map(|l| path_to_modname(l.trim()))
        .collect();
    let builtin_rest: Vec<&String> = rest.into_iter().filter(|w| builtin.contains(w)).collect();
    if builtin_rest.is_empty() {
        return Ok(found);
    }
    // modules.builtin.modinfo is small (tens of KB); reuse the full index's reading of it so the
    // "first contiguous block" rule stays in one place.
    let index = ModuleIndex::load(root, release)?;
    for w in builtin_rest {
        if let Some(l) = index.locate_module(w) {
            found.insert(w.clone(), l);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            path_to_modname("kernel/a/snd-hda-intel.ko.xz").as_deref(),
            Some("snd_hda_intel")
        );
        assert_eq!(path_to_modname("x/.ko"), None);
        assert_eq!(
            normalize_alias("pci:v*d-x[a-b]").as_deref(),
            Some("pci:v*d_x[a-b]")
        );
        assert_eq!(normalize_alias("a]"), None);
        assert_eq!(normalize_alias("a[b"), None);
    }

    #[test]
    fn alias_order() {
        let mut t = AliasTable::default();
        t.insert("pci:*".into(), "first".into());
        t.insert("pci:v1".into(), "second".into());
        t.insert("usb:v1".into(), "third".into());
        assert_eq!(t.lookup("pci:v1"), Some("first"));
        assert_eq!(t.lookup("usb:v1"), Some("third"));
        assert_eq!(t.lookup("nope"), None);
    }
}
