//! The figures of the papers (docs/tools/figures.md lists them), each regenerated from cached experiment results:
//! the experiment driver (configs by kind, cache, provenance, running) between the experiment
//! families (`experiments::{alpha, trace, scaling, precision, bn_eps, memory_table, tradeoff}`)
//! and the renderers (`plot::{alpha, trace, scaling, ...}`, registry in `plot::registry`).
//! Everything is re-exported here under its old path.
//!
//! Every figure id (`fig05`, `fig06`, `fig10`, `fig11`, `fig12`, `fig13`, `fig14`, `fig15`,
//! `revnet-fig4`, `table1`, `precision`, `bn-eps`, `memory-scaling`, `tradeoff`, `lipschitz`)
//! has
//! - a render function `fn(&Results, &Path) -> Result<()>` (e.g. [`fig10`]) that reads its
//!   results and writes `<out>/<id>.png`, `<out>/<id>.svg` and `<out>/<id>.csv` (`table1` also
//!   `<out>/table1.md`); a missing or malformed result file is an error naming the file;
//! - a data source ([`DataSource`]): an experiment run here from `experiments/<id>.toml`
//!   ([`ExperimentConfig`], cached as `<results>/<id>.json`, see [`ensure_results`]), or the
//!   output of the `train` binary (accuracy sweep for `fig12`/`fig15`, angle experiment for
//!   `revnet-fig4`), which is only read: those runs take minutes and are started explicitly.
//!   The two memory figures have built-in configs used when their file does not exist
//!   ([`load_config`]): `table1` the paper's configurations ([`MemoryConfig::paper`], the
//!   `memory --preset paper` run: under a minute in release, once), `memory-scaling` the default
//!   grid ([`MemoryConfig::default`], depths 2-32: about 5 s in release, once).
//!
//! Provenance: each figure's caption line and its CSV's sidecar `<id>.provenance.json` say
//! which config (path and key), seed, dtype, initialisation and git revision produced the
//! results. The key is a hash of the parsed config; cached results are reused while the key
//! matches and recomputed when it changes (or on request).
//!
//! Conventions of the SNR figures: SNR in dB against the stored activation in the same dtype
//! (the paper's reference); theory (alpha formulas, the depth law of eq. 19) as lines,
//! measurements as markers. With pure rounding the first reconstructions are often exact
//! (`+inf`, left out of the plots), so the rounding-only depth-law prediction is anchored at the
//! first finite measurement and then adds each layer's `10 log10(alpha)`
//! ([`anchored_prediction`]); with injected output noise it is anchored at the output SNR
//! ([`crate::measure::trace`]).

use crate::backend::Backend;
use crate::device::{device_name, DeviceSpec, Precision};
use crate::error::{Error, Result};
use crate::util::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use crate::experiments::alpha::*;
pub use crate::experiments::anchors::{AnchorsConfig, AnchorsData, AnchorsPoint};
pub use crate::experiments::bn_eps::*;
pub use crate::experiments::depth_law::{run_depth_law, DepthLawConfig, DepthLawData};
pub use crate::experiments::memory::MemoryConfig;
pub use crate::experiments::memory_table::*;
pub use crate::experiments::net_settings::*;
pub use crate::experiments::precision::*;
pub use crate::experiments::scaling::*;
pub use crate::experiments::trace::*;
pub use crate::experiments::tradeoff::{TradeoffConfig, TradeoffData};
pub use crate::results::csv::write_csv;
pub use crate::results::fit::{fit_line, LineFit};
pub use crate::results::provenance::Provenance;
pub use crate::results::sweep::{DepthSweep, SlopeSweep};
pub use crate::results::text::{num, num_text};

/// The experiment kind (`experiment = "..."` in its config) that produces figure `id`.
pub fn experiment_kind(id: &str) -> Option<&'static str> {
    match id {
        "fig05" | "fig06" => Some("alpha"),
        "fig10" | "fig13" | "lipschitz" => Some("trace"),
        "fig11" | "fig14" => Some("scaling"),
        "precision" => Some("precision"),
        "bn-eps" => Some("bn-eps"),
        "table1" | "memory-scaling" => Some("memory"),
        "tradeoff" => Some("tradeoff"),
        "anchors" => Some("anchors"),
        "depth-law" => Some("depth-law"),
        _ => None,
    }
}

