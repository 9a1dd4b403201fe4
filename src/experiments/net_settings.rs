//! The network and input settings shared by the SNR experiments of the figures.

use crate::backend::Backend;
use crate::device::{DeviceSpec, Precision};
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
    pub device: DeviceSpec,
    /// Backend computing the layers (`kernels`, the default, or `candle`); left out of the
    /// serialised config (and so of its key) when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
    /// Input channels (the shared network options of every tool, [`crate::nets::NetOptions`];
    /// each left out of the serialised config when default).
    #[serde(skip_serializing_if = "is_three")]
    pub in_channels: usize,
    /// The first layer.
    #[serde(skip_serializing_if = "crate::nets::Stem::is_default")]
    pub stem: crate::nets::Stem,
    /// Downsampling between stages (unset: each architecture's; `[]`: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pools: Option<Vec<crate::nets::PoolKind>>,
    /// The F (= G) chain of the blocks (unset: each architecture's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fg: Option<Vec<crate::nets::LayerKind>>,
    /// Batch-norm gamma init (unset: log-normal with `gamma_spread`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamma_init: Option<crate::nets::GammaInit>,
}

fn is_three(v: &usize) -> bool {
    *v == 3
}

impl Default for NetSettings {
    fn default() -> Self {
        NetSettings {
            width: 8,
            batch: 8,
            input_size: 16,
            init_scale: crate::nets::DEFAULT_INIT_SCALE,
            gamma_spread: 0.0,
            eps_i: 0.0,
            classes: 10,
            device: DeviceSpec::Cpu,
            backend: Backend::default(),
            in_channels: 3,
            stem: crate::nets::Stem::Conv,
            pools: None,
            fg: None,
            gamma_init: None,
        }
    }
}

impl NetSettings {
    /// The `snr-sweep` config carrying these settings (its grid fields are not used).
    pub fn sweep_config(&self, noise_std: f64, depth_law: bool) -> SweepConfig {
        SweepConfig {
            in_channels: self.in_channels,
            stem: self.stem,
            pools: self.pools.clone(),
            fg: self.fg.clone(),
            gamma_init: self.gamma_init,
            widths: vec![self.width],
            batch: self.batch,
            input_size: self.input_size,
            device: self.device,
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
            self.init_scale,
            match crate::nets::GammaInit::resolve(self.gamma_init, self.gamma_spread) {
                crate::nets::GammaInit::Ones => "1".into(),
                crate::nets::GammaInit::LogNormal { spread } => format!("exp({spread} N(0,1))"),
                crate::nets::GammaInit::AbsNormal { std, offset } =>
                    format!("|N(1, {std}^2)| + {offset}"),
            }
        )
    }
}

pub(crate) fn is_cpu(device: &DeviceSpec) -> bool {
    device.is_cpu()
}
