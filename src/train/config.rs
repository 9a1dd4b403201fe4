//! The configuration of a training run ([`TrainConfig`]) and reading TOML configs.

use super::OneCycle;
use crate::backend::Backend;
use crate::data::{parse_data_spec, Augment, DataSplit};
use crate::device::{DeviceSpec, Precision};
use crate::error::{Error, Result};
use crate::measure::anchors::Anchoring;
use crate::nets::{Arch, NetConfig, NetOptions, Source, Stem};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything that defines a training run. Every field has a default (a small run that
/// learns the built-in synthetic set in well under a minute on two CPU cores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Architecture.
    pub arch: Arch,
    /// Units (layer-wise) or blocks (others).
    pub depth: usize,
    /// Channels after the stem.
    pub width: usize,
    /// Leaky-ReLU slope `n > 0` (layer-wise, hybrid).
    pub slope: f64,
    /// Batch-norm reparameterisation `eps_i` (invertible batch norms).
    pub eps_i: f64,
    /// The network options (the `[net]` table); the input channels come from the data
    /// ([`TrainConfig::NET_REFUSED`]). `nested` needs an experiment sweeping depths, which sets
    /// [`TrainConfig::nested_depth`].
    pub net: NetOptions,
    /// With `net.nested`, set by an experiment sweeping depths: this run's network is the
    /// prefix of the network of this depth (the deepest of the sweep), with its initial
    /// weights ([`NetConfig::nested_depth`]). Left out of the serialised config when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nested_depth: Option<usize>,
    /// Where the backward takes activations from.
    pub mode: Source,
    /// Anchored mode: how the anchors are chosen and how often they are planned again (the
    /// `[anchors]` table); left out of the serialised config when default.
    #[serde(skip_serializing_if = "Anchoring::is_default")]
    pub anchors: Anchoring,
    /// Checkpointed mode: units or blocks per segment, `1..=depth` (`None`: `ceil(sqrt(depth))`);
    /// left out of the serialised config when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<usize>,
    /// Epochs (full passes over the training set; the last partial batch is dropped).
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Peak learning rate of the one-cycle schedule.
    pub lr: f64,
    /// Fraction of the steps spent warming up (0..=1).
    pub warmup: f64,
    /// The schedule starts at `lr / lr_div`.
    pub lr_div: f64,
    /// The schedule ends at `lr / lr_final_div`.
    pub lr_final_div: f64,
    /// SGD momentum `mu` (0..1).
    pub momentum: f64,
    /// Coupled L2 weight decay.
    pub weight_decay: f64,
    /// Clip the gradient's global L2 norm (over every parameter) to this value before the
    /// optimiser step, as `torch.nn.utils.clip_grad_norm_` (weight decay and momentum act on the
    /// clipped gradient); 0 turns it off. Default 1: without it, the hybrid at width 32 on
    /// 32x32 images diverges at the default peak lr (loss 210 after one epoch of 20 steps;
    /// its gradient norm is about 20 at the first step and grows).
    pub clip_grad_norm: f64,
    /// Random crop (padding 2 for images up to 16 px, 4 above) and horizontal flip.
    pub augment: bool,
    /// Data: `synthetic[:KEY=VALUE,...]` or `cifar10:DIR` (see [`parse_data_spec`]).
    pub data: String,
    /// Seed of the synthetic data (unless the spec sets `seed=`).
    pub data_seed: u64,
    /// Seed of the weights, the shuffling and the augmentation.
    pub seed: u64,
    /// Storage dtype: `f16`, `bf16`, `f32`, `f64`.
    pub dtype: Precision,
    /// Device: `cpu`, `cuda[:N]`, `metal[:N]`.
    pub device: DeviceSpec,
    /// Gradient-angle probe every this many steps (0: never).
    pub angle_every: usize,
    /// Samples of each split used for the probe's train/test error (0: the whole split).
    pub eval_samples: usize,
    /// Batch size of evaluation.
    pub eval_batch: usize,
    /// Checkpoint every this many steps (0: at the end of every epoch; only with a run dir).
    pub checkpoint_every: usize,
    /// Backend computing the layers (`kernels`, the default, or `candle`); left out of the
    /// serialised config when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
}

