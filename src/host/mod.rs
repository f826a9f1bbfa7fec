//! Everything that reads the host: the root ([`root`]), the captured-tree side file
//! ([`sidefile`]), the probe type ([`probe`]) and the snapshot the checks judge ([`snapshot`]).
//!
//! Rule of the crate: `host/` reads, `parse/` understands, `checks/` judges, `render/` prints.

pub mod pci_bind;
pub mod probe;
pub mod root;
pub mod sidefile;
pub mod snapshot;
pub mod sysfs_write;

pub use probe::Probe;
pub use root::HostRoot;
pub use snapshot::Snapshot;
