//! `/etc/default/grub`: a POSIX shell fragment that grub-mkconfig sources
//! (util/grub-mkconfig.in: `. "${sysconfdir}/default/grub"`).
//!
//! We implement the small subset of the POSIX shell grammar (XCU 2.2 Quoting, 2.6.2
//! Parameter Expansion, 2.9.1 Simple Commands) that such files use:
//! - statements end at an unquoted newline or `;`; `#` at the start of a word starts a
//!   comment; backslash-newline outside single quotes is removed (line continuation);
//! - `NAME=value` with no blanks around `=`, optionally after `export`, several per line;
//! - `'...'` is literal (may span lines); inside `"..."` a backslash only escapes
//!   `$ \` " \\` and newline; unquoted `\c` is `c`;
//! - `$NAME` and `${NAME}` expand to the value assigned earlier in the same file (the last
//!   one so far, as the shell would); unset names expand to empty, with a warning because
//!   grub-mkconfig sets none of them before sourcing. Command substitution is NOT run: it is
//!   kept literally and warned about.
//!
//! Anything that is not an assignment (a command such as `vi /etc/default/grub`, the text of
//! a guide mixed into a paste, `NAME = value` with blanks, which the shell runs as a
//! command) is skipped with a warning, never an error. Assignments written in front of a
//! command only apply to that command in the shell, so they are dropped too.

use std::collections::BTreeMap;

use serde::Serialize;

/// One `NAME=value` assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assignment {
    /// The variable name.
    pub name: String,
    /// The value after quote removal and `$NAME` expansion.
    pub value: String,
    /// 1-based line where the assignment starts.
    pub line: usize,
    /// The assignment as written (`NAME="..."`), without a leading `export`.
    pub raw: String,
}

/// The assignments of an `/etc/default/grub` file, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrubDefault {
    /// Every assignment in file order (a name can appear several times).
    pub assignments: Vec<Assignment>,
    /// Skipped lines and unsupported constructs, with 1-based line numbers (capped).
    pub warnings: Vec<String>,
}

const MAX_WARNINGS: usize = 200;

/// The two variables grub-mkconfig passes to `10_linux` for the Linux command line.
pub const CMDLINE_VARS: [&str; 2] = ["GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"];

/// Cmdline variables that exist for other generators (`20_linux_xen`, `10_netbsd`,
/// `10_hurd`, recovery entries): legitimate, just not for normal Linux entries.
const OTHER_LEGIT_CMDLINE_VARS: &[&str] = &[
    "GRUB_CMDLINE_LINUX_RECOVERY",
    "GRUB_CMDLINE_LINUX_XEN_REPLACE",
    "GRUB_CMDLINE_LINUX_XEN_REPLACE_DEFAULT",
    "GRUB_CMDLINE_NETBSD",
    "GRUB_CMDLINE_NETBSD_DEFAULT",
    "GRUB_CMDLINE_GNUMACH",
];

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    vars: BTreeMap<String, String>,
    warnings: Vec<String>,
    /// Bytes that `$NAME` expansion may still produce. `A=$A$A` doubles per line, so
    /// without a budget a small file could exhaust memory.
    expand_budget: usize,
}

