//! Measurements: SNR of reconstructions, alpha (theory and empirical), gradient angles, memory.

pub mod alloc;
pub mod alpha;
pub mod grad_angle;
pub mod lipschitz;
pub mod memory;
pub mod snr;
pub mod trace;

pub use snr::{snr, snr_db, Snr};
