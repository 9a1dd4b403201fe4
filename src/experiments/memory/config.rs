//! The configuration of the memory experiment: [`MemoryConfig`] (its grid, presets and
//! validation) and the network it measures at each point ([`MemoryConfig::net_config`]).

use crate::backend::Backend;
use crate::device::{DeviceSpec, Precision};
use crate::error::{Error, Result};
use crate::measure::anchors::Anchoring;
use crate::nets::{Arch, NetConfig, NetOptions, Network, Source};
use serde::{Deserialize, Serialize};

/// Configuration of the memory experiment. Every field has a default ([`MemoryConfig::default`];
/// [`MemoryConfig::quick`] is the smaller grid), so a config file may give only some of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Architectures measured.
    pub archs: Vec<Arch>,
    /// Sources of the activations in the backward (stored, reconstructed, checkpointed,
    /// anchored).
    pub modes: Vec<Source>,
    /// Anchored mode: how the anchors are chosen (the `[anchors]` table: the planner's target
    /// `min_snr_db`, default 60 dB, or a `list`), planned once per measured network on its
    /// batch ([`super::measure_point_with`]); left out of the serialised config when default.
    #[serde(skip_serializing_if = "Anchoring::is_default")]
    pub anchors: Anchoring,
    /// Checkpointed mode: units or blocks per segment at every depth measured (`None`: each
    /// depth's `ceil(sqrt(depth))`); left out of the serialised config when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<usize>,
    /// Seed of the weights and of the input batch.
    pub seed: u64,
    /// Storage dtype (`f16`, `bf16`, `f32`, `f64`).
    pub dtype: Precision,
    /// Device; only `cpu` can be measured (the counting allocator sees host memory only).
    pub device: DeviceSpec,
    /// Threads of candle's CPU kernels (sets `RAYON_NUM_THREADS`); `None` keeps the default.
    pub threads: Option<usize>,
    /// Whether this is the quick grid (recorded in `run.json`).
    pub quick: bool,
    /// Channels after the stem.
    pub width: usize,
    /// Depth of the per-architecture comparison (blocks, units for layer-wise); the batch and
    /// resolution sweeps use it too. [`MemoryConfig::arch_depths`] overrides it per
    /// architecture.
    pub depth: usize,
    /// Per-architecture depths of the comparison and of the batch and resolution sweeps,
    /// overriding `depth` for the architectures listed (at most once each); the depth sweep
    /// uses `depths` for every architecture. Empty by default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arch_depths: Vec<ArchDepth>,
    /// Batch of the per-architecture comparison and of the depth and resolution sweeps.
    pub batch: usize,
    /// Input height = width of the comparison and of the depth and batch sweeps.
    pub input_size: usize,
    /// Stages of the networks (1 to 4): the first `stages - 1` of each architecture's default
    /// poolings ([`Arch::default_pools`]). Default 1: no pooling, every layer at the input
    /// resolution with `width` channels.
    pub stages: usize,
    /// Depths of the depth sweep.
    pub depths: Vec<usize>,
    /// Batches of the batch sweep.
    pub batches: Vec<usize>,
    /// Input sizes of the resolution sweep.
    pub sizes: Vec<usize>,
    /// Measured steps per point (after one warm-up step); the largest peak is kept.
    pub repeats: usize,
    /// Backend computing the layers (`kernels`, the default, or `candle`); left out of the
    /// serialised config when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
    /// The network options (the `[net]` table; `pools` unset: the architecture's cut to
    /// `stages`). The analytic model covers the convolutional stem and the default F/G chains
    /// only: others leave its columns empty; the init changes no byte. With `nested`, every
    /// network of an architecture is a prefix of its deepest one (depth sweep and comparison).
    pub net: NetOptions,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            archs: Arch::ALL.to_vec(),
            modes: vec![Source::Stored, Source::Reconstructed],
            anchors: Anchoring::default(),
            segment: None,
            seed: 0,
            dtype: Precision::F32,
            device: DeviceSpec::Cpu,
            threads: None,
            quick: false,
            width: 32,
            depth: 8,
            arch_depths: Vec::new(),
            batch: 8,
            input_size: 16,
            stages: 1,
            depths: vec![2, 4, 8, 16, 32],
            batches: vec![4, 8, 16],
            sizes: vec![8, 16, 32],
            repeats: 1,
            backend: Backend::default(),
            net: NetOptions::default(),
        }
    }
}