/// Total bytes all expansions in one file may produce (a kernel command line is at most a
/// few KiB, so real files never come close).
const EXPAND_BUDGET: usize = 4 * 1024 * 1024;

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Characters that end an unquoted word (shell metacharacters).
fn is_word_end(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')'
    )
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn peek2(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|s| s.chars().nth(1))
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn warn(&mut self, msg: String) {
        super::push_capped(&mut self.warnings, MAX_WARNINGS, msg);
    }

    /// Skips blanks and backslash-newline continuations.
    fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('\\') if self.peek2() == Some('\n') => {
                    self.bump();
                    self.bump();
                }
                _ => break,
            }
        }
    }

    fn skip_to_eol(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    /// If the input continues with `NAME=`, consumes it and returns NAME.
    fn try_name_eq(&mut self) -> Option<String> {
        let rest = self.src.get(self.pos..)?;
        let name_len = rest
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(rest.len(), |(i, _)| i);
        let name = rest.get(..name_len)?;
        if !is_valid_name(name) || !rest.get(name_len..)?.starts_with('=') {
            return None;
        }
        let name = name.to_string();
        self.pos += name_len + 1;
        Some(name)
    }

    /// Reads one shell word, removing quotes. With `expand`, `$NAME` is expanded (used for
    /// assignment values); otherwise the word is only consumed.
    fn read_word(&mut self, expand: bool) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if is_word_end(c) {
                break;
            }
            self.bump();
            match c {
                '\\' => match self.bump() {
                    Some('\n') => {}
                    Some(n) => out.push(n),
                    None => out.push('\\'),
                },
                '\'' => self.read_single_quoted(&mut out),
                '"' => self.read_double_quoted(&mut out, expand),
                '$' => self.read_dollar(&mut out, expand),
                '`' => self.read_backticks(&mut out, expand),
                _ => out.push(c),
            }
        }
        out
    }

    fn warn_substitution(&mut self, line: usize) {
        self.warn(format!(
            "line {line}: command substitution is not evaluated, kept literally"
        ));
    }

    /// Called after an opening backquote: keeps `` `...` `` literally, up to the closing one.
    fn read_backticks(&mut self, out: &mut String, expand: bool) {
        let line = self.line;
        if expand {
            self.warn_substitution(line);
        }
        out.push('`');
        while let Some(c) = self.bump() {
            out.push(c);
            if c == '\\' {
                if let Some(n) = self.bump() {
                    out.push(n);
                }
            } else if c == '`' {
                return;
            }
        }
        self.warn(format!("line {line}: unterminated backquote"));
    }

    /// Called after `$(`: keeps the substitution literally, up to the balancing `)`.
    fn read_paren_substitution(&mut self, out: &mut String, expand: bool) {
        let line = self.line;
        if expand {
            self.warn_substitution(line);
        }
        out.push_str("$(");
        let mut depth = 1usize;
        while let Some(c) = self.bump() {
            out.push(c);
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
        self.warn(format!("line {line}: unterminated $("));
    }

    fn read_single_quoted(&mut self, out: &mut String) {
        let line = self.line;
        loop {
            match self.bump() {
                None => {
                    self.warn(format!("line {line}: unterminated single quote"));
                    break;
                }
                Some('\'') => break,
                Some(c) => out.push(c),
            }
        }
    }

    fn read_double_quoted(&mut self, out: &mut String, expand: bool) {
        let line = self.line;
        loop {
            match self.bump() {
                None => {
                    self.warn(format!("line {line}: unterminated double quote"));
                    break;
                }
                Some('"') => break,
                Some('\\') => match self.peek() {
                    Some('\n') => {
                        self.bump();
                    }
                    Some(c @ ('$' | '`' | '"' | '\\')) => {
                        self.bump();
                        out.push(c);
                    }
                    _ => out.push('\\'),
                },
                Some('$') => self.read_dollar(out, expand),
                Some('`') => self.read_backticks(out, expand),
                Some(c) => out.push(c),
            }
        }
    }

    /// Called after a `$` was consumed.
    fn read_dollar(&mut self, out: &mut String, expand: bool) {
        let line = self.line;
        match self.peek() {
            Some('{') => {
                self.bump();
                let mut inner = String::new();
                let mut closed = false;
                while let Some(c) = self.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    inner.push(c);
                }
                if closed && is_valid_name(&inner) {
                    self.expand_name(&inner, out, expand, line);
                } else {
                    if expand {
                        self.warn(format!(
                            "line {line}: unsupported expansion ${{{inner:.40}}} kept literally"
                        ));
                    }
                    out.push_str("${");
                    out.push_str(&inner);
                    if closed {
                        out.push('}');
                    }
                }
            }
            Some(c) if is_name_start(c) => {
                let mut name = String::new();
                while let Some(c) = self.peek() {
                    if !is_name_char(c) {
                        break;
                    }
                    self.bump();
                    name.push(c);
                }
                self.expand_name(&name, out, expand, line);
            }
            Some('(') => {
                self.bump();
                self.read_paren_substitution(out, expand);
            }
            _ => out.push('$'),
        }
    }

    fn expand_name(&mut self, name: &str, out: &mut String, expand: bool, line: usize) {
        if !expand {
            return;
        }
        let Some(v) = self.vars.get(name) else {
            self.warn(format!(
                "line {line}: ${name} is not set earlier in this file, expands to empty"
            ));
            return;
        };
        if v.len() <= self.expand_budget {
            out.push_str(v);
            self.expand_budget -= v.len();
        } else if self.expand_budget > 0 {
            self.expand_budget = 0;
            self.warn(format!(
                "line {line}: expansion limit reached, ${name} and later references are \
                 left empty"
            ));
        }
    }

    fn text_since(&self, start: usize) -> &'a str {
        self.src.get(start..self.pos).unwrap_or("")
    }
}

