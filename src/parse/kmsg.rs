//! Kernel log records in the shapes users and tools produce.
//!
//! Recognised per line, in this order:
//! 1. `/dev/kmsg` (Documentation/ABI/testing/dev-kmsg, kernel/printk/printk.c
//!    `info_print_ext_header()` / `msg_add_ext_text()`): `prio,seq,ts_usec,flags[,more];text`.
//!    `prio` holds the facility in its high bits and the level in its low 3 bits. Bytes
//!    below 0x20 (except newline), 0x7f and up, and `\` itself are escaped as `\xNN` and are
//!    decoded here. Following lines that start with a space are the record's dictionary
//!    (` SUBSYSTEM=pci`, ` DEVICE=+pci:0000:00:02.0`) and are dropped.
//! 2. A syslog priority prefix `<N>` (`dmesg -r`, console captures), level = N & 7.
//! 3. `dmesg -x` decoding prefix `kern  :info  : `, which names the level.
//! 4. `dmesg` timestamps `[    1.234567]` (seconds since boot → `ts_usec`) and `dmesg -T`
//!    wall-clock `[Mon Jan  2 03:04:05 2023]` (kept out of `ts_usec`, which is time since
//!    boot). A paste that lost the opening `[` (`  578.101534] text`) is accepted too.
//! 5. journalctl / syslog: `<time...> <host> kernel: text`, where the time part contains an
//!    `HH:MM:SS` clock (localised month names like `Mär` are fine), or an elided `...`;
//!    a `<N>` or bracket after `kernel:` (kern.log) is then handled as in 2 and 4.
//!    `journalctl -o short-monotonic` (`[ 1.2] host kernel: text`) is not unwrapped: a
//!    single word before "kernel:" is too ambiguous.
//! 6. Anything else is a plain record: the whole line as text, no timestamp.
//!
//! Blank lines are not records. Invalid UTF-8 is decoded lossily. Every loop walks the
//! input once, so time and memory are linear in its size.

use serde::Serialize;

/// One kernel log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Log level 0 (emerg) ..= 7 (debug), when the format carries it.
    pub level: Option<u8>,
    /// `/dev/kmsg` sequence number.
    pub seq: Option<u64>,
    /// Microseconds since boot (`/dev/kmsg` field or `dmesg` `[sec.usec]`).
    pub ts_usec: Option<u64>,
    /// The message text, prefixes removed.
    pub text: String,
    /// 1-based line of the record in the input.
    pub line: usize,
}

/// Decodes `\xNN` escapes as `/dev/kmsg` writes them; other backslashes stay.
fn decode_kmsg_escapes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' && bytes.get(i + 1) == Some(&b'x') {
            let hex = bytes
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// `prio,seq,ts_usec,flags[,...];` → (level, seq, ts_usec, message bytes).
fn parse_kmsg_header(line: &[u8]) -> Option<(u8, u64, u64, &[u8])> {
    let semi = line.iter().position(|&b| b == b';')?;
    let header = std::str::from_utf8(line.get(..semi)?).ok()?;
    let msg = line.get(semi + 1..)?;
    let mut fields = header.split(',');
    let prio: u64 = fields.next()?.parse().ok()?;
    let seq: u64 = fields.next()?.parse().ok()?;
    let ts: u64 = fields.next()?.parse().ok()?;
    // The flags field is present in every kernel that has /dev/kmsg ('-', 'c', '+').
    let flags = fields.next()?;
    if flags.len() > 2 {
        return None;
    }
    let level = u8::try_from(prio & 7).ok()?;
    Some((level, seq, ts, msg))
}

fn level_from_name(name: &str) -> Option<u8> {
    Some(match name {
        "emerg" => 0,
        "alert" => 1,
        "crit" => 2,
        "err" => 3,
        "warn" => 4,
        "notice" => 5,
        "info" => 6,
        "debug" => 7,
        _ => return None,
    })
}

/// `<N>` prefix.
fn strip_syslog_prio(s: &str) -> Option<(u8, &str)> {
    let rest = s.strip_prefix('<')?;
    let end = rest.find('>')?;
    let n: u32 = rest.get(..end)?.parse().ok()?;
    let level = u8::try_from(n & 7).ok()?;
    Some((level, rest.get(end + 1..)?))
}

