//! Redaction for `gvtg report`, after sos's cleaner classes (docs/report.md): host and domain
//! names, IPv4/IPv6 addresses (not loopback), MAC addresses, serial numbers and the machine id,
//! user names (`/home/NAME`, human accounts in passwd/group) and libvirt secrets in domain XML.
//! Replacements are consistent within one report: the same value always becomes the same token.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::host::HostRoot;

/// The classes applied, as listed in the manifest.
pub const CLASSES: &[&str] = &[
    "hostname",
    "domain",
    "ipv4",
    "ipv6",
    "mac",
    "serial",
    "machine-id",
    "username",
    "libvirt-secret",
];

// The patterns are ASCII: gvtg's `regex` has no Unicode data (Cargo.toml), so word boundaries
// are `(?-u:\b)` (an ASCII boundary redacts at least what a Unicode one did), whitespace
// `(?-u:\s)`, and case-insensitive words `(?i-u:…)` (ASCII letters fold, any other character
// matches itself).
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})(?-u:\b)").unwrap()
});
static IPV6: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[0-9A-Fa-f:]{2,}").unwrap());
static MAC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?-u:\b)(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?-u:\b)").unwrap()
});
static SERIAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"((?-u:\b)(?i-u:serial(?:[ _-]?(?:number|no\.?|num))?)(?-u:\s)*[:=](?-u:\s)*['\x22]?)([A-Za-z0-9._/-]{3,})",
    )
    .unwrap()
});
static XML_CONTENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)(<((?i-u:secret|usage|serial|passphrase))(?-u:\b)[^>/]*>)([^<]*)(</)").unwrap()
});
static XML_ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?-u:\b)((?i-u:passwd|password|username|secret|passphrase))((?-u:\s)*=(?-u:\s)*)('[^']*'|"[^"]*")"#)
        .unwrap()
});
static XML_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<((?i-u:secret|auth|usage))(?-u:\b)[^>]*>").unwrap());
static ANY_ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z_:-]+)((?-u:\s)*=(?-u:\s)*)('[^']*'|"[^"]*")"#).unwrap()
});
static HOME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"/home/([A-Za-z0-9._][A-Za-z0-9._-]*)").unwrap());

/// Consistent replacements for one report.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Literal names (host, domain, user) → token; matched case-insensitively at word bounds.
    names: BTreeMap<String, String>,
    users: BTreeMap<String, String>,
    keep_users: BTreeSet<String>,
    machine_id: Option<String>,
    ipv4: BTreeMap<Ipv4Addr, String>,
    ipv6: BTreeMap<Ipv6Addr, String>,
    mac: BTreeMap<String, String>,
    serial: BTreeMap<String, String>,
    name_re: Option<Regex>,
    hosts: usize,
    domains: usize,
}

fn is_human(uid: u32) -> bool {
    (1000..60000).contains(&uid)
}

