//! A small `fnmatch(3)` (flags = 0) for module alias patterns.
//!
//! kmod matches the name given to `modprobe`/`modinfo` against the patterns
//! in modules.alias with `fnmatch(pattern, name, 0)` (libkmod/libkmod-index.c,
//! `index_searchwild__all()`), so: `*` matches any run of bytes (including
//! `/` and a leading `.`: no FNM_PATHNAME/FNM_PERIOD), `?` one byte,
//! `[...]` a set with `!`/`^` negation, ranges, a leading `]` taken
//! literally and POSIX `[:class:]`es; `\` quotes the next byte (no
//! FNM_NOESCAPE). An unterminated `[` matches a literal `[`, as in glibc.
//! Matching is byte-wise: aliases are ASCII.

/// Whether `text` matches the fnmatch-style `pattern` (see module docs).
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where to resume after the most recent `*`: (pattern index after the
    // star, text index the star currently swallows up to). Backtracking only
    // to the last star is enough for glob patterns: O(len(p) * len(t)).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let tc = t.get(ti).copied().unwrap_or_default();
        let step = match p.get(pi).copied() {
            Some(b'*') => {
                star = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some(b'?') => Some(pi + 1),
            Some(b'[') => match bracket(p, pi + 1, tc) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                None => (tc == b'[').then_some(pi + 1),
            },
            Some(b'\\') => match p.get(pi + 1) {
                Some(&c) => (c == tc).then_some(pi + 2),
                None => (tc == b'\\').then_some(pi + 1),
            },
            Some(c) => (c == tc).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ti += 1;
            }
            (None, Some((sp, st))) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|&c| c == b'*')
}

/// Matches `c` against the set starting at `p[start]` (just after `[`).
/// Returns `(matched, index after ']')`, or `None` when there is no closing
/// `]` (then the `[` is an ordinary character).
fn bracket(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = start;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let mut lo = *p.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if lo == b'[' && p.get(i + 1) == Some(&b':') {
            if let Some(len) = p
                .get(i + 2..)
                .and_then(|rest| rest.windows(2).position(|w| w == b":]"))
            {
                let name = p.get(i + 2..i + 2 + len).unwrap_or_default();
                matched |= class(name, c);
                i += len + 4;
                continue;
            }
        }
        if lo == b'\\' {
            i += 1;
            lo = *p.get(i)?;
        }
        i += 1;
        // A range `lo-hi`, unless the `-` is last before `]`.
        if p.get(i) == Some(&b'-') && p.get(i + 1).is_some_and(|&h| h != b']') {
            let mut hi = *p.get(i + 1)?;
            i += 2;
            if hi == b'\\' {
                hi = *p.get(i)?;
                i += 1;
            }
            matched |= lo <= c && c <= hi;
        } else {
            matched |= lo == c;
        }
    }
}

fn class(name: &[u8], c: u8) -> bool {
    match name {
        b"alpha" => c.is_ascii_alphabetic(),
        b"digit" => c.is_ascii_digit(),
        b"alnum" => c.is_ascii_alphanumeric(),
        b"upper" => c.is_ascii_uppercase(),
        b"lower" => c.is_ascii_lowercase(),
        b"space" => c.is_ascii_whitespace() || c == 0x0B,
        b"blank" => c == b' ' || c == b'\t',
        b"xdigit" => c.is_ascii_hexdigit(),
        b"punct" => c.is_ascii_punctuation(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"graph" => c.is_ascii_graphic(),
        b"cntrl" => c.is_ascii_control(),
        _ => false,
    }
}

/// Whether `s` contains a character that makes it a pattern rather than a
/// literal (the same set kmod's index code treats specially: `*?[`), or a
/// `\` escape.
pub fn is_pattern(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn basics() {
        assert!(fnmatch(
            "pci:v00008086d*sv*sd*bc03sc*i*",
            "pci:v00008086d00003E92sv00001028sd0000085Abc03sc00i00"
        ));
        assert!(!fnmatch(
            "pci:v00008086d*sv*sd*bc03sc*i*",
            "pci:v000010DEd00001234sv0sd0bc03sc00i00"
        ));
        assert!(fnmatch("a?c", "abc"));
        assert!(!fnmatch("a?c", "ac"));
        assert!(fnmatch("*", ""));
        assert!(fnmatch("", ""));
        assert!(!fnmatch("", "a"));
        assert!(fnmatch("a*b*c", "axxbyyc"));
        assert!(!fnmatch("a*b*c", "axxbyy"));
        assert!(fnmatch("*.ko", "i915.ko"));
    }

    #[test]
    fn brackets() {
        assert!(fnmatch("[abc]x", "bx"));
        assert!(!fnmatch("[!abc]x", "bx"));
        assert!(fnmatch("[^abc]x", "dx"));
        assert!(fnmatch("[a-f]", "e"));
        assert!(!fnmatch("[a-f]", "g"));
        assert!(fnmatch("[]]", "]"));
        assert!(fnmatch("[a-]", "-"));
        assert!(fnmatch("[[:digit:]]x", "7x"));
        assert!(!fnmatch("[[:digit:]]x", "ax"));
        assert!(fnmatch("a[", "a["));
        assert!(fnmatch("\\*", "*"));
        assert!(!fnmatch("\\*", "x"));
        assert!(fnmatch(
            "dmi*:svn*[Ll][Ee][Nn][Oo][Vv][Oo]*:",
            "dmi:bvn:svnLENOVO:pn:"
        ));
    }
}
