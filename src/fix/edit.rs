//! Text edits. Each has the shape `fn(&str) -> Result<Option<String>>`: `None` means the text is
//! already correct, so running a fix twice changes nothing. Every edit touches only the one key,
//! line or list it is about: comments, order and unrelated lines stay byte-identical.

use anyhow::{bail, Result};

use crate::parse;

pub use crate::checks::support::DEFAULT_ACL;

/// Splits text into lines keeping their terminators, so joining them gives the text back.
fn lines_keep(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// systemd-tmpfiles.d: makes `line` the only line for its path (the second field), replacing a
/// line for the same path in place (systemd-tmpfiles ignores later duplicates), else appending.
pub fn tmpfiles_line(text: &str, line: &str) -> Result<Option<String>> {
    let Some(path) = line.split_whitespace().nth(1) else {
        bail!("not a tmpfiles.d line: {line}");
    };
    let same = |l: &str| {
        let t: Vec<&str> = l.split_whitespace().collect();
        t.len() >= 2 && !t[0].starts_with('#') && t[1] == path
    };
    match lines_keep(text).iter().position(|l| same(l)) {
        Some(i) => replace_line(text, i + 1, line),
        None => ensure_line(text, line),
    }
}

/// modprobe.d: sets `key=value` on the `options MODULE` line `n`, replacing the key's value when
/// the line has it, else appending it to the line.
pub fn set_module_option(text: &str, n: usize, key: &str, value: &str) -> Result<Option<String>> {
    let lines = lines_keep(text);
    let Some(old) = lines.get(n.wrapping_sub(1)) else {
        bail!("line {n} does not exist");
    };
    let body = old.trim_end_matches(['\n', '\r']);
    let mut toks: Vec<String> = body.split_whitespace().map(str::to_string).collect();
    if toks.first().map(String::as_str) != Some("options") {
        bail!("line {n} is not an `options` line");
    }
    let want = format!("{key}={value}");
    match toks.iter().position(|t| {
        t.split('=').next().map(|k| k.replace('-', "_")) == Some(key.replace('-', "_"))
    }) {
        Some(i) if toks[i] == want => return Ok(None),
        Some(i) => toks[i] = want,
        None => toks.push(want),
    }
    replace_line(text, n, &toks.join(" "))
}

/// Appends `line` (without newline) to `text` unless a line equal to it (trimmed) is present.
pub fn ensure_line(text: &str, line: &str) -> Result<Option<String>> {
    if text.lines().any(|l| l.trim() == line.trim()) {
        return Ok(None);
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
    Ok(Some(out))
}

/// Replaces 1-based line `n` with `replacement` (which may hold several lines).
pub fn replace_line(text: &str, n: usize, replacement: &str) -> Result<Option<String>> {
    let lines = lines_keep(text);
    let Some(old) = lines.get(n.wrapping_sub(1)) else {
        bail!("line {n} does not exist");
    };
    let body = old.trim_end_matches(['\n', '\r']);
    if body.trim() == replacement.trim() {
        return Ok(None);
    }
    let nl = &old[body.len()..];
    let mut out = String::with_capacity(text.len() + replacement.len());
    for (i, l) in lines.iter().enumerate() {
        if i + 1 == n {
            out.push_str(replacement);
            out.push_str(nl);
        } else {
            out.push_str(l);
        }
    }
    Ok(Some(out))
}

/// A modprobe.d suggestion (`options i915 enable_gvt=1 enable_guc=3`) without the parameters
/// that ask for GuC submission: converting an ignored line must not switch those on. Lines left
/// with no parameter are dropped.
pub fn without_guc_submission(suggestion: &str) -> String {
    let mut out = Vec::new();
    for line in suggestion.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.first() != Some(&"options") || toks.len() < 3 {
            out.push(line.to_string());
            continue;
        }
        let module = toks[1];
        let kept: Vec<&str> = toks[2..]
            .iter()
            .copied()
            .filter(|t| !is_guc_submission(&format!("{module}.{t}")))
            .collect();
        if !kept.is_empty() {
            out.push(format!("options {module} {}", kept.join(" ")));
        }
    }
    out.join("\n")
}

/// modprobe.d: removes parameters `drop` matches (given as `module.param=value`) from the
/// `options MODULE ...` directive on 1-based line `n`; a directive left without parameters is
/// commented out. Only one-line directives are edited.
pub fn drop_option(text: &str, n: usize, drop: fn(&str) -> bool) -> Result<Option<String>> {
    let lines = lines_keep(text);
    let Some(old) = lines.get(n.wrapping_sub(1)) else {
        bail!("line {n} does not exist");
    };
    let body = old.trim_end_matches(['\n', '\r']);
    if body.ends_with('\\') {
        bail!("line {n} continues on the next line; edit it by hand");
    }
    let toks: Vec<&str> = body.split_whitespace().collect();
    if toks.first() != Some(&"options") || toks.len() < 3 {
        return Ok(None);
    }
    let module = toks[1];
    let kept: Vec<&str> = toks[2..]
        .iter()
        .copied()
        .filter(|t| !drop(&format!("{module}.{t}")))
        .collect();
    if kept.len() == toks.len() - 2 {
        return Ok(None);
    }
    let new = if kept.is_empty() {
        format!("# {body}   (disabled by gvtg fix: GuC submission breaks GVT-g)")
    } else {
        format!("options {module} {}", kept.join(" "))
    };
    replace_line(text, n, &new)
}

/// Whether a kernel argument should be removed: `i915.enable_guc` with a value that asks for
/// GuC submission (1 or 3; any odd value).
pub fn is_guc_submission(arg: &str) -> bool {
    let Some((k, v)) = arg.split_once('=') else {
        return false;
    };
    if parse::cmdline::normalize(k) != "i915.enable_guc" {
        return false;
    }
    let v = v.trim_matches('"');
    let n = if let Some(h) = v.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else {
        v.parse::<i64>().ok()
    };
    n.is_some_and(|n| n > 0 && n & 1 == 1)
}

/// The same argument, compared by name with `-`/`_` folded (`i915.enable_gvt=1`).
fn same_arg(a: &str, b: &str) -> bool {
    let (ka, va) = a.split_once('=').unwrap_or((a, ""));
    let (kb, vb) = b.split_once('=').unwrap_or((b, ""));
    parse::cmdline::normalize(ka) == parse::cmdline::normalize(kb) && va == vb
}

/// New token list: `tokens` minus removed ones, plus `add` where missing. None = unchanged.
fn merge_args(tokens: &[&str], add: &[String], remove: fn(&str) -> bool) -> Option<Vec<String>> {
    let mut out: Vec<String> = tokens
        .iter()
        .filter(|t| !remove(t))
        .map(|t| t.to_string())
        .collect();
    let removed = out.len() != tokens.len();
    let mut added = false;
    for a in add {
        if !out.iter().any(|t| same_arg(t, a)) {
            out.push(a.clone());
            added = true;
        }
    }
    (removed || added).then_some(out)
}

/// `/etc/kernel/cmdline` (one line of arguments): adds `add`, drops arguments `remove` matches.
pub fn kernel_cmdline(
    text: &str,
    add: &[String],
    remove: fn(&str) -> bool,
) -> Result<Option<String>> {
    let body = text.trim_end_matches(['\n', '\r']);
    if body.contains('\n') {
        bail!("/etc/kernel/cmdline has more than one line; edit it by hand");
    }
    let tokens: Vec<&str> = body.split_whitespace().collect();
    let Some(new) = merge_args(&tokens, add, remove) else {
        return Ok(None);
    };
    let removed = new.len() < tokens.len() + add.len() && tokens.iter().any(|t| remove(t));
    let line = if removed {
        new.join(" ")
    } else {
        // Append only: keep the original bytes of the line.
        let extra: Vec<&String> = new[tokens.len()..].iter().collect();
        let mut l = body.trim_end().to_string();
        for e in extra {
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str(e);
        }
        l
    };
    let nl = &text[body.len()..];
    Ok(Some(format!(
        "{line}{}",
        if nl.is_empty() { "\n" } else { nl }
    )))
}

/// A single-line `NAME=value` assignment on a line: (prefix before the value, quote char, inner
/// value, suffix after the value).
fn split_assignment<'a>(
    line: &'a str,
    raw: &str,
) -> Result<(&'a str, Option<char>, &'a str, &'a str)> {
    if raw.contains('\n') {
        bail!("the assignment spans several lines; edit it by hand");
    }
    let Some(at) = line.find(raw) else {
        bail!("cannot locate the assignment on its line");
    };
    let eq = at + raw.find('=').unwrap_or(0) + 1;
    let value_end = at + raw.len();
    let value = &line[eq..value_end];
    let (q, inner) = match value.chars().next() {
        Some(c @ ('"' | '\'')) if value.len() >= 2 && value.ends_with(c) => {
            (Some(c), &value[1..value.len() - 1])
        }
        _ => (None, value),
    };
    if q.is_none() && (value.contains('"') || value.contains('\'')) {
        bail!("the value mixes quoting; edit it by hand");
    }
    Ok((&line[..eq], q, inner, &line[value_end..]))
}