/// An experiment config, tagged by its `experiment` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "experiment", rename_all = "kebab-case")]
pub enum ExperimentConfig {
    /// `fig05`, `fig06`.
    Alpha(AlphaConfig),
    /// `fig10`, `fig13`.
    Trace(TraceConfig),
    /// `fig11`, `fig14`.
    Scaling(ScalingConfig),
    /// `precision`.
    Precision(PrecisionConfig),
    /// `bn-eps`.
    BnEps(BnEpsConfig),
    /// `table1`, `memory-scaling`: the memory experiment ([`crate::experiments::memory`]).
    Memory(MemoryConfig),
    /// `tradeoff`: the memory, time and exactness frontier ([`crate::experiments::tradeoff`]).
    Tradeoff(TradeoffConfig),
    /// `anchors`: anchors needed vs depth and slope ([`crate::experiments::anchors`]).
    Anchors(AnchorsConfig),
    /// `depth-law`: the laws on a random family ([`crate::experiments::depth_law`]).
    DepthLaw(DepthLawConfig),
}

impl ExperimentConfig {
    /// The `experiment` key.
    pub fn kind(&self) -> &'static str {
        match self {
            ExperimentConfig::Alpha(_) => "alpha",
            ExperimentConfig::Trace(_) => "trace",
            ExperimentConfig::Scaling(_) => "scaling",
            ExperimentConfig::Precision(_) => "precision",
            ExperimentConfig::BnEps(_) => "bn-eps",
            ExperimentConfig::Memory(_) => "memory",
            ExperimentConfig::Tradeoff(_) => "tradeoff",
            ExperimentConfig::Anchors(_) => "anchors",
            ExperimentConfig::DepthLaw(_) => "depth-law",
        }
    }

    /// Parse a TOML config; errors name the file.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<ExperimentConfig> {
        toml::from_str(text).map_err(|e| Error::config_file(path, crate::nets::toml_error_text(&e)))
    }

    /// Check every value (and that every network can be built).
    pub fn validate(&self) -> Result<()> {
        let bad = |c: &str, e: &str, g: String| Err(Error::config(c, e, g));
        let check_net = |n: &NetSettings| -> Result<()> {
            n.device.open()?;
            if n.batch == 0 {
                return bad("net.batch", ">= 1", "0".into());
            }
            Ok(())
        };
        match self {
            ExperimentConfig::Alpha(c) => {
                c.device.open()?;
                if c.dtypes.is_empty() {
                    return bad("alpha: dtypes", "at least one value", "none".into());
                }
                if !(c.from > 0.0 && c.to > c.from && c.to.is_finite()) {
                    let got = format!("{} and {}", c.from, c.to);
                    return bad("alpha: from and to", "0 < from < to (finite)", got);
                }
                if c.points < 2 || c.theory_points < 2 || c.samples < 2 {
                    let got = format!("{}, {} and {}", c.points, c.theory_points, c.samples);
                    return bad("alpha: points, theory_points and samples", ">= 2 each", got);
                }
                if !(c.noise_std > 0.0 && c.noise_std.is_finite()) {
                    let got = c.noise_std.to_string();
                    return bad("alpha: noise_std", "a finite value > 0", got);
                }
            }
            ExperimentConfig::Trace(c) => {
                check_net(&c.net)?;
                if !(c.noise_std >= 0.0 && c.noise_std.is_finite()) {
                    let got = c.noise_std.to_string();
                    return bad("trace: noise_std", "a finite value >= 0", got);
                }
                let p = c
                    .net
                    .point(0, c.arch, c.depth, c.slope, c.net.eps_i, c.dtype, c.seed);
                let sweep = c.net.sweep_config(0.0, true, std::slice::from_ref(&p));
                sweep.net_config(&p).validate()?;
            }
            ExperimentConfig::Scaling(c) => {
                check_net(&c.net)?;
                if c.depth_sweep.depths.is_empty() && c.slope_sweep.slopes.is_empty() {
                    let c = "scaling: depth_sweep.depths and slope_sweep.slopes";
                    return bad(c, "at least one value", "no depths and no slopes".into());
                }
                let points = scaling_points(c);
                let sweep = c.net.sweep_config(0.0, true, &points);
                for p in &points {
                    sweep.net_config(p).validate()?;
                }
            }
            ExperimentConfig::Precision(c) => {
                check_net(&c.net)?;
                if c.archs.is_empty() || c.dtypes.is_empty() || c.depths.is_empty() {
                    let c = "precision: archs, dtypes and depths";
                    return bad(c, "at least one value each", "an empty list".into());
                }
                let points = precision_points(c);
                let sweep = c.net.sweep_config(0.0, false, &points);
                for p in &points {
                    sweep.net_config(p).validate()?;
                }
            }
            ExperimentConfig::BnEps(c) => {
                check_net(&c.net)?;
                if c.eps_i.is_empty() || c.eps_i.iter().any(|e| !(e.is_finite() && *e >= 0.0)) {
                    let e = "a non-empty list of finite values >= 0";
                    return bad("bn-eps: eps_i", e, format!("{:?}", c.eps_i));
                }
                if c.alpha.channels == 0
                    || c.alpha.samples < 2
                    || !(c.alpha.noise_std > 0.0)
                    || !(c.alpha.gamma_spread >= 0.0)
                {
                    let a = &c.alpha;
                    let got = format!(
                        "{}, {}, {}, {}",
                        a.channels, a.samples, a.noise_std, a.gamma_spread
                    );
                    let e = ">= 1, >= 2, > 0 and >= 0";
                    return bad(
                        "bn-eps: alpha.channels, samples, noise_std, gamma_spread",
                        e,
                        got,
                    );
                }
                let points = bn_eps_points(c);
                let sweep = c.net.sweep_config(0.0, true, &points);
                for p in &points {
                    sweep.net_config(p).validate()?;
                }
            }
            ExperimentConfig::Memory(c) => c.validate()?,
            ExperimentConfig::Tradeoff(c) => c.validate()?,
            ExperimentConfig::Anchors(c) => c.validate()?,
            ExperimentConfig::DepthLaw(c) => c.validate()?,
        }
        Ok(())
    }

    /// The cache key: a hash of the parsed config (comments and formatting do not count).
    pub fn key(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        let h = crate::results::hash::fnv1a64(text.as_bytes());
        format!("{h:016x}")
    }

    /// Run the experiment on `device` (`cpu`, `cuda[:N]`, `metal[:N]`) instead of its config's:
    /// `figures --device`. A device other than `cpu` is part of the config's key, so results
    /// computed on another device are not reused for it.
    pub fn set_device(&mut self, device: DeviceSpec) {
        match self {
            ExperimentConfig::Alpha(c) => c.device = device,
            ExperimentConfig::Trace(c) => c.net.device = device,
            ExperimentConfig::Scaling(c) => c.net.device = device,
            ExperimentConfig::Precision(c) => c.net.device = device,
            ExperimentConfig::BnEps(c) => c.net.device = device,
            ExperimentConfig::Memory(c) => c.device = device,
            // The tradeoff measures live heap bytes with the counting allocator: CPU only.
            ExperimentConfig::Tradeoff(_) => {}
            ExperimentConfig::Anchors(c) => c.device = device,
            ExperimentConfig::DepthLaw(c) => c.device = device,
        }
    }

    /// The device the experiment runs on, as configured.
    pub fn device(&self) -> DeviceSpec {
        match self {
            ExperimentConfig::Alpha(c) => c.device,
            ExperimentConfig::Trace(c) => c.net.device,
            ExperimentConfig::Scaling(c) => c.net.device,
            ExperimentConfig::Precision(c) => c.net.device,
            ExperimentConfig::BnEps(c) => c.net.device,
            ExperimentConfig::Memory(c) => c.device,
            ExperimentConfig::Tradeoff(_) => DeviceSpec::Cpu,
            ExperimentConfig::Anchors(c) => c.device,
            ExperimentConfig::DepthLaw(c) => c.device,
        }
    }

    /// The backend computing the layers of the experiment.
    pub fn backend(&self) -> Backend {
        match self {
            ExperimentConfig::Alpha(c) => c.backend,
            ExperimentConfig::Trace(c) => c.net.backend,
            ExperimentConfig::Scaling(c) => c.net.backend,
            ExperimentConfig::Precision(c) => c.net.backend,
            ExperimentConfig::BnEps(c) => c.net.backend,
            ExperimentConfig::Memory(c) => c.backend,
            ExperimentConfig::Tradeoff(c) => c.backend,
            ExperimentConfig::Anchors(c) => c.backend,
            ExperimentConfig::DepthLaw(c) => c.backend,
        }
    }

    fn seed_dtype_init(&self) -> (String, String, String) {
        match self {
            ExperimentConfig::DepthLaw(c) => (
                format!("family {}, seeds {:?}", c.family_seed, c.seeds),
                join_dtypes(&c.dtypes),
                format!("{} random networks, held out {:?}", c.networks, c.report),
            ),
            ExperimentConfig::Anchors(c) => (
                c.seed.to_string(),
                c.dtype.to_string(),
                format!(
                    "width {}, probe batch {} of {}x{} synthetic images; trained {} epoch(s) of {} samples, batch {}, lr {}",
                    c.width, c.batch, c.input_size, c.input_size, c.train.epochs, c.train.samples, c.train.batch, c.train.lr
                ),
            ),
            ExperimentConfig::Tradeoff(c) => (
                c.seed.to_string(),
                c.dtype.to_string(),
                format!(
                    "width {}, batch {} of {}x{} unit-Gaussian images, {} stage{}, convolutions Kaiming normal x {}, {} timed steps per source after {} untimed (median), sources interleaved",
                    c.width,
                    c.batch,
                    c.input_size,
                    c.input_size,
                    c.stages,
                    if c.stages == 1 { "" } else { "s" },
                    c.init_scale,
                    c.steps,
                    c.warmup
                ),
            ),
            ExperimentConfig::Alpha(c) => (
                c.seed.to_string(),
                join_dtypes(&c.dtypes),
                format!(
                    "{} unit-Gaussian samples, output noise std {:e}",
                    c.samples, c.noise_std
                ),
            ),
            ExperimentConfig::Trace(c) => (c.seed.to_string(), c.dtype.to_string(), c.net.describe()),
            ExperimentConfig::Scaling(c) => {
                (c.seed.to_string(), c.dtype.to_string(), c.net.describe())
            }
            ExperimentConfig::Precision(c) => {
                (c.seed.to_string(), join_dtypes(&c.dtypes), c.net.describe())
            }
            ExperimentConfig::BnEps(c) => (c.seed.to_string(), c.dtype.to_string(), c.net.describe()),
            ExperimentConfig::Memory(c) => (
                c.seed.to_string(),
                c.dtype.to_string(),
                format!(
                    "width {}, depth {}{}, batch {} of {}x{}, {} stage{}",
                    c.width,
                    c.depth,
                    if c.arch_depths.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " ({})",
                            c.arch_depths
                                .iter()
                                .map(|a| format!("{} {}", a.arch, a.depth))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                    c.batch,
                    c.input_size,
                    c.input_size,
                    c.stages,
                    if c.stages == 1 { "" } else { "s" }
                ),
            ),
        }
    }
}

