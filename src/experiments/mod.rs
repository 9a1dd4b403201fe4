//! Experiments: each one a serde config -> run -> results written as CSV/JSON.

pub mod snr_sweep;
pub mod memory;
pub mod training;
pub mod bench;
pub mod figures;
