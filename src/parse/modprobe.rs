//! modprobe.d(5) configuration, read the way kmod reads it (libkmod/libkmod-config.c
//! `kmod_config_parse()` and `conf_files_list()`).
//!
//! Syntax rules taken from kmod:
//! - lines are read with `getline_wrapped()` (shared/util.c): a backslash is dropped and
//!   the next character kept, so backslash-newline joins lines; an entry's line number here
//!   is the FIRST physical line (kmod reports the last one);
//! - a line is a comment only when `#` is its very first character; an indented `#` is a
//!   bad line to kmod ("ignoring bad line starting with '#'");
//! - words are separated by spaces and tabs (`strtok_r(line, "\t ")`); `options`, `install`,
//!   `remove`, `softdep` and `weakdep` take the rest of the line after the module name;
//! - module names compare with `-` equal to `_` (`underscores()`), and so do parameter
//!   names (the kernel's `parameq()`);
//! - `options` parameters are split by the kernel with `next_arg()`, so quotes work as on the
//!   kernel command line (we reuse `super::cmdline::split_args`);
//! - `softdep m pre: a b post: c`: words before any `pre:`/`post:` are ignored by kmod;
//!   `weakdep m a b` has no sections, its modules are returned as `pre`;
//! - `include`/`config` are deprecated and ignored by kmod; everything else is a bad line.
//!
//! On top of kmod we diagnose two mistakes copied from guides: kernel-cmdline syntax in a
//! modprobe.d file (`i915.enable_gvt=1`, which kmod ignores) and placeholder tokens
//! (`...`, `<uuid>`, `$USER`) that were meant to be replaced.
//!
//! Directory precedence (kmod `kmod_config_new()` / `conf_files_list()`): only `*.conf`
//! (and the legacy `*.alias`, which `conf_files_filter_out()` still accepts) files not
//! starting with `.` count; a name in an earlier directory hides the same name in later
//! ones; the survivors are read in file-name order (`strcmp`), whatever their directory.
//! kmod then appends `module.param=value` options from /proc/cmdline
//! (`kmod_config_parse_kcmdline()`), so those override every file; [`option_value`] covers
//! the files only.

use std::collections::BTreeMap;

use serde::Serialize;

use super::cmdline::{normalize, split_args};

/// One recognised modprobe.d directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Directive {
    /// `alias <pattern> <module>`.
    Alias {
        /// The alias pattern (may contain shell wildcards).
        pattern: String,
        /// The module it resolves to.
        module: String,
    },
    /// `blacklist <module>` (only stops alias-based autoloading).
    Blacklist {
        /// The module, as written.
        module: String,
    },
    /// `install <module> <command...>`.
    Install {
        /// The module, as written.
        module: String,
        /// The shell command run instead of inserting the module.
        command: String,
    },
    /// `remove <module> <command...>`.
    Remove {
        /// The module, as written.
        module: String,
        /// The shell command run instead of removing the module.
        command: String,
    },
    /// `options <module> <param[=value]>...`.
    Options {
        /// The module, as written.
        module: String,
        /// Parameters split like the kernel splits them, quotes removed.
        params: Vec<(String, Option<String>)>,
    },
    /// `softdep <module> pre: ... post: ...` (also `weakdep`, whose modules are in `pre`).
    Softdep {
        /// The module, as written.
        module: String,
        /// Modules loaded before it.
        pre: Vec<String>,
        /// Modules loaded after it.
        post: Vec<String>,
    },
}

/// A directive with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// 1-based first physical line of the directive.
    pub line: usize,
    /// The directive.
    pub directive: Directive,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ProblemKind {
    /// Kernel-cmdline syntax such as `i915.enable_gvt=1`, which modprobe ignores; the
    /// suggestion is the modprobe.d equivalent (`options i915 enable_gvt=1`), one line per
    /// module separated by `\n`.
    CmdlineSyntax {
        /// The line to write instead.
        suggestion: String,
    },
    /// A first word kmod does not know (or the deprecated `include`/`config`).
    UnknownDirective(String),
    /// A directive without its module name or its arguments.
    MissingArgument,
    /// A token that was meant to be replaced (`...`, `<uuid>`, `$USER`).
    PlaceholderToken(String),
}

/// A problem found on one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based first physical line.
    pub line: usize,
    /// The logical line as read (continuations joined).
    pub raw: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// A parsed modprobe.d file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModprobeFile {
    /// Directives kmod would apply, in order.
    pub entries: Vec<Entry>,
    /// Lines kmod ignores or that look wrong.
    pub problems: Vec<Problem>,
}