/// The depth of one architecture in a [`MemoryConfig`] ([`MemoryConfig::arch_depths`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchDepth {
    /// Architecture.
    pub arch: Arch,
    /// Blocks (units for layer-wise).
    pub depth: usize,
}

/// Named configurations of the memory experiment ([`MemoryConfig::preset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// `MemoryConfig::default()`: one stage, width 32, 16x16, depths 2-32 (seconds).
    Default,
    /// `MemoryConfig::quick()`: the smoke-test grid (under a second in release).
    Quick,
    /// `MemoryConfig::paper()`: the paper's configurations (Table 1) at 32x32 (under a minute
    /// on 2 cores).
    Paper,
}

impl MemoryConfig {
    /// The configuration of a [`Preset`].
    pub fn preset(p: Preset) -> Self {
        match p {
            Preset::Default => Self::default(),
            Preset::Quick => Self::quick(),
            Preset::Paper => Self::paper(),
        }
    }

    /// The paper's configurations (Hascoet et al. Table 1 and eq. 34), measured: width 32,
    /// batch 8 of 32x32 images, f32, every architecture with all three of its default
    /// poolings (`stages = 4`; layer-wise and hybrid `[P_c, P_c, P_b]`: 32-128-512-512
    /// channels; i-RevNet `[P_c, P_c, P_c]`: 32-128-512-2048; RevNet and ResNet max pooling,
    /// which doubles the channels: 32-64-128-256, the paper's ResNet; its RevNet has
    /// 40-80-256-320, which one width cannot give). Blocks per stage: 2-2-2-2 for ResNet and
    /// RevNet (depth 8), 2-2-2-1 for i-RevNet and hybrid (depth 7), as the paper; layer-wise
    /// 14 units, spread 4-4-3-3 (the paper's fit is 4-4-4-2; the model's per-pixel figure does
    /// not depend on it). The marginal bytes per pixel come from the batch sweep 2, 4, 8; there
    /// is no depth or resolution sweep. About 45 s in release on 2 cores (the i-RevNet's top
    /// stage alone has 37.7M weights).
    pub fn paper() -> Self {
        MemoryConfig {
            width: 32,
            depth: 8,
            arch_depths: vec![
                ArchDepth {
                    arch: Arch::Layerwise,
                    depth: 14,
                },
                ArchDepth {
                    arch: Arch::Hybrid,
                    depth: 7,
                },
                ArchDepth {
                    arch: Arch::Irevnet,
                    depth: 7,
                },
            ],
            batch: 8,
            input_size: 32,
            stages: 4,
            depths: Vec::new(),
            batches: vec![2, 4, 8],
            sizes: Vec::new(),
            ..Self::default()
        }
    }

    /// Depth of `arch` at the comparison point and in the batch and resolution sweeps:
    /// its entry of [`MemoryConfig::arch_depths`], else `depth`.
    pub fn depth_for(&self, arch: Arch) -> usize {
        self.arch_depths
            .iter()
            .find(|a| a.arch == arch)
            .map_or(self.depth, |a| a.depth)
    }

    /// The quick grid (a smoke test, seconds): batch 2 of 8x8 images, depths up to 8, two points
    /// per batch/size sweep.
    pub fn quick() -> Self {
        MemoryConfig {
            quick: true,
            width: 16,
            depth: 4,
            batch: 2,
            input_size: 8,
            depths: vec![2, 4, 8],
            batches: vec![2, 4],
            sizes: vec![8, 16],
            ..Self::default()
        }
    }

