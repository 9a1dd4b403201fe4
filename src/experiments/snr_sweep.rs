//! `snr-sweep`: reconstruction SNR over a grid of architectures, depths, slopes, `eps_i`,
//! widths, dtypes and seeds; resumable, shardable, and the CI regression on error bounds.
//!
//! Each grid point builds a network from its seed, draws one unit-Gaussian input batch (seeded,
//! the paper's alpha setting), and traces the per-layer reconstruction SNR
//! ([`crate::measure::trace::snr_trace`]): against the stored activations in the same dtype and
//! against an f64 shadow of the same weights, with the depth-law prediction beside each value.
//!
//! Results under `DIR`: `points/` (one file per finished point, written atomically: what
//! `--resume` and `merge` read), then `snr_sweep.csv` (one row per point and layer),
//! `summary.csv` (one row per point) and `run.json` (config, version, revision, device, backend,
//! timings), regenerated from the point files in grid order, so an interrupted-and-resumed run
//! and a merged sharded run end with exactly the files of an uninterrupted run.
//!
//! The results are one typed value, [`SweepResults`] (the config and the finished points):
//! what [`run_sweep`], [`merge`] and `--resume` produce, what the tables, the figure and
//! `report` read, and [`SweepResults::read`] loads from the point files.

use crate::backend::Backend;
use crate::device::{device_name, DeviceSpec, Precision};
use crate::error::{Error, Result};
use crate::measure::trace::{snr_trace, SnrTrace, TraceOptions};
use crate::nets::{Arch, NetConfig, NetOptions, Network};
use crate::util::write_atomic;
use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

mod results;
mod resume;
pub use results::SweepResults;
use resume::{rekey_points, resumable_points_extending};
pub use resume::{resumable_points, GRID_KEYS};

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

/// Column headers of `snr_sweep.csv`.
pub const TRACE_HEADER: &str = "arch,depth,slope,eps_i,width,dtype,seed,layer_index,layer,role,snr_db,snr_db_f64,alpha_db,predicted_snr_db,step_snr_db,predicted_snr_db_rounding,predicted_snr_db_coherent,lip_forward,lip_inverse";
/// Column headers of `summary.csv`.
pub const SUMMARY_HEADER: &str = "arch,depth,slope,eps_i,width,dtype,seed,layers,lowest_layer,lowest_snr_db,lowest_snr_db_f64,min_snr_db,output_snr_db";

// The float text of result files lives in the results layer (re-exported under its old path).
use crate::results::text::float_text;
pub use crate::results::text::{fmt_f, fmt_f_exact, parse_f};

/// The measured result of one point. Its time, `seconds`, is not part of the result: it is not
/// stored in the point file, and two results are equal when everything else is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointResult {
    /// The point.
    pub point: Point,
    /// Its `summary.csv` line.
    pub summary_line: String,
    /// Its `snr_sweep.csv` lines.
    pub trace_lines: Vec<String>,
    /// Lowest top-level SNR (dB, same-dtype reference).
    #[serde(with = "float_text")]
    pub lowest_snr_db: f64,
    /// Seconds it took.
    #[serde(skip)]
    pub seconds: f64,
}

impl PartialEq for PointResult {
    fn eq(&self, other: &Self) -> bool {
        self.point == other.point
            && self.summary_line == other.summary_line
            && self.trace_lines == other.trace_lines
            && self.lowest_snr_db.to_bits() == other.lowest_snr_db.to_bits()
    }
}

/// The input batch of a point: unit Gaussian images and cyclic labels, from the seed.
pub fn point_batch(cfg: &SweepConfig, seed: u64, device: &Device) -> Result<(Tensor, Tensor)> {
    let mut rng = crate::util::rng_for(seed, "snr-sweep-input");
    let x = crate::util::randn(
        &mut rng,
        &[
            cfg.batch,
            cfg.net.in_channels,
            cfg.input_size,
            cfg.input_size,
        ],
        0.0,
        1.0,
        DType::F64,
        device,
    )?;
    let labels: Vec<u32> = (0..cfg.batch as u32)
        .map(|i| i % cfg.classes as u32)
        .collect();
    Ok((x, Tensor::new(labels, device)?))
}