/// `/etc/default/grub`: adds `add` to GRUB_CMDLINE_LINUX_DEFAULT (its last assignment, the one
/// grub-mkconfig uses), removes arguments `remove` matches from both cmdline variables, and folds
/// misnamed variables (`GRUB_CMDLINE_DEFAULT`) into GRUB_CMDLINE_LINUX_DEFAULT: renamed in place
/// when the real one does not exist, else merged into it and commented out.
pub fn grub_default(
    text: &str,
    add: &[String],
    remove: fn(&str) -> bool,
) -> Result<Option<String>> {
    const TARGET: &str = "GRUB_CMDLINE_LINUX_DEFAULT";
    let g = parse::grub::parse(text);
    let mut lines: Vec<String> = lines_keep(text).into_iter().map(str::to_string).collect();
    let mut changed = false;
    let mut want: Vec<String> = Vec::new();
    let target = g.get(TARGET).cloned();
    let misnamed: Vec<parse::grub::Assignment> =
        g.misnamed_cmdline_vars().into_iter().cloned().collect();
    let mut rename_line = None;
    for m in &misnamed {
        for t in m.value.split_whitespace() {
            if !remove(t) {
                want.push(t.to_string());
            }
        }
        let idx = m.line - 1;
        let Some(line) = lines.get(idx).cloned() else {
            continue;
        };
        if target.is_none() && rename_line.is_none() {
            // Rename in place: the misnamed assignment becomes the real one.
            let new = line.replacen(&format!("{}=", m.name), &format!("{TARGET}="), 1);
            lines[idx] = new;
            rename_line = Some(idx);
        } else {
            lines[idx] = format!("# {} (merged into {TARGET} by gvtg fix)\n", line.trim_end());
        }
        changed = true;
    }
    want.extend(add.iter().cloned());
    // The line to hold the arguments.
    let target_idx = match (&target, rename_line) {
        (Some(a), _) => Some((a.line - 1, a.raw.clone())),
        (None, Some(i)) => {
            let m = misnamed
                .iter()
                .find(|m| m.line - 1 == i)
                .expect("rename_line comes from a misnamed assignment");
            Some((i, m.raw.replacen(&m.name, TARGET, 1)))
        }
        (None, None) => None,
    };
    match target_idx {
        Some((idx, raw)) => {
            let line = lines[idx].clone();
            let (prefix, q, inner, suffix) = split_assignment(&line, &raw)?;
            if inner.contains('$') || inner.contains('`') {
                bail!("{TARGET} uses shell expansion; edit it by hand");
            }
            let tokens: Vec<&str> = inner.split_whitespace().collect();
            if let Some(new) = merge_args(&tokens, &want, remove) {
                let dropped = tokens.iter().any(|t| remove(t));
                let new_inner = if dropped {
                    new.join(" ")
                } else {
                    let mut s = inner.to_string();
                    for e in &new[tokens.len()..] {
                        if !s.trim_end().is_empty() {
                            s = s.trim_end().to_string();
                            s.push(' ');
                        }
                        s.push_str(e);
                    }
                    s
                };
                let q = match q {
                    Some('\'') => '\'',
                    _ => '"',
                };
                lines[idx] = format!("{prefix}{q}{new_inner}{q}{suffix}");
                changed = true;
            }
        }
        None => {
            let mut uniq: Vec<String> = Vec::new();
            for w in want {
                if !uniq.iter().any(|u| same_arg(u, &w)) {
                    uniq.push(w);
                }
            }
            if !uniq.is_empty() {
                if let Some(last) = lines.last_mut() {
                    if !last.ends_with('\n') {
                        last.push('\n');
                    }
                }
                lines.push(format!("{TARGET}=\"{}\"\n", uniq.join(" ")));
                changed = true;
            }
        }
    }
    // Removals from GRUB_CMDLINE_LINUX too.
    if let Some(a) = g.get("GRUB_CMDLINE_LINUX") {
        let idx = a.line - 1;
        let line = lines[idx].clone();
        if let Ok((prefix, q, inner, suffix)) = split_assignment(&line, &a.raw) {
            let tokens: Vec<&str> = inner.split_whitespace().collect();
            if tokens.iter().any(|t| remove(t)) {
                let kept: Vec<&str> = tokens.into_iter().filter(|t| !remove(t)).collect();
                let q = q.unwrap_or('"');
                lines[idx] = format!("{prefix}{q}{}{q}{suffix}", kept.join(" "));
                changed = true;
            }
        }
    }
    Ok(changed.then(|| lines.concat()))
}

