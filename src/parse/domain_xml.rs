//! libvirt domain XML for an mdev vGPU: the `<hostdev type='mdev'>` element, and adding it (plus
//! the display parts) to an existing domain without touching anything else.
//!
//! Edits are insertions at byte offsets that `roxmltree` reports, so every byte of the input that
//! is not part of an insertion comes out unchanged (comments, attribute quoting, whitespace).
//!
//! Display (libvirt formatdomain, "Host device assignment" and "Graphical framebuffers"):
//! `display='on'` needs libvirt ≥ 4.6.0, `ramfb='on'` ≥ 5.10.0; the guest's framebuffer is
//! shown through a local SPICE (or egl-headless) display with OpenGL. GVT-g also wants QEMU's
//! `x-igd-opregion=on` on the device. libvirt ≥ 8.1 passes `-device` as JSON, so the old
//! `<qemu:commandline>` lines `-set device.hostdev0.x-igd-opregion=on` no longer apply; the
//! replacement is `<qemu:override>` (libvirt ≥ 8.2.0), which addresses the device by alias. We
//! give the hostdev a user alias (`ua-gvtg-UUID`) so the override does not depend on libvirt
//! numbering it `hostdev0`.

/// libvirt's QEMU namespace (`xmlns:qemu`).
pub const QEMU_NS: &str = "http://libvirt.org/schemas/domain/qemu/1.0";
/// Largest domain XML we read.
pub const MAX_XML: usize = 10 * 1024 * 1024;
/// Deepest element nesting we accept (a real domain is < 10 deep).
pub const MAX_DEPTH: usize = 256;

/// The user alias we give the hostdev (libvirt requires the `ua-` prefix for user aliases).
pub fn alias(uuid: &str) -> String {
    format!("ua-gvtg-{uuid}")
}

/// The `<hostdev>` element for mdev `uuid`, each line prefixed with `indent` (the first too).
pub fn hostdev_element(uuid: &str, display: bool, indent: &str, step: &str) -> String {
    let disp = if display {
        " display='on' ramfb='on'"
    } else {
        " display='off'"
    };
    format!(
        "{indent}<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci'{disp}>\n\
         {indent}{step}<source>\n\
         {indent}{step}{step}<address uuid='{uuid}'/>\n\
         {indent}{step}</source>\n\
         {indent}{step}<alias name='{}'/>\n\
         {indent}</hostdev>",
        alias(uuid)
    )
}

/// Refuses input that is not a plain domain document: too large, a DTD (entities can expand
/// without bound), or nested deeper than [`MAX_DEPTH`].
pub fn check_safe(text: &str) -> Result<(), String> {
    if text.len() > MAX_XML {
        return Err(format!(
            "the XML is {} bytes; more than the {} MB a domain definition can reasonably be",
            text.len(),
            MAX_XML / 1024 / 1024
        ));
    }
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(
            "the XML has a DOCTYPE or entity declarations; libvirt never writes them, and entities can expand without bound, so it is refused"
                .into(),
        );
    }
    Ok(())
}

/// Parses a domain XML with the hostile-input guard ([`check_safe`], no DTD, depth limit).
pub fn parse(text: &str) -> Result<roxmltree::Document<'_>, String> {
    check_safe(text)?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1_000_000,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts)
        .map_err(|e| format!("parsing the domain XML: {e}"))?;
    // Depth with an explicit stack: the check itself must not recurse on hostile input.
    let mut stack = vec![(doc.root(), 0usize)];
    while let Some((n, d)) = stack.pop() {
        if d > MAX_DEPTH {
            return Err(format!(
                "the XML nests elements deeper than {MAX_DEPTH} levels; refused"
            ));
        }
        stack.extend(n.children().filter(|c| c.is_element()).map(|c| (c, d + 1)));
    }
    Ok(doc)
}

/// The whitespace at the start of the line holding byte `pos`.
fn line_indent(text: &str, pos: usize) -> &str {
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[start..];
    let end = line
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(line.len());
    &line[..end]
}