/// Parses an `/etc/default/grub` text. Never fails; see the module docs for what is skipped.
pub fn parse(text: &str) -> GrubDefault {
    let mut lx = Lexer {
        src: text,
        pos: 0,
        line: 1,
        vars: BTreeMap::new(),
        warnings: Vec::new(),
        expand_budget: EXPAND_BUDGET,
    };
    let mut assignments: Vec<Assignment> = Vec::new();

    loop {
        lx.skip_blanks();
        match lx.peek() {
            None => break,
            Some('\n' | ';') => {
                lx.bump();
            }
            Some('#') => lx.skip_to_eol(),
            Some(_) => parse_statement(&mut lx, &mut assignments),
        }
    }
    GrubDefault {
        assignments,
        warnings: lx.warnings,
    }
}

/// One simple command: assignments, optionally followed by a command (which we skip).
fn parse_statement(lx: &mut Lexer<'_>, assignments: &mut Vec<Assignment>) {
    let first_assignment = assignments.len();
    // (name, previous value) for undoing assignments that turn out to prefix a command.
    let mut undo: Vec<(String, Option<String>)> = Vec::new();
    let mut first_word = true;
    let mut exporting = false;

    loop {
        lx.skip_blanks();
        match lx.peek() {
            None | Some('\n' | ';') => break,
            Some('#') => {
                lx.skip_to_eol();
                break;
            }
            Some(_) => {}
        }
        let start = lx.pos;
        let line = lx.line;
        let before = lx.pos;
        if let Some(name) = lx.try_name_eq() {
            let value = lx.read_word(true);
            let old = lx.vars.insert(name.clone(), value.clone());
            undo.push((name.clone(), old));
            assignments.push(Assignment {
                name,
                value,
                line,
                raw: lx.text_since(start).to_string(),
            });
            first_word = false;
            continue;
        }
        let word = lx.read_word(false);
        if lx.pos == before {
            // An operator character (`|`, `(`, ...) starts a command we do not model.
            lx.bump();
        }
        if first_word && word == "export" {
            exporting = true;
            first_word = false;
            continue;
        }
        if exporting && is_valid_name(&word) {
            // `export NAME` marks an existing variable; nothing to record.
            continue;
        }

        // A command: skip the rest of the statement and undo prefix assignments.
        lx.skip_blanks();
        let spaced_eq = is_valid_name(&word) && lx.peek() == Some('=');
        skip_statement(lx);
        let shown: String = lx.text_since(start).chars().take(60).collect();
        let msg = if spaced_eq {
            format!(
                "line {line}: blanks around '=' make the shell run a command named {word}, \
                 nothing is assigned: {shown}"
            )
        } else {
            format!("line {line}: not an assignment, ignored: {shown}")
        };
        lx.warn(msg);
        if assignments.len() > first_assignment {
            lx.warn(format!(
                "line {line}: assignments in front of a command only apply to that command"
            ));
            assignments.truncate(first_assignment);
            for (name, old) in undo.into_iter().rev() {
                match old {
                    Some(v) => lx.vars.insert(name, v),
                    None => lx.vars.remove(&name),
                };
            }
        }
        return;
    }
}

/// Consumes words (respecting quotes, so a quoted newline does not end it) up to the end of
/// the statement.
fn skip_statement(lx: &mut Lexer<'_>) {
    loop {
        lx.skip_blanks();
        match lx.peek() {
            None | Some('\n' | ';') => break,
            Some('#') => {
                lx.skip_to_eol();
                break;
            }
            Some(_) => {
                let before = lx.pos;
                lx.read_word(false);
                if lx.pos == before {
                    lx.bump();
                }
            }
        }
    }
}

impl GrubDefault {
    /// The value grub-mkconfig will use: the LAST assignment of the name wins (shell
    /// semantics). `$NAME`/`${NAME}` references to earlier assignments in the same file are
    /// already expanded in [`Assignment::value`].
    pub fn get(&self, name: &str) -> Option<&Assignment> {
        self.assignments.iter().rev().find(|a| a.name == name)
    }