const MAX_PROBLEMS: usize = 500;

/// Splits into logical lines like kmod's `getline_wrapped()` (shared/util.c): a backslash
/// is always removed and the character after it kept, so backslash-newline joins lines and
/// `\\x` becomes `x`. We also drop a `\r` before a newline (CRLF files) which kmod would
/// keep. Returns (first physical line number, logical line).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if chars.peek() == Some(&'\r') {
                    chars.next();
                }
                match chars.next() {
                    Some('\n') => line += 1,
                    Some(n) => current.push(n),
                    None => {}
                }
            }
            '\n' => {
                if current.ends_with('\r') {
                    current.pop();
                }
                out.push((start, std::mem::take(&mut current)));
                line += 1;
                start = line;
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push((start, current));
    }
    out
}

fn split_ws(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', '\t']).filter(|w| !w.is_empty())
}

/// First word and the rest of the line after it (like `strtok_r(NULL, "\0")`).
fn first_word(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start_matches([' ', '\t']);
    if s.is_empty() {
        return None;
    }
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    let word = s.get(..end)?;
    let rest = s.get(end..).unwrap_or("").trim_start_matches([' ', '\t']);
    Some((word, rest))
}

/// kmod's `underscores()` rejects a `]` without `[` and an unclosed `[`.
fn module_name_ok(name: &str) -> bool {
    let mut in_bracket = false;
    for c in name.chars() {
        match c {
            '[' if !in_bracket => in_bracket = true,
            ']' if in_bracket => in_bracket = false,
            ']' => return false,
            _ => {}
        }
    }
    !in_bracket
}

/// Tokens copied from a guide that were meant to be replaced.
fn is_placeholder(tok: &str) -> bool {
    tok == "..."
        || tok.contains('…')
        || (tok.len() > 2 && tok.starts_with('<') && tok.ends_with('>'))
        || tok.starts_with('$')
}

/// `i915.enable_gvt=1` → Some(("i915", "enable_gvt=1")).
fn cmdline_style(tok: &str) -> Option<(&str, &str)> {
    let (module, param) = tok.split_once('.')?;
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let pname = param.split('=').next().unwrap_or("");
    (name_ok(module) && name_ok(pname)).then_some((module, param))
}

fn softdeps(rest: &str, weak: bool) -> (Vec<String>, Vec<String>) {
    #[derive(PartialEq)]
    enum Mode {
        None,
        Pre,
        Post,
    }
    let mut mode = if weak { Mode::Pre } else { Mode::None };
    let (mut pre, mut post) = (Vec::new(), Vec::new());
    for w in split_ws(rest) {
        match w {
            "pre:" => mode = Mode::Pre,
            "post:" => mode = Mode::Post,
            _ => match mode {
                Mode::Pre => pre.push(w.to_string()),
                Mode::Post => post.push(w.to_string()),
                Mode::None => {}
            },
        }
    }
    (pre, post)
}

