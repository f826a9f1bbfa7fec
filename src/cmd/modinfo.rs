//! `gvtg modinfo`: modules' `.modinfo`, found the way modprobe finds them, printed like kmod's
//! modinfo (all fields, one field with `-F`, NUL-separated with `-0`) or as JSON.
//!
//! Several modules are printed in turn; one that cannot be found or read is reported on stderr
//! and the others are still printed. Exit code as kmod's: 0 when every module was printed, 1
//! when one was not.

use std::io::Write;

use super::Ctx;
use crate::cli::ModinfoArgs;
use crate::host::Probe;
use crate::kmod;

/// Prints each module's fields.
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
    let field = args.selected_field();
    let sep = if args.null { '\0' } else { '\n' };
    let mut code = 0;
    for module in &args.modules {
        let found = if args.modname {
            kmod::modinfo_by_name(ctx.root.base(), &release, module)
        } else {
            kmod::modinfo(ctx.root.base(), &release, module)
        };
        let info = match found {
            Ok(info) => info,
            Err(e) => {
                // Written before the next module's output, so the order on a terminal matches.
                out.flush()?;
                eprintln!(
                    "gvtg: error: {}",
                    crate::render::printable(&format!("{e:#}"))
                );
                code = 1;
                continue;
            }
        };
        if let Some(e) = &info.signature_error {
            // kmod prints no signature lines either; say why they are missing.
            eprintln!(
                "gvtg: note: {}: has an appended signature that cannot be decoded ({e}); \
                 no signature lines printed",
                info.filename
            );
        }
        if args.json {
            crate::render::json::write_pretty(out, &info)?;
        } else {
            out.write_all(info.render_kmod(field, sep).as_bytes())?;
        }
    }
    Ok(code)
}
