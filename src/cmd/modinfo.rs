//! `gvtg modinfo`: a module's `.modinfo`, found the way modprobe finds it, printed like kmod's
//! modinfo (or as JSON).

use std::io::Write;

use super::Ctx;
use crate::cli::ModinfoArgs;
use crate::host::Probe;
use crate::kmod;

/// Prints the module's fields.
pub fn run(args: &ModinfoArgs, ctx: &Ctx, out: &mut dyn Write) -> anyhow::Result<u8> {
    let release = match &args.release {
        Some(r) => r.clone(),
        None => match ctx.root.read_attr("proc/sys/kernel/osrelease") {
            Probe::Ok(r) => r,
            other => anyhow::bail!(
                "cannot tell the running kernel ({}); pass -k RELEASE",
                other.describe_failure("/proc/sys/kernel/osrelease")
            ),
        },
    };
    let info = kmod::modinfo(ctx.root.base(), &release, &args.module)?;
    if let Some(e) = &info.signature_error {
        // kmod prints no signature lines either; say why they are missing.
        eprintln!(
            "gvtg: note: {}: has an appended signature that cannot be decoded ({e}); \
             no signature lines printed",
            info.filename
        );
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &info)?;
        writeln!(out)?;
    } else {
        out.write_all(info.render_kmod_style().as_bytes())?;
    }
    Ok(0)
}
