//! The depth-law validation family (`depth-law`): networks drawn at random over architecture,
//! F/G chain, stem, pools, width, input size, batch, slope, `eps_i`, gamma init, init scale,
//! depth and dtype, each traced at several seeds, and every law's prediction of every rebuilt
//! top-level input beside the measurement.
//!
//! The family is fixed by `family_seed` (member `i` is drawn from its own stream,
//! `rng_for(family_seed, "depth-law-member-<i>")`, so adding members leaves the others as they
//! are) and split in advance: the members listed in `report` are the held-out half, the others
//! the half the laws may be developed on. No law has a parameter fitted to either half.
//!
//! The architecture is drawn first; a draw of the other settings that does not build with it
//! (an input size the pools cannot halve, a pool the architecture refuses) is drawn again from
//! the same stream, up to 100 times. The batch is halved until
//! `batch x width x input_size^2 <= max_elements`, to bound the work of one trace.
//!
//! Conventions: SNR in dB against the stored activation in the member's dtype; an entry is a
//! top-level rebuilt input (layer or block input) whose measured SNR is finite; the error
//! statistics (median and max of |predicted - measured|) are over the entries above 0 dB, and a
//! prediction that is not finite where the measurement is counts as an infinite error.
//!
//! Resumable: each finished (member, seed) is written atomically to `<points>/<key>.json`
//! (`figures` uses `<results>/depth-law.points/<config key>/`).

use crate::backend::Backend;
use crate::device::{DeviceSpec, Precision};
use crate::error::{Error, Result};
use crate::experiments::net_settings::NetSettings;
use crate::experiments::snr_sweep::run_point;
use crate::layers::{GammaInit, Role};
pub use crate::measure::law::{error_stats, LAWS};
use crate::nets::{Arch, LayerKind, NetOptions, PoolKind, Stem};
use crate::results::text::num;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The validation family's config (module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepthLawConfig {
    /// Seed of the family's draws.
    pub family_seed: u64,
    /// Members drawn.
    pub networks: usize,
    /// Seeds of each member (weights and input batch).
    pub seeds: Vec<u64>,
    /// The held-out members (indices): reported, never developed on.
    pub report: Vec<usize>,
    /// Architectures drawn from (uniformly).
    pub archs: Vec<Arch>,
    /// Storage dtypes drawn from.
    pub dtypes: Vec<Precision>,
    /// Depth range (inclusive).
    pub depth_range: [usize; 2],
    /// Width range (inclusive; rounded up to the architecture's multiple).
    pub width_range: [usize; 2],
    /// Input sizes drawn from.
    pub input_sizes: Vec<usize>,
    /// Batch sizes drawn from.
    pub batches: Vec<usize>,
    /// Slope range, drawn log-uniformly.
    pub slope_range: [f64; 2],
    /// Batch-norm `eps_i` values drawn from.
    pub eps_i: Vec<f64>,
    /// Convolution init scale range (relative to Kaiming normal), drawn log-uniformly.
    pub init_scale_range: [f64; 2],
    /// Stems drawn from.
    pub stems: Vec<Stem>,
    /// Pool lists drawn from (`[]`: no pooling).
    pub pools: Vec<Vec<PoolKind>>,
    /// F/G chains drawn from (for the architectures with blocks).
    pub fg: Vec<Vec<LayerKind>>,
    /// Largest `batch x width x input_size^2` of a member.
    pub max_elements: usize,
    /// Device.
    pub device: DeviceSpec,
    /// Backend.
    #[serde(skip_serializing_if = "Backend::is_default")]
    pub backend: Backend,
}