/// Dtypes of a provenance line: their names joined by `/`.
fn join_dtypes(dtypes: &[Precision]) -> String {
    dtypes
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join("/")
}

/// The config of figure `id`: `<experiments>/<id>.toml`, or when that file does not exist the
/// built-in memory grid of `table1` (the paper preset, [`MemoryConfig::paper`]) and
/// `memory-scaling` (default). Returns the config
/// and the path (or `built-in`) that names it. A missing or invalid file, or a config of the wrong kind, is an
/// error naming the file.
pub fn load_config(id: &str, experiments: &Path) -> Result<(ExperimentConfig, String)> {
    let kind = experiment_kind(id).ok_or_else(|| {
        let got = "one that reads the output of the `train` binary";
        Error::config(id, "a figure computed from an experiment config", got)
    })?;
    let path = experiments.join(format!("{id}.toml"));
    let cfg = match std::fs::read_to_string(&path) {
        Ok(text) => ExperimentConfig::from_toml_str(&text, &path)?,
        // The paper's own configurations (width 32, 32x32, every pooling), measured: the same
        // run as `memory --preset paper`, so the measured columns of the table are the
        // summary.csv of that run.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && id == "table1" => {
            return Ok((
                ExperimentConfig::Memory(MemoryConfig::paper()),
                "built-in MemoryConfig::paper()".into(),
            ));
        }
        // The default grid (depths 2-32, batch 8 of 16x16): about 5 s in release, and the
        // quick grid's small depths and inputs leave the fixed costs dominant.
        // Small networks (width 16, batch 8 of 16x16, one stage) so that every figure stays
        // cheap: tens of seconds in release on 2 cores.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && id == "tradeoff" => {
            return Ok((
                ExperimentConfig::Tradeoff(TradeoffConfig::default()),
                "built-in TradeoffConfig::default()".into(),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && id == "memory-scaling" => {
            return Ok((
                ExperimentConfig::Memory(MemoryConfig::default()),
                "built-in MemoryConfig::default()".into(),
            ));
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    if cfg.kind() != kind {
        return Err(Error::config(
            path.display(),
            format!("experiment = \"{kind}\" (for {id})"),
            format!("experiment = \"{}\"", cfg.kind()),
        ));
    }
    cfg.validate().map_err(|e| e.in_config_file(&path))?;
    Ok((cfg, path.display().to_string()))
}

/// One cached experiment result (`<results>/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultFile {
    /// Figure id.
    pub id: String,
    /// Config file (or `built-in ...`).
    pub config_path: String,
    /// [`ExperimentConfig::key`] of `config`.
    pub config_key: String,
    /// The config.
    pub config: ExperimentConfig,
    /// Provenance.
    pub provenance: Provenance,
    /// The measurements.
    pub data: ResultData,
}

impl ResultFile {
    /// The provenance line of figures and CSVs; it names the CPU that computed the results and
    /// the kernel paths it took (where recorded: some results depend on the CPU, see
    /// docs/tools/figures.md).
    pub fn caption(&self) -> String {
        let p = &self.provenance;
        let cpu = if p.cpu.is_empty() {
            String::new()
        } else {
            format!("; CPU {}; kernels {}", p.cpu, p.kernels)
        };
        format!(
            "{}: config {} (key {}), seed {}, {}, {}; results from rev {} ({}, {:.1} s{cpu})",
            self.id,
            self.config_path,
            &self.config_key[..8.min(self.config_key.len())],
            p.seed,
            p.dtype,
            p.init,
            p.git_revision,
            p.device,
            p.seconds
        )
    }
}

/// The measurements of an experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResultData {
    /// See [`AlphaData`].
    Alpha(AlphaData),
    /// See [`TraceData`].
    Trace(TraceData),
    /// See [`ScalingData`].
    Scaling(ScalingData),
    /// See [`PrecisionData`].
    Precision(PrecisionData),
    /// See [`BnEpsData`].
    BnEps(BnEpsData),
    /// See [`MemoryData`].
    Memory(MemoryData),
    /// See [`TradeoffData`].
    Tradeoff(TradeoffData),
    /// See [`AnchorsData`].
    Anchors(AnchorsData),
    /// See [`DepthLawData`].
    DepthLaw(DepthLawData),
}

/// Where result files live.
#[derive(Debug, Clone)]
pub struct Results {
    /// Cached experiment results (`<dir>/<id>.json`).
    pub dir: PathBuf,
    /// Output of `train --config experiments/accuracy.toml` (`accuracy.csv`, `run.json`).
    pub accuracy_dir: PathBuf,
    /// Output of `train --config experiments/revnet-fig4.toml` (`angles.csv`, `run.json`).
    pub angles_dir: PathBuf,
}

impl Results {
    /// Results cached in `dir`; training results in `results/accuracy` and `results/angles`
    /// (the `train` binary's defaults).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Results {
            dir: dir.into(),
            accuracy_dir: PathBuf::from("results/accuracy"),
            angles_dir: PathBuf::from("results/angles"),
        }
    }

    /// The cache file of `id`.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Read the cached result of `id`; a missing or malformed file is an error naming it.
    pub fn load(&self, id: &str) -> Result<ResultFile> {
        let path = self.path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(missing(&path, format!("results for {id} not available: run `cargo run --release --bin figures -- --only {id}` first")));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let r: ResultFile = serde_json::from_str(&text).map_err(|e| malformed(&path, e))?;
        if r.id != id {
            return Err(malformed(
                &path,
                format!("it holds the results of `{}`, not `{id}`", r.id),
            ));
        }
        Ok(r)
    }

    /// Write a result atomically.
    pub fn store(&self, r: &ResultFile) -> Result<()> {
        let text = serde_json::to_string_pretty(r)
            .map_err(|e| Error::internal(format!("serialising results of {}", r.id), e))?;
        write_atomic(&self.path(&r.id), text.as_bytes())
    }
}

