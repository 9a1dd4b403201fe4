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
