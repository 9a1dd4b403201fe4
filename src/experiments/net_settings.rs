//! The network and input settings shared by the SNR experiments of the figures.

use crate::backend::Backend;
use crate::experiments::snr_sweep::{Point, SweepConfig};
use crate::nets::Arch;
use serde::{Deserialize, Serialize};

/// Settings shared by the SNR experiments: the networks (besides architecture, depth, slope)
/// and the input batch (unit Gaussian from the seed, as `snr-sweep`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetSettings {
    /// Channels after the stem.
    pub width: usize,
    /// Batch size.
    pub batch: usize,
    /// Input height = width.
    pub input_size: usize,
    /// Convolution init scale relative to Kaiming normal.
    pub init_scale: f64,
    /// Batch-norm gamma init spread (`gamma = exp(spread N(0,1))`).
    pub gamma_spread: f64,
    /// Batch-norm `eps_i`.
    pub eps_i: f64,
    /// Classes of the head.
    pub classes: usize,
    /// Device (`cpu`, `cuda[:N]`, `metal[:N]`).
    pub device: String,
    /// Backend computing the layers (`kernels`, the default, or `candle`); left out of the
    /// serialised config (and so of its key) when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
}

impl Default for NetSettings {
    fn default() -> Self {
        NetSettings {
            width: 8,
            batch: 8,
            input_size: 16,
            init_scale: 0.5,
            gamma_spread: 0.0,
            eps_i: 0.0,
            classes: 10,
            device: "cpu".into(),
            backend: Backend::default(),
        }
    }
}

impl NetSettings {
    /// The `snr-sweep` config carrying these settings (its grid fields are not used).
    pub fn sweep_config(&self, noise_std: f64, depth_law: bool) -> SweepConfig {
        SweepConfig {
            widths: vec![self.width],
            batch: self.batch,
            input_size: self.input_size,
            device: self.device.clone(),
            noise_std,
            init_scale: self.init_scale,
            gamma_spread: self.gamma_spread,
            classes: self.classes,
            depth_law,
            backend: self.backend,
            ..SweepConfig::default()
        }
    }

    /// A point of the grid (index is only a label).
    #[allow(clippy::too_many_arguments)]
    pub fn point(
        &self,
        index: usize,
        arch: Arch,
        depth: usize,
        slope: f64,
        eps_i: f64,
        dtype: &str,
        seed: u64,
    ) -> Point {
        Point {
            index,
            arch,
            depth,
            slope,
            eps_i,
            width: self.width,
            dtype: dtype.trim().to_ascii_lowercase(),
            seed,
        }
    }

    /// The initialisation and input, for captions.
    pub fn describe(&self) -> String {
        format!(
            "width {}, batch {} of {}x{} unit-Gaussian inputs, conv init {} x Kaiming, BN gamma {}",
            self.width,
            self.batch,
            self.input_size,
            self.input_size,
            self.init_scale,
            if self.gamma_spread > 0.0 {
                format!("exp({} N(0,1))", self.gamma_spread)
            } else {
                "1".into()
            }
        )
    }
}

pub(crate) fn is_cpu(device: &String) -> bool {
    device == "cpu"
}
