//! `--json`: a versioned, documented schema (docs/json-schema.md). Serialize-only types; ids
//! appear verbatim. Any change to the shape bumps `schema_version` and gets a CHANGELOG entry.

use std::io::Write;

use serde::Serialize;

use super::{HostFacts, Report};
use crate::checks::{Counts, Evidence, Status};

/// Current JSON schema version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Tool {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct CheckJson<'a> {
    id: &'a str,
    title: &'a str,
    status: Status,
    summary: &'a str,
    evidence: &'a [Evidence],
    remedy: Option<&'a str>,
}

#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    counts: Counts,
    exit_code: i32,
}

#[derive(Serialize)]
struct Doc<'a> {
    schema_version: u32,
    tool: Tool,
    host: &'a HostFacts,
    checks: Vec<CheckJson<'a>>,
    summary: Summary,
}

/// Writes the report as one pretty-printed JSON document.
pub fn render(r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let doc = Doc {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "gvtg",
            version: env!("CARGO_PKG_VERSION"),
        },
        host: &r.host,
        checks: r
            .results
            .iter()
            .map(|(c, o)| CheckJson {
                id: c.id,
                title: c.title,
                status: o.status,
                summary: &o.summary,
                evidence: &o.evidence,
                remedy: o.remedy.as_deref(),
            })
            .collect(),
        summary: Summary {
            counts: r.counts,
            exit_code: r.exit_code,
        },
    };
    write_pretty(out, &doc)
}

/// Writes `value` as pretty-printed JSON and a newline, in one `write_all`: serialised into
/// memory first, where serde_json's many small writes are inlined appends instead of calls
/// through `out` (a sixth of the instructions of `gvtg vgpu types --json` on a large host).
pub fn write_pretty(out: &mut dyn Write, value: &impl Serialize) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    out.write_all(&text)
}

#[derive(Serialize)]
struct ListingDoc<'a> {
    schema_version: u32,
    tool: Tool,
    host: &'a HostFacts,
    candidates: &'a [crate::checks::passthrough::Candidate],
}

/// Writes the passthrough candidate listing (`gvtg doctor --passthrough --json` without a
/// device) as one pretty-printed JSON document (docs/json-schema.md).
pub fn render_listing(
    host: &HostFacts,
    candidates: &[crate::checks::passthrough::Candidate],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let doc = ListingDoc {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "gvtg",
            version: env!("CARGO_PKG_VERSION"),
        },
        host,
        candidates,
    };
    write_pretty(out, &doc)
}