/// A result file that does not parse: an I/O error (`InvalidData`) naming it.
pub(crate) fn malformed(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed result file: {what}"),
        ),
    )
}

/// A result file that does not exist: an I/O error (`NotFound`) naming it and what to run.
pub(crate) fn missing(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::io(
        path,
        std::io::Error::new(std::io::ErrorKind::NotFound, what.to_string()),
    )
}

/// What [`ensure_results`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheStatus {
    /// Cached results with the same config key were reused.
    Reused,
    /// Computed now (seconds); the string says why.
    Computed(f64, String),
}

/// Make sure `<results>/<id>.json` holds results of the current config of `id`: reuse them
/// when the config key matches (unless `rerun`), otherwise run the experiment and store it.
pub fn ensure_results(
    id: &str,
    experiments: &Path,
    results: &Results,
    rerun: bool,
    threads: usize,
) -> Result<CacheStatus> {
    ensure_results_on(id, experiments, results, rerun, threads, None)
}

/// [`ensure_results`] with the experiment's device replaced by `device` when given
/// ([`ExperimentConfig::set_device`]; `figures --device`).
pub fn ensure_results_on(
    id: &str,
    experiments: &Path,
    results: &Results,
    rerun: bool,
    threads: usize,
    device: Option<DeviceSpec>,
) -> Result<CacheStatus> {
    let (mut cfg, config_path) = load_config(id, experiments)?;
    if let Some(device) = device {
        cfg.set_device(device);
    }
    let key = cfg.key();
    let why = if rerun {
        "--rerun".to_string()
    } else {
        match results.load(id) {
            Ok(r) if r.config_key == key => return Ok(CacheStatus::Reused),
            Ok(_) => "config changed".to_string(),
            Err(_) if !results.path(id).exists() => "no cached results".to_string(),
            Err(e) => format!("cached results unreadable ({e})"),
        }
    };
    let t = Instant::now();
    // Experiments that keep finished points (anchors) keep them per config key, until stored.
    let points = results.dir.join(format!("{id}.points")).join(&key);
    if rerun && points.is_dir() {
        std::fs::remove_dir_all(&points).map_err(|e| Error::io(&points, e))?;
    }
    let r = run_experiment_in(id, &cfg, &config_path, threads, Some(&points))?;
    results.store(&r)?;
    if let Some(parent) = points.parent().filter(|p| p.is_dir()) {
        std::fs::remove_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    Ok(CacheStatus::Computed(t.elapsed().as_secs_f64(), why))
}

/// Run the experiment of figure `id` with `cfg` (points in parallel on `threads` threads,
/// 0 = all cores).
pub fn run_experiment(
    id: &str,
    cfg: &ExperimentConfig,
    config_path: &str,
    threads: usize,
) -> Result<ResultFile> {
    run_experiment_in(id, cfg, config_path, threads, None)
}

/// [`run_experiment`], keeping the finished points of a resumable experiment (`anchors`) in
/// `points` (read back by a later run of the same config; ignored by the others).
pub fn run_experiment_in(
    id: &str,
    cfg: &ExperimentConfig,
    config_path: &str,
    threads: usize,
    points: Option<&Path>,
) -> Result<ResultFile> {
    cfg.validate()?;
    if let Some(kind) = experiment_kind(id) {
        if kind != cfg.kind() {
            let (e, got) = (
                format!("an `{kind}` experiment"),
                format!("`{}`", cfg.kind()),
            );
            return Err(Error::config(id, e, got));
        }
    }
    let start = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::internal("thread pool", e))?;
    let used_threads = pool.current_num_threads();
    let (data, device) = match cfg {
        ExperimentConfig::Alpha(c) => (ResultData::Alpha(pool.install(|| run_alpha(c))?), c.device),
        ExperimentConfig::Trace(c) => (
            ResultData::Trace(pool.install(|| run_trace(c))?),
            c.net.device,
        ),
        ExperimentConfig::Scaling(c) => (
            ResultData::Scaling(pool.install(|| run_scaling(c))?),
            c.net.device,
        ),
        ExperimentConfig::Precision(c) => (
            ResultData::Precision(pool.install(|| run_precision(c))?),
            c.net.device,
        ),
        ExperimentConfig::BnEps(c) => (
            ResultData::BnEps(pool.install(|| run_bn_eps(c))?),
            c.net.device,
        ),
        ExperimentConfig::Memory(c) => (ResultData::Memory(run_memory(c)?), c.device),
        ExperimentConfig::Tradeoff(c) => (
            ResultData::Tradeoff(crate::experiments::tradeoff::run(c, |_| {})?),
            DeviceSpec::Cpu,
        ),
        ExperimentConfig::Anchors(c) => (
            ResultData::Anchors(
                pool.install(|| crate::experiments::anchors::run_anchors(c, points))?,
            ),
            c.device,
        ),
        ExperimentConfig::DepthLaw(c) => (
            ResultData::DepthLaw(pool.install(|| run_depth_law(c, points))?),
            c.device,
        ),
    };
    let (device, backend_that_ran) = match device.open() {
        Ok(d) => (
            device_name(&d),
            crate::device::backend_that_ran(cfg.backend(), &d).to_string(),
        ),
        Err(_) => (device.to_string(), cfg.backend().as_str().to_string()),
    };
    let (seed, dtype, init) = cfg.seed_dtype_init();
    let provenance = Provenance {
        git_revision: crate::util::git_revision().unwrap_or_else(|| "unknown".into()),
        crate_version: env!("CARGO_PKG_VERSION").into(),
        seed,
        dtype,
        device,
        backend: cfg.backend(),
        backend_that_ran,
        init,
        seconds: start.elapsed().as_secs_f64(),
        threads: used_threads,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        cpu: crate::provenance::cpu_summary(),
        kernels: crate::backend::cpu::kernel_paths(),
    };
    Ok(ResultFile {
        id: id.into(),
        config_path: config_path.into(),
        config_key: cfg.key(),
        config: cfg.clone(),
        provenance,
        data,
    })
}