/// modprobe.d: merges `ids` (`10de:1b80`) into the last uncommented `options vfio-pci ids=…`
/// line (ids already there are kept, in their order), or appends such a line.
pub fn vfio_ids(text: &str, ids: &[String]) -> Result<Option<String>> {
    let lines = lines_keep(text);
    let is_vfio = |l: &str| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() >= 2
            && w[0] == "options"
            && parse::cmdline::normalize(w[1]) == "vfio_pci"
            && w[2..].iter().any(|p| p.starts_with("ids="))
    };
    let Some(idx) = lines.iter().rposition(|l| is_vfio(l)) else {
        if ids.is_empty() {
            return Ok(None);
        }
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("options vfio-pci ids={}\n", ids.join(",")));
        return Ok(Some(out));
    };
    let line = lines[idx];
    let body = line.trim_end_matches(['\n', '\r']);
    let nl = &line[body.len()..];
    let mut changed = false;
    let words: Vec<String> = body
        .split_whitespace()
        .map(|w| match w.strip_prefix("ids=") {
            Some(v) => {
                let mut have: Vec<String> = v
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect();
                for id in ids {
                    if !have.iter().any(|h| h.eq_ignore_ascii_case(id)) {
                        have.push(id.clone());
                        changed = true;
                    }
                }
                format!("ids={}", have.join(","))
            }
            None => w.to_string(),
        })
        .collect();
    if !changed {
        return Ok(None);
    }
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i == idx {
            out.push_str(&words.join(" "));
            out.push_str(if nl.is_empty() { "\n" } else { nl });
        } else {
            out.push_str(l);
        }
    }
    Ok(Some(out))
}

