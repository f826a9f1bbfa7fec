//! Writes a large synthetic host tree for benchmarks (docs/large-tree.md).
//!
//! ```text
//! cargo run --release --example gen_large_tree -- OUT [--scale K] [--groups N] [--parents N]
//!     [--types N] [--mdevs N] [--kmsg-bytes N] [--modules N] [--seed N] [--base DIR]
//! ```
//!
//! Defaults are issue #6's sizes (256 IOMMU groups, 64 mdev parents × 8 types, 2,000 mdevs, a
//! 4 MiB kernel log, 6,000 modules), built on `fixtures/bdw-healthy/root`. `--scale K`
//! multiplies every count; explicit counts apply after it. The same arguments always give the
//! same tree. Prints the counts as `key=value` lines.

#[path = "../benches/common/large_tree.rs"]
mod large_tree;

use std::path::PathBuf;
use std::process::ExitCode;

use large_tree::Spec;

const USAGE: &str = "usage: gen_large_tree OUT [--scale K] [--groups N] [--parents N] [--types N] \
[--mdevs N] [--kmsg-bytes N] [--modules N] [--seed N] [--base DIR]";

fn parse() -> Result<(PathBuf, PathBuf, Spec), String> {
    let mut out = None;
    let mut base = large_tree::default_base();
    let mut scale = 1;
    let mut set: Vec<(String, u64)> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => return Err(USAGE.into()),
            "--base" => base = PathBuf::from(args.next().ok_or("--base needs a directory")?),
            flag if flag.starts_with("--") => {
                let v = args
                    .next()
                    .ok_or_else(|| format!("{flag} needs a number"))?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("{flag} {v:?}: not a non-negative integer"))?;
                if flag == "--scale" {
                    scale = usize::try_from(n)
                        .map_err(|_| "--scale is too large")?
                        .max(1);
                } else {
                    set.push((flag.to_string(), n));
                }
            }
            _ if out.is_none() => out = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a:?}\n{USAGE}")),
        }
    }
    let mut spec = Spec::ISSUE6.scaled(scale);
    for (flag, n) in set {
        let u = usize::try_from(n).map_err(|_| format!("{flag} is too large"))?;
        match flag.as_str() {
            "--groups" => spec.groups = u,
            "--parents" => spec.parents = u,
            "--types" => spec.types = u,
            "--mdevs" => spec.mdevs = u,
            "--kmsg-bytes" => spec.kmsg_bytes = u,
            "--modules" => spec.modules = u,
            "--seed" => spec.seed = n,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok((out.ok_or(USAGE)?, base, spec))
}

fn main() -> ExitCode {
    let (out, base, spec) = match parse() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("gen_large_tree: {e}");
            return ExitCode::from(2);
        }
    };
    match large_tree::generate(&base, &out, &spec) {
        Ok(s) => {
            println!(
                "parents={}\ntypes={}\nmdevs={}\niommu_groups={}\nkmsg_records={}\nmodules={}",
                s.parents, s.types, s.mdevs, s.groups, s.kmsg_records, s.modules
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_large_tree: {e}");
            ExitCode::FAILURE
        }
    }
}
