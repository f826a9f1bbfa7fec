//! Entry point: parse the command line, dispatch, turn the result into an exit code.
//! Exit codes: 0 = nothing failed, 1 = a check failed, 2 = usage or tool error.
//! A closed pipe (`gvtg doctor | head`) is not an error.

use std::io::Write;
use std::process::ExitCode;

use gvtg::cli::Command;
use gvtg::cmd::vgpu::VgpuCommand;

/// Commands that only print (no prompts, no child processes sharing stdout): their output is
/// block-buffered and written once (a JSON listing of 2,000 mdevs was 22,000 `write` calls
/// through the line-buffered stdout).
fn only_prints(cmd: &Command) -> bool {
    match cmd {
        Command::Doctor(_) | Command::Explain(_) | Command::Modinfo(_) => true,
        Command::Vgpu(v) => matches!(
            v.command,
            VgpuCommand::Types { .. }
                | VgpuCommand::List { .. }
                | VgpuCommand::Xml { .. }
                | VgpuCommand::QemuArgs { .. }
        ),
        _ => false,
    }
}

fn main() -> ExitCode {
    let cli = gvtg::cli::Cli::parse_args();
    let stdout = std::io::stdout();
    let result = if only_prints(&cli.command) {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
        gvtg::cmd::dispatch(cli, &mut out).and_then(|code| {
            out.flush()?;
            Ok(code)
        })
    } else {
        gvtg::cmd::dispatch(cli, &mut stdout.lock())
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            // Errors can quote names from a hostile tree: no raw control characters.
            eprintln!(
                "gvtg: error: {}",
                gvtg::render::printable(&format!("{e:#}"))
            );
            ExitCode::from(2)
        }
    }
}