/// mkinitcpio.conf: adds `modules` to the last uncommented one-line `MODULES=(...)`.
pub fn mkinitcpio_modules(text: &str, modules: &[String]) -> Result<Option<String>> {
    let lines = lines_keep(text);
    let Some(idx) = lines
        .iter()
        .rposition(|l| l.trim_start().starts_with("MODULES="))
    else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("MODULES=({})\n", modules.join(" ")));
        return Ok(Some(out));
    };
    let line = lines[idx];
    let (Some(open), Some(close)) = (line.find('('), line.rfind(')')) else {
        bail!("MODULES= in mkinitcpio.conf is not a one-line (...) array; edit it by hand");
    };
    let inner = &line[open + 1..close];
    let have: Vec<&str> = inner
        .split_whitespace()
        .map(|t| t.trim_matches(['"', '\'']))
        .collect();
    let missing: Vec<&String> = modules
        .iter()
        .filter(|m| {
            !have
                .iter()
                .any(|h| parse::cmdline::normalize(h) == parse::cmdline::normalize(m))
        })
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let mut new_inner = inner.trim_end().to_string();
    for m in missing {
        if !new_inner.is_empty() {
            new_inner.push(' ');
        }
        new_inner.push_str(m);
    }
    let new_line = format!("{}{}{}", &line[..open + 1], new_inner, &line[close..]);
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        out.push_str(if i == idx { &new_line } else { l });
    }
    Ok(Some(out))
}

/// Byte range of the `[ ... ]` list that starts at or after `from`, honouring quotes and `#`
/// comments. Returns (index of `[`, index of `]`).
fn list_span(text: &str, from: usize) -> Result<(usize, usize)> {
    let b = text.as_bytes();
    let mut i = from;
    let mut open = None;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b'[' && open.is_none() {
            open = Some(i);
        } else if c == b']' {
            if let Some(o) = open {
                return Ok((o, i));
            }
        }
        i += 1;
    }
    bail!("cgroup_device_acl: no complete [ ... ] list")
}

