//! The command line (clap derive only). `gvtg completions` and `gvtg man` generate from these
//! definitions, so help, completions and the man page never drift apart.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

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

impl Cli {
    /// The command-line definition used to parse (and so for `--help` and usage errors):
    /// [`CommandFactory::command`] with each subcommand's arguments defined only when that
    /// subcommand is parsed or rendered (`#[command(defer = true)]` on [`Command`]), keeping
    /// the subcommand's description from its variant's doc comment (a deferred definition
    /// would otherwise take its argument struct's).
    pub fn definition() -> clap::Command {
        Self::definition_with(true)
    }

    /// [`Cli::definition`] with every subcommand defined at once, for completions and the man
    /// page (clap builds the `help` subcommand's tree from the subcommands it sees).
    pub fn full_definition() -> clap::Command {
        Self::definition_with(false)
    }

    fn definition_with(defer: bool) -> clap::Command {
        fn defined(sub: clap::Command) -> clap::Command {
            sub
        }
        type Define = fn(clap::Command) -> clap::Command;
        fn keep_about<T: Args>(sub: clap::Command) -> clap::Command {
            let (about, long) = (sub.get_about().cloned(), sub.get_long_about().cloned());
            let sub = T::augment_args(sub);
            let sub = match about {
                Some(about) => sub.about(about),
                None => sub.about(None::<&str>),
            };
            match long {
                Some(long) => sub.long_about(long),
                None => sub.long_about(None::<&str>),
            }
        }
        Self::command().mut_subcommands(|sub| {
            let define: Option<Define> = match sub.get_name() {
                "doctor" => Some(keep_about::<DoctorArgs>),
                "fix" => Some(keep_about::<crate::cmd::fix::FixArgs>),
                "vgpu" => Some(keep_about::<crate::cmd::vgpu::VgpuArgs>),
                "preflight" => Some(keep_about::<crate::cmd::preflight::PreflightArgs>),
                "passthrough" => Some(keep_about::<crate::cmd::passthrough::PassthroughArgs>),
                "explain" => Some(keep_about::<ExplainArgs>),
                "modinfo" => Some(keep_about::<ModinfoArgs>),
                "report" => Some(keep_about::<crate::cmd::report::ReportArgs>),
                "completions" => Some(keep_about::<CompletionsArgs>),
                _ => None,
            };
            match define {
                Some(define) if defer => sub.defer(define),
                // Replaces the derive's own deferred definition, which would add the arguments
                // a second time.
                Some(define) => define(sub).defer(defined),
                None => sub,
            }
        })
    }

    /// Parses the process's arguments with [`Cli::definition`]; on a usage error, `--help` or
    /// `--version` prints clap's message and exits, as [`Parser::parse`] does.
    pub fn parse_args() -> Cli {
        let mut cmd = Self::definition();
        let cli = match cmd.try_get_matches_from_mut(std::env::args_os()) {
            Ok(mut matches) => match Self::from_arg_matches_mut(&mut matches) {
                Ok(cli) => cli,
                Err(e) => e.format(&mut cmd).exit(),
            },
            Err(e) => e.exit(),
        };
        // The definitions are not needed any more, and the process is short-lived: freeing
        // their thousands of allocations one by one cost more than building them.
        std::mem::forget(cmd);
        cli
    }
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

/// Subcommands. `defer`: a subcommand's arguments are defined only when it is the one being
/// parsed (or when help, completions or the man page need them all), so each run builds one
/// subcommand's definitions instead of every one.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
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
    /// Module names (i915, kvmgt…) or paths to .ko[.xz|.zst|.gz] files; each is printed in
    /// turn, like kmod's `modinfo NAME…`.
    #[arg(required = true, value_name = "MODULE")]
    pub modules: Vec<String>,
    /// Kernel release to look in (default: the running one, from proc/sys/kernel/osrelease).
    #[arg(short = 'k', long, value_name = "RELEASE")]
    pub release: Option<String>,
    /// Print only the values of FIELD, one per line, as kmod's `modinfo -F` does (`filename`,
    /// `name`, `parm` and the signature fields included).
    #[arg(short = 'F', long, value_name = "FIELD", conflicts_with = "json")]
    pub field: Option<String>,
    /// Shorthand for --field author.
    #[arg(short = 'a', long, conflicts_with_all = ["field", "description", "license", "parameters", "filename", "json"])]
    pub author: bool,
    /// Shorthand for --field description.
    #[arg(short = 'd', long, conflicts_with_all = ["field", "license", "parameters", "filename", "json"])]
    pub description: bool,
    /// Shorthand for --field license.
    #[arg(short = 'l', long, conflicts_with_all = ["field", "parameters", "filename", "json"])]
    pub license: bool,
    /// Shorthand for --field parm.
    #[arg(short = 'p', long, conflicts_with_all = ["field", "filename", "json"])]
    pub parameters: bool,
    /// Shorthand for --field filename.
    #[arg(short = 'n', long, conflicts_with_all = ["field", "json"])]
    pub filename: bool,
    /// Take each argument as a module name, never as a path or an alias (kmod's `modinfo -m`).
    #[arg(short = 'm', long)]
    pub modname: bool,
    /// End each record with NUL instead of a newline (kmod's `modinfo -0`).
    #[arg(short = '0', long, conflicts_with = "json")]
    pub null: bool,
    /// Print JSON instead of kmod-style text.
    #[arg(long)]
    pub json: bool,
}

impl ModinfoArgs {
    /// The one field to print, from --field or its shorthands.
    pub fn selected_field(&self) -> Option<&str> {
        let short = [
            (self.author, "author"),
            (self.description, "description"),
            (self.license, "license"),
            (self.parameters, "parm"),
            (self.filename, "filename"),
        ];
        self.field
            .as_deref()
            .or_else(|| short.iter().find(|(on, _)| *on).map(|(_, f)| *f))
    }
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

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
        Cli::definition().debug_assert();
        Cli::full_definition().debug_assert();
    }

    /// Deferred subcommands keep their own description and get their arguments.
    #[test]
    fn deferred_subcommands_keep_their_about() {
        let eager: Vec<(String, Option<String>)> = Cli::definition()
            .get_subcommands()
            .map(|s| {
                (
                    s.get_name().to_string(),
                    s.get_about().map(|a| a.to_string()),
                )
            })
            .collect();
        let mut built = Cli::definition();
        built.build();
        assert_eq!(eager.len(), 10);
        for (name, about) in &eager {
            let sub = built.find_subcommand(name).expect("subcommand");
            assert!(about.is_some(), "{name} has a description");
            assert_eq!(sub.get_about().map(|a| a.to_string()), *about, "{name}");
        }
        let vgpu = built.find_subcommand("vgpu").expect("vgpu");
        assert!(vgpu.find_subcommand("types").is_some());
        let modinfo = built.find_subcommand("modinfo").expect("modinfo");
        assert!(modinfo.get_arguments().any(|a| a.get_id() == "field"));
        // Completions and the man page see every subcommand, `help vgpu types` included.
        let mut full = Cli::full_definition();
        full.build();
        let help = full.find_subcommand("help").expect("help");
        assert!(help
            .find_subcommand("vgpu")
            .and_then(|v| v.find_subcommand("types"))
            .is_some());
        for (name, about) in &eager {
            let sub = full.find_subcommand(name).expect("subcommand");
            assert_eq!(sub.get_about().map(|a| a.to_string()), *about, "{name}");
        }
    }
}
