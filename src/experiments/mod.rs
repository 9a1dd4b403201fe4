//! Experiments: each one a serde config -> run -> results written as CSV/JSON.

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