/// Where the end tag of element `n` starts (None for a self-closing element).
fn end_tag_start(text: &str, n: roxmltree::Node) -> Option<usize> {
    let r = n.range();
    let slice = &text[r.clone()];
    if slice.ends_with("/>") {
        return None;
    }
    slice.rfind("</").map(|i| r.start + i)
}

/// One insertion: byte offset and text.
type Insert = (usize, String);

/// The result of adding a vGPU to a domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Edited {
    /// The new domain XML.
    pub xml: String,
    /// Things the user should know (old `-set device.hostdev0` lines, GL and listen caveats).
    pub notes: Vec<String>,
}

/// Adds the hostdev for `uuid` to `domain` (and with `display`, SPICE GL and the
/// `<qemu:override>` for `x-igd-opregion`). Everything else stays byte-identical.
pub fn add_hostdev(domain: &str, uuid: &str, display: bool) -> Result<Edited, String> {
    let doc = parse(domain)?;
    let root = doc.root_element();
    if root.tag_name().name() != "domain" || root.tag_name().namespace().is_some() {
        return Err(format!(
            "the root element is <{}>, not a libvirt <domain>",
            root.tag_name().name()
        ));
    }
    let already = root.descendants().any(|n| {
        n.has_tag_name("address")
            && n.attribute("uuid")
                .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
            && n.ancestors().any(|a| a.has_tag_name("hostdev"))
    });
    if already {
        return Err(format!("the domain already has a hostdev for mdev {uuid}"));
    }
    let mut notes = Vec::new();
    let mut ins: Vec<Insert> = Vec::new();
    let domain_end = end_tag_start(domain, root).ok_or("the <domain> element is empty")?;
    let step = {
        let first = root.children().find(|c| c.is_element());
        match first {
            Some(c) => line_indent(domain, c.range().start).to_string(),
            None => "  ".to_string(),
        }
    };
    let step = if step.is_empty() { "  ".into() } else { step };

    let devices = root.children().find(|c| c.has_tag_name("devices"));
    let dev_indent = format!("{step}{step}");
    let mut device_text = hostdev_element(uuid, display, &dev_indent, &step);
    if display {
        let spice = root
            .descendants()
            .find(|n| n.has_tag_name("graphics") && n.attribute("type") == Some("spice"));
        match spice {
            Some(g) if g.children().any(|c| c.has_tag_name("gl")) => {
                if g.children()
                    .find(|c| c.has_tag_name("gl"))
                    .and_then(|c| c.attribute("enable"))
                    != Some("yes")
                {
                    notes.push(
                        "the SPICE <graphics> has <gl enable='no'>: set it to 'yes' for the vGPU's display"
                            .into(),
                    );
                }
            }
            Some(g) => {
                let gl = format!("{dev_indent}{step}<gl enable='yes'/>\n");
                match end_tag_start(domain, g) {
                    Some(p) => {
                        let at = domain[..p].rfind('\n').map_or(p, |i| i + 1);
                        let at = if domain[at..p].trim().is_empty() {
                            at
                        } else {
                            p
                        };
                        if at == p {
                            ins.push((p, format!("\n{}", gl.trim_end_matches('\n'))));
                        } else {
                            ins.push((at, gl));
                        }
                    }
                    None => {
                        // <graphics .../>: replace the "/>" by "> <gl/> </graphics>".
                        let end = g.range().end;
                        ins.push((end - 2, format!(">\n{gl}{dev_indent}</graphics")));
                        ins.push((end - 2, String::new()));
                        notes.push(
                            "converted the self-closing SPICE <graphics/> to hold <gl>".into(),
                        );
                    }
                }
                if g.children()
                    .any(|c| c.has_tag_name("listen") && c.attribute("type") != Some("none"))
                    || g.attribute("listen").is_some()
                    || g.attribute("port").is_some()
                {
                    notes.push(
                        "SPICE with OpenGL only works for local clients: libvirt wants <listen type='none'/> on that <graphics>"
                            .into(),
                    );
                }
            }
            None => {
                device_text.push_str(&format!(
                    "\n{dev_indent}<graphics type='spice'>\n{dev_indent}{step}<listen type='none'/>\n{dev_indent}{step}<gl enable='yes'/>\n{dev_indent}</graphics>"
                ));
            }
        }
        if domain.contains("device.hostdev0.") {
            notes.push(
                "the domain has <qemu:commandline> '-set device.hostdev0...' lines: libvirt ≥ 8.1 passes -device as JSON and rejects them; remove them (the <qemu:override> added here replaces them, libvirt ≥ 8.2.0)"
                    .into(),
            );
        }
    }
    match devices {
        Some(d) => match end_tag_start(domain, d) {
            Some(p) => {
                let at = domain[..p].rfind('\n').map_or(p, |i| i + 1);
                if domain[at..p].trim().is_empty() {
                    ins.push((at, format!("{device_text}\n")));
                } else {
                    ins.push((p, format!("\n{device_text}\n{step}")));
                }
            }
            None => {
                let end = d.range().end;
                ins.push((end - 2, format!(">\n{device_text}\n{step}</devices")));
                ins.push((end - 2, String::new()));
            }
        },
        None => ins.push((
            line_start_if_blank(domain, domain_end),
            format!("{step}<devices>\n{device_text}\n{step}</devices>\n"),
        )),
    }

    if display {
        let prefix = root
            .namespaces()
            .find(|ns| ns.uri() == QEMU_NS)
            .map(|ns| ns.name().map(str::to_string));
        let prefix = match prefix {
            Some(Some(p)) => p,
            Some(None) => {
                return Err(
                    "the domain binds the QEMU namespace as the default namespace; bind it to a prefix (xmlns:qemu) first"
                        .into(),
                )
            }
            None => {
                if root.namespaces().any(|ns| ns.name() == Some("qemu")) {
                    return Err(
                        "the domain binds the prefix 'qemu' to another namespace; refusing to guess"
                            .into(),
                    );
                }
                ins.push((
                    root.range().start + "<domain".len(),
                    format!(" xmlns:qemu='{QEMU_NS}'"),
                ));
                "qemu".to_string()
            }
        };
        let q = |n: &str| format!("{prefix}:{n}");
        let dev = format!(
            "{step}{step}<{d} alias='{a}'>\n{step}{step}{step}<{f}>\n{step}{step}{step}{step}<{p} name='x-igd-opregion' type='bool' value='true'/>\n{step}{step}{step}</{f}>\n{step}{step}</{d}>\n",
            d = q("device"),
            f = q("frontend"),
            p = q("property"),
            a = alias(uuid),
        );
        let existing = root.children().find(|c| {
            c.tag_name().name() == "override" && c.tag_name().namespace() == Some(QEMU_NS)
        });
        match existing.and_then(|o| end_tag_start(domain, o)) {
            Some(p) => ins.push((line_start_if_blank(domain, p), dev)),
            None if existing.is_some() => {
                return Err(
                    "the domain has an empty self-closing <qemu:override/>; remove it first".into(),
                )
            }
            None => ins.push((
                line_start_if_blank(domain, domain_end),
                format!("{step}<{o}>\n{dev}{step}</{o}>\n", o = q("override")),
            )),
        }
    }

    // Apply from the end so earlier offsets stay valid. An empty insertion marks a one-byte
    // deletion (the "/" of a self-closing tag we opened up); it is pushed after the insertion at
    // the same offset, so (stable sort, reverse order) the "/" goes first and the text lands
    // before the ">".
    ins.sort_by_key(|(p, _)| *p);
    let mut out = domain.to_string();
    for (p, t) in ins.into_iter().rev() {
        if t.is_empty() {
            out.remove(p);
        } else {
            out.insert_str(p, &t);
        }
    }
    Ok(Edited { xml: out, notes })
}

