//! gvtg: takes a Linux host from "I have an Intel iGPU" to "my VM runs on a GVT-g virtual GPU",
//! and says exactly what is wrong when it doesn't.
//!
//! Layout: [`host`] reads (through one [`host::HostRoot`]), [`parse`] understands,
//! [`checks`] judges, [`render`] prints, [`cmd`] ties them to the command line. [`kmod`] reads
//! kernel modules the way kmod does.

#![deny(clippy::dbg_macro)]

pub mod checks;
pub mod cli;
pub mod cmd;
pub mod fix;
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod kmod;
pub mod parse;
pub mod platform;
pub mod preflight;
pub mod render;
pub mod report;

#[cfg(test)]
pub mod testing;