    /// Check the configuration; every problem is an [`Error::Config`] naming the field (or the
    /// error of a value's parser).
    pub fn validate(&self) -> Result<()> {
        self.net.check_fg_for(&self.archs)?;
        let bad = |c: &str, e: &str, g: String| {
            Err(Error::config(format!("memory experiment: {c}"), e, g))
        };
        let anchored = self.modes.contains(&Source::Anchored);
        self.anchors.check_use(anchored, Some("memory"))?;
        if self.archs.is_empty() || self.modes.is_empty() {
            let got = format!("{} archs and {} modes", self.archs.len(), self.modes.len());
            return bad("archs and modes", "at least one value each", got);
        }
        if self.repeats == 0 {
            return bad("repeats", ">= 1", "0".into());
        }
        if self.batch == 0 || self.batches.contains(&0) {
            let got = format!("batch {}, batches {:?}", self.batch, self.batches);
            return bad("batch and batches", "values >= 1", got);
        }
        if self.depth == 0
            || self.depths.contains(&0)
            || self.arch_depths.iter().any(|a| a.depth == 0)
        {
            return bad("depths", "values >= 1", "a depth of 0".into());
        }
        for (i, a) in self.arch_depths.iter().enumerate() {
            if self.arch_depths[..i].iter().any(|b| b.arch == a.arch) {
                let got = format!("{} listed twice", a.arch);
                return bad("arch_depths", "one entry per architecture", got);
            }
        }
        if self.input_size == 0 || self.sizes.contains(&0) {
            let got = format!("input_size {}, sizes {:?}", self.input_size, self.sizes);
            return bad("input sizes", "values >= 1", got);
        }
        if !(1..=4).contains(&self.stages) {
            return bad("stages", "1 to 4", self.stages.to_string());
        }
        if self.threads == Some(0) {
            return bad("threads", ">= 1", "0".into());
        }
        if let Some(t) = self.threads {
            crate::limits::check_threads(t)?;
        }
        use crate::limits::check_distinct;
        check_distinct("archs", &self.archs)?;
        check_distinct("modes", &self.modes)?;
        check_distinct("depths", &self.depths)?;
        check_distinct("batches", &self.batches)?;
        check_distinct("sizes", &self.sizes)?;
        // Memory up front, as every tool: the largest network measured.
        let most = |v: &[usize], one: usize| v.iter().copied().chain([one]).max().unwrap_or(one);
        let deepest = self
            .archs
            .iter()
            .map(|&a| most(&self.depths, self.depth_for(a)))
            .max()
            .unwrap_or(self.depth);
        crate::limits::check_memory(
            "memory experiment: its largest network",
            crate::limits::network_bytes_estimate(
                deepest,
                self.width,
                most(&self.batches, self.batch),
                most(&self.sizes, self.input_size),
                self.dtype.dtype().size_in_bytes(),
            ),
        )?;
        let device = self.device.open()?;
        if !device.is_cpu() {
            let e = "cpu (the counting allocator measures host memory only; use --device cpu)";
            return bad("device", e, format!("`{}`", self.device));
        }
        for &arch in &self.archs {
            for &depth in self.depths.iter().chain([&self.depth_for(arch)]) {
                for &size in self.sizes.iter().chain([&self.input_size]) {
                    self.net_config(arch, depth, size).validate()?;
                }
                if self.modes.contains(&Source::Checkpointed) {
                    crate::backprop::segment_length(self.segment, depth)?;
                }
                // A list names layers of each network: checked before anything runs.
                if anchored && self.anchors.list.is_some() && arch.reconstructable() {
                    let cfg = self.net_config(arch, depth, self.input_size);
                    let net = Network::build(&cfg, candle_core::DType::F32, &device)?;
                    self.anchors.check_against(&net)?;
                }
            }
        }
        Ok(())
    }

    /// The network measured for `arch` at `depth` and `size`.
    pub fn net_config(&self, arch: Arch, depth: usize, size: usize) -> NetConfig {
        let mut c = NetConfig::new(arch);
        c.depth = depth;
        c.width = self.width;
        c.input_size = size;
        c.seed = self.seed;
        let mut net = self.net.clone();
        if net.pools.is_none() {
            let mut pools = arch.default_pools();
            pools.truncate(self.stages - 1);
            net.pools = Some(pools);
        }
        let deepest = self
            .depths
            .iter()
            .copied()
            .chain([self.depth_for(arch), depth])
            .max();
        c.with_net(&net, deepest.unwrap_or(depth))
    }
}
