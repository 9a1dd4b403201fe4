//! Experiments: each one a serde config -> run -> results written as CSV/JSON.
//!
//! Data flow one way: config -> experiment -> results ([`crate::results`]) -> figures
//! ([`crate::plot`]). The families of the figures (`alpha`, `trace`, `scaling`, `precision`,
//! `bn_eps`, `memory_table`, `tradeoff`) each hold a config, a run and serde results; [`figures`]
//! drives them (configs by kind, the result cache, provenance). `snr_sweep`, `memory`, `bench`
//! and `training` (with its angle experiment) are the tools' own experiments.

pub mod alpha;
pub mod bench;
pub mod bn_eps;
pub mod figures;
pub mod memory;
pub mod memory_table;
pub mod net_settings;
pub mod precision;
pub mod scaling;
pub mod snr_sweep;
pub mod trace;
pub mod tradeoff;
pub mod training;

/// The error of a `--resume` into `out` whose finished results were produced by another config
/// ([`crate::Error::Data`]: bad input, exit 2).
pub(crate) fn resumed_other_config(out: &std::path::Path) -> crate::Error {
    crate::Error::data(
        out.display(),
        "results of this config (for --resume)",
        "results of a different config than this one; use another --out or drop --resume",
    )
}