    /// Names that look like GRUB cmdline variables but are not the two that grub-mkconfig
    /// reads (GRUB_CMDLINE_LINUX, GRUB_CMDLINE_LINUX_DEFAULT): e.g. GRUB_CMDLINE_DEFAULT,
    /// GRUB_CMDLINE_LINUX_DEFAULTS, GRUB_CMD_LINE_LINUX, grub_cmdline_linux. The Xen, NetBSD,
    /// Hurd and recovery variants are legitimate and not returned.
    pub fn misnamed_cmdline_vars(&self) -> Vec<&Assignment> {
        self.assignments
            .iter()
            .filter(|a| {
                let squashed: String = a
                    .name
                    .chars()
                    .filter(|c| *c != '_')
                    .map(|c| c.to_ascii_uppercase())
                    .collect();
                let looks_like = squashed.contains("CMD")
                    && (squashed.starts_with("GRUB") || squashed.contains("LINUX"));
                let legit = CMDLINE_VARS.contains(&a.name.as_str())
                    || OTHER_LEGIT_CMDLINE_VARS.contains(&a.name.as_str())
                    || a.name.starts_with("GRUB_CMDLINE_XEN");
                looks_like && !legit
            })
            .collect()
    }

    /// The command line of normal (non-recovery) Linux entries, as `10_linux` builds it:
    /// `${GRUB_CMDLINE_LINUX} ${GRUB_CMDLINE_LINUX_DEFAULT}`.
    pub fn kernel_cmdline(&self) -> String {
        let [linux, default] = CMDLINE_VARS.map(|n| self.get(n).map_or("", |a| a.value.as_str()));
        format!("{linux} {default}").trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quoting_export_continuation() {
        let text =
            "export GRUB_A='x y'\nB=\"1 \\\"2\\\" \\$3\"\\\n C=\"multi\nline\" D=a\\ b;E=e\n\
                    F=$B${E} # comment\nG='$B'\n";
        let g = parse(text);
        let got: Vec<(&str, &str, usize)> = g
            .assignments
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str(), a.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("GRUB_A", "x y", 1),
                ("B", "1 \"2\" $3", 2),
                ("C", "multi\nline", 3),
                ("D", "a b", 4),
                ("E", "e", 4),
                ("F", "1 \"2\" $3e", 5),
                ("G", "$B", 6),
            ]
        );
        assert_eq!(g.assignments[0].raw, "GRUB_A='x y'");
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
    }

    #[test]
    fn last_assignment_wins_and_self_reference_expands() {
        let g = parse(
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n\
             GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT i915.enable_gvt=1\"\n",
        );
        let a = g
            .get("GRUB_CMDLINE_LINUX_DEFAULT")
            .map(|a| (a.value.as_str(), a.line));
        assert_eq!(a, Some(("quiet i915.enable_gvt=1", 2)));
        assert_eq!(g.kernel_cmdline(), "quiet i915.enable_gvt=1");
    }

    #[test]
    fn undefined_and_command_substitution_warn() {
        let g = parse("A=\"$UNSET x\"\nB=`uname -r`\nC=$(cat \"(x)\" (y))\nD=\"`a b`\"\n");
        assert_eq!(g.get("A").map(|a| a.value.as_str()), Some(" x"));
        assert_eq!(g.get("B").map(|a| a.value.as_str()), Some("`uname -r`"));
        assert_eq!(
            g.get("C").map(|a| a.value.as_str()),
            Some("$(cat \"(x)\" (y))")
        );
        assert_eq!(g.get("D").map(|a| a.value.as_str()), Some("`a b`"));
        assert_eq!(g.warnings.len(), 4, "{:?}", g.warnings);
    }

    #[test]
    fn blanks_around_equals_and_prefix_assignments() {
        let g = parse("GRUB_TIMEOUT = 5\nX=1 make install\nY=2\n");
        assert_eq!(g.assignments.len(), 1);
        assert_eq!(g.get("Y").map(|a| a.line), Some(3));
        assert!(g.get("X").is_none());
        assert!(
            g.warnings[0].contains("blanks around '='"),
            "{:?}",
            g.warnings
        );
        assert_eq!(g.warnings.len(), 3);
    }

    #[test]
    fn real_gpd_win2_wrong_variable() {
        let g = parse(sample!("cmdline/gpd-win2-grub-and-initramfs-modules.txt"));
        assert_eq!(g.assignments.len(), 1);
        let bad = g.misnamed_cmdline_vars();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].name, "GRUB_CMDLINE_DEFAULT");
        assert_eq!(bad[0].line, 2);
        assert!(bad[0].value.contains("i915.enable_gvt=1"));
        assert_eq!(g.kernel_cmdline(), "");
        // the backtick-quoted MODULES line is skipped with a warning
        assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
    }

    #[test]
    fn real_radxa_full_file() {
        let g = parse(sample!("cmdline/radxa-x4-etc-default-grub-sriov.txt"));
        assert!(g.warnings.is_empty(), "{:?}", g.warnings);
        assert!(g.misnamed_cmdline_vars().is_empty());
        assert_eq!(g.get("GRUB_TIMEOUT").map(|a| a.value.as_str()), Some("5"));
        assert_eq!(
            g.get("GRUB_CMDLINE_LINUX").map(|a| a.value.as_str()),
            Some("")
        );
        let cmd = super::super::cmdline::parse(&g.kernel_cmdline());
        assert_eq!(
            cmd.module_param("i915", "max_vfs")[0].value.as_deref(),
            Some("7")
        );
        assert_eq!(g.get("GRUB_DISABLE_RECOVERY").map(|a| a.line), Some(38));
        assert_eq!(g.assignments.len(), 15);
    }

    #[test]
    fn real_jp_blog_and_gebim_mixed_with_other_files() {
        let g = parse(sample!("cmdline/jp-blog-whl-grub-and-modules.txt"));
        assert_eq!(
            g.kernel_cmdline(),
            "i915.enable_gvt=1 i915.enable_guc=0 intel_iommu=on"
        );
        // `kvmgt` and the `options kvm ...` line are not assignments
        assert_eq!(g.warnings.len(), 2, "{:?}", g.warnings);

        let g = parse(sample!("cmdline/gebim-grub-and-modules-load.txt"));
        let a = g.get("GRUB_CMDLINE_LINUX_DEFAULT");
        assert_eq!(a.map(|a| a.line), Some(1));
        let cmd = super::super::cmdline::parse(&g.kernel_cmdline());
        assert_eq!(cmd.module_param("i915", "enable_gvt").len(), 1);
        assert_eq!(g.warnings.len(), 2, "{:?}", g.warnings);
    }

    #[test]
    fn real_fzinfz_is_not_a_grub_file() {
        let g = parse(sample!("cmdline/fzinfz-grub-kvmgt-igfx_off.txt"));
        assert!(g.assignments.is_empty());
        assert_eq!(g.warnings.len(), 2, "{:?}", g.warnings);
    }

    #[test]
    fn misnamed_variants() {
        let g = parse(
            "GRUB_CMDLINE_LINUX_DEFAULTS=a\nGRUB_CMD_LINE_LINUX=b\ngrub_cmdline_linux=c\n\
             GRUB_CMDLINE_XEN_DEFAULT=d\nGRUB_CMDLINE_LINUX_RECOVERY=e\nGRUB_CMDLINE_LINUX=f\n\
             GRUB_TIMEOUT=5\n",
        );
        let names: Vec<&str> = g
            .misnamed_cmdline_vars()
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            vec![
                "GRUB_CMDLINE_LINUX_DEFAULTS",
                "GRUB_CMD_LINE_LINUX",
                "grub_cmdline_linux"
            ]
        );
    }

    #[test]
    fn exponential_expansion_is_bounded() {
        let text = format!("A=xxxxxxxx\n{}", "A=$A$A\n".repeat(64));
        let g = parse(&text);
        assert!(g.assignments.iter().all(|a| a.value.len() <= EXPAND_BUDGET));
        assert!(g.warnings.iter().any(|w| w.contains("expansion limit")));
    }

    #[test]
    fn unterminated_quote_warns() {
        let g = parse("A=\"open\nB=1\n");
        assert_eq!(g.assignments.len(), 1);
        assert_eq!(g.warnings.len(), 1);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_shell_like(s in "[A-Z_a-z0-9=\"'$\\\\{}()`#; \t\n|-]{0,200}") {
            let g = parse(&s);
            let _ = g.misnamed_cmdline_vars();
            let _ = g.kernel_cmdline();
        }
    }
}
