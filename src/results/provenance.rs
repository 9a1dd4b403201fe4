//! What produced a result file.

use crate::backend::Backend;
use crate::results::text::num;
use serde::{Deserialize, Serialize};

/// What produced a result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// `git rev-parse --short HEAD` (`-dirty` with uncommitted changes) when it ran.
    pub git_revision: String,
    /// Crate version.
    pub crate_version: String,
    /// Seed(s).
    pub seed: String,
    /// Dtype(s) that ran: one [`crate::device::Precision`] name, or several joined by `/`
    /// (text: a list, as the caption prints it).
    pub dtype: String,
    /// Device that ran, as resolved from the live device ([`crate::device::device_name`]:
    /// `cuda` runs record `cuda:0`), or the configured [`crate::device::DeviceSpec`] when it
    /// could not be opened (text: a record of what ran, not a setting).
    pub device: String,
    /// The backend configured for the layers ([`Backend::Kernels`] in results cached before it
    /// was recorded: the only backend then, short of the `bench --kernels off` switch).
    #[serde(default)]
    pub backend: Backend,
    /// The backend that actually ran ([`crate::device::backend_that_ran`]: `candle` off the
    /// CPU, whatever was configured); empty in results cached before it was recorded.
    #[serde(default)]
    pub backend_that_ran: String,
    /// Initialisation and input.
    pub init: String,
    /// Wall time of the experiment, seconds.
    #[serde(with = "num")]
    pub seconds: f64,
    /// Threads running points in parallel.
    pub threads: usize,
    /// Unix time at the end of the run.
    pub created_unix: u64,
    /// The CPU that computed the results ([`crate::provenance::cpu_summary`]: model, vendor,
    /// instruction-set extensions, L1 data cache); empty in results cached before it was
    /// recorded.
    #[serde(default)]
    pub cpu: String,
    /// The code paths of the CPU kernels on it ([`crate::backend::cpu::kernel_paths`]); empty
    /// in results cached before they were recorded.
    #[serde(default)]
    pub kernels: String,
}