/// Run one point.
pub fn run_point(cfg: &SweepConfig, p: &Point, device: &Device) -> Result<(PointResult, SnrTrace)> {
    let start = Instant::now();
    let dtype = p.dtype.dtype();
    // An f64 point on a device without f64 (Metal) runs on the CPU.
    let device = &if dtype == DType::F64 {
        crate::device::f64_device(device, crate::device::has_f64(device))
    } else {
        device.clone()
    };
    let net = Network::build_with(&cfg.net_config(p), dtype, device, cfg.backend)?;
    let (x, labels) = point_batch(cfg, p.seed, device)?;
    let opts = TraceOptions {
        output_noise: (cfg.noise_std > 0.0).then_some(cfg.noise_std),
        seed: p.seed,
        depth_law: cfg.depth_law,
        lipschitz: cfg.lipschitz,
    };
    let trace = snr_trace(&net, None, &x, &labels, opts)?;
    // The slope field is empty for architectures without a leaky ReLU (Arch::has_slope).
    let slope = if p.arch.has_slope() {
        p.slope.to_string()
    } else {
        String::new()
    };
    let prefix = format!(
        "{},{},{slope},{},{},{},{}",
        p.arch, p.depth, p.eps_i, p.width, p.dtype, p.seed
    );
    let trace_lines = trace
        .points
        .iter()
        .map(|t| {
            format!(
                "{prefix},{},{},{},{},{},{},{},{},{},{},{},{}",
                t.index,
                t.layer,
                t.role.as_str(),
                fmt_f(t.snr_db),
                fmt_f(t.snr_db_f64),
                fmt_f(t.alpha_db),
                fmt_f(t.predicted_snr_db),
                fmt_f(t.step_snr_db),
                fmt_f(t.predicted_snr_db_rounding),
                fmt_f(t.predicted_snr_db_coherent),
                fmt_f(t.lip_forward),
                fmt_f(t.lip_inverse)
            )
        })
        .collect();
    let (lowest_layer, lowest, lowest64) = match trace.lowest() {
        Some(l) => (l.layer.clone(), l.snr_db, l.snr_db_f64),
        None => ("none".into(), f64::INFINITY, f64::INFINITY),
    };
    let summary_line = format!(
        "{prefix},{},{lowest_layer},{},{},{},{}",
        net.num_layers,
        fmt_f(lowest),
        fmt_f(lowest64),
        fmt_f(trace.min_snr_db()),
        fmt_f(trace.output_snr_db)
    );
    Ok((
        PointResult {
            point: p.clone(),
            summary_line,
            trace_lines,
            lowest_snr_db: lowest,
            seconds: start.elapsed().as_secs_f64(),
        },
        trace,
    ))
}

/// A shard `K/N` (1-based `K`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, 1..=count.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Shard> {
        let bad = || {
            Error::config(
                "shard spec",
                "K/N with 1 <= K <= N (e.g. 2/4)",
                format!("`{s}`"),
            )
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether point `index` of the grid belongs to this shard (round robin).
    pub fn owns(&self, index: usize) -> bool {
        index % self.count == self.index - 1
    }
}

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Skip points already finished in `out`.
    pub resume: bool,
    /// Run only this slice of the grid.
    pub shard: Option<Shard>,
    /// Threads for points in parallel (0: all cores).
    pub threads: usize,
    /// Show a progress bar (terminal) instead of one line per point.
    pub progress_bar: bool,
    /// Print per-point lines (quiet when false and no bar).
    pub verbose: bool,
}

/// What a sweep produced: its results and this invocation's counts and time.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    /// The config and the results of every point present in the output (finished now or
    /// before), in grid order.
    pub results: SweepResults,
    /// Points computed by this run.
    pub computed: usize,
    /// Points skipped because already done.
    pub skipped: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

use crate::experiments::MANIFEST;

#[derive(Serialize, Deserialize, PartialEq)]
struct Manifest {
    config: SweepConfig,
}

fn points_dir(out: &Path) -> PathBuf {
    out.join("points")
}

/// Create `out` (and `out/points`) and check that it is writable, before anything else is done.
pub fn prepare_out(out: &Path) -> Result<()> {
    let dir = points_dir(out);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(|e| Error::io(&probe, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))?;
    Ok(())
}