/// Default data of a training run: 1500 train and 1000 test 16x16 synthetic images.
pub const DEFAULT_DATA: &str = "synthetic:train=1500,test=1000,size=16";

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            arch: Arch::Layerwise,
            depth: 6,
            width: 8,
            slope: 0.2,
            eps_i: 0.0,
            net: NetOptions::default(),
            nested_depth: None,
            mode: Source::Stored,
            anchors: Anchoring::default(),
            segment: None,
            epochs: 3,
            batch: 64,
            lr: 0.2,
            warmup: 0.3,
            lr_div: 10.0,
            lr_final_div: 100.0,
            momentum: 0.9,
            weight_decay: 5e-4,
            clip_grad_norm: 1.0,
            augment: false,
            data: DEFAULT_DATA.into(),
            data_seed: 0,
            seed: 0,
            dtype: Precision::F32,
            device: DeviceSpec::Cpu,
            angle_every: 0,
            eval_samples: 500,
            eval_batch: 250,
            checkpoint_every: 0,
            backend: Backend::default(),
        }
    }
}

impl TrainConfig {
    /// The mode as result files and logs spell it: the source, and for the anchored mode with a
    /// planner its target (`anchored:<dB>`).
    pub fn mode_label(&self) -> String {
        match (self.mode, self.anchors.planned_target()) {
            (Source::Anchored, Some(t)) => format!("anchored:{t}"),
            (m, _) => m.as_str().to_string(),
        }
    }

    /// The backward of this run: `mode` with `segment` (checkpointed).
    pub fn plan(&self) -> crate::nets::BackwardPlan {
        crate::nets::BackwardPlan::from(self.mode).with_default_segment(self.segment)
    }

    /// The network options a training run cannot use, and why (refused when set).
    pub const NET_REFUSED: &'static [(&'static str, &'static str)] =
        &[("in_channels", "a training run takes its data's channels")];

    /// Read a TOML file holding a `TrainConfig` (unknown keys are errors naming the file).
    pub fn from_toml_file(path: &Path) -> Result<TrainConfig> {
        read_toml(path)
    }

