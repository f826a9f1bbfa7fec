//! Kernel-module inspection: what `modinfo` (kmod) would say about a module,
//! without running it, for the host (`/`) or a captured tree.
//!
//! - [`modinfo`](mod@modinfo) module: decompression, `.modinfo` parsing and
//!   the signature trailer for one module image;
//! - [`depmod`]: locating a module by name or alias from depmod's indexes;
//! - [`signature`]: decoding the appended signature into kmod's `sig_*` lines;
//! - [`info`]: [`ModInfo`] and its kmod-identical rendering.
//!
//! Behaviour is taken from kmod 30 (libkmod/libkmod-file.c, libkmod-elf.c,
//! libkmod-module.c, libkmod-builtin.c, libkmod-signature.c,
//! tools/modinfo.c) and the kernel (scripts/mod/modpost.c writes `.modinfo`,
//! include/linux/moduleparam.h defines `parm`/`parmtype` records).

// No panics on any input: enforce it mechanically outside unit tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        unsafe_code
    )
)]

pub mod depmod;
pub mod error;
pub mod glob;
pub mod info;
pub mod modinfo;
pub mod signature;

pub use depmod::{Located, ModuleIndex};
pub use error::KmodError;
pub use info::{modinfo, modinfo_by_name, modinfo_file, ModInfo, Param, BUILTIN_FILENAME};
pub use modinfo::{compression_of, decompress, modinfo_fields, signature_info, signature_present};
pub use signature::Signature;
