//! The command line (clap derive only). `gvtg completions` and `gvtg man` generate from these
//! definitions, so help, completions and the man page never drift apart.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Diagnose, fix and operate Intel GVT-g virtual GPUs on Linux hosts.
#[derive(Debug, Parser)]
#[command(name = "gvtg", version, about, long_about = None, help_expected = true, propagate_version = true)]
pub struct Cli {
    /// Read a captured host tree at DIR instead of the running host (mirrors real paths:
    /// DIR/proc/cpuinfo, DIR/sys/…, DIR/etc/…).
    #[arg(long, global = true, value_name = "DIR", env = "GVTG_ROOT")]
    pub root: Option<PathBuf>,

    /// When to use colour (NO_COLOR in the environment means never for `auto`).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the ordered GVT-g checks on this host (or a captured tree) and say what to fix.
    Doctor(DoctorArgs),
    /// Turn failing checks into a reviewed plan and apply it safely (dry run by default).
    Fix(crate::cmd::fix::FixArgs),
    /// List vGPU types and instances, create, remove and persist vGPUs, emit libvirt XML.
    Vgpu(crate::cmd::vgpu::VgpuArgs),
    /// Will this libvirt domain start? Judge its vGPU, display, qemu:commandline and PCI
    /// hostdevs against the host (exit 0 only when it can start).
    Preflight(crate::cmd::preflight::PreflightArgs),
    /// Whole-GPU VFIO passthrough now: bind a device and its IOMMU group to vfio-pci, or give
    /// it back to its host driver.
    Passthrough(crate::cmd::passthrough::PassthroughArgs),
    /// Explain a check: what it reads, why it matters, how to fix it.
    Explain(ExplainArgs),
    /// Print a kernel module's .modinfo fields, found the way modprobe finds it.
    Modinfo(ModinfoArgs),
    /// Write a redacted bug-report archive (host snapshot + verdicts), or a Markdown summary.
    Report(crate::cmd::report::ReportArgs),
    /// Print shell completions.
    Completions(CompletionsArgs),
    /// Print the man page (roff).
    Man,
}

/// Output formats of the doctor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned verdict lines and fixes.
    Text,
    /// Versioned JSON (docs/json-schema.md).
    Json,
    /// Prometheus textfile-collector metrics.
    Prometheus,
}

/// `gvtg doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,
    /// Shorthand for --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Show the evidence behind each verdict.
    #[arg(short, long)]
    pub verbose: bool,
    /// Run only these checks (comma-separated ids).
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub only: Vec<String>,
    /// Skip these checks (comma-separated ids).
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub skip: Vec<String>,
    /// Run on a `gvtg report` archive (.tar.gz) instead of this host; conflicts with --root.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Whole-GPU VFIO passthrough: without a value, list the candidate GPUs with their IOMMU
    /// groups; with PCI addresses (0000:01:00.0, 01:00.0) or vendor:device ids (10de:1b80),
    /// also run the passthrough checks on them and their sibling functions.
    #[arg(long, value_delimiter = ',', num_args = 0..=1, value_name = "PCI")]
    pub passthrough: Option<Vec<String>>,
}

/// `gvtg explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Check id (e.g. mdev.types).
    #[arg(required_unless_present = "list")]
    pub id: Option<String>,
    /// List every check id with its title.
    #[arg(long)]
    pub list: bool,
}

/// `gvtg modinfo`.
#[derive(Debug, Args)]
pub struct ModinfoArgs {
    /// Module name (i915, kvmgt…) or path to a .ko[.xz|.zst|.gz] file.
    pub module: String,
    /// Kernel release to look in (default: the running one, from proc/sys/kernel/osrelease).
    #[arg(short = 'k', long, value_name = "RELEASE")]
    pub release: Option<String>,
    /// Print JSON instead of kmod-style text.
    #[arg(long)]
    pub json: bool,
}

/// `gvtg completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