    /// Check every value (without loading the data); errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |c: &str, e: &str, g: String| Err(Error::config(c, e, g));
        self.anchors
            .check_use(self.mode == Source::Anchored, None)?;
        if self.mode == Source::Anchored && !self.arch.reconstructable() {
            let e = format!(
                "`stored` or `checkpointed` ({} has no inverse: nothing to anchor)",
                self.arch
            );
            return bad("mode", &e, "`anchored`".into());
        }
        if self.epochs == 0 {
            return bad("epochs", ">= 1", "0".into());
        }
        if self.batch == 0 || self.eval_batch == 0 {
            let got = format!("{} and {}", self.batch, self.eval_batch);
            return bad("batch and eval_batch", ">= 1 each", got);
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", "a finite value > 0", self.lr.to_string());
        }
        if !(self.clip_grad_norm.is_finite() && self.clip_grad_norm >= 0.0) {
            let got = self.clip_grad_norm.to_string();
            return bad("clip_grad_norm", "a finite value >= 0 (0: off)", got);
        }
        if !(0.0..=1.0).contains(&self.warmup) {
            return bad("warmup", "a value in [0, 1]", self.warmup.to_string());
        }
        if !(self.lr_div >= 1.0
            && self.lr_div.is_finite()
            && self.lr_final_div >= 1.0
            && self.lr_final_div.is_finite())
        {
            let got = format!("{} and {}", self.lr_div, self.lr_final_div);
            return bad("lr_div and lr_final_div", "finite values >= 1", got);
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", "a value in [0, 1)", self.momentum.to_string());
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            let got = self.weight_decay.to_string();
            return bad("weight_decay", "a finite value >= 0", got);
        }
        crate::limits::check_slope(self.slope)?;
        crate::limits::check_eps_i(self.eps_i)?;
        if self.mode == Source::Reconstructed && !self.arch.reconstructable() {
            // It would train on stored activations and record `reconstructed`.
            let e = format!(
                "`stored` or `checkpointed` ({} has no inverse: nothing can be reconstructed)",
                self.arch
            );
            return bad("mode", &e, "`reconstructed`".into());
        }
        let dtype = self.dtype;
        parse_data_spec(&self.data, self.data_seed)?;
        self.net.refuse("train", Self::NET_REFUSED)?;
        self.net.check_fg_for(&[self.arch])?;
        if self.net.nested && self.nested_depth.is_none() {
            let e = "false for a single run (one depth): experiments sweeping depths (accuracy, angles) take it";
            return bad("[net] nested (--nested)", e, "true".into());
        }
        // Memory up front, at the largest input the data sets have (32 px).
        crate::limits::check_memory(
            &format!(
                "width {}, depth {}, batch {}",
                self.width, self.depth, self.batch
            ),
            crate::limits::network_bytes_estimate(
                self.depth,
                self.width,
                self.batch.max(self.eval_batch),
                32,
                dtype.size_in_bytes(),
            ),
        )?;
        if self.mode == Source::Checkpointed || self.segment.is_some() {
            crate::backprop::segment_length(self.segment, self.depth)?;
        }
        // The network with the default input geometry (the data's is checked when it is loaded).
        let channels = if self.net.stem == Stem::Identity {
            self.width
        } else {
            3
        };
        self.net_config(16, channels, 10).validate()
    }

    /// Check the network against the channels of `data`'s images, known from the spec before
    /// loading (an identity stem needs `width` of them): what a command line checks before it
    /// writes anything. [`TrainConfig::validate`] leaves it out, as [`train`] may be given data
    /// other than the spec's.
    pub fn check_data_channels(&self) -> Result<()> {
        let channels = parse_data_spec(&self.data, self.data_seed)?.channels();
        self.net_config(16, channels, 10).validate()?;
        // An explicit anchor list names layers of this network: check it before any file is
        // written (the names do not depend on the image size; 32 px takes every pooling).
        if let (Source::Anchored, Some(_)) = (self.mode, &self.anchors.list) {
            let net = crate::nets::Network::build(
                &self.net_config(32, channels, 10),
                candle_core::DType::F32,
                &candle_core::Device::Cpu,
            )?;
            self.anchors.check_against(&net)?;
        }
        Ok(())
    }

    /// The network of this run for images `input_size` pixels square with `in_channels`
    /// channels and `classes` classes.
    pub fn net_config(&self, input_size: usize, in_channels: usize, classes: usize) -> NetConfig {
        let mut c = NetConfig::new(self.arch);
        c.depth = self.depth;
        c.width = self.width;
        c.slope = self.slope;
        c.eps_i = self.eps_i;
        c.input_size = input_size;
        c.classes = classes;
        c.seed = self.seed;
        let mut c = c.with_net(&self.net, self.nested_depth.unwrap_or(self.depth));
        c.net.in_channels = in_channels;
        c
    }

    /// The network of this run for `data`; errors when the images are not square.
    pub fn net_config_for(&self, data: &DataSplit) -> Result<NetConfig> {
        let (c, h, w) = data.train.image_dims();
        if h != w || data.test.image_dims() != (c, h, w) {
            return Err(Error::data(
                "the training data",
                "square images of one size in both splits",
                format!("train {c}x{h}x{w}, test {:?}", data.test.image_dims()),
            ));
        }
        let cfg = self.net_config(h, c, data.classes());
        cfg.validate()?;
        Ok(cfg)
    }

    /// The augmentation, if enabled: crop padding 2 for images up to 16 px, 4 above, and flips.
    pub fn augmentation(&self, image_size: usize) -> Option<Augment> {
        self.augment.then_some(Augment {
            crop_padding: if image_size <= 16 { 2 } else { 4 },
            flip: true,
        })
    }

    /// Load the data set of this run.
    pub fn load_data(&self) -> Result<DataSplit> {
        parse_data_spec(&self.data, self.data_seed)?.load()
    }

    /// The schedule for `total_steps` steps.
    pub fn schedule(&self, total_steps: usize) -> OneCycle {
        OneCycle {
            max_lr: self.lr,
            total_steps,
            warmup: self.warmup,
            lr_div: self.lr_div,
            lr_final_div: self.lr_final_div,
        }
    }
}

/// Read the TOML file `path` into `T`. Errors are one line: `path: line L, column C: message`.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    toml::from_str(&text).map_err(|e| {
        let at = e.span().map_or(String::new(), |span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
            format!("line {line}, column {column}: ")
        });
        let message = crate::nets::with_net_table_hint(&e.message().trim().replace('\n', " "));
        Error::config_file(path, format!("{at}{message}"))
    })
}