/// Parses one modprobe.d file. Never fails: kmod skips bad lines, and so do we (recording
/// them in `problems`).
pub fn parse(text: &str) -> ModprobeFile {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut problem = |line: usize, raw: &str, kind: ProblemKind| {
        if problems.len() < MAX_PROBLEMS {
            problems.push(Problem {
                line,
                raw: raw.to_string(),
                kind,
            });
        }
    };

    for (line, raw) in logical_lines(text) {
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let Some((cmd, rest)) = first_word(&raw) else {
            continue;
        };
        let module_and_rest = first_word(rest);
        let directive = match cmd {
            "alias" => {
                let mut w = split_ws(rest);
                match (w.next(), w.next()) {
                    (Some(p), Some(m)) if module_name_ok(p) && module_name_ok(m) => {
                        Some(Directive::Alias {
                            pattern: p.to_string(),
                            module: m.to_string(),
                        })
                    }
                    _ => None,
                }
            }
            "blacklist" => split_ws(rest)
                .next()
                .filter(|m| module_name_ok(m))
                .map(|m| Directive::Blacklist {
                    module: m.to_string(),
                }),
            "options" | "install" | "remove" | "softdep" | "weakdep" => module_and_rest
                .filter(|(m, args)| module_name_ok(m) && !args.is_empty())
                .map(|(m, args)| {
                    let module = m.to_string();
                    match cmd {
                        "options" => Directive::Options {
                            module,
                            params: split_args(args)
                                .into_iter()
                                .map(|p| (p.key, p.value))
                                .collect(),
                        },
                        "install" => Directive::Install {
                            module,
                            command: args.to_string(),
                        },
                        "remove" => Directive::Remove {
                            module,
                            command: args.to_string(),
                        },
                        _ => {
                            let (pre, post) = softdeps(args, cmd == "weakdep");
                            Directive::Softdep { module, pre, post }
                        }
                    }
                }),
            _ => {
                let words: Vec<&str> = split_ws(&raw).collect();
                let styled: Vec<(&str, &str)> =
                    words.iter().filter_map(|w| cmdline_style(w)).collect();
                if !styled.is_empty() && styled.len() == words.len() {
                    // Group by module, keeping first-seen order.
                    let mut order: Vec<&str> = Vec::new();
                    let mut by_mod: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                    for (m, p) in styled {
                        if !by_mod.contains_key(m) {
                            order.push(m);
                        }
                        by_mod.entry(m).or_default().push(p);
                    }
                    let suggestion = order
                        .iter()
                        .map(|m| {
                            let params = by_mod.get(m).map(|v| v.join(" ")).unwrap_or_default();
                            format!("options {m} {params}")
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    problem(line, &raw, ProblemKind::CmdlineSyntax { suggestion });
                } else {
                    problem(line, &raw, ProblemKind::UnknownDirective(cmd.to_string()));
                }
                continue;
            }
        };
        let Some(directive) = directive else {
            problem(line, &raw, ProblemKind::MissingArgument);
            continue;
        };

        // Placeholders: not in install/remove commands, where `$CMDLINE_OPTS` and shell
        // variables are legitimate.
        let placeholder_words: Vec<&str> = match &directive {
            Directive::Install { .. } | Directive::Remove { .. } => Vec::new(),
            _ => split_ws(rest).filter(|w| is_placeholder(w)).collect(),
        };
        for w in placeholder_words {
            problem(line, &raw, ProblemKind::PlaceholderToken(w.to_string()));
        }
        entries.push(Entry { line, directive });
    }
    ModprobeFile { entries, problems }
}

/// `files` = (dir, file name, text) from the modprobe.d directories in priority order
/// [etc/modprobe.d, run/modprobe.d, usr/local/lib/modprobe.d, lib/modprobe.d,
/// usr/lib/modprobe.d]; a directory's priority is the position of its first appearance in
/// `files`. Only names ending in ".conf" (or kmod's legacy ".alias") and not starting with
/// '.' count; a file name in
/// an earlier dir hides the same name in later dirs; the survivors are read in file-name
/// order (kmod sorts by name, byte-wise). Returns each surviving file as ("dir/name", parse).
pub fn merge_order(files: Vec<(String, String, String)>) -> Vec<(String, ModprobeFile)> {
    let mut dir_rank: Vec<String> = Vec::new();
    for (dir, _, _) in &files {
        if !dir_rank.contains(dir) {
            dir_rank.push(dir.clone());
        }
    }
    let rank = |d: &str| dir_rank.iter().position(|x| x == d).unwrap_or(usize::MAX);

    // name -> (rank, dir, text): the lowest rank wins; within one dir the first wins.
    let mut chosen: BTreeMap<String, (usize, String, String)> = BTreeMap::new();
    for (dir, name, text) in files {
        let wanted = name.ends_with(".conf") || name.ends_with(".alias");
        if !wanted || name.starts_with('.') || name.contains('/') {
            continue;
        }
        let r = rank(&dir);
        let replace = chosen.get(&name).is_none_or(|(old, _, _)| r < *old);
        if replace {
            chosen.insert(name, (r, dir, text));
        }
    }
    chosen
        .into_iter()
        .map(|(name, (_, dir, text))| {
            let path = if dir.ends_with('/') {
                format!("{dir}{name}")
            } else {
                format!("{dir}/{name}")
            };
            (path, parse(&text))
        })
        .collect()
}

/// The effective value of module parameter `param` of `module` from merged config (as
/// returned by [`merge_order`]), last occurrence wins; with the (file, line) it came from.
/// The inner `Option` is `None` for a bare `param` without `=`.
pub fn option_value<'a>(
    files: &'a [(String, ModprobeFile)],
    module: &str,
    param: &str,
) -> Option<(&'a str, usize, Option<&'a str>)> {
    let (want_mod, want_param) = (normalize(module), normalize(param));
    let mut found = None;
    for (path, file) in files {
        for entry in &file.entries {
            if let Directive::Options { module: m, params } = &entry.directive {
                if normalize(m) != want_mod {
                    continue;
                }
                for (k, v) in params {
                    if normalize(k) == want_param {
                        found = Some((path.as_str(), entry.line, v.as_deref()));
                    }
                }
            }
        }
    }
    found
}

/// Whether `module` is blacklisted anywhere in the merged config ('-' == '_').
pub fn is_blacklisted(files: &[(String, ModprobeFile)], module: &str) -> bool {
    let want = normalize(module);
    files.iter().any(|(_, f)| {
        f.entries.iter().any(
            |e| matches!(&e.directive, Directive::Blacklist { module: m } if normalize(m) == want),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Params = Vec<(String, Option<String>)>;

    fn opts(f: &ModprobeFile) -> Vec<(String, Params)> {
        f.entries
            .iter()
            .filter_map(|e| match &e.directive {
                Directive::Options { module, params } => Some((module.clone(), params.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn real_acidanthera_is_valid() {
        let f = parse(sample!("modprobe/acidanthera-1914-i915-gvt-modprobe.conf"));
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        assert_eq!(f.entries.len(), 3);
        assert_eq!(f.entries[2].line, 3);
        let files = vec![("/etc/modprobe.d/x.conf".to_string(), f)];
        assert_eq!(
            option_value(&files, "i915", "enable_gvt"),
            Some(("/etc/modprobe.d/x.conf", 3, Some("1")))
        );
        assert_eq!(option_value(&files, "i915", "enable_guc"), None);
    }

    #[test]
    fn real_ubuntu_blog_cmdline_syntax() {
        let f = parse(sample!(
            "modprobe/ubuntu-blog-bdw-nuc-modprobe-i915-conf-INVALID.txt"
        ));
        let cmdline: Vec<&Problem> = f
            .problems
            .iter()
            .filter(|p| matches!(p.kind, ProblemKind::CmdlineSyntax { .. }))
            .collect();
        assert_eq!(cmdline.len(), 1, "{:?}", f.problems);
        assert_eq!(cmdline[0].raw, "i915.enable_gvt=1");
        assert_eq!(
            cmdline[0].kind,
            ProblemKind::CmdlineSyntax {
                suggestion: "options i915 enable_gvt=1".to_string()
            }
        );
        assert!(f.entries.is_empty());
        // the `$ printf ...` command lines are unknown directives
        assert!(f
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::UnknownDirective("$".to_string())));
    }

    #[test]
    fn real_s0racat_placeholders() {
        let f = parse(sample!(
            "modprobe/s0racat-i915-gvt-modprobe-modules-load.txt"
        ));
        let ph: Vec<&ProblemKind> = f
            .problems
            .iter()
            .filter(|p| matches!(p.kind, ProblemKind::PlaceholderToken(_)))
            .map(|p| &p.kind)
            .collect();
        assert_eq!(
            ph,
            vec![
                &ProblemKind::PlaceholderToken("...".into()),
                &ProblemKind::PlaceholderToken("...".into())
            ]
        );
        let o = opts(&f);
        assert_eq!(o[0].0, "i915");
        assert!(o[0]
            .1
            .contains(&("enable_gvt".to_string(), Some("1".to_string()))));
        // modules-load.d lines (`kvmgt`) are not modprobe.d directives
        assert!(f
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::UnknownDirective("kvmgt".to_string())));
    }

    #[test]
    fn real_vfio_ids_and_blacklist() {
        let f = parse(sample!(
            "modprobe/cn-blog-kbl-hd630-vfio-pci-ids-blacklist-i915.txt"
        ));
        let files = vec![("a.conf".to_string(), f)];
        assert_eq!(
            option_value(&files, "vfio_pci", "ids").map(|x| x.2),
            Some(Some("8086:5912,8086:a170"))
        );
        assert!(is_blacklisted(&files, "i915"));
        assert!(is_blacklisted(&files, "snd-hda-intel"));
        assert!(!is_blacklisted(&files, "kvmgt"));
    }

    #[test]
    fn real_radxa_sriov_and_guest() {
        let f = parse(sample!("modprobe/radxa-x4-i915-sriov-dkms.conf"));
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        let files = vec![("r.conf".to_string(), f)];
        assert_eq!(
            option_value(&files, "i915", "max_vfs").map(|x| x.2),
            Some(Some("7"))
        );
        assert!(is_blacklisted(&files, "xe"));
        let g = parse(sample!(
            "modprobe/i915-sriov-dkms-103-guest-enable-guc3.conf"
        ));
        assert_eq!(g.entries.len(), 1);
    }

    #[test]
    fn directives_continuations_and_comments() {
        let text = "alias pci:v00008086d* i915\n\
                    install kvmgt /sbin/modprobe --ignore-install kvmgt $CMDLINE_OPTS\n\
                    remove foo /bin/true\n\
                    softdep kvmgt ignored pre: vfio-mdev vfio post: x\n\
                    weakdep i915 mei\n\
                    options i915 \\\n  enable_gvt=1 \\\n  enable_guc=\"0\" a\\b\n\
                    \x20 # indented comment is a bad line to kmod\n\
                    blacklist\n\
                    include /etc/foo\n";
        let f = parse(text);
        let lines: Vec<usize> = f.entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(
            f.entries[3].directive,
            Directive::Softdep {
                module: "kvmgt".into(),
                pre: vec!["vfio-mdev".into(), "vfio".into()],
                post: vec!["x".into()]
            }
        );
        assert_eq!(
            f.entries[4].directive,
            Directive::Softdep {
                module: "i915".into(),
                pre: vec!["mei".into()],
                post: vec![]
            }
        );
        assert_eq!(
            opts(&f)[0].1,
            vec![
                ("enable_gvt".to_string(), Some("1".to_string())),
                ("enable_guc".to_string(), Some("0".to_string())),
                // kmod drops the backslash
                ("ab".to_string(), None),
            ]
        );
        let kinds: Vec<&ProblemKind> = f.problems.iter().map(|p| &p.kind).collect();
        assert_eq!(
            kinds,
            vec![
                &ProblemKind::UnknownDirective("#".into()),
                &ProblemKind::MissingArgument,
                &ProblemKind::UnknownDirective("include".into()),
            ]
        );
        assert_eq!(f.problems[0].line, 9);
    }

    #[test]
    fn cmdline_syntax_groups_modules() {
        let f = parse("i915.enable_gvt=1 kvm.ignore_msrs=1 i915.enable_guc=0\n");
        assert_eq!(
            f.problems[0].kind,
            ProblemKind::CmdlineSyntax {
                suggestion: "options i915 enable_gvt=1 enable_guc=0\noptions kvm ignore_msrs=1"
                    .into()
            }
        );
    }

    #[test]
    fn merge_order_like_kmod() {
        let files = vec![
            (
                "/etc/modprobe.d".into(),
                "i915.conf".into(),
                "options i915 enable_gvt=1".into(),
            ),
            (
                "/etc/modprobe.d".into(),
                "notes.txt".into(),
                "options i915 enable_gvt=0".into(),
            ),
            (
                "/etc/modprobe.d".into(),
                ".hidden.conf".into(),
                "options i915 enable_gvt=0".into(),
            ),
            (
                "/lib/modprobe.d/".into(),
                "i915.conf".into(),
                "options i915 enable_gvt=0".into(),
            ),
            (
                "/lib/modprobe.d/".into(),
                "zz.conf".into(),
                "options i915-x a=1\noptions i915 enable-gvt=2".into(),
            ),
            (
                "/usr/lib/modprobe.d".into(),
                "aa.conf".into(),
                "options i915 enable_gvt=3".into(),
            ),
            (
                "/usr/lib/modprobe.d".into(),
                "ab.alias".into(),
                "alias x y".into(),
            ),
        ];
        let merged = merge_order(files);
        let names: Vec<&str> = merged.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "/usr/lib/modprobe.d/aa.conf",
                "/usr/lib/modprobe.d/ab.alias",
                "/etc/modprobe.d/i915.conf",
                "/lib/modprobe.d/zz.conf"
            ]
        );
        assert_eq!(
            option_value(&merged, "i915", "enable_gvt"),
            Some(("/lib/modprobe.d/zz.conf", 2, Some("2")))
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let f = parse(&s);
            let merged = merge_order(vec![("d".into(), "a.conf".into(), s.clone())]);
            let _ = option_value(&merged, "i915", "enable_gvt");
            prop_assert!(f.entries.len() <= s.len());
        }

        #[test]
        fn never_panics_on_modprobe_like(
            s in "(options|alias|blacklist|softdep|install|pre:|post:|i915|\\.|=|\"|\\\\|\n| |#|\\.\\.\\.|<x>|\\$U){0,60}"
        ) {
            let _ = parse(&s);
        }
    }
}