/// `kern  :info  : ` prefix of `dmesg -x`.
fn strip_dmesg_decode(s: &str) -> Option<(u8, &str)> {
    let (fac, rest) = s.split_once(':')?;
    let (lvl, rest) = rest.split_once(':')?;
    let fac = fac.trim();
    let facilities = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
        "local7",
    ];
    if !facilities.contains(&fac) {
        return None;
    }
    let level = level_from_name(lvl.trim())?;
    Some((level, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// `[ 1.234567] rest` (monotonic) or `[Mon Jan  2 03:04:05 2023] rest` (wall clock).
/// Returns (ts_usec if monotonic, rest).
fn strip_bracket(s: &str) -> Option<(Option<u64>, &str)> {
    let trimmed = s.trim_start();
    let (inner, rest) = match trimmed.strip_prefix('[') {
        Some(after) => {
            let end = after.find(']')?;
            (after.get(..end)?, after.get(end + 1..)?)
        }
        None => {
            // A paste that lost the '[': only accept a clear `digits.digits]`.
            let end = trimmed.find(']')?;
            let inner = trimmed.get(..end)?;
            if !inner.trim().contains('.')
                || !inner.trim().chars().all(|c| c.is_ascii_digit() || c == '.')
            {
                return None;
            }
            (inner, trimmed.get(end + 1..)?)
        }
    };
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let inner = inner.trim();
    if let Some((secs, frac)) = inner.split_once('.') {
        if !secs.is_empty()
            && !frac.is_empty()
            && secs.chars().all(|c| c.is_ascii_digit())
            && frac.chars().all(|c| c.is_ascii_digit())
        {
            let secs: u64 = secs.parse().ok()?;
            // Pad or cut the fraction to microseconds.
            let mut usec: u64 = 0;
            for i in 0..6 {
                let d = frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
                usec = usec * 10 + d;
            }
            let ts = secs
                .checked_mul(1_000_000)
                .and_then(|s| s.checked_add(usec));
            return Some((ts, rest));
        }
    }
    // dmesg -T: contains a clock and a year.
    if has_clock(inner) && inner.split_whitespace().count() >= 4 {
        return Some((None, rest));
    }
    None
}

/// Contains `HH:MM:SS` (also as part of an ISO timestamp).
fn has_clock(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(8).any(|w| {
        let d = |i: usize| w.get(i).is_some_and(u8::is_ascii_digit);
        d(0) && d(1)
            && w.get(2) == Some(&b':')
            && d(3)
            && d(4)
            && w.get(5) == Some(&b':')
            && d(6)
            && d(7)
    })
}

/// `Jan 02 03:04:05 host kernel: text` / `2023-01-02T03:04:05+0100 host kernel: text` /
/// `... kernel: text`. The part before `kernel:` must hold a clock (or be `...`), so that a
/// message merely containing "kernel:" is left alone.
fn strip_journal(s: &str) -> Option<&str> {
    let idx = s
        .find(" kernel: ")
        .or_else(|| s.find(" kernel:").filter(|i| s.len() == i + 8))?;
    let prefix = s.get(..idx)?.trim();
    let tokens = prefix.split_whitespace().count();
    if !(prefix == "..." || ((2..=6).contains(&tokens) && has_clock(prefix))) {
        return None;
    }
    let rest = s.get(idx + " kernel:".len()..)?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

fn parse_text_line(s: &str, line: usize) -> Record {
    let mut level = None;
    let mut ts_usec = None;
    let mut rest = s;

    if let Some((l, r)) = strip_syslog_prio(rest) {
        level = Some(l);
        rest = r;
    }
    if let Some((l, r)) = strip_dmesg_decode(rest) {
        level = Some(l);
        rest = r;
    }
    let mut bracket_seen = false;
    if let Some((ts, r)) = strip_bracket(rest) {
        ts_usec = ts;
        rest = r;
        bracket_seen = true;
    }
    if let Some(r) = strip_journal(rest) {
        rest = r;
        if !bracket_seen {
            if let Some((l, r)) = strip_syslog_prio(rest) {
                level = level.or(Some(l));
                rest = r;
            }
            if let Some((ts, r)) = strip_bracket(rest) {
                ts_usec = ts;
                rest = r;
            }
        }
    }
    Record {
        level,
        seq: None,
        ts_usec,
        text: rest.to_string(),
        line,
    }
}

/// Parses kernel log text in any of the supported shapes; never fails.
pub fn parse(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut in_kmsg_record = false;
    for (idx, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if in_kmsg_record && raw.first() == Some(&b' ') {
            // Dictionary line of the previous /dev/kmsg record.
            continue;
        }
        let (record, is_kmsg) = parse_line(raw, idx + 1);
        in_kmsg_record = is_kmsg;
        out.extend(record);
    }
    out
}

/// One line that is not a dictionary line: its record (`None` for a blank line) and whether it
/// is a `/dev/kmsg` record (whose following space-indented lines are its dictionary).
fn parse_line(raw: &[u8], line_no: usize) -> (Option<Record>, bool) {
    if let Some((level, seq, ts, msg)) = parse_kmsg_header(raw) {
        let text = String::from_utf8_lossy(&decode_kmsg_escapes(msg)).into_owned();
        let r = Record {
            level: Some(level),
            seq: Some(seq),
            ts_usec: Some(ts),
            text,
            line: line_no,
        };
        return (Some(r), true);
    }
    let text = String::from_utf8_lossy(raw);
    if text.trim().is_empty() {
        return (None, false);
    }
    (Some(parse_text_line(&text, line_no)), false)
}

/// Whether [`parse_line`] would find no record on a line that is not a `/dev/kmsg` record:
/// only whitespace as `str::trim` sees it (which includes vertical tab and Unicode spaces).
fn is_blank(raw: &[u8]) -> bool {
    for &b in raw {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {}
            // Unicode whitespace (U+3000…) or invalid UTF-8 (U+FFFD is not whitespace).
            0x80.. => return String::from_utf8_lossy(raw).trim().is_empty(),
            _ => return false,
        }
    }
    true
}

/// The substrings whose records [`parse_filtered`] keeps.
///
/// Every term must be printable ASCII without a backslash: such a term is found in a record's
/// text only if it is in the raw line too (prefixes are only ever removed, `\xNN` escapes are
/// matched separately), so searching the raw bytes once finds every record that holds it.
///
/// A line with a backslash is always parsed: its decoded text may hold a term the raw line
/// spells with `\xNN` escapes.
#[derive(Debug, Clone)]
pub struct Filter {
    searcher: Searcher,
    searched: usize,
}

#[derive(Debug, Clone)]
enum Searcher {
    /// SIMD (Teddy) search for up to 64 terms: several times faster than an automaton when no
    /// term is shorter than three bytes.
    Packed(aho_corasick::packed::Searcher),
    /// Any number of terms, or no SIMD.
    Automaton(aho_corasick::AhoCorasick),
}

impl Filter {
    /// A filter for `terms`; an error names a term that cannot be searched for in raw lines.
    pub fn new(terms: &[&str]) -> Result<Filter, String> {
        if let Some(t) = terms
            .iter()
            .find(|t| t.is_empty() || !t.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\'))
        {
            return Err(format!(
                "kernel-log term {t:?} is empty or not printable ASCII without a backslash"
            ));
        }
        // A term holding another term finds no line the other does not: search for the other.
        let min: Vec<&str> = terms
            .iter()
            .copied()
            .filter(|t| {
                !terms
                    .iter()
                    .any(|u| u.len() <= t.len() && u != t && t.contains(u))
            })
            .collect();
        let packed = aho_corasick::packed::Config::new()
            .builder()
            .extend(&min)
            .build();
        let searcher = match packed {
            Some(s) => Searcher::Packed(s),
            None => Searcher::Automaton(
                aho_corasick::AhoCorasick::new(&min)
                    .map_err(|e| format!("kernel-log terms: {e}"))?,
            ),
        };
        Ok(Filter {
            searcher,
            searched: min.len(),
        })
    }

    /// Whether `text` holds one of the terms.
    pub fn finds(&self, text: &[u8]) -> bool {
        match &self.searcher {
            Searcher::Packed(s) => s.find(text).is_some(),
            Searcher::Automaton(ac) => ac.is_match(text),
        }
    }

    /// How many terms are searched for (a term holding another is not).
    pub fn searched(&self) -> usize {
        self.searched
    }

    /// Whether the SIMD searcher serves this filter (the table stays within its limits).
    pub fn is_packed(&self) -> bool {
        matches!(self.searcher, Searcher::Packed(_))
    }
}

/// [`parse`], keeping only the records whose line holds a term of `filter` (a superset of the
/// records whose text holds one), with the count of all records.
///
/// A host's log has tens of thousands of records and the checks care about a few dozen
/// messages: one automaton pass over the raw bytes finds the candidate lines, only those are
/// parsed, and every other line costs a newline search and a blank test.
pub fn parse_filtered(bytes: &[u8], filter: &Filter) -> (usize, Vec<Record>) {
    let mut s = Scanner::default();
    s.feed(bytes, filter, true);
    (s.total, s.out)
}

/// [`parse_filtered`] of what `r` yields, read a piece at a time (memory stays at one piece
/// whatever the log's size); more than `limit` bytes is an error.
pub fn parse_filtered_read(
    r: &mut impl std::io::Read,
    filter: &Filter,
    limit: u64,
) -> std::io::Result<(usize, Vec<Record>)> {
    const PIECE: usize = 256 * 1024;
    let mut s = Scanner::default();
    let mut buf = vec![0u8; PIECE];
    let mut filled = 0;
    let mut read: u64 = 0;
    loop {
        if filled == buf.len() {
            // A line longer than the buffer: grow it (bounded by `limit` through `read`).
            buf.resize(buf.len() * 2, 0);
        }
        let n = match r.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            s.feed(buf.get(..filled).unwrap_or_default(), filter, true);
            return Ok((s.total, s.out));
        }
        read += n as u64;
        if read > limit {
            return Err(crate::host::root::too_large(limit));
        }
        filled += n;
        let data = buf.get(..filled).unwrap_or_default();
        if let Some(nl) = memchr::memrchr(b'\n', data) {
            s.feed(data.get(..=nl).unwrap_or_default(), filter, false);
            buf.copy_within(nl + 1..filled, 0);
            filled -= nl + 1;
        }
    }
}

/// What [`parse_filtered`] carries from one piece of a log to the next.
#[derive(Default)]
struct Scanner {
    total: usize,
    out: Vec<Record>,
    /// Lines seen so far.
    lines: usize,
    /// Whether the last line that was not a dictionary line is a /dev/kmsg record (its
    /// space-indented followers are its dictionary).
    anchor_is_kmsg: bool,
}

impl Scanner {
    /// Scans `bytes`: whole lines, each ending in a newline, or with `last` the rest of the log
    /// (whose final piece, after the last newline, is a line too).
    fn feed(&mut self, bytes: &[u8], filter: &Filter, last: bool) {
        match &filter.searcher {
            Searcher::Packed(p) => self.lines(bytes, p.find_iter(bytes).map(|m| m.start()), last),
            Searcher::Automaton(ac) => {
                self.lines(bytes, ac.find_iter(bytes).map(|m| m.start()), last)
            }
        }
    }

    /// [`Scanner::feed`] given the ascending start offsets of the terms found in `bytes`.
    fn lines(&mut self, bytes: &[u8], hits: impl Iterator<Item = usize>, last: bool) {
        let mut hits = hits.peekable();
        let mut escapes = memchr::memchr_iter(b'\\', bytes).peekable();
        // The last line that was not a dictionary line in this piece, and (computed only when
        // a space-indented line follows it) whether it is a /dev/kmsg record.
        let mut anchor: &[u8] = &[];
        let mut anchor_is_kmsg: Option<bool> = Some(self.anchor_is_kmsg);
        let mut start = 0;
        let tail = last.then_some(bytes.len());
        let ends = memchr::memchr_iter(b'\n', bytes).chain(tail);
        for end in ends {
            let line = bytes.get(start..end).unwrap_or_default();
            start = end + 1;
            self.lines += 1;
            let mut candidate = false;
            while hits.next_if(|&p| p < end).is_some() {
                candidate = true;
            }
            while escapes.next_if(|&p| p < end).is_some() {
                candidate = true;
            }
            let raw = line.strip_suffix(b"\r").unwrap_or(line);
            if raw.first() == Some(&b' ')
                && *anchor_is_kmsg.get_or_insert_with(|| parse_kmsg_header(anchor).is_some())
            {
                continue;
            }
            anchor = raw;
            if candidate {
                let (record, is_kmsg) = parse_line(raw, self.lines);
                anchor_is_kmsg = Some(is_kmsg);
                if let Some(r) = record {
                    self.total += 1;
                    self.out.push(r);
                }
            } else {
                anchor_is_kmsg = None;
                // A /dev/kmsg record is never blank (its header has digits).
                if !is_blank(raw) {
                    self.total += 1;
                }
            }
        }
        self.anchor_is_kmsg = anchor_is_kmsg.unwrap_or_else(|| parse_kmsg_header(anchor).is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(r: &[Record]) -> Vec<&str> {
        r.iter().map(|r| r.text.as_str()).collect()
    }

    #[test]
    fn dev_kmsg_records() {
        let input = b"6,1234,5678901,-;i915 0000:00:02.0: MDEV: Registered\n \
SUBSYSTEM=pci\n DEVICE=+pci:0000:00:02.0\n\
3,1235,5679000,-,caller=T1;gvt: fail to alloc high gm space from host\n\
14,1236,5679001,c;user \\x5c path \\xe2\\x9c\\x93 tab\\x09end\n\
plain line\n not-a-dict-after-plain\n";
        let r = parse(input);
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].level, Some(6));
        assert_eq!(r[0].seq, Some(1234));
        assert_eq!(r[0].ts_usec, Some(5_678_901));
        assert_eq!(r[0].text, "i915 0000:00:02.0: MDEV: Registered");
        assert_eq!(r[1].level, Some(3));
        assert_eq!(r[1].line, 4);
        // facility user (1) << 3 | info (6) = 14 → level 6
        assert_eq!(r[2].level, Some(6));
        assert_eq!(r[2].text, "user \\ path ✓ tab\tend");
        // dictionary lines only follow /dev/kmsg records
        assert_eq!(r[3].text, "plain line");
        assert_eq!(r[4].text, " not-a-dict-after-plain");
        assert_eq!(r[4].seq, None);
    }

    #[test]
    fn dmesg_brackets() {
        let r = parse(sample!("dmesg/gvt-linux-21-skl-mdev-registered.txt").as_bytes());
        let reg = r
            .iter()
            .find(|r| r.text.ends_with("MDEV: Registered"))
            .unwrap();
        assert_eq!(reg.ts_usec, Some(2_210_865));
        assert_eq!(reg.text, "i915 0000:00:02.0: MDEV: Registered");
        assert!(r[0].text.starts_with("Command line: BOOT_IMAGE="));
        assert_eq!(r[0].ts_usec, Some(0));
    }

    #[test]
    fn dmesg_short_fraction_and_lost_bracket() {
        let r = parse(sample!("dmesg/gvt-linux-3-golden-hw-state-kbl.txt").as_bytes());
        let fw = r
            .iter()
            .find(|r| r.text.contains("golden_hw_state"))
            .unwrap();
        assert_eq!(fw.ts_usec, Some(2_678_635));
        assert!(fw
            .text
            .starts_with("i915 0000:00:02.0: Direct firmware load"));
        // comment lines stay plain records
        assert!(r[0].text.starts_with("# context:"));
        assert_eq!(r[0].ts_usec, None);

        let r = parse(sample!("dmesg/gvt-linux-74-mdev-added-iommu-group.txt").as_bytes());
        assert_eq!(r[0].ts_usec, Some(578_101_534));
        assert!(r[0].text.starts_with("iommu: Adding device"));
    }

    #[test]
    fn dmesg_t_wall_clock() {
        let r = parse(sample!("dmesg/i915-sriov-dkms-288-guc-tlb-timeout.txt").as_bytes());
        assert!(r[0]
            .text
            .starts_with("i915 0000:00:02.0: [drm] *ERROR* GT0: GUC: TLB invalidation"));
        assert_eq!(r[0].ts_usec, None);
    }

    #[test]
    fn journalctl_localised_and_elided() {
        let r = parse(sample!("dmesg/i915-sriov-dkms-58-enable-guc-7-undocumented.txt").as_bytes());
        assert!(r.iter().any(|r| r.text
            == "i915 0000:00:02.0: [drm] Incompatible option enable_guc=7 - undocumented flag"));
        let r = parse(sample!("dmesg/virtualbox-kvm-21-n100-enable-gvt-with-sriov.txt").as_bytes());
        assert_eq!(r[0].text, "Run /init as init process");
        let r =
            parse(sample!("dmesg/archwiki-intel-graphics-guc-submission-gvt-fail.txt").as_bytes());
        assert!(r
            .iter()
            .any(|r| r.text == "i915: probe of 0000:00:02.0 failed with error -5"));
        // `# journalctl` stays a plain line
        assert_eq!(r[0].text, "# journalctl");
    }

    #[test]
    fn plain_lines_without_timestamps() {
        let r = parse(sample!("dmesg/gvt-linux-225-glk-j4125-unsupported.txt").as_bytes());
        assert_eq!(
            r[0].text,
            "i915 0000:00:02.0: [drm] Unsupported device. GVT-g is disabled"
        );
        assert_eq!((r[0].ts_usec, r[0].level), (None, None));
    }

    #[test]
    fn prefixes_combined() {
        let r = parse(
            b"<6>[    1.5] x\n<3>plain err\nkern  :err   : [  2.000001] y\n\
Jan  2 03:04:05 host kernel: [    3.25] z\n[    4.0] host kernel: w\n\
2023-01-02T03:04:05+0100 myhost kernel: iso\n\xff\xfe bad utf8\n\n   \n",
        );
        let got: Vec<(Option<u8>, Option<u64>, &str)> = r
            .iter()
            .map(|r| (r.level, r.ts_usec, r.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(6), Some(1_500_000), "x"),
                (Some(3), None, "plain err"),
                (Some(3), Some(2_000_001), "y"),
                (None, Some(3_250_000), "z"),
                // short-monotonic journal output is not unwrapped (too ambiguous)
                (None, Some(4_000_000), "host kernel: w"),
                (None, None, "iso"),
                (None, None, "\u{fffd}\u{fffd} bad utf8"),
            ]
        );
        assert_eq!(texts(&r).len(), 7);
        assert_eq!(r[6].line, 7);
    }

    const TERMS: &[&str] = &[
        "gvt:",
        "kvmgt",
        "MDEV: Registered",
        "fail to alloc",
        "x",
        "1",
    ];

    /// `parse_filtered` = `parse`, then keep the records holding a term; same count.
    fn agrees(input: &[u8]) {
        let filter = Filter::new(TERMS).unwrap();
        let all = parse(input);
        let (total, kept) = parse_filtered(input, &filter);
        assert_eq!(total, all.len(), "record count of {input:?}");
        let holds = |r: &&Record| TERMS.iter().any(|t| r.text.contains(t));
        let want: Vec<&Record> = all.iter().filter(holds).collect();
        let got: Vec<&Record> = kept.iter().filter(holds).collect();
        assert_eq!(got, want, "records of {input:?}");
        // Read in pieces of every size: the same records and count.
        for piece in [1, 2, 3, 7, 64] {
            let mut r = Pieces(input, piece);
            let (t, k) = parse_filtered_read(&mut r, &filter, 1 << 20).unwrap();
            assert_eq!((t, &k), (total, &kept), "{input:?} in pieces of {piece}");
        }
    }

    /// A reader that hands out at most `.1` bytes per read.
    struct Pieces<'a>(&'a [u8], usize);

    impl std::io::Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_in_pieces_is_bounded_and_handles_long_lines() {
        let filter = Filter::new(&["needle"]).unwrap();
        let long = format!("{}needle\n", "x".repeat(600 * 1024));
        let (t, k) = parse_filtered_read(&mut long.as_bytes(), &filter, 1 << 20).unwrap();
        assert_eq!((t, k.len()), (1, 1));
        let e = parse_filtered_read(&mut long.as_bytes(), &filter, 1000).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn filtered_agrees_on_real_logs() {
        for text in [
            sample!("dmesg/gvt-linux-21-skl-mdev-registered.txt"),
            sample!("dmesg/gvt-linux-3-golden-hw-state-kbl.txt"),
            sample!("dmesg/gvt-linux-74-mdev-added-iommu-group.txt"),
            sample!("dmesg/i915-sriov-dkms-58-enable-guc-7-undocumented.txt"),
            sample!("dmesg/archwiki-intel-graphics-guc-submission-gvt-fail.txt"),
            sample!("dmesg/gvt-linux-225-glk-j4125-unsupported.txt"),
        ] {
            agrees(text.as_bytes());
        }
        // Dictionary lines, escapes spelling a term, blank and Unicode-blank lines, CRLF.
        agrees(b"6,1,2,-;a gvt: b\n SUBSYSTEM=pci\n DEVICE=+gvt:\n plain\n6,2,3,-;kv\\x6dgt\n\n \x0b\n\xe3\x80\x80\r\n  x1\r\n");
        let filter = Filter::new(&["fail to alloc", "gvt:"]).unwrap();
        let (total, kept) = parse_filtered(b"6,1,2,-;one\n SUB=gvt:\nfail to alloc\n", &filter);
        assert_eq!(total, 2);
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].text.as_str(), kept[0].line), ("fail to alloc", 3));
    }

    #[test]
    fn filter_keeps_lines_of_terms_holding_other_terms() {
        // "kvmgt" is searched for in place of "could not insert 'kvmgt'"; both lines are kept.
        let f = Filter::new(&["could not insert 'kvmgt'", "kvmgt", "gvt:"]).unwrap();
        assert_eq!(f.searched(), 2);
        let (total, kept) =
            parse_filtered(b"a kvmgt b\nmodprobe: could not insert 'kvmgt'\nc\n", &f);
        assert_eq!(total, 3);
        assert_eq!(kept.len(), 2);
        // More terms than the SIMD searcher takes: the automaton, same answers.
        let many: Vec<String> = (0..100).map(|i| format!("term{i:03}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let f = Filter::new(&many).unwrap();
        assert!(!f.is_packed());
        let (total, kept) = parse_filtered(b"x term042 y\nnothing\nterm099\n", &f);
        assert_eq!((total, kept.len()), (3, 2));
    }

    #[test]
    fn filter_refuses_terms_it_cannot_find_in_raw_lines() {
        assert!(Filter::new(&["ok term"]).is_ok());
        for bad in ["", "back\\slash", "tab\t", "caf\u{e9}"] {
            let e = Filter::new(&[bad]).unwrap_err();
            assert!(e.contains("printable ASCII"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn filtered_agrees_log_like(s in "([0-9]{1,3}|,|;|\\[|\\]|\\.|<|>| |\n|\r|kernel: |:|\\\\x[0-9a-f]{0,2}|-|c|gvt:|kvm|gt|x|1|\u{3000}|\u{b}){0,80}") {
            agrees(s.as_bytes());
        }

        #[test]
        fn never_panics_bytes(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&b);
        }

        #[test]
        fn never_panics_str(s in ".{0,300}") {
            let _ = parse(s.as_bytes());
        }

        #[test]
        fn never_panics_log_like(s in "([0-9]{1,3}|,|;|\\[|\\]|\\.|<|>| |\n|kernel: |:|\\\\x[0-9a-f]{0,2}|-|c|kern|info){0,80}") {
            for r in parse(s.as_bytes()) {
                prop_assert!(r.line >= 1);
            }
        }
    }
}
