//! `gvtg fix`: failing checks → a reviewed plan → a safe, undoable apply.

use std::io::Write;

use clap::Args;

use super::Ctx;

/// `gvtg fix`.
#[derive(Debug, Args)]
pub struct FixArgs {
    /// Apply the plan (default: print it as a dry run).
    #[arg(long)]
    pub yes: bool,
}

/// Runs `gvtg fix`.
pub fn run(_args: &FixArgs, _ctx: &Ctx, _out: &mut dyn Write) -> anyhow::Result<u8> {
    anyhow::bail!("gvtg fix: skeleton")
}