pub(crate) fn expect_kind<'a>(
    r: &'a ResultFile,
    res: &Results,
    kind: &str,
) -> Result<&'a ResultData> {
    let got = match &r.data {
        ResultData::Alpha(_) => "alpha",
        ResultData::Trace(_) => "trace",
        ResultData::Scaling(_) => "scaling",
        ResultData::Precision(_) => "precision",
        ResultData::BnEps(_) => "bn-eps",
        ResultData::Memory(_) => "memory",
        ResultData::Tradeoff(_) => "tradeoff",
        ResultData::Anchors(_) => "anchors",
        ResultData::DepthLaw(_) => "depth-law",
    };
    if got != kind {
        return Err(malformed(
            &res.path(&r.id),
            format!("holds `{got}` data, {} needs `{kind}` data", r.id),
        ));
    }
    Ok(&r.data)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `figures --device`: every experiment takes the device; a GPU is part of the key (its
    /// results are not reused as the CPU's), `cpu` keeps the keys of configs that never named
    /// a device.
    #[test]
    fn set_device_reaches_every_experiment_and_keys_gpu_results_apart() {
        let configs = [
            ExperimentConfig::Alpha(AlphaConfig::default()),
            ExperimentConfig::Trace(TraceConfig::default()),
            ExperimentConfig::Scaling(ScalingConfig::default()),
            ExperimentConfig::Precision(PrecisionConfig::default()),
            ExperimentConfig::BnEps(BnEpsConfig::default()),
            ExperimentConfig::Memory(MemoryConfig::default()),
        ];
        for cfg in configs {
            assert_eq!(cfg.device(), DeviceSpec::Cpu);
            let mut same = cfg.clone();
            same.set_device(DeviceSpec::Cpu);
            assert_eq!(same.key(), cfg.key(), "{}", cfg.kind());
            let mut gpu = cfg.clone();
            gpu.set_device(DeviceSpec::Cuda(Some(0)));
            assert_eq!(gpu.device().to_string(), "cuda:0");
            assert_ne!(gpu.key(), cfg.key(), "{}", cfg.kind());
        }
    }

    #[test]
    fn config_key_follows_the_parsed_config() {
        let a = ExperimentConfig::Alpha(AlphaConfig::default());
        let c = AlphaConfig {
            points: 3,
            ..AlphaConfig::default()
        };
        assert_ne!(a.key(), ExperimentConfig::Alpha(c).key());
        assert_eq!(
            a.key(),
            ExperimentConfig::Alpha(AlphaConfig::default()).key()
        );
    }
}