impl Default for DepthLawConfig {
    fn default() -> Self {
        use LayerKind::*;
        use PoolKind::*;
        DepthLawConfig {
            family_seed: 20261208,
            networks: 48,
            seeds: vec![0, 1, 2],
            report: Vec::new(),
            archs: vec![Arch::Layerwise, Arch::Hybrid, Arch::Revnet, Arch::Irevnet],
            dtypes: vec![Precision::F32, Precision::F16, Precision::BF16],
            depth_range: [1, 16],
            width_range: [8, 32],
            input_sizes: vec![8, 12, 16, 24, 32],
            batches: vec![2, 4, 8, 16, 32],
            slope_range: [0.01, 1.0],
            eps_i: vec![0.0, 0.01, 0.1, 0.5],
            init_scale_range: [0.5, 2.0],
            stems: vec![Stem::Conv, Stem::Identity],
            pools: vec![
                vec![],
                vec![Channel],
                vec![Batch],
                vec![Channel, Batch],
                vec![Channel, Channel, Batch],
                vec![Max],
            ],
            fg: vec![
                vec![Conv, Bn, Lrelu, Conv, Bn],
                vec![Conv, Bn, Lrelu, Conv],
                vec![Conv, Bn, Relu, Conv, Bn],
                vec![Conv, Lrelu, Conv],
                vec![Bn, Lrelu, Conv],
            ],
            max_elements: 1 << 17,
            device: DeviceSpec::Cpu,
            backend: Backend::default(),
        }
    }
}

/// One drawn network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Index in the family.
    pub index: usize,
    /// `dev` or `report`.
    pub split: String,
    /// Architecture.
    pub arch: Arch,
    /// Depth (units or blocks).
    pub depth: usize,
    /// Slope of the leaky ReLUs.
    #[serde(with = "num")]
    pub slope: f64,
    /// Storage dtype.
    pub dtype: Precision,
    /// The network and input settings.
    pub net: NetSettings,
}

impl Member {
    /// One line describing the member, for tables.
    pub fn describe(&self) -> String {
        let o = &self.net.options;
        let list = |v: Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(",")
            }
        };
        format!(
            "{} d{} n={} {} w{} {}x{} b{} eps_i={} stem={} pools={} fg={} gamma={} init={}",
            self.arch,
            self.depth,
            self.slope,
            self.dtype,
            self.net.width,
            self.net.input_size,
            self.net.input_size,
            self.net.batch,
            self.net.eps_i,
            if o.stem == Stem::Identity {
                "identity"
            } else {
                "conv"
            },
            list(
                o.pools_for(self.arch)
                    .iter()
                    .map(|p| p.symbol().to_string())
                    .collect()
            ),
            if self.arch.has_blocks() {
                list(o.fg_for(self.arch).iter().map(|k| k.to_string()).collect())
            } else {
                "-".to_string()
            },
            o.gamma_text(),
            o.init_scale,
        )
    }
}

/// One entry: a rebuilt top-level input of a member at a seed, measured and predicted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LawEntryRow {
    /// Member index.
    pub member: usize,
    /// Seed.
    pub seed: u64,
    /// Position top down.
    pub index: usize,
    /// The layer whose input this is.
    pub layer: String,
    /// Measured SNR (dB).
    #[serde(with = "num")]
    pub snr_db: f64,
    /// The linearised law's prediction (dB).
    #[serde(with = "num")]
    pub law_db: f64,
    /// The amplitude sum's prediction (dB).
    #[serde(with = "num")]
    pub coherent_db: f64,
    /// The power sum's prediction (dB).
    #[serde(with = "num")]
    pub rounding_db: f64,
    /// Eq. 19's prediction (dB).
    #[serde(with = "num")]
    pub eq19_db: f64,
    /// White-noise alpha (dB) of the layer.
    #[serde(with = "num")]
    pub alpha_db: f64,
    /// Alpha (dB) of the error that reaches it.
    #[serde(with = "num")]
    pub alpha_error_db: f64,
    /// One-step SNR (dB) of the layer.
    #[serde(with = "num")]
    pub step_snr_db: f64,
    /// SNR (dB) of the layer's injection in the chain.
    #[serde(with = "num")]
    pub chain_step_snr_db: f64,
    /// Cosine between the carried error and the layer's injection.
    #[serde(with = "num")]
    pub injection_corr: f64,
    /// Cosine between the error and the signal.
    #[serde(with = "num")]
    pub error_signal_corr: f64,
    /// Lag-1 horizontal autocorrelation of the error.
    #[serde(with = "num")]
    pub error_lag1: f64,
}

impl LawEntryRow {
    /// The laws' predictions (dB), in [`LAWS`] order.
    pub fn predicted(&self) -> [f64; 4] {
        [
            self.law_db,
            self.coherent_db,
            self.rounding_db,
            self.eq19_db,
        ]
    }
}

/// The result: the members and every entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthLawData {
    /// The drawn members, by index.
    pub members: Vec<Member>,
    /// Every entry, by member, seed and position.
    pub entries: Vec<LawEntryRow>,
}

