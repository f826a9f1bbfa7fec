//! Entry point: parse the command line, dispatch, turn the result into an exit code.
//! Exit codes: 0 = nothing failed, 1 = a check failed, 2 = usage or tool error.
//! A closed pipe (`gvtg doctor | head`) is not an error.
//!
//! The binary has its own C `main` instead of Rust's runtime start-up (`#![no_main]`): that
//! start-up asks glibc for the main thread's stack bounds, which glibc finds by reading and
//! parsing /proc/self/maps, and sets up an alternate signal stack, all to print a message on
//! a stack overflow; it was a sixth of the instructions of a short `gvtg` run (and more of
//! its time in an emulated guest). What gvtg needs from it is done here: SIGPIPE ignored (so a
//! closed pipe is an `EPIPE` error, handled below) and stdout flushed at the end. Command-line
//! arguments reach `std::env::args_os` the same way (glibc passes them to the standard
//! library's initialiser). A stack overflow is still stopped by the kernel's guard page, with
//! a plain SIGSEGV instead of a message.

#![cfg_attr(not(test), no_main)]

use std::io::Write;

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

/// The process's entry point, called by the C runtime (see the module docs).
#[cfg(not(test))]
#[allow(unsafe_code)] // Exporting the C `main` symbol, and one libc call: see below.
#[no_mangle]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    // SAFETY: sets SIGPIPE's disposition to "ignore", as Rust's own start-up does; no handler
    // code is installed and no other thread exists yet.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN);
    }
    let code = run();
    // Rust's runtime flushes stdout at exit; without it, do it here (nothing to report if the
    // reader went away).
    let _ = std::io::stdout().flush();
    std::ffi::c_int::from(code)
}

/// Test builds of this file get the test harness's own `main` and Rust's start-up.
#[cfg(test)]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run())
}

/// Parses, dispatches and returns the exit code.
fn run() -> u8 {
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
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return 0;
            }
            // Errors can quote names from a hostile tree: no raw control characters.
            eprintln!(
                "gvtg: error: {}",
                gvtg::render::printable(&format!("{e:#}"))
            );
            2
        }
    }
}