/// Read the finished points in `out` (with their manifest config).
pub fn read_points(out: &Path) -> Result<(Option<SweepConfig>, Vec<PointResult>)> {
    let dir = points_dir(out);
    let manifest_path = dir.join(MANIFEST);
    let config = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => Some(
            serde_json::from_str::<Manifest>(&text)
                .map_err(|e| Error::data(manifest_path.display(), "a snr-sweep manifest", e))?
                .config,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&manifest_path, e)),
    };
    let mut results = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((config, results)),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == MANIFEST || !name.ends_with(".json") || name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let r: PointResult = serde_json::from_str(&text).map_err(|e| {
            crate::experiments::damaged_point_file(&path, "a snr-sweep point file", e)
        })?;
        results.push(r);
    }
    results.sort_by_key(|r| r.point.index);
    Ok((config, results))
}

/// Remove the point files (and manifest) of an earlier run in `out`.
fn clear_points(out: &Path) -> Result<()> {
    let dir = points_dir(out);
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

fn write_point(out: &Path, r: &PointResult) -> Result<()> {
    let path = points_dir(out).join(format!("{}.json", r.point.key()));
    let text = serde_json::to_string(r).map_err(|e| Error::internal("JSON serialisation", e))?;
    write_atomic(&path, text.as_bytes())
}

/// Write `snr_sweep.csv` and `summary.csv` from `results` (grid order).
pub fn write_tables(out: &Path, results: &[PointResult]) -> Result<()> {
    let mut trace = String::from(TRACE_HEADER);
    trace.push('\n');
    let mut summary = String::from(SUMMARY_HEADER);
    summary.push('\n');
    for r in results {
        for l in &r.trace_lines {
            trace.push_str(l);
            trace.push('\n');
        }
        summary.push_str(&r.summary_line);
        summary.push('\n');
    }
    write_atomic(&out.join("snr_sweep.csv"), trace.as_bytes())?;
    write_atomic(&out.join("summary.csv"), summary.as_bytes())
}

/// Run the sweep described by `cfg` into `opts.out`.
pub fn run_sweep(cfg: &SweepConfig, opts: &RunOptions) -> Result<SweepOutcome> {
    cfg.validate()?;
    let device = cfg.device.open()?;
    prepare_out(&opts.out)?;
    let start = Instant::now();
    let manifest_path = points_dir(&opts.out).join(MANIFEST);
    let done: Vec<PointResult> = if opts.resume {
        let (kept, extended) = resumable_points_extending(&opts.out, cfg)?;
        if extended {
            rekey_points(&opts.out, &kept.points)?;
        }
        kept.points
    } else {
        clear_points(&opts.out)?;
        Vec::new()
    };
    let manifest = serde_json::to_string_pretty(&Manifest {
        config: cfg.clone(),
    })
    .map_err(|e| Error::internal("JSON serialisation", e))?;
    write_atomic(&manifest_path, manifest.as_bytes())?;

    let grid: Vec<Point> = cfg
        .grid()
        .into_iter()
        .filter(|p| opts.shard.is_none_or(|s| s.owns(p.index)))
        .collect();
    let todo: Vec<Point> = grid
        .iter()
        .filter(|p| !done.iter().any(|d| d.point == **p))
        .cloned()
        .collect();
    let skipped = grid.len() - todo.len();
    let bar = if opts.progress_bar {
        let b = indicatif::ProgressBar::new(todo.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} points  {elapsed} elapsed, eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let finished = AtomicUsize::new(0);
    let total = todo.len();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| Error::internal("thread pool", e))?;
    let computed: Vec<PointResult> = pool.install(|| {
        todo.par_iter()
            .map(|p| {
                let (r, _) = run_point(cfg, p, &device)?;
                write_point(&opts.out, &r)?;
                let k = finished.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some(b) = &bar {
                    b.set_message(format!(
                        "{} d{} n{}: {} dB",
                        p.arch,
                        p.depth,
                        p.slope,
                        fmt_f(r.lowest_snr_db)
                    ));
                    b.inc(1);
                } else if opts.verbose {
                    eprintln!(
                        "[{k}/{total}] {} depth {} slope {} {} seed {}: lowest {} dB ({:.2} s)",
                        p.arch,
                        p.depth,
                        p.slope,
                        p.dtype,
                        p.seed,
                        fmt_f(r.lowest_snr_db),
                        r.seconds
                    );
                }
                Ok(r)
            })
            .collect::<Result<Vec<_>>>()
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let n_computed = computed.len();
    let mut results: Vec<PointResult> = done
        .into_iter()
        .filter(|r| grid.contains(&r.point))
        .chain(computed)
        .collect();
    results.sort_by_key(|r| r.point.index);
    let results = SweepResults {
        config: cfg.clone(),
        points: results,
    };
    results.write_tables(&opts.out)?;
    Ok(SweepOutcome {
        results,
        computed: n_computed,
        skipped,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Merge the outputs of shards (each a directory written by `run_sweep` with `--shard`) into
/// `out`: exactly the rows of the unsharded run. All shards must come from the same config and
/// together cover the grid. Returns the merged results (written to `out` as
/// [`SweepResults::write`] does).
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<SweepResults> {
    if dirs.is_empty() {
        return Err(Error::config(
            "merge",
            "at least one shard directory",
            "none",
        ));
    }
    let mut config: Option<SweepConfig> = None;
    let mut all: Vec<PointResult> = Vec::new();
    for d in dirs {
        let (cfg, results) = read_points(d)?;
        let cfg = cfg.ok_or_else(|| {
            let e = format!("a snr-sweep output (with points/{MANIFEST})");
            Error::data(d.display(), e, "a directory without one")
        })?;
        match &config {
            None => config = Some(cfg),
            Some(c) if *c != cfg => {
                return Err(Error::data(
                    d.display(),
                    format!("results of the config of {}", dirs[0].display()),
                    "results of a different config",
                ))
            }
            _ => {}
        }
        for r in results {
            if !all.iter().any(|a| a.point == r.point) {
                all.push(r);
            }
        }
    }
    let config = config.expect("at least one dir");
    let grid = config.grid();
    let missing: Vec<String> = grid
        .iter()
        .filter(|p| !all.iter().any(|a| a.point == **p))
        .map(|p| p.key())
        .collect();
    if !missing.is_empty() {
        return Err(Error::data(
            "merge",
            format!(
                "all {} points of the grid (run the missing shards, or --resume them, first)",
                grid.len()
            ),
            format!("{} missing (first: {})", missing.len(), missing[0]),
        ));
    }
    all.sort_by_key(|r| r.point.index);
    prepare_out(out)?;
    let merged = SweepResults {
        config,
        points: all,
    };
    merged.write(out)?;
    Ok(merged)
}

/// `run.json`: what produced the results (configuration, conventions, [`crate::provenance`],
/// and `extra`: the run's counts and timings).
pub fn write_run_json(out: &Path, cfg: &SweepConfig, extra: serde_json::Value) -> Result<()> {
    write_run_json_resumable(out, cfg, extra, false)
}

/// [`write_run_json`]; with `resume`, an existing `run.json` of the same configuration keeps
/// its original fields (provenance, timings, counts): this invocation is appended to its
/// `resumes` list instead (its provenance and `extra`), and only `points` is updated.
pub fn write_run_json_resumable(
    out: &Path,
    cfg: &SweepConfig,
    extra: serde_json::Value,
    resume: bool,
) -> Result<()> {
    let path = out.join("run.json");
    if resume {
        let old = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .filter(|v| {
                v.get("config")
                    .and_then(|c| serde_json::from_value::<SweepConfig>(c.clone()).ok())
                    .is_some_and(|c| c == *cfg)
            });
        if let Some(mut v) = old {
            let mut entry = serde_json::json!({ "provenance": crate::provenance::record() });
            if let (Some(obj), serde_json::Value::Object(extra)) =
                (entry.as_object_mut(), extra.clone())
            {
                obj.extend(extra);
            }
            if let Some(obj) = v.as_object_mut() {
                if let Some(points) = extra.get("points") {
                    obj.insert("points".into(), points.clone());
                }
                match obj.get_mut("resumes").and_then(|r| r.as_array_mut()) {
                    Some(list) => list.push(entry),
                    None => {
                        obj.insert("resumes".into(), serde_json::json!([entry]));
                    }
                }
            }
            let text = serde_json::to_string_pretty(&v)
                .map_err(|e| Error::internal("JSON serialisation", e))?;
            return write_atomic(&path, text.as_bytes());
        }
    }
    let device = cfg
        .device
        .open()
        .map(|d| device_name(&d))
        .unwrap_or_else(|_| cfg.device.to_string());
    let mut v = serde_json::json!({
        "tool": "snr-sweep",
        "crate_version": env!("CARGO_PKG_VERSION"),
        "git_revision": crate::util::git_revision(),
        "device": device,
        "backend": cfg.backend.as_str(),
        "device_info": crate::device::device_record(cfg.device, cfg.backend),
        "config": cfg,
        "init": init_record(&cfg.net),
        "topology": topology_record(&cfg.net),
        "input": format!("unit Gaussian batch of {} channels from the point's seed", cfg.net.in_channels),
        "conventions": "snr_db vs stored activations in the same dtype; snr_db_f64 vs an f64 shadow with the same weights; inf = exact",
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
    }
    crate::provenance::attach(&mut v);
    let text =
        serde_json::to_string_pretty(&v).map_err(|e| Error::internal("JSON serialisation", e))?;
    write_atomic(&path, text.as_bytes())
}

/// The initialisation of a run, for every result's `run.json`: the conv init scale, the gamma
/// distribution and one line with both.
pub fn init_record(o: &NetOptions) -> serde_json::Value {
    serde_json::json!({
        "description": o.init_description(),
        "init_scale": o.init_scale,
        "gamma_init": o.gamma().to_string(),
    })
}

/// The topology options of a run, for `run.json`: stem, input channels, pools (`null`: each
/// architecture's), F/G chain (`null`: each architecture's) and nesting.
pub fn topology_record(o: &NetOptions) -> serde_json::Value {
    serde_json::json!({
        "stem": o.stem,
        "in_channels": o.in_channels,
        "pools": o.pools,
        "fg": o.fg,
        "nested": o.nested,
        "nested_rule": "with nested = true every depth is the first `depth` units of the deepest network (same weights); poolings are kept only below a kept unit, the head follows the last kept unit",
    })
}

/// The printed summary: per (arch, eps_i, width, dtype, seed), a table of the lowest-layer SNR
/// (dB) per depth and slope, with the f64-shadow figure in parentheses.
pub fn summary_table(results: &[PointResult]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut groups: Vec<(Arch, String, usize, Precision, u64)> = Vec::new();
    for r in results {
        let p = &r.point;
        let g = (p.arch, fmt_f(p.eps_i), p.width, p.dtype, p.seed);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for (arch, eps, width, dtype, seed) in groups {
        let rs: Vec<&PointResult> = results
            .iter()
            .filter(|r| {
                r.point.arch == arch
                    && fmt_f(r.point.eps_i) == eps
                    && r.point.width == width
                    && r.point.dtype == dtype
                    && r.point.seed == seed
            })
            .collect();
        let mut slopes: Vec<f64> = Vec::new();
        let mut depths: Vec<usize> = Vec::new();
        for r in &rs {
            if !slopes.contains(&r.point.slope) {
                slopes.push(r.point.slope);
            }
            if !depths.contains(&r.point.depth) {
                depths.push(r.point.depth);
            }
        }
        let what = if arch.has_blocks() {
            "lowest block input"
        } else {
            "lowest-layer input"
        };
        let _ = writeln!(s, "\n{arch} ({dtype}, width {width}, eps_i {eps}, seed {seed}): {what} SNR in dB, same-dtype reference (f64 shadow)");
        let _ = write!(s, "{:>6}", "depth");
        for sl in &slopes {
            let _ = write!(s, " | {:>17}", format!("n = {sl}"));
        }
        let _ = writeln!(s);
        for d in &depths {
            let _ = write!(s, "{d:>6}");
            for sl in &slopes {
                let cell = rs
                    .iter()
                    .find(|r| r.point.depth == *d && r.point.slope == *sl)
                    .map(|r| {
                        let parts: Vec<&str> = r.summary_line.split(',').collect();
                        let lo = parts
                            .get(9)
                            .and_then(|v| parse_f(v).ok())
                            .unwrap_or(f64::NAN);
                        let lo64 = parts
                            .get(10)
                            .and_then(|v| parse_f(v).ok())
                            .unwrap_or(f64::NAN);
                        format!("{:>7} ({:>7})", short(lo), short(lo64))
                    });
                let _ = write!(s, " | {:>17}", cell.unwrap_or_default());
            }
            let _ = writeln!(s);
        }
    }
    s
}

fn short(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        fmt_f(v)
    }
}

/// The bounds file of the CI regression (`experiments/bounds.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundsFile {
    /// Margin (dB) below the measured values at which bounds were set (documentation).
    pub margin_db: f64,
    /// Settings shared by every bound (a sweep config; its grid fields are ignored).
    #[serde(default)]
    pub defaults: SweepConfig,
    /// The bounds.
    #[serde(rename = "bound")]
    pub bounds: Vec<Bound>,
}

/// One fixed-seed configuration and the lowest-layer SNR it must keep.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    /// Architecture.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// Slope.
    pub slope: f64,
    /// Dtype.
    pub dtype: Precision,
    /// Seed.
    #[serde(default)]
    pub seed: u64,
    /// Minimum `lowest_snr_db` (same-dtype reference).
    pub min_lowest_snr_db: f64,
}

/// One checked bound.
#[derive(Debug, Clone)]
pub struct BoundCheck {
    /// The bound.
    pub bound: Bound,
    /// Measured `lowest_snr_db`.
    pub measured: f64,
}

impl BoundCheck {
    /// Whether the bound holds.
    pub fn ok(&self) -> bool {
        self.measured >= self.bound.min_lowest_snr_db
    }
}

/// Read a bounds file.
pub fn read_bounds(path: &Path) -> Result<BoundsFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let b: BoundsFile = toml::from_str(&text)
        .map_err(|e| Error::config_file(path, crate::nets::toml_error_text(&e)))?;
    if b.bounds.is_empty() {
        let e = "at least one [[bound]] entry";
        return Err(Error::config(path.display(), e, "none"));
    }
    Ok(b)
}

/// Measure every bound's configuration (in parallel) and return the checks in file order.
pub fn check_bounds(file: &BoundsFile, threads: usize) -> Result<Vec<BoundCheck>> {
    let device = file.defaults.device.open()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::internal("thread pool", e))?;
    pool.install(|| {
        file.bounds
            .par_iter()
            .map(|b| {
                let cfg = SweepConfig {
                    depth_law: false,
                    ..file.defaults.clone()
                };
                let p = Point {
                    index: 0,
                    arch: b.arch,
                    depth: b.depth,
                    slope: b.slope,
                    eps_i: cfg.eps_i.first().copied().unwrap_or(0.0),
                    width: cfg.widths.first().copied().unwrap_or(8),
                    dtype: b.dtype,
                    seed: b.seed,
                };
                cfg.net_config(&p).validate()?;
                let (r, _) = run_point(&cfg, &p, &device)?;
                Ok(BoundCheck {
                    bound: b.clone(),
                    measured: r.lowest_snr_db,
                })
            })
            .collect()
    })
}

/// Table of bound checks (all, or only regressions).
pub fn bounds_table(checks: &[BoundCheck], only_failures: bool) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "{:<10} {:>5} {:>6} {:>5} {:>5} {:>10} {:>10} {:>9}  status\n",
        "arch", "depth", "slope", "dtype", "seed", "measured", "bound", "margin"
    );
    for c in checks.iter().filter(|c| !only_failures || !c.ok()) {
        let b = &c.bound;
        let _ = writeln!(
            s,
            "{:<10} {:>5} {:>6} {:>5} {:>5} {:>10} {:>10} {:>9}  {}",
            b.arch.as_str(),
            b.depth,
            b.slope,
            b.dtype,
            b.seed,
            short(c.measured),
            short(b.min_lowest_snr_db),
            short(c.measured - b.min_lowest_snr_db),
            if c.ok() { "ok" } else { "REGRESSED" }
        );
    }
    s
}
