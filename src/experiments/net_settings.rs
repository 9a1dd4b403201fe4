//! The network and input settings shared by the SNR experiments of the figures.

use crate::backend::Backend;
use crate::device::{DeviceSpec, Precision};
use crate::experiments::snr_sweep::{Point, SweepConfig};
use crate::nets::{Arch, NetOptions};
use serde::{Deserialize, Serialize};

/// Settings shared by the SNR experiments: the networks (besides architecture, depth, slope)
/// and the input batch (unit Gaussian from the seed, as `snr-sweep`). This is the `[net]` table
/// of a figure's experiment config: the network options every tool shares ([`NetOptions`],
/// flattened into the same table) and the width, batch, input size, `eps_i`, classes, device
/// and backend the experiment runs at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetSettings {
    /// Channels after the stem.
    pub width: usize,
    /// Batch size.
    pub batch: usize,
    /// Input height = width.
    pub input_size: usize,
    /// Batch-norm `eps_i`.
    pub eps_i: f64,
    /// Classes of the head.
    pub classes: usize,
    /// Device (`cpu`, `cuda[:N]`, `metal[:N]`).
    pub device: DeviceSpec,
    /// Backend computing the layers (`kernels`, the default, or `candle`); left out of the
    /// serialised config (and so of its key) when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
    /// The network options (in the same table).
    #[serde(flatten)]
    pub options: NetOptions,
}

impl Default for NetSettings {
    fn default() -> Self {
        NetSettings {
            width: 8,
            batch: 8,
            input_size: 16,
            eps_i: 0.0,
            classes: 10,
            device: DeviceSpec::Cpu,
            backend: Backend::default(),
            options: NetOptions::default(),
        }
    }
}

impl NetSettings {
    /// The `snr-sweep` config carrying these settings for the experiment's `points` (its grid
    /// fields are not used, except `depths`, the points' depths: with `nested`, every network
    /// is the prefix of the deepest).
    pub fn sweep_config(&self, noise_std: f64, depth_law: bool, points: &[Point]) -> SweepConfig {
        let mut depths: Vec<usize> = points.iter().map(|p| p.depth).collect();
        depths.sort_unstable();
        depths.dedup();
        SweepConfig {
            depths,
            net: self.options.clone(),
            widths: vec![self.width],
            batch: self.batch,
            input_size: self.input_size,
            device: self.device,
            noise_std,
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
        dtype: Precision,
        seed: u64,
    ) -> Point {
        Point {
            index,
            arch,
            depth,
            slope,
            eps_i,
            width: self.width,
            dtype,
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
            self.options.init_scale,
            self.options.gamma_text()
        )
    }
}

pub(crate) fn is_cpu(device: &DeviceSpec) -> bool {
    device.is_cpu()
}
