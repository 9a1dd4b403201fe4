//! Measurements: SNR of reconstructions, alpha (theory and empirical), gradient angles, memory.

pub mod snr;
pub mod alpha;
pub mod memory;
pub mod alloc;
pub mod grad_angle;
pub mod trace;

pub use snr::{snr, snr_db, Snr};
