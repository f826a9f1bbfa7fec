//! [`Probe`]: the result of reading one thing from the host.
//!
//! A missing or unreadable file is a *value* the checks judge, never an abort: a doctor that
//! stops at the first unreadable file tells the user nothing (mdevctl warns and continues for the
//! same reason).

use serde::Serialize;

/// What reading one fact of the host gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "value", rename_all = "snake_case")]
pub enum Probe<T> {
    /// Read and understood.
    Ok(T),
    /// The file or directory does not exist.
    Missing,
    /// It exists, but we may not read it (usually: not root).
    Denied,
    /// It could not be read or understood; the message says where and why.
    Invalid(String),
}

impl<T> Probe<T> {
    /// The value, if read.
    pub fn ok(&self) -> Option<&T> {
        match self {
            Probe::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// Consumes the probe, giving the value if read.
    pub fn into_ok(self) -> Option<T> {
        match self {
            Probe::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// Transforms the value, keeping the failure states.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Probe<U> {
        match self {
            Probe::Ok(v) => Probe::Ok(f(v)),
            Probe::Missing => Probe::Missing,
            Probe::Denied => Probe::Denied,
            Probe::Invalid(m) => Probe::Invalid(m),
        }
    }

    /// Chains a fallible transformation (e.g. parsing), keeping the failure states.
    pub fn and_then<U>(self, f: impl FnOnce(T) -> Probe<U>) -> Probe<U> {
        match self {
            Probe::Ok(v) => f(v),
            Probe::Missing => Probe::Missing,
            Probe::Denied => Probe::Denied,
            Probe::Invalid(m) => Probe::Invalid(m),
        }
    }

    /// Borrowing view.
    pub fn as_ref(&self) -> Probe<&T> {
        match self {
            Probe::Ok(v) => Probe::Ok(v),
            Probe::Missing => Probe::Missing,
            Probe::Denied => Probe::Denied,
            Probe::Invalid(m) => Probe::Invalid(m.clone()),
        }
    }

    /// True when read.
    pub fn is_ok(&self) -> bool {
        matches!(self, Probe::Ok(_))
    }

    /// True when the thing does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, Probe::Missing)
    }

    /// A short phrase for a non-`Ok` state, naming the path: "/dev/kmsg: permission denied".
    pub fn describe_failure(&self, shown_path: &str) -> String {
        match self {
            Probe::Ok(_) => format!("{shown_path}: read"),
            Probe::Missing => format!("{shown_path}: does not exist"),
            Probe::Denied => format!("{shown_path}: permission denied"),
            Probe::Invalid(m) => format!("{shown_path}: {m}"),
        }
    }

    /// Test helper: the value, or a panic naming the state.
    #[cfg(test)]
    pub fn unwrap_ok(self) -> T
    where
        T: std::fmt::Debug,
    {
        match self {
            Probe::Ok(v) => v,
            Probe::Missing => panic!("probe: missing"),
            Probe::Denied => panic!("probe: denied"),
            Probe::Invalid(m) => panic!("probe: invalid: {m}"),
        }
    }
}
