//! Measurements: SNR of reconstructions, alpha (theory and empirical), gradient angles, memory.

pub mod alpha;
pub mod anchors;
pub mod grad_angle;
pub mod law;
pub mod lipschitz;
pub mod memory;
pub mod snr;
pub mod trace;

pub use snr::{snr, snr_db, Snr};

/// The counting global allocator, [`crate::alloc`]: defined below the layers (the parameter
/// gradients of [`crate::backprop::Grads`] declare themselves to it) and reachable here, where
/// the memory measurements are.
pub use crate::alloc;