impl Redactor {
    /// Learns the secrets of a host: its names, machine id, human accounts, the QEMU user
    /// (kept: the libvirt checks judge it).
    pub fn for_host(src: &HostRoot) -> Redactor {
        let mut r = Redactor::default();
        r.keep_users
            .extend(["root", "qemu", "libvirt-qemu", "nobody"].map(String::from));
        if let Some(t) = src.read("etc/libvirt/qemu.conf").into_ok() {
            for l in t.lines() {
                let l = l.trim();
                if let Some(v) = l.strip_prefix("user").map(str::trim_start) {
                    if let Some(v) = v.strip_prefix('=') {
                        let v = v.trim().trim_matches('"').trim_start_matches('+');
                        r.keep_users.insert(v.to_string());
                    }
                }
            }
        }
        // A host named after its distribution (Debian's installer suggests `debian`) identifies
        // nothing, and replacing that word everywhere would garble the kernel log and configs.
        let distro: Vec<String> = src
            .read("etc/os-release")
            .into_ok()
            .map(|t| crate::host::snapshot::parse_os_release(&t))
            .map(|o| {
                ["ID", "ID_LIKE"]
                    .iter()
                    .filter_map(|k| o.get(*k))
                    .flat_map(|v| v.split_whitespace().map(str::to_ascii_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        for rel in ["etc/hostname", "proc/sys/kernel/hostname"] {
            if let Some(h) = src.read_attr(rel).into_ok() {
                if !distro.contains(&h.to_ascii_lowercase()) {
                    r.add_host(&h);
                }
            }
        }
        if let Some(id) = src.read_attr("etc/machine-id").into_ok() {
            if id.len() >= 16 {
                r.machine_id = Some(id);
            }
        }
        if let Some(t) = src.read("etc/passwd").into_ok() {
            for l in t.lines() {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() >= 3 {
                    let uid = f[2].parse().unwrap_or(0);
                    if is_human(uid) && !r.keep_users.contains(f[0]) {
                        r.user_token(f[0]);
                    }
                }
            }
        }
        r.rebuild();
        r
    }

    /// Adds a host name (and its domain) to redact.
    pub fn add_host(&mut self, h: &str) {
        let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
        if h.len() < 2
            || h == "localhost"
            || h.starts_with("localhost.")
            || self.names.contains_key(&h)
        {
            return;
        }
        self.hosts += 1;
        let token = format!("host-{}", self.hosts);
        if let Some((short, domain)) = h.split_once('.') {
            self.names.entry(short.to_string()).or_insert(token.clone());
            if !self.names.contains_key(domain) {
                self.domains += 1;
                self.names.insert(
                    domain.to_string(),
                    format!("domain-{}.invalid", self.domains),
                );
            }
            let d = self.names[domain].clone();
            self.names.insert(h.clone(), format!("{token}.{d}"));
        } else {
            self.names.insert(h, token);
        }
        self.rebuild();
    }

    /// The token of the first host name (for the archive's file name).
    pub fn host_token(&self) -> &'static str {
        "host-1"
    }

    fn user_token(&mut self, name: &str) -> String {
        if let Some(t) = self.users.get(name) {
            return t.clone();
        }
        let t = format!("user-{}", self.users.len() + 1);
        self.users.insert(name.to_string(), t.clone());
        t
    }

    fn rebuild(&mut self) {
        let mut words: Vec<&String> = self
            .names
            .keys()
            .chain(self.users.keys().filter(|u| u.len() >= 3))
            .collect();
        // Longest first, so `box.example.com` wins over `box`.
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        self.name_re = if words.is_empty() {
            None
        } else {
            let alt: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
            Regex::new(&format!(
                r"(^|[^A-Za-z0-9_-])((?i-u:{}))($|[^A-Za-z0-9_-])",
                alt.join("|")
            ))
            .ok()
        };
    }

    /// Redacts free text (configuration files, the kernel log, the command line).
    pub fn text(&mut self, s: &str) -> String {
        let mut s = s.to_string();
        if let Some(id) = &self.machine_id {
            s = s.replace(id.as_str(), "MACHINE-ID");
        }
        // Serial numbers.
        s = SERIAL
            .replace_all(&s, |c: &Captures| {
                let n = self.serial.len() + 1;
                let t = self
                    .serial
                    .entry(c[2].to_string())
                    .or_insert_with(|| format!("SERIAL-{n}"))
                    .clone();
                format!("{}{t}", &c[1])
            })
            .into_owned();
        // /home/NAME
        let mut new_users = Vec::new();
        s = HOME
            .replace_all(&s, |c: &Captures| {
                let name = &c[1];
                if self.keep_users.contains(name) {
                    return c[0].to_string();
                }
                if !self.users.contains_key(name) {
                    new_users.push(name.to_string());
                }
                let t = self.user_token(name);
                format!("/home/{t}")
            })
            .into_owned();
        if !new_users.is_empty() {
            self.rebuild();
        }
        // Host, domain and user names.
        if let Some(re) = &self.name_re {
            let map: BTreeMap<String, String> = self
                .names
                .iter()
                .chain(self.users.iter())
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            // Replace until stable (adjacent matches share a boundary character).
            for _ in 0..4 {
                let next = re
                    .replace_all(&s, |c: &Captures| {
                        let t = map
                            .get(&c[2].to_ascii_lowercase())
                            .cloned()
                            .unwrap_or_default();
                        format!("{}{t}{}", &c[1], &c[3])
                    })
                    .into_owned();
                if next == s {
                    break;
                }
                s = next;
            }
        }
        let src = s.clone();
        s = MAC
            .replace_all(&src, |c: &Captures| {
                // Part of a longer colon-hex run (a key id, a fingerprint): not a MAC.
                if joined(&src, c, &[':', '-']) {
                    return c[0].to_string();
                }
                let k = c[0].to_ascii_lowercase().replace('-', ":");
                let n = self.mac.len() + 1;
                self.mac
                    .entry(k)
                    .or_insert_with(|| format!("02:00:00:00:{:02x}:{:02x}", n >> 8, n & 0xff))
                    .clone()
            })
            .into_owned();
        s = IPV6
            .replace_all(&s, |c: &Captures| {
                let m = &c[0];
                let Ok(a) = m.parse::<Ipv6Addr>() else {
                    return m.to_string();
                };
                if !(m.contains("::") || m.matches(':').count() == 7)
                    || a.is_loopback()
                    || a.is_unspecified()
                {
                    return m.to_string();
                }
                let n = self.ipv6.len() + 1;
                self.ipv6
                    .entry(a)
                    .or_insert_with(|| format!("2001:db8::{n:x}"))
                    .clone()
            })
            .into_owned();
        let src = s.clone();
        s = IPV4
            .replace_all(&src, |c: &Captures| {
                let m = &c[0];
                // `1.2.3.4.5` is a version, not an address.
                if joined(&src, c, &['.']) {
                    return m.to_string();
                }
                let Ok(a) = m.parse::<Ipv4Addr>() else {
                    return m.to_string();
                };
                if a.is_loopback() || a.is_unspecified() || a.is_broadcast() {
                    return m.to_string();
                }
                let n = self.ipv4.len() + 1;
                self.ipv4
                    .entry(a)
                    .or_insert_with(|| format!("192.0.2.{}", n.min(254)))
                    .clone()
            })
            .into_owned();
        s
    }

    /// Redacts a libvirt domain XML: secrets and passwords first, then the free-text classes.
    pub fn xml(&mut self, s: &str) -> String {
        let s = XML_CONTENT.replace_all(s, "${1}REDACTED${4}");
        let s = XML_TAG.replace_all(&s, |c: &Captures| {
            ANY_ATTR
                .replace_all(&c[0], |a: &Captures| {
                    if a[1].eq_ignore_ascii_case("type") {
                        a[0].to_string()
                    } else {
                        format!("{}{}'REDACTED'", &a[1], &a[2])
                    }
                })
                .into_owned()
        });
        let s = XML_ATTR.replace_all(&s, "${1}${2}'REDACTED'");
        self.text(&s)
    }

    /// Redacts `/etc/passwd`: system accounts (uid < 1000), `nobody` and the QEMU user are kept;
    /// human accounts become `user-N` with no details.
    pub fn passwd(&mut self, s: &str) -> String {
        let mut out = String::new();
        for l in s.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() == 7 {
                let uid: u32 = f[2].parse().unwrap_or(0);
                if is_human(uid) && !self.keep_users.contains(f[0]) {
                    let t = self.user_token(f[0]);
                    out.push_str(&format!("{t}:x:{}:{}::/home/{t}:{}\n", f[2], f[3], f[6]));
                    continue;
                }
            }
            out.push_str(&self.text(l));
            out.push('\n');
        }
        self.rebuild();
        out
    }

    /// Redacts `/etc/group`: human members (and their private groups) become `user-N`.
    pub fn group(&mut self, s: &str) -> String {
        let mut out = String::new();
        for l in s.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() == 4 {
                let map = |n: &str| self.users.get(n).cloned().unwrap_or_else(|| n.to_string());
                let name = map(f[0]);
                let members: Vec<String> =
                    f[3].split(',').filter(|m| !m.is_empty()).map(map).collect();
                out.push_str(&format!("{name}:x:{}:{}\n", f[2], members.join(",")));
            } else {
                out.push_str(&self.text(l));
                out.push('\n');
            }
        }
        out
    }
}

/// Whether the match continues into its neighbours through one of `seps` followed by an
/// alphanumeric character (so it is part of a longer token).
fn joined(s: &str, c: &Captures, seps: &[char]) -> bool {
    let m = c.get(0).expect("match");
    let before = s[..m.start()].chars().rev().take(2).collect::<Vec<_>>();
    let after = s[m.end()..].chars().take(2).collect::<Vec<_>>();
    let cont = |v: &[char]| {
        v.first().is_some_and(|x| seps.contains(x))
            && v.get(1).is_some_and(|x| x.is_ascii_alphanumeric())
    };
    cont(&before) || cont(&after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_replaced_consistently() {
        let mut r = Redactor::default();
        r.add_host("box.example.com");
        let t = r.text(
            "box.example.com at 192.168.1.7 fe80::1:2 aa:bb:cc:dd:ee:ff; BOX again 192.168.1.7 \
             lo 127.0.0.1 pci 0000:00:02.0 /home/alice/x serial=ABC123 example.com",
        );
        for bad in [
            "box",
            "example",
            "192.168.1.7",
            "fe80::1:2",
            "aa:bb",
            "alice",
            "ABC123",
        ] {
            assert!(!t.to_lowercase().contains(bad), "{bad} in {t}");
        }
        assert!(t.contains("127.0.0.1") && t.contains("0000:00:02.0"), "{t}");
        let k = r.text("sig_key 66:F5:4E:15:66:A0:43:CC:30 v1.2.3.4.5 mac 3c:22:fb:12:34:56.");
        assert!(
            k.contains("66:F5:4E:15:66:A0:43:CC:30") && k.contains("1.2.3.4.5"),
            "{k}"
        );
        assert!(!k.contains("3c:22"), "{k}");
        assert_eq!(t.matches("192.0.2.1 ").count(), 2, "{t}");
        assert!(t.contains("host-1.domain-1.invalid at"), "{t}");
    }

    /// Every pattern compiles without Unicode data (a `LazyLock` would panic at first use).
    #[test]
    fn patterns_compile() {
        for re in [
            &IPV4,
            &IPV6,
            &MAC,
            &SERIAL,
            &XML_CONTENT,
            &XML_ATTR,
            &XML_TAG,
            &ANY_ATTR,
            &HOME,
        ] {
            LazyLock::force(re);
        }
    }

    /// Names that are not ASCII are still redacted, their ASCII letters in any case.
    #[test]
    fn non_ascii_names() {
        let mut r = Redactor::default();
        r.add_host("bücher-box.example.org");
        assert!(r.name_re.is_some());
        let t = r.text("bücher-box up; Bücher-Box down; EXAMPLE.ORG; Serial Number: XJ-4471");
        for bad in ["bücher", "Bücher", "EXAMPLE", "XJ-4471"] {
            assert!(!t.contains(bad), "{bad} in {t}");
        }
    }

    #[test]
    fn xml_secrets() {
        let mut r = Redactor::default();
        let x = r.xml(
            "<graphics type='vnc' passwd='hunter2'/><auth username='bob'><secret type='ceph' uuid='1234-5'/></auth><secret>c2VjcmV0</secret>",
        );
        for bad in ["hunter2", "bob", "1234-5", "c2VjcmV0"] {
            assert!(!x.contains(bad), "{bad} in {x}");
        }
        assert!(x.contains("type='ceph'"));
    }

    #[test]
    fn passwd_keeps_system_accounts() {
        let mut r = Redactor::default();
        r.keep_users.insert("libvirt-qemu".into());
        let p = r.passwd("root:x:0:0:root:/root:/bin/bash\nlibvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\nalice:x:1000:1000:Alice Smith,,,:/home/alice:/bin/bash\n");
        assert!(p.contains("root:x:0:0") && p.contains("libvirt-qemu:x:64055"));
        assert!(!p.contains("alice") && !p.contains("Alice") && p.contains("user-1:x:1000"));
        let g = r.group("kvm:x:108:alice,libvirt-qemu\nalice:x:1000:\n");
        assert_eq!(g, "kvm:x:108:user-1,libvirt-qemu\nuser-1:x:1000:\n");
    }
}
