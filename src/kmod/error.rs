//! Typed error causes for `crate::kmod`.
//!
//! Public functions return `anyhow::Result` (so errors carry file names and
//! line numbers as context), but the root cause is one of these variants so
//! that a caller can `downcast_ref::<KmodError>()` to tell, e.g., a missing
//! module from a corrupt one.

use std::path::PathBuf;

/// Why reading a kernel module or a depmod index failed.
#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    /// The bytes are neither an ELF file nor xz/zstd/gzip data.
    #[error("{name}: not an ELF file nor xz/zstd/gzip-compressed data (first bytes: {magic})")]
    UnknownFormat {
        /// The name hint given by the caller (usually the file name).
        name: String,
        /// Hex dump of the first bytes, to help identify the format.
        magic: String,
    },
    /// Decompressed output would exceed the cap (a decompression bomb or a
    /// file that is not a kernel module).
    #[error("{name}: {format} data decompresses to more than {limit} bytes (decompression bomb?)")]
    TooLarge {
        /// The name hint given by the caller.
        name: String,
        /// `"xz"`, `"zstd"`, `"gzip"` or `"file"` (an uncompressed file over the cap).
        format: &'static str,
        /// The cap in bytes.
        limit: usize,
    },
    /// The compressed stream is corrupt, truncated or needs too much memory.
    #[error("{name}: corrupt or truncated {format} data: {source}")]
    Corrupt {
        /// The name hint given by the caller.
        name: String,
        /// `"xz"`, `"zstd"` or `"gzip"`.
        format: &'static str,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The ELF header or section header table is invalid (the checks are
    /// those of kmod's `kmod_elf_new()` in libkmod/libkmod-elf.c).
    #[error("invalid ELF file: {0}")]
    BadElf(String),
    /// The ELF file has no usable `.modinfo` section (kmod's
    /// `kmod_elf_get_section()` returns `-ENOENT` and `modinfo` fails too).
    #[error("ELF file has no .modinfo section")]
    NoModinfo,
    /// No module, built-in module or alias of that name.
    #[error("module {name} not found in {dir}")]
    NotFound {
        /// The name as given.
        name: String,
        /// The `lib/modules/<release>` directory searched.
        dir: PathBuf,
    },
}