fn pick<T: Clone>(rng: &mut impl Rng, v: &[T]) -> T {
    v[rng.gen_range(0..v.len())].clone()
}

fn log_uniform(rng: &mut impl Rng, [lo, hi]: [f64; 2]) -> f64 {
    if lo == hi {
        return lo;
    }
    let v = (lo.ln() + rng.gen::<f64>() * (hi.ln() - lo.ln())).exp();
    // Three significant digits: readable in tables, exact in configs.
    let scale = 10f64.powi(2 - v.log10().floor() as i32);
    (v * scale).round() / scale
}

impl DepthLawConfig {
    /// Check the values (and that every member builds).
    pub fn validate(&self) -> Result<()> {
        let bad = |c: &str, e: &str, g: String| Err(Error::config(format!("depth-law: {c}"), e, g));
        self.device.open()?;
        if self.networks == 0 || self.seeds.is_empty() {
            return bad("networks and seeds", ">= 1 each", "none".into());
        }
        let lists = [
            ("archs", self.archs.is_empty()),
            ("dtypes", self.dtypes.is_empty()),
            ("input_sizes", self.input_sizes.is_empty()),
            ("batches", self.batches.is_empty()),
            ("eps_i", self.eps_i.is_empty()),
            ("stems", self.stems.is_empty()),
            ("pools", self.pools.is_empty()),
            ("fg", self.fg.is_empty()),
        ];
        if let Some((k, _)) = lists.iter().find(|(_, empty)| *empty) {
            return bad(k, "at least one value", "none".into());
        }
        if let Some(r) = self.report.iter().find(|&&r| r >= self.networks) {
            return bad("report", "member indices below `networks`", r.to_string());
        }
        let mut sorted = self.report.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.report.len() {
            return bad("report", "each member once", format!("{:?}", self.report));
        }
        let range_ok = |[lo, hi]: [f64; 2]| lo.is_finite() && lo > 0.0 && hi >= lo;
        if !range_ok(self.slope_range) || !range_ok(self.init_scale_range) {
            return bad(
                "slope_range, init_scale_range",
                "0 < low <= high, finite",
                format!("{:?}, {:?}", self.slope_range, self.init_scale_range),
            );
        }
        if self.depth_range[0] == 0 || self.depth_range[1] < self.depth_range[0] {
            return bad(
                "depth_range",
                "1 <= low <= high",
                format!("{:?}", self.depth_range),
            );
        }
        if self.width_range[0] == 0 || self.width_range[1] < self.width_range[0] {
            return bad(
                "width_range",
                "1 <= low <= high",
                format!("{:?}", self.width_range),
            );
        }
        if self.max_elements == 0 {
            return bad("max_elements", ">= 1", "0".into());
        }
        for i in 0..self.networks {
            self.member(i)?;
        }
        Ok(())
    }

