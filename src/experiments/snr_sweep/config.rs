//! The configuration of a sweep: [`SweepConfig`] (read from TOML, validated), the grid of
//! [`Point`]s it spans, and the network of each point.

use crate::backend::Backend;
use crate::device::{DeviceSpec, Precision};
use crate::error::{Error, Result};
use crate::nets::{Arch, NetConfig, NetOptions};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The sweep grid and fixed settings. Every field has a default (the built-in sweep).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepConfig {
    /// Architectures.
    pub archs: Vec<Arch>,
    /// Depths (units for layer-wise, blocks otherwise).
    pub depths: Vec<usize>,
    /// Leaky-ReLU slopes (architectures without one use only the first).
    pub slopes: Vec<f64>,
    /// Batch-norm `eps_i` values.
    pub eps_i: Vec<f64>,
    /// Widths (channels after the stem).
    pub widths: Vec<usize>,
    /// Batch size.
    pub batch: usize,
    /// Input height = width.
    pub input_size: usize,
    /// Storage dtypes (`f16`, `bf16`, `f32`, `f64`).
    pub dtypes: Vec<Precision>,
    /// Seeds (weights and input batch).
    pub seeds: Vec<u64>,
    /// Device (`cpu`, `cuda[:N]`, `metal[:N]`).
    pub device: DeviceSpec,
    /// Std of white noise added to the output before reconstructing (0: pure rounding).
    pub noise_std: f64,
    /// Classes of the head.
    pub classes: usize,
    /// Measure per-layer alphas and the depth-law predictions (eq. 19 and rounding-aware).
    pub depth_law: bool,
    /// Estimate each top-level layer's forward and inverse Lipschitz constants (columns
    /// `lip_forward`, `lip_inverse`; NaN when off). Off by default: the power iterations would
    /// several-fold the sweep's runtime. Left out of the serialised config when off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lipschitz: bool,
    /// Backend computing the layers (`kernels`, the default, or `candle`); left out of the
    /// serialised config when default.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
    /// The network options (the `[net]` table): the input batch has `net.in_channels`
    /// channels; with `net.nested` every depth is the prefix of the deepest network of
    /// `depths`, with the same weights, so that SNR vs depth changes depth alone
    /// ([`NetConfig::nested_depth`]).
    pub net: NetOptions,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            archs: vec![Arch::Layerwise, Arch::Hybrid],
            depths: vec![1, 2, 4, 8, 16, 32],
            slopes: vec![0.01, 0.05, 0.1, 0.2, 0.5, 1.0],
            eps_i: vec![0.0],
            widths: vec![8],
            batch: 8,
            input_size: 16,
            dtypes: vec![Precision::F32],
            seeds: vec![0],
            device: DeviceSpec::Cpu,
            noise_std: 0.0,
            classes: 10,
            depth_law: true,
            lipschitz: false,
            backend: Backend::default(),
            net: NetOptions::default(),
        }
    }
}

/// One point of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Position in the full grid.
    pub index: usize,
    /// Architecture.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// Slope.
    pub slope: f64,
    /// `eps_i`.
    pub eps_i: f64,
    /// Width.
    pub width: usize,
    /// Storage dtype.
    pub dtype: Precision,
    /// Seed.
    pub seed: u64,
}

impl Point {
    /// A stable, file-name-safe key.
    pub fn key(&self) -> String {
        format!(
            "{:05}-{}-d{}-n{}-e{}-w{}-{}-s{}",
            self.index,
            self.arch,
            self.depth,
            self.slope,
            self.eps_i,
            self.width,
            self.dtype,
            self.seed
        )
    }
}

impl SweepConfig {
    /// Read a TOML config; unknown keys and bad values are errors naming the file.
    pub fn from_toml_file(path: &Path) -> Result<SweepConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: SweepConfig = toml::from_str(&text)
            .map_err(|e| Error::config_file(path, crate::nets::toml_error_text(&e)))?;
        Ok(cfg)
    }

    /// Check every value; the grid must be non-empty.
    pub fn validate(&self) -> Result<()> {
        let empty = |what: &str| {
            Err(Error::config(
                format!("`{what}`"),
                "at least one value",
                "an empty grid",
            ))
        };
        if self.archs.is_empty() {
            return empty("archs");
        }
        if self.depths.is_empty() {
            return empty("depths");
        }
        if self.slopes.is_empty() {
            return empty("slopes");
        }
        if self.eps_i.is_empty() {
            return empty("eps_i");
        }
        if self.widths.is_empty() {
            return empty("widths");
        }
        if self.dtypes.is_empty() {
            return empty("dtypes");
        }
        if self.seeds.is_empty() {
            return empty("seeds");
        }
        use crate::limits::check_distinct;
        check_distinct("archs", &self.archs)?;
        check_distinct("depths", &self.depths)?;
        check_distinct("slopes", &self.slopes)?;
        check_distinct("eps_i", &self.eps_i)?;
        check_distinct("widths", &self.widths)?;
        check_distinct("dtypes", &self.dtypes)?;
        check_distinct("seeds", &self.seeds)?;
        for &s in &self.slopes {
            crate::limits::check_slope(s)?;
        }
        for &e in &self.eps_i {
            crate::limits::check_eps_i(e)?;
        }
        // Memory up front (the f64 shadow doubles the f64 values): the largest network.
        let (depth, width) = (
            self.depths.iter().copied().max().unwrap_or(0),
            self.widths.iter().copied().max().unwrap_or(0),
        );
        crate::limits::check_memory(
            &format!(
                "width {width}, depth {depth}, batch {}, input {}x{}",
                self.batch, self.input_size, self.input_size
            ),
            2.0 * crate::limits::network_bytes_estimate(
                depth,
                width,
                self.batch,
                self.input_size,
                8,
            ),
        )?;
        self.device.open()?;
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            let got = self.noise_std;
            return Err(Error::config("noise_std", "a finite value >= 0", got));
        }
        if self.batch == 0 {
            return Err(Error::config("batch", ">= 1", 0));
        }
        self.net.check_fg_for(&self.archs)?;
        // Every network of the grid must be buildable.
        for p in self.grid() {
            self.net_config(&p).validate()?;
        }
        Ok(())
    }

    /// The grid in its canonical order.
    pub fn grid(&self) -> Vec<Point> {
        let mut points = Vec::new();
        for &arch in &self.archs {
            let uses_slope = arch.has_slope();
            let slopes: &[f64] = if uses_slope {
                &self.slopes
            } else {
                &self.slopes[..1.min(self.slopes.len())]
            };
            for &depth in &self.depths {
                for &slope in slopes {
                    for &eps_i in &self.eps_i {
                        for &width in &self.widths {
                            for &dtype in &self.dtypes {
                                for &seed in &self.seeds {
                                    let index = points.len();
                                    points.push(Point {
                                        index,
                                        arch,
                                        depth,
                                        slope,
                                        eps_i,
                                        width,
                                        dtype,
                                        seed,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        points
    }

    /// The network of a point. With `nested`, it is the prefix of depth `p.depth` of the
    /// deepest network of `depths`.
    pub fn net_config(&self, p: &Point) -> NetConfig {
        let mut c = NetConfig::new(p.arch);
        c.depth = p.depth;
        c.width = p.width;
        c.slope = p.slope;
        c.eps_i = p.eps_i;
        c.input_size = self.input_size;
        c.classes = self.classes;
        c.seed = p.seed;
        let deepest = self.depths.iter().copied().max().unwrap_or(p.depth);
        c.with_net(&self.net, deepest)
    }
}