/// qemu.conf: adds libvirt's default devices that a set `cgroup_device_acl` lacks, to the FIRST
/// occurrence (the one libvirt reads), in place. Nothing else in the file changes.
pub fn qemu_acl(text: &str) -> Result<Option<String>> {
    qemu_acl_with(text, &[])
}

/// qemu.conf: like [`qemu_acl`], and also adds `extra` (`/dev/kvmfr0`) to the FIRST
/// `cgroup_device_acl`. When the key is unset and `extra` is not empty, appends a
/// `cgroup_device_acl` holding libvirt's defaults and `extra` (setting the key replaces the
/// default list, so the defaults must be written out).
pub fn qemu_acl_with(text: &str, extra: &[String]) -> Result<Option<String>> {
    let conf = parse::qemu_conf::parse(text).map_err(|e| anyhow::anyhow!("qemu.conf: {e}"))?;
    let Some(entry) = conf.get("cgroup_device_acl") else {
        if extra.is_empty() {
            return Ok(None);
        }
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        let items: Vec<String> = DEFAULT_ACL
            .iter()
            .map(|d| d.to_string())
            .chain(extra.iter().cloned())
            .map(|d| format!("    \"{d}\""))
            .collect();
        out.push_str(&format!(
            "\n# libvirt's default devices, plus what gvtg fix added\ncgroup_device_acl = [\n{}\n]\n",
            items.join(",\n")
        ));
        return Ok(Some(out));
    };
    let parse::qemu_conf::Value::List(items) = &entry.value else {
        bail!("cgroup_device_acl is not a list");
    };
    let have: Vec<&str> = items
        .iter()
        .filter_map(|v| match v {
            parse::qemu_conf::Value::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let mut missing: Vec<&str> = DEFAULT_ACL
        .iter()
        .copied()
        .filter(|d| !have.contains(d))
        .collect();
    for e in extra {
        if !have.contains(&e.as_str()) && !missing.contains(&e.as_str()) {
            missing.push(e);
        }
    }
    if missing.is_empty() {
        return Ok(None);
    }
    let line_start: usize = lines_keep(text)
        .iter()
        .take(entry.line - 1)
        .map(|l| l.len())
        .sum();
    let (open, close) = list_span(text, line_start)?;
    let inner = &text[open + 1..close];
    // The end of the last string literal in the list (ignoring comments).
    let mut last_end = None;
    let b = inner.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_str = false;
                last_end = Some(i + 1);
            }
        } else if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'"' {
            in_str = true;
        }
        i += 1;
    }
    // Indentation of the line holding the last item (or four spaces).
    let indent = |pos: usize| -> String {
        let ls = text[..pos].rfind('\n').map_or(0, |p| p + 1);
        let ws: String = text[ls..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if ws.is_empty() {
            "    ".to_string()
        } else {
            ws
        }
    };
    let mut out = String::with_capacity(text.len() + 200);
    match last_end {
        Some(e) => {
            let at = open + 1 + e;
            let ind = indent(at);
            out.push_str(&text[..at]);
            for m in &missing {
                out.push_str(&format!(",\n{ind}\"{m}\""));
            }
            out.push_str(&text[at..]);
        }
        None => {
            out.push_str(&text[..open + 1]);
            let items: Vec<String> = missing.iter().map(|m| format!("    \"{m}\"")).collect();
            out.push('\n');
            out.push_str(&items.join(",\n"));
            out.push('\n');
            out.push_str(&text[close..]);
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tmpfiles_line_replaces_the_same_path_only() {
        let t = "# mine\nf /dev/shm/looking-glass 0600 qemu qemu -\nd /run/x 0755 root root -\n";
        let o = tmpfiles_line(t, "f /dev/shm/looking-glass 0660 alex kvm -")
            .unwrap()
            .unwrap();
        assert_eq!(
            o,
            "# mine\nf /dev/shm/looking-glass 0660 alex kvm -\nd /run/x 0755 root root -\n"
        );
        assert_eq!(
            tmpfiles_line(&o, "f /dev/shm/looking-glass 0660 alex kvm -").unwrap(),
            None
        );
        assert_eq!(
            tmpfiles_line("", "f /dev/shm/looking-glass 0660 alex kvm -")
                .unwrap()
                .unwrap(),
            "f /dev/shm/looking-glass 0660 alex kvm -\n"
        );
        assert!(tmpfiles_line("", "garbage").is_err());
    }

    #[test]
    fn module_option_value_is_replaced_in_place() {
        let t = "# LG\noptions kvmfr static_size_mb=32 other=1\n";
        assert_eq!(
            set_module_option(t, 2, "static_size_mb", "128")
                .unwrap()
                .unwrap(),
            "# LG\noptions kvmfr static_size_mb=128 other=1\n"
        );
        assert_eq!(
            set_module_option(t, 2, "static_size_mb", "32").unwrap(),
            None
        );
        assert_eq!(
            set_module_option("options kvmfr\n", 1, "static_size_mb", "64")
                .unwrap()
                .unwrap(),
            "options kvmfr static_size_mb=64\n"
        );
        assert!(set_module_option(t, 1, "static_size_mb", "64").is_err());
    }

    #[test]
    fn acl_gets_extra_entries_and_an_unset_key_gets_the_defaults() {
        let t = "# c\ncgroup_device_acl = [\n    \"/dev/null\", \"/dev/kvm\"\n]\ncgroup_device_acl = [ \"/dev/kvmfr0\" ]\n";
        let o = qemu_acl_with(t, &["/dev/kvmfr0".to_string()])
            .unwrap()
            .unwrap();
        // The first key gains the node (and the defaults); the ignored second one is untouched.
        let first = &o[..o.find("]\n").unwrap()];
        assert!(first.contains("\"/dev/kvmfr0\""), "{o}");
        assert!(first.contains("\"/dev/userfaultfd\""), "{o}");
        assert!(
            o.ends_with("cgroup_device_acl = [ \"/dev/kvmfr0\" ]\n"),
            "{o}"
        );
        assert_eq!(
            qemu_acl_with(&o, &["/dev/kvmfr0".to_string()]).unwrap(),
            None
        );
        let o = qemu_acl_with("#user = \"x\"\n", &["/dev/kvmfr0".to_string()])
            .unwrap()
            .unwrap();
        let conf = parse::qemu_conf::parse(&o).unwrap();
        let l = conf.get_list("cgroup_device_acl").unwrap();
        assert_eq!(l.len(), DEFAULT_ACL.len() + 1, "{o}");
        assert_eq!(l.last(), Some(&"/dev/kvmfr0"));
        // Without extras an unset key stays unset (libvirt's default list applies).
        assert_eq!(qemu_acl("#user = \"x\"\n").unwrap(), None);
    }

    #[test]
    fn grub_adds_to_the_last_assignment_only() {
        let t = "# c\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nX=1\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\" # me\n";
        let o = grub_default(t, &s(&["i915.enable_gvt=1"]), is_guc_submission)
            .unwrap()
            .unwrap();
        assert_eq!(o, "# c\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nX=1\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash i915.enable_gvt=1\" # me\n");
        assert_eq!(
            grub_default(&o, &s(&["i915.enable_gvt=1"]), is_guc_submission).unwrap(),
            None
        );
    }

    #[test]
    fn grub_renames_misnamed_and_removes_guc() {
        let t = "A=1\nGRUB_CMDLINE_DEFAULT=\"quiet i915.enable_guc=3\"\nGRUB_CMDLINE_LINUX=\"i915.enable_guc=1 ro\"\n";
        let o = grub_default(t, &s(&["i915.enable_gvt=1"]), is_guc_submission)
            .unwrap()
            .unwrap();
        assert_eq!(o, "A=1\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet i915.enable_gvt=1\"\nGRUB_CMDLINE_LINUX=\"ro\"\n");
        assert_eq!(
            grub_default(&o, &s(&["i915.enable_gvt=1"]), is_guc_submission).unwrap(),
            None
        );
    }

    #[test]
    fn grub_appends_when_absent_and_handles_unquoted() {
        let o = grub_default("A=1", &s(&["x=1"]), is_guc_submission)
            .unwrap()
            .unwrap();
        assert_eq!(o, "A=1\nGRUB_CMDLINE_LINUX_DEFAULT=\"x=1\"\n");
        let o = grub_default(
            "GRUB_CMDLINE_LINUX_DEFAULT=quiet\n",
            &s(&["x=1"]),
            is_guc_submission,
        )
        .unwrap()
        .unwrap();
        assert_eq!(o, "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet x=1\"\n");
        assert!(grub_default(
            "GRUB_CMDLINE_LINUX_DEFAULT=\"$X\"\n",
            &s(&["x=1"]),
            is_guc_submission
        )
        .is_err());
    }

    #[test]
    fn kernel_cmdline_appends_and_removes() {
        let o = kernel_cmdline(
            "root=/dev/sda1 quiet\n",
            &s(&["i915.enable_gvt=1"]),
            is_guc_submission,
        )
        .unwrap()
        .unwrap();
        assert_eq!(o, "root=/dev/sda1 quiet i915.enable_gvt=1\n");
        assert_eq!(
            kernel_cmdline(&o, &s(&["i915.enable_gvt=1"]), is_guc_submission).unwrap(),
            None
        );
        let o = kernel_cmdline("a i915.enable_guc=3 b", &[], is_guc_submission)
            .unwrap()
            .unwrap();
        assert_eq!(o, "a b\n");
    }

    #[test]
    fn lines() {
        assert_eq!(ensure_line("a\nb", "b").unwrap(), None);
        assert_eq!(ensure_line("a", "b").unwrap().unwrap(), "a\nb\n");
        assert_eq!(replace_line("x\ny\n", 2, "z").unwrap().unwrap(), "x\nz\n");
        assert_eq!(replace_line("x\nz\n", 2, "z").unwrap(), None);
    }

    #[test]
    fn mkinitcpio() {
        let t = "# MODULES=(old)\nMODULES=(i915)\nHOOKS=(base)\n";
        let o = mkinitcpio_modules(t, &s(&["kvmgt"])).unwrap().unwrap();
        assert_eq!(o, "# MODULES=(old)\nMODULES=(i915 kvmgt)\nHOOKS=(base)\n");
        assert_eq!(mkinitcpio_modules(&o, &s(&["kvmgt"])).unwrap(), None);
        assert_eq!(
            mkinitcpio_modules("MODULES=()\n", &s(&["kvmgt"]))
                .unwrap()
                .unwrap(),
            "MODULES=(kvmgt)\n"
        );
    }

    #[test]
    fn acl_first_occurrence_in_place() {
        let t = "#cgroup_device_acl = [\n#  \"/dev/null\"\n#]\ncgroup_device_acl = [\n    \"/dev/null\", # keep\n    \"/dev/tcm\"\n]\ncgroup_device_acl = [ \"/dev/x\" ]\n";
        let o = qemu_acl(t).unwrap().unwrap();
        assert!(o.starts_with("#cgroup_device_acl = [\n#  \"/dev/null\"\n#]\ncgroup_device_acl = [\n    \"/dev/null\", # keep\n    \"/dev/tcm\",\n    \"/dev/full\""));
        assert!(o.ends_with("\"/dev/userfaultfd\"\n]\ncgroup_device_acl = [ \"/dev/x\" ]\n"));
        let c = parse::qemu_conf::parse(&o).unwrap();
        assert_eq!(c.get_list("cgroup_device_acl").unwrap().len(), 9);
        assert_eq!(qemu_acl(&o).unwrap(), None);
        assert_eq!(qemu_acl("user = \"x\"\n").unwrap(), None);
        let o = qemu_acl("cgroup_device_acl = []\n").unwrap().unwrap();
        assert_eq!(
            parse::qemu_conf::parse(&o)
                .unwrap()
                .get_list("cgroup_device_acl")
                .unwrap()
                .len(),
            8
        );
    }

    #[test]
    fn guc_options_are_dropped_not_converted() {
        assert_eq!(
            without_guc_submission("options i915 enable_gvt=1 enable_guc=3"),
            "options i915 enable_gvt=1"
        );
        assert_eq!(without_guc_submission("options i915 enable_guc=1"), "");
        let t = "# x\noptions i915 enable_guc=3 enable_gvt=1\noptions i915 enable_guc=1\n";
        let o = drop_option(t, 2, is_guc_submission).unwrap().unwrap();
        assert_eq!(
            o,
            "# x\noptions i915 enable_gvt=1\noptions i915 enable_guc=1\n"
        );
        let o = drop_option(&o, 3, is_guc_submission).unwrap().unwrap();
        assert!(o.ends_with(
            "\n# options i915 enable_guc=1   (disabled by gvtg fix: GuC submission breaks GVT-g)\n"
        ));
        assert_eq!(drop_option(&o, 2, is_guc_submission).unwrap(), None);
    }

    proptest::proptest! {
        /// Only the GRUB_CMDLINE_LINUX_DEFAULT line changes; every other line stays byte for
        /// byte, in order, and a second run changes nothing.
        #[test]
        fn grub_edit_touches_one_line(
            before in proptest::collection::vec("(# [ -~]{0,30}|[A-Z_]{1,12}=\"[a-z ]{0,10}\"|)", 0..8),
            after in proptest::collection::vec("(# [ -~]{0,30}|[A-Z_]{1,12}=\"[a-z ]{0,10}\"|)", 0..8),
            value in "[a-z=. ]{0,20}",
        ) {
            let keep = |l: &&String| !l.contains("CMD") && !l.contains("GRUB");
            let before: Vec<String> = before.iter().filter(keep).cloned().collect();
            let after: Vec<String> = after.iter().filter(keep).cloned().collect();
            let target = format!("GRUB_CMDLINE_LINUX_DEFAULT=\"{value}\"");
            let mut lines = before.clone();
            lines.push(target);
            lines.extend(after.iter().cloned());
            let text = lines.join("\n") + "\n";
            let add = vec!["i915.enable_gvt=1".to_string()];
            let out = grub_default(&text, &add, is_guc_submission).unwrap();
            let out = out.unwrap_or_else(|| text.clone());
            let got: Vec<&str> = out.lines().collect();
            proptest::prop_assert_eq!(got.len(), lines.len());
            for (i, l) in lines.iter().enumerate() {
                if i != before.len() {
                    proptest::prop_assert_eq!(got[i], l.as_str());
                }
            }
            proptest::prop_assert!(got[before.len()].contains("i915.enable_gvt=1"));
            proptest::prop_assert_eq!(grub_default(&out, &add, is_guc_submission).unwrap(), None);
        }

        /// The ACL merge keeps every byte of the original outside the list's new items.
        #[test]
        fn acl_merge_only_inserts(
            head in proptest::collection::vec("(# [ -~]{0,30}|user = \"[a-z]{1,8}\"|)", 0..6),
            items in proptest::collection::vec("/dev/[a-z]{1,6}", 1..5),
        ) {
            let list: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
            let text = format!("{}\ncgroup_device_acl = [\n    {}\n]\n# tail\n", head.join("\n"), list.join(",\n    "));
            if let Some(out) = qemu_acl(&text).unwrap() {
                let conf = parse::qemu_conf::parse(&out).unwrap();
                let got = conf.get_list("cgroup_device_acl").unwrap();
                for d in DEFAULT_ACL {
                    proptest::prop_assert!(got.contains(d));
                }
                // Removing the inserted items gives the original back.
                let at = out.find("\n]\n# tail").unwrap();
                let orig_at = text.find("\n]\n# tail").unwrap();
                proptest::prop_assert_eq!(&out[..orig_at], &text[..orig_at]);
                proptest::prop_assert_eq!(&out[at..], &text[orig_at..]);
                proptest::prop_assert_eq!(qemu_acl(&out).unwrap(), None);
            }
        }
    }

    #[test]
    fn guc_values() {
        assert!(is_guc_submission("i915.enable_guc=3"));
        assert!(is_guc_submission("i915.enable-guc=1"));
        assert!(!is_guc_submission("i915.enable_guc=2"));
        assert!(!is_guc_submission("i915.enable_guc=0"));
        assert!(!is_guc_submission("quiet"));
    }

    #[test]
    fn vfio_ids_merge_and_keep() {
        let ids = vec!["10de:1b80".to_string(), "10de:10f0".to_string()];
        assert_eq!(
            vfio_ids("", &ids).unwrap().unwrap(),
            "options vfio-pci ids=10de:1b80,10de:10f0\n"
        );
        let t = "# x\noptions vfio_pci ids=1002:67df disable_vga=1\nsoftdep a pre: b\n";
        assert_eq!(
            vfio_ids(t, &ids).unwrap().unwrap(),
            "# x\noptions vfio_pci ids=1002:67df,10de:1b80,10de:10f0 disable_vga=1\nsoftdep a pre: b\n"
        );
        let done = vfio_ids(t, &ids).unwrap().unwrap();
        assert_eq!(vfio_ids(&done, &ids).unwrap(), None);
        assert_eq!(vfio_ids("# options vfio-pci ids=1:2\n", &[]).unwrap(), None);
    }
}
