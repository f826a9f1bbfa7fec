//! `gvtg vgpu`: mdev types and instances through the kernel's sysfs ABI.

use std::io::Write;

use clap::Args;

use super::Ctx;

/// `gvtg vgpu`.
#[derive(Debug, Args)]
pub struct VgpuArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gvtg vgpu`.
pub fn run(_args: &VgpuArgs, _ctx: &Ctx, _out: &mut dyn Write) -> anyhow::Result<u8> {
    anyhow::bail!("gvtg vgpu: skeleton")
}
