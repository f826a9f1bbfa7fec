//! Entry point: parse the command line, dispatch, turn the result into an exit code.
//! Exit codes: 0 = nothing failed, 1 = a check failed, 2 = usage or tool error.
//! A closed pipe (`gvtg doctor | head`) is not an error.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = gvtg::cli::Cli::parse();
    match gvtg::cmd::dispatch(cli, &mut std::io::stdout().lock()) {
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
