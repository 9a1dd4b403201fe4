//! Experiments: each one a serde config -> run -> results written as CSV/JSON.

pub mod bench;
pub mod figures;
pub mod lipschitz;
pub mod memory;
pub mod snr_sweep;
pub mod tradeoff;
pub mod training;