    /// Member `i` (module doc).
    pub fn member(&self, i: usize) -> Result<Member> {
        let mut rng = crate::util::rng_for(self.family_seed, &format!("depth-law-member-{i}"));
        // The architecture is drawn once, so that one that refuses more settings (RevNet's
        // pools) is not drawn less often.
        let arch = pick(&mut rng, &self.archs);
        let mut last = None;
        for _ in 0..100 {
            let m = self.draw(i, arch, &mut rng);
            let p = m
                .net
                .point(0, m.arch, m.depth, m.slope, m.net.eps_i, m.dtype, 0);
            let sweep = m.net.sweep_config(0.0, true, std::slice::from_ref(&p));
            match sweep.net_config(&p).validate() {
                Ok(()) => return Ok(m),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::config(
            format!("depth-law: member {i}"),
            "a network that builds within 100 draws",
            last.map(|e| e.to_string()).unwrap_or_default(),
        ))
    }

    fn draw(&self, index: usize, arch: Arch, rng: &mut impl Rng) -> Member {
        let depth = rng.gen_range(self.depth_range[0]..=self.depth_range[1]);
        let slope = log_uniform(rng, self.slope_range);
        let dtype = pick(rng, &self.dtypes);
        let multiple = arch.spec().width_multiple.max(1);
        let width = rng
            .gen_range(self.width_range[0]..=self.width_range[1])
            .div_ceil(multiple)
            * multiple;
        let input_size = pick(rng, &self.input_sizes);
        let mut batch = pick(rng, &self.batches);
        while batch > 1 && batch * width * input_size * input_size > self.max_elements {
            batch /= 2;
        }
        let stem = pick(rng, &self.stems);
        let pools = pick(rng, &self.pools);
        let fg = pick(rng, &self.fg);
        let gamma = match rng.gen_range(0..3) {
            0 => GammaInit::Ones,
            1 => GammaInit::LogNormal {
                spread: log_uniform(rng, [0.05, 1.0]),
            },
            _ => GammaInit::AbsNormal {
                std: log_uniform(rng, [0.1, 1.0]),
                offset: pick(rng, &[0.0, 0.1]),
            },
        };
        let options = NetOptions {
            in_channels: if stem == Stem::Identity { width } else { 3 },
            stem,
            pools: Some(pools),
            fg: arch.has_blocks().then_some(fg),
            init_scale: log_uniform(rng, self.init_scale_range),
            gamma_init: Some(gamma),
            ..NetOptions::default()
        };
        Member {
            index,
            split: if self.report.contains(&index) {
                "report".into()
            } else {
                "dev".into()
            },
            arch,
            depth,
            slope,
            dtype,
            net: NetSettings {
                width,
                batch,
                input_size,
                eps_i: pick(rng, &self.eps_i),
                device: self.device,
                backend: self.backend,
                options,
                ..NetSettings::default()
            },
        }
    }
}

/// The entries of member `m` at `seed`.
fn run_member(m: &Member, seed: u64) -> Result<Vec<LawEntryRow>> {
    let p = m
        .net
        .point(0, m.arch, m.depth, m.slope, m.net.eps_i, m.dtype, seed);
    let sweep = m.net.sweep_config(0.0, true, std::slice::from_ref(&p));
    let device = m.net.device.open()?;
    let (_, trace) = run_point(&sweep, &p, &device)?;
    Ok(trace
        .points
        .iter()
        .filter(|t| t.role != Role::Hidden && t.snr_db.is_finite())
        .map(|t| LawEntryRow {
            member: m.index,
            seed,
            index: t.index,
            layer: t.layer.clone(),
            snr_db: t.snr_db,
            law_db: t.predicted_snr_db_law,
            coherent_db: t.predicted_snr_db_coherent,
            rounding_db: t.predicted_snr_db_rounding,
            eq19_db: t.predicted_snr_db,
            alpha_db: t.alpha_db,
            alpha_error_db: t.alpha_error_db,
            step_snr_db: t.step_snr_db,
            chain_step_snr_db: t.chain_step_snr_db,
            injection_corr: t.injection_corr,
            error_signal_corr: t.error_signal_corr,
            error_lag1: t.error_lag1,
        })
        .collect())
}

/// Run the family (module doc), (member, seed) pairs in parallel on the current rayon pool;
/// with `points`, finished pairs are read from and written to that directory. One line per pair
/// on stderr as it finishes.
pub fn run_depth_law(c: &DepthLawConfig, points: Option<&Path>) -> Result<DepthLawData> {
    c.validate()?;
    let members: Vec<Member> = (0..c.networks)
        .map(|i| c.member(i))
        .collect::<Result<_>>()?;
    if let Some(dir) = points {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let jobs: Vec<(&Member, u64)> = members
        .iter()
        .flat_map(|m| c.seeds.iter().map(move |&s| (m, s)))
        .collect();
    let total = jobs.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let per_job: Vec<Vec<LawEntryRow>> = jobs
        .par_iter()
        .map(|&(m, seed)| -> Result<Vec<LawEntryRow>> {
            let file = points.map(|d| d.join(format!("m{}-s{seed}.json", m.index)));
            let start = std::time::Instant::now();
            let (rows, read) = super::cached_point(file.as_deref(), || run_member(m, seed))?;
            let k = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if !read {
                eprintln!(
                    "depth-law: member {} seed {seed} ({}) traced ({k}/{total}, {:.1} s)",
                    m.index,
                    m.describe(),
                    start.elapsed().as_secs_f64()
                );
            }
            Ok(rows)
        })
        .collect::<Result<_>>()?;
    Ok(DepthLawData {
        members,
        entries: per_job.into_iter().flatten().collect(),
    })
}