/// The start of the line holding `pos` when only whitespace precedes `pos` on it, else `pos`.
fn line_start_if_blank(text: &str, pos: usize) -> usize {
    let at = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    if text[at..pos].trim().is_empty() {
        at
    } else {
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "a297db4a-f4c2-11e6-90f6-d3b88d6c9525";
    const MINI: &str = "<domain type='kvm'>\n  <name>t</name>\n  <!-- keep -->\n  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n  </devices>\n</domain>\n";

    #[test]
    fn element() {
        let e = hostdev_element(U, true, "", "  ");
        assert!(e.starts_with("<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci' display='on' ramfb='on'>"));
        assert!(e.contains(&format!("<address uuid='{U}'/>")));
        roxmltree::Document::parse(&e).unwrap();
    }

    #[test]
    fn insertion_keeps_everything_else() {
        let e = add_hostdev(MINI, U, false).unwrap();
        assert!(e.xml.starts_with(
            "<domain type='kvm'>\n  <name>t</name>\n  <!-- keep -->\n  <devices>\n    <emulator>"
        ));
        assert!(e.xml.contains("    <hostdev mode='subsystem' type='mdev'"));
        assert!(e.xml.ends_with("    </hostdev>\n  </devices>\n</domain>\n"));
        // Removing the inserted lines gives back the input.
        let start = e.xml.find("    <hostdev").unwrap();
        let end = e.xml.find("</hostdev>\n").unwrap() + "</hostdev>\n".len();
        assert_eq!(format!("{}{}", &e.xml[..start], &e.xml[end..]), MINI);
        assert!(add_hostdev(&e.xml, U, false)
            .unwrap_err()
            .contains("already"));
    }

    #[test]
    fn display_adds_namespace_graphics_and_override() {
        let e = add_hostdev(MINI, U, true).unwrap();
        let doc = roxmltree::Document::parse(&e.xml).unwrap();
        let root = doc.root_element();
        assert!(root.namespaces().any(|n| n.uri() == QEMU_NS));
        assert!(root.descendants().any(|n| n.has_tag_name("gl")));
        let p = root
            .descendants()
            .find(|n| n.tag_name().name() == "property")
            .unwrap();
        assert_eq!(p.attribute("name"), Some("x-igd-opregion"));
        let dev = p
            .ancestors()
            .find(|n| n.tag_name().name() == "device")
            .unwrap();
        assert_eq!(dev.attribute("alias"), Some(alias(U).as_str()));
    }

    #[test]
    fn self_closing_parts_are_opened() {
        let x = "<domain type='kvm'><name>t</name><devices><graphics type='spice' autoport='yes'/></devices></domain>";
        let e = add_hostdev(x, U, true).unwrap();
        let doc = roxmltree::Document::parse(&e.xml).unwrap();
        let g = doc
            .descendants()
            .find(|n| n.has_tag_name("graphics"))
            .unwrap();
        assert_eq!(g.attribute("autoport"), Some("yes"));
        assert!(g.children().any(|c| c.has_tag_name("gl")));
        let x = "<domain type='kvm'><name>t</name><devices/></domain>";
        let e = add_hostdev(x, U, false).unwrap();
        let doc = roxmltree::Document::parse(&e.xml).unwrap();
        assert!(doc.descendants().any(|n| n.has_tag_name("hostdev")));
    }

    #[test]
    fn hostile_xml_is_refused() {
        let bomb = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaa'>]><domain>&a;</domain>";
        assert!(add_hostdev(bomb, U, false).unwrap_err().contains("DOCTYPE"));
        let deep = format!(
            "<domain>{}{}</domain>",
            "<a>".repeat(300),
            "</a>".repeat(300)
        );
        assert!(add_hostdev(&deep, U, false).unwrap_err().contains("deeper"));
        let big = format!("<domain>{}</domain>", " ".repeat(MAX_XML));
        assert!(add_hostdev(&big, U, false).unwrap_err().contains("MB"));
        assert!(add_hostdev("<network/>", U, false)
            .unwrap_err()
            .contains("not a libvirt"));
        assert!(add_hostdev("<domain", U, false)
            .unwrap_err()
            .contains("parsing"));
    }
}
