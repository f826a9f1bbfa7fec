//! One function per subcommand: `run(args, ctx, out) -> Result<exit code>`. Output goes to a
//! `&mut dyn Write` so tests capture it.

use std::io::{IsTerminal, Write};

use crate::cli::{Cli, ColorChoice, Command};
use crate::host::HostRoot;

pub mod doctor;
pub mod explain;
pub mod fix;
pub mod modinfo;
pub mod passthrough;
pub mod preflight;
pub mod report;
pub mod vgpu;

/// What every command gets.
pub struct Ctx {
    /// Where the host is.
    pub root: HostRoot,
    /// Whether to colour output.
    pub color: bool,
}

/// Decides colour once: `always`/`never` as given; `auto` = a terminal and no NO_COLOR.
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli, out: &mut dyn Write) -> anyhow::Result<u8> {
    let color = use_color(cli.color);
    let make_ctx = || -> anyhow::Result<Ctx> {
        Ok(Ctx {
            root: HostRoot::from_option(cli.root.as_deref())?,
            color,
        })
    };
    match &cli.command {
        Command::Doctor(a) => match &a.from {
            Some(file) => {
                if cli.root.is_some() {
                    anyhow::bail!("--from and --root (or GVTG_ROOT) cannot be used together");
                }
                let tmp = tempfile::tempdir()?;
                let tree = crate::report::archive::unpack(file, tmp.path())?;
                let ctx = Ctx {
                    root: HostRoot::at(&tree)?,
                    color,
                };
                doctor::run(a, &ctx, out)
            }
            None => doctor::run(a, &make_ctx()?, out),
        },
        Command::Report(a) => report::run(a, &make_ctx()?, out),
        Command::Fix(a) => fix::run(a, &make_ctx()?, out),
        Command::Vgpu(a) => vgpu::run(a, &make_ctx()?, out),
        Command::Preflight(a) => preflight::run(a, &make_ctx()?, out),
        Command::Passthrough(a) => passthrough::run(a, &make_ctx()?, out),
        Command::Explain(a) => explain::run(a, out),
        Command::Modinfo(a) => modinfo::run(a, &make_ctx()?, out),
        Command::Completions(a) => {
            let mut cmd = Cli::full_definition();
            // clap_complete panics when its writer fails (`gvtg completions bash | head`):
            // generate in memory, then write (a closed pipe is then an ordinary error).
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut cmd, "gvtg", &mut script);
            out.write_all(&script)?;
            Ok(0)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::full_definition()).render(out)?;
            Ok(0)
        }
    }
}
