//! Training experiments: a single run with its files, the accuracy sweeps of Hascoet et al.
//! Fig. 12 and 15 (accuracy with and without reconstruction over depth and slope), and the
//! gradient angle through training of Gomez et al. Fig. 4.
//!
//! Files of a single run (`--out DIR`): `history.csv` (per epoch, no timing), `timings.csv`
//! (wall seconds per epoch), `angles.csv` and
//! `angles_layers.csv` (when the probe is on), `result.json`, `run.json`, and the checkpoints
//! of [`crate::train`].
//!
//! Files of the accuracy sweep: `points/` (one JSON per finished run, what `--resume` reads),
//! `accuracy.csv` (one row per run, grid order, rewritten after every run), `timings.csv` (the
//! runs' wall times), `run.json`.
//! Files of the angle experiment: `angles.csv`, `angles_layers.csv`, `summary.csv`,
//! `timings.csv`, `run.json`.
//! No data CSV holds a wall time: a rerun of the same config writes them byte-identical (on the
//! CPU); the times go to the `timings.csv` sidecars. Every file is written atomically.

use crate::data::DataSplit;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::experiments::snr_sweep::{fmt_f, Shard};
use crate::nets::{Arch, NetOptions, Source};
use crate::results::csv::csv_text;
use crate::train::{read_toml, train, Progress, TrainConfig, TrainOptions, TrainOutcome};
use crate::util::write_atomic;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

mod angles;
mod extend;
pub use angles::*;
pub use extend::{extended_results, ACCURACY_GRID_KEYS};
pub mod records;

/// Create `out` and check that it is writable, before anything else is done.
pub fn prepare_out(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"").map_err(|e| Error::io(&probe, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::internal("JSON serialisation", e))
}

/// `run.json`: what produced the results.
pub fn write_run_json(
    out: &Path,
    experiment: &str,
    config: serde_json::Value,
    train: &TrainConfig,
    data: &DataSplit,
    extra: serde_json::Value,
) -> Result<()> {
    let device = train
        .device
        .open()
        .map(|d| device_name(&d))
        .unwrap_or_else(|_| train.device.to_string());
    let parsed = crate::data::parse_data_spec(&train.data, train.data_seed).ok();
    let source = parsed
        .as_ref()
        .map(|s| s.describe())
        .unwrap_or_else(|| train.data.clone());
    // Each data file with its size and FNV-1a 64 hash (a checksum of the bytes as stored,
    // gzipped or not; not cryptographic), so a result names exactly the data it came from.
    let files: Vec<serde_json::Value> = parsed
        .map(|s| s.files())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let bytes = std::fs::read(p).ok()?;
            Some(serde_json::json!({
                "path": p.display().to_string(),
                "bytes": bytes.len(),
                "fnv1a64": format!("{:016x}", crate::results::hash::fnv1a64(&bytes)),
            }))
        })
        .collect();
    let mut v = serde_json::json!({
        "tool": "train",
        "experiment": experiment,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "git_revision": crate::util::git_revision(),
        "device": device,
        "backend": train.backend.as_str(),
        "device_info": crate::device::device_record(train.device, train.backend),
        "dtype": train.dtype,
        "config": config,
        "data": { "source": source, "files": files, "train": data.train.len(), "test": data.test.len(), "classes": data.classes(), "image": data.train.image_dims() },
        "optimiser": "SGD, momentum buffer v = mu v + (g + wd w) (coupled L2 weight decay on every parameter), w -= lr v",
        "schedule": format!("one-cycle per step: lr/{} -> lr over the first {} of the steps, then linear to lr/{}", train.lr_div, train.warmup, train.lr_final_div),
        "init": crate::experiments::snr_sweep::init_record(&train.net),
        "topology": crate::experiments::snr_sweep::topology_record(&NetOptions { in_channels: data.train.image_dims().0, ..train.net.clone() }),
        "test_accuracy": "eval mode (running batch-norm statistics), whole test split",
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
    }
    crate::provenance::attach(&mut v);
    write_atomic(&out.join("run.json"), to_json(&v)?.as_bytes())
}

/// How to run [`single_run`].
#[derive(Debug, Clone)]
pub struct SingleRunOptions {
    /// Output (and checkpoint) directory.
    pub out: PathBuf,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    /// Progress display.
    pub progress: Progress,
}

/// One training run with its result files (see the module doc).
pub fn single_run(cfg: &TrainConfig, opts: &SingleRunOptions) -> Result<TrainOutcome> {
    cfg.validate()?;
    prepare_out(&opts.out)?;
    let data = cfg.load_data()?;
    let train_opts = TrainOptions {
        run_dir: Some(opts.out.clone()),
        resume: opts.resume,
        stop_after: None,
        progress: opts.progress,
        label: String::new(),
    };
    let (_, outcome) = train(cfg, &data, &train_opts)?;
    let history: Vec<Vec<String>> = outcome
        .history
        .iter()
        .map(|h| {
            vec![
                h.epoch.to_string(),
                fmt_f(h.train_loss),
                fmt_f(h.train_acc),
                fmt_f(h.lr),
            ]
        })
        .collect();
    // Wall times go to timings.csv so that history.csv of a rerun is byte-identical.
    write_atomic(
        &opts.out.join("history.csv"),
        csv_text(&["epoch", "train_loss", "train_acc", "lr"], &history)?.as_bytes(),
    )?;
    let timings: Vec<Vec<String>> = outcome
        .history
        .iter()
        .map(|h| vec![h.epoch.to_string(), fmt_f(h.seconds)])
        .collect();
    write_atomic(
        &opts.out.join("timings.csv"),
        csv_text(&["epoch", "seconds"], &timings)?.as_bytes(),
    )?;
    if !outcome.angles.is_empty() {
        let total = data.train.len() / cfg.batch * cfg.epochs;
        let (rows, layers) = angle_rows(cfg, &outcome.angles, total);
        write_atomic(
            &opts.out.join("angles.csv"),
            csv_text(&ANGLES_HEADER, &rows)?.as_bytes(),
        )?;
        write_atomic(
            &opts.out.join("angles_layers.csv"),
            csv_text(&ANGLE_LAYERS_HEADER, &layers)?.as_bytes(),
        )?;
    }
    write_atomic(&opts.out.join("result.json"), to_json(&outcome)?.as_bytes())?;
    write_run_json(
        &opts.out,
        "single",
        serde_json::to_value(cfg).map_err(|e| Error::internal("JSON serialisation", e))?,
        cfg,
        &data,
        serde_json::json!({ "seed": cfg.seed, "seconds": outcome.seconds }),
    )?;
    Ok(outcome)
}

/// The depth sweep (every depth at one slope, Fig. 12/15 right) and the slope sweep (every slope
/// at one depth, Fig. 12/15 left): the results layer's, shared with the scaling experiment.
pub use crate::results::sweep::{DepthSweep, SlopeSweep};

/// The accuracy sweeps (`experiments/accuracy.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccuracyConfig {
    /// Must be `accuracy`.
    pub experiment: String,
    /// Architectures.
    pub archs: Vec<Arch>,
    /// Modes each point is trained in (same seed, same data order).
    pub modes: Vec<Source>,
    /// Seeds per point.
    pub seeds: Vec<u64>,
    /// Depth sweep.
    pub depth_sweep: DepthSweep,
    /// Slope sweep.
    pub slope_sweep: SlopeSweep,
    /// Peak learning rate per architecture (others use `train.lr`).
    pub arch_lr: HashMap<Arch, f64>,
    /// Everything else of each run (its arch, depth, slope, mode and seed are overridden).
    pub train: TrainConfig,
}

/// Data of the accuracy sweep's runs (see [`AccuracyConfig::default`]).
pub const ACCURACY_DATA: &str = "synthetic:train=3000,test=1000,size=16";

impl Default for AccuracyConfig {
    fn default() -> Self {
        AccuracyConfig {
            experiment: "accuracy".into(),
            archs: vec![Arch::Layerwise, Arch::Hybrid],
            modes: vec![Source::Stored, Source::Reconstructed],
            seeds: vec![0],
            depth_sweep: DepthSweep {
                slope: 0.2,
                depths: vec![2, 4, 6, 8, 10, 12, 16],
            },
            slope_sweep: SlopeSweep {
                depth: 6,
                slopes: vec![0.01, 0.02, 0.05, 0.2, 1.0],
            },
            arch_lr: HashMap::from([(Arch::Hybrid, 0.05)]),
            // Twice the single run's data and one more epoch: the hybrid overfits 1500 images
            // (depth 8: 78% train vs 43% test accuracy after 6 epochs), and the sweep still
            // takes about 12 minutes on 2 cores.
            // The recipe the accuracy figures were measured with: conv init 0.5 x Kaiming
            // (the tools' default is 1, Kaiming normal).
            train: TrainConfig {
                epochs: 4,
                data: ACCURACY_DATA.into(),
                net: NetOptions {
                    init_scale: 0.5,
                    ..NetOptions::default()
                },
                ..TrainConfig::default()
            },
        }
    }
}

/// One run of the accuracy sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracyPoint {
    /// Position in the grid.
    pub index: usize,
    /// Architecture.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// Slope.
    pub slope: f64,
    /// Mode.
    pub mode: Source,
    /// Seed.
    pub seed: u64,
    /// Which sweeps the point belongs to: `depth`, `slope` or `depth+slope`.
    pub sweep: String,
}

impl AccuracyPoint {
    /// A stable, file-name-safe key.
    pub fn key(&self) -> String {
        format!(
            "{:04}-{}-d{}-n{}-{}-s{}",
            self.index,
            self.arch,
            self.depth,
            self.slope,
            self.mode.as_str(),
            self.seed
        )
    }
}

/// Header of `accuracy.csv`. No timing column: the wall time of each run goes to
/// `timings.csv` ([`ACCURACY_TIMINGS_HEADER`]), so that a rerun writes the same bytes.
pub const ACCURACY_HEADER: [&str; 17] = [
    "arch",
    "depth",
    "slope",
    "mode",
    "seed",
    "test_acc",
    "train_loss",
    "train_acc",
    "epochs",
    "layers",
    "test_loss",
    "steps",
    "sweep",
    "status",
    "diagnosis",
    "acc_counted_as",
    "collapse_layer",
];

/// Header of the accuracy sweep's `timings.csv`: the key columns of `accuracy.csv` and the
/// run's wall time (`seconds`, s), one row per run in grid order.
pub const ACCURACY_TIMINGS_HEADER: [&str; 6] =
    ["arch", "depth", "slope", "mode", "seed", "seconds"];

/// Position of `name` in [`ACCURACY_HEADER`].
fn accuracy_col(name: &str) -> usize {
    ACCURACY_HEADER
        .iter()
        .position(|h| *h == name)
        .expect("a column of accuracy.csv")
}

/// The result of one run of the sweep. A diverged run is a result: its `test_acc` is chance
/// (`1 / classes`, the accuracy of the weights a non-finite update would leave), marked
/// `acc_counted_as = chance` and `status = diverged`, with the step (`steps`) and the layer
/// whose reconstruction SNR collapsed (`collapse_layer`); means over seeds include it.
///
/// Stored as `points/<key>.json`. Point files written before the wall time left
/// `accuracy.csv` (an 18-field `row` with `seconds` as its tenth field) still load: the field
/// is moved out of the row into [`AccuracyResult::seconds`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "AccuracyResultFile")]
pub struct AccuracyResult {
    /// The point.
    pub point: AccuracyPoint,
    /// Its `accuracy.csv` row ([`ACCURACY_HEADER`]).
    pub row: Vec<String>,
    /// Wall time of the run, seconds (its row of `timings.csv`).
    pub seconds: f64,
}

/// [`AccuracyResult`] as a point file holds it, in the current layout or the older one.
#[derive(Deserialize)]
struct AccuracyResultFile {
    point: AccuracyPoint,
    row: Vec<String>,
    #[serde(default)]
    seconds: Option<f64>,
}

/// Fields of an `accuracy.csv` row while it still had `seconds` (after `epochs`).
const OLD_ACCURACY_FIELDS: usize = 18;
/// Position of `seconds` in that row.
const OLD_ACCURACY_SECONDS: usize = 9;

impl From<AccuracyResultFile> for AccuracyResult {
    fn from(f: AccuracyResultFile) -> Self {
        let mut row = f.row;
        let seconds = seconds_of_point_file(
            f.seconds,
            &mut row,
            OLD_ACCURACY_FIELDS,
            OLD_ACCURACY_SECONDS,
        );
        AccuracyResult {
            point: f.point,
            row,
            seconds,
        }
    }
}

/// The wall time of a run read from its point file: the file's `seconds` field, or, in a file
/// written while timings were still a CSV column, that column taken out of `row` (a row of
/// `old_fields` fields with the time at `old_pos`), so that `row` is in the current layout.
/// NaN when neither holds a number.
pub(crate) fn seconds_of_point_file(
    seconds: Option<f64>,
    row: &mut Vec<String>,
    old_fields: usize,
    old_pos: usize,
) -> f64 {
    match seconds {
        Some(s) => s,
        None if row.len() == old_fields => {
            crate::results::text::parse_f(&row.remove(old_pos)).unwrap_or(f64::NAN)
        }
        None => f64::NAN,
    }
}

impl AccuracyResult {
    /// The field `name` of its row (empty when the row lacks it).
    pub fn field(&self, name: &str) -> &str {
        self.row.get(accuracy_col(name)).map_or("", |s| s.as_str())
    }

    /// Whether the run diverged.
    pub fn diverged(&self) -> bool {
        self.field("status") == "diverged"
    }

    /// Test accuracy as counted: the evaluated one, or chance for a diverged run.
    pub fn test_acc(&self) -> f64 {
        crate::experiments::snr_sweep::parse_f(self.field("test_acc")).unwrap_or(f64::NAN)
    }

    /// Its row of `timings.csv` ([`ACCURACY_TIMINGS_HEADER`]).
    pub fn timing_row(&self) -> Vec<String> {
        let mut r: Vec<String> = self.row.iter().take(5).cloned().collect();
        r.push(format!("{:.2}", self.seconds));
        r
    }
}

impl AccuracyConfig {
    /// Read a TOML config; unknown keys and bad values are errors naming the file.
    pub fn from_toml_file(path: &Path) -> Result<AccuracyConfig> {
        read_toml(path)
    }

    /// Check every value and every network of the grid.
    pub fn validate(&self) -> Result<()> {
        if self.experiment != "accuracy" {
            let got = format!("`{}`", self.experiment);
            return Err(Error::config(
                "experiment (accuracy config)",
                "`accuracy`",
                got,
            ));
        }
        if self.archs.is_empty() || self.modes.is_empty() || self.seeds.is_empty() {
            return Err(Error::config(
                "archs, modes and seeds",
                "at least one value each",
                "an empty grid",
            ));
        }
        if self.depth_sweep.depths.is_empty() && self.slope_sweep.slopes.is_empty() {
            let (c, e) = (
                "depth_sweep.depths and slope_sweep.slopes",
                "at least one value",
            );
            return Err(Error::config(
                c,
                e,
                "an empty grid: no depths and no slopes",
            ));
        }
        use crate::limits::check_distinct;
        check_distinct("archs", &self.archs)?;
        check_distinct("modes", &self.modes)?;
        check_distinct("seeds", &self.seeds)?;
        check_distinct("depth_sweep.depths", &self.depth_sweep.depths)?;
        check_distinct("slope_sweep.slopes", &self.slope_sweep.slopes)?;
        for p in self.grid() {
            self.run_config(&p).validate()?;
        }
        Ok(())
    }

    /// The grid: per arch, the depth sweep then the slope sweep (a shared point once), each
    /// with every seed and mode.
    pub fn grid(&self) -> Vec<AccuracyPoint> {
        let mut nets: Vec<(usize, f64, String)> = Vec::new();
        let mut add = |d: usize, s: f64, sweep: &str| match nets
            .iter_mut()
            .find(|(d0, s0, _)| *d0 == d && *s0 == s)
        {
            Some(n) if !n.2.contains(sweep) => n.2 = format!("{}+{sweep}", n.2),
            Some(_) => {}
            None => nets.push((d, s, sweep.to_string())),
        };
        for &d in &self.depth_sweep.depths {
            add(d, self.depth_sweep.slope, "depth");
        }
        for &s in &self.slope_sweep.slopes {
            add(self.slope_sweep.depth, s, "slope");
        }
        let mut points = Vec::new();
        for &arch in &self.archs {
            for (depth, slope, sweep) in &nets {
                for &seed in &self.seeds {
                    for &mode in &self.modes {
                        points.push(AccuracyPoint {
                            index: points.len(),
                            arch,
                            depth: *depth,
                            slope: *slope,
                            mode,
                            seed,
                            sweep: sweep.clone(),
                        });
                    }
                }
            }
        }
        points
    }

    /// The training run of a point.
    pub fn run_config(&self, p: &AccuracyPoint) -> TrainConfig {
        let lr = self.arch_lr.get(&p.arch).copied().unwrap_or(self.train.lr);
        TrainConfig {
            arch: p.arch,
            depth: p.depth,
            slope: p.slope,
            mode: p.mode,
            seed: p.seed,
            lr,
            angle_every: 0,
            nested_depth: self.train.net.nested.then(|| {
                let points = self.grid();
                let same = points.iter().filter(|q| q.arch == p.arch);
                same.map(|q| q.depth).max().unwrap_or(p.depth)
            }),
            ..self.train.clone()
        }
    }
}

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Skip runs already finished in `out`.
    pub resume: bool,
    /// Run only this slice of the runs (round robin over the grid order); join the shards'
    /// directories with [`merge`].
    pub shard: Option<Shard>,
    /// Points in parallel (0: all cores).
    pub threads: usize,
    /// Progress display.
    pub progress: Progress,
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::internal("thread pool", e))
}

fn bar(progress: Progress, len: usize) -> Option<indicatif::ProgressBar> {
    (progress == Progress::Bar).then(|| {
        let b = indicatif::ProgressBar::new(len as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} runs  {elapsed} elapsed, eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    })
}

/// Print a per-run line above the bar, or on stderr.
fn report(bar: &Option<indicatif::ProgressBar>, progress: Progress, line: String) {
    match bar {
        Some(b) => {
            b.println(line);
            b.inc(1);
        }
        None if progress == Progress::Lines => eprintln!("{line}"),
        None => {}
    }
}

/// Train one point; a diverged run is a result (status `diverged`), other errors are errors.
pub fn run_accuracy_point(
    cfg: &AccuracyConfig,
    p: &AccuracyPoint,
    data: &DataSplit,
) -> Result<AccuracyResult> {
    let start = Instant::now();
    let run = cfg.run_config(p);
    let head = vec![
        p.arch.to_string(),
        p.depth.to_string(),
        p.slope.to_string(),
        p.mode.as_str().to_string(),
        p.seed.to_string(),
    ];
    let mut row = head;
    let seconds = match train(&run, data, &TrainOptions::default()) {
        Ok((_, o)) => {
            row.extend([
                fmt_f(o.test_acc),
                fmt_f(o.train_loss),
                fmt_f(o.train_acc),
                o.epochs.to_string(),
                o.layers.to_string(),
                fmt_f(o.test_loss),
                o.steps.to_string(),
                p.sweep.clone(),
                "ok".into(),
                String::new(),
                "test".into(),
                String::new(),
            ]);
            o.seconds
        }
        Err(Error::Diverged {
            step,
            diagnosis,
            layer,
        }) => {
            let layers = crate::nets::Network::build_with(
                &run.net_config_for(data)?,
                candle_core::DType::F32,
                &candle_core::Device::Cpu,
                run.backend,
            )
            .map(|n| n.num_layers.to_string())
            .unwrap_or_default();
            let steps_per_epoch = data.train.len() / run.batch;
            row.extend([
                fmt_f(1.0 / data.classes().max(1) as f64),
                fmt_f(f64::NAN),
                fmt_f(f64::NAN),
                (step / steps_per_epoch).to_string(),
                layers,
                fmt_f(f64::NAN),
                step.to_string(),
                p.sweep.clone(),
                "diverged".into(),
                diagnosis,
                "chance".into(),
                layer.unwrap_or_default(),
            ]);
            start.elapsed().as_secs_f64()
        }
        Err(e) => return Err(e),
    };
    Ok(AccuracyResult {
        point: p.clone(),
        row,
        seconds,
    })
}

use crate::experiments::MANIFEST;

/// `accuracy.csv` and its `timings.csv`, in grid order.
fn write_accuracy_csv(out: &Path, results: &[AccuracyResult]) -> Result<()> {
    let mut sorted: Vec<&AccuracyResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.point.index);
    let rows: Vec<Vec<String>> = sorted.iter().map(|r| r.row.clone()).collect();
    let timings: Vec<Vec<String>> = sorted.iter().map(|r| r.timing_row()).collect();
    write_atomic(
        &out.join("timings.csv"),
        csv_text(&ACCURACY_TIMINGS_HEADER, &timings)?.as_bytes(),
    )?;
    write_atomic(
        &out.join("accuracy.csv"),
        csv_text(&ACCURACY_HEADER, &rows)?.as_bytes(),
    )
}

/// The resumable, shardable core of both experiments. Restores the finished runs of
/// `opts.out/points` (`--resume`, checked against `cfg`'s manifest; otherwise removes them) and
/// writes the manifest; `plan` turns the restored results into those still valid and the runs
/// to compute, in the order to compute them. They run on `opts.threads` threads, taken in that
/// order; each result is written to `points/<key>.json` as soon as it exists, reported with
/// `line`, and `write` then rewrites the CSVs from every result so far. Returns every result
/// (unordered) and how many were computed.
#[allow(clippy::too_many_arguments)]
fn run_points<C, P, R>(
    cfg: &C,
    opts: &SweepOptions,
    plan: impl FnOnce(Vec<R>) -> (Vec<R>, Vec<P>),
    run: impl Fn(&P) -> Result<R> + Sync,
    key: impl Fn(&P) -> String + Sync,
    line: impl Fn(&P, &R) -> String + Sync,
    write: impl Fn(&[R]) -> Result<()> + Sync,
) -> Result<(Vec<R>, usize)>
where
    C: Serialize + serde::de::DeserializeOwned + PartialEq,
    P: Send,
    R: Serialize + serde::de::DeserializeOwned + Send,
{
    let done: Vec<R> = if opts.resume {
        read_points(&opts.out, cfg)?
    } else {
        clear_points(&opts.out)?;
        Vec::new()
    };
    let points_dir = opts.out.join("points");
    write_atomic(&points_dir.join(MANIFEST), to_json(cfg)?.as_bytes())?;
    let (kept, todo) = plan(done);
    let total = todo.len();
    let results = Mutex::new(kept);
    let bar = bar(opts.progress, total);
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let queue = Mutex::new(todo.into_iter());
    pool(opts.threads)?.install(|| {
        rayon::iter::repeat(())
            .take(total)
            .map(|_| -> Result<()> {
                let Some(p) = queue.lock().expect("queue").next() else {
                    return Ok(());
                };
                let r = run(&p)?;
                write_atomic(
                    &points_dir.join(format!("{}.json", key(&p))),
                    to_json(&r)?.as_bytes(),
                )?;
                let k = finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                report(
                    &bar,
                    opts.progress,
                    format!("[{k}/{total}] {}", line(&p, &r)),
                );
                let mut all = results.lock().expect("results");
                all.push(r);
                write(&all)
            })
            .collect::<Result<Vec<()>>>()
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok((results.into_inner().expect("results"), total))
}

/// An experiment's own `run.json` fields (`own`, an object) with the fields both experiments
/// share added.
fn sweep_fields(
    mut own: serde_json::Value,
    opts: &SweepOptions,
    runs: usize,
    computed: usize,
    start: Instant,
    run_seconds: f64,
) -> serde_json::Value {
    let threads = if opts.threads == 0 {
        rayon::current_num_threads()
    } else {
        opts.threads
    };
    let shared = serde_json::json!({ "threads": threads, "runs": runs, "computed": computed, "shard": opts.shard.map(|s| format!("{}/{}", s.index, s.count)), "wall_seconds": start.elapsed().as_secs_f64(), "run_seconds_sum": run_seconds });
    if let (Some(o), serde_json::Value::Object(shared)) = (own.as_object_mut(), shared) {
        o.extend(shared);
    }
    own
}

/// Run the accuracy sweep into `opts.out`; returns the results in grid order.
pub fn run_accuracy(cfg: &AccuracyConfig, opts: &SweepOptions) -> Result<Vec<AccuracyResult>> {
    cfg.validate()?;
    prepare_out(&opts.out)?;
    if opts.resume {
        // A config that only adds grid values keeps the finished runs (see `extend`).
        extend::extend_accuracy_grid(&opts.out, cfg)?;
    }
    let start = Instant::now();
    let data = cfg.train.load_data()?;
    let grid = cfg.grid();
    let plan = |done: Vec<AccuracyResult>| {
        let mut todo: Vec<AccuracyPoint> = grid
            .iter()
            .filter(|p| opts.shard.is_none_or(|s| s.owns(p.index)))
            .filter(|p| !done.iter().any(|d| d.point == **p))
            .cloned()
            .collect();
        // Longest runs first, so the parallel tail is short.
        let cost = |p: &AccuracyPoint| p.depth * p.arch.spec().unit_cost;
        todo.sort_by_key(|p| std::cmp::Reverse(cost(p)));
        let kept = done
            .into_iter()
            .filter(|r| grid.contains(&r.point))
            .collect();
        (kept, todo)
    };
    let line = |p: &AccuracyPoint, r: &AccuracyResult| {
        let status = if r.diverged() {
            format!(
                "diverged at step {} (SNR collapsed at `{}`), counted at chance",
                r.field("steps"),
                r.field("collapse_layer")
            )
        } else {
            format!("test acc {:.1}%", 100.0 * r.test_acc())
        };
        format!(
            "{} depth {} slope {} {} seed {}: {status} ({:.2} s)",
            p.arch,
            p.depth,
            p.slope,
            p.mode.as_str(),
            p.seed,
            r.seconds
        )
    };
    let (mut results, total) = run_points(
        cfg,
        opts,
        plan,
        |p| run_accuracy_point(cfg, p, &data),
        AccuracyPoint::key,
        line,
        |all| write_accuracy_csv(&opts.out, all),
    )?;
    results.sort_by_key(|r| r.point.index);
    write_accuracy_csv(&opts.out, &results)?;
    let run_seconds = results
        .iter()
        .map(|r| {
            if r.seconds.is_finite() {
                r.seconds
            } else {
                0.0
            }
        })
        .sum::<f64>();
    write_run_json(
        &opts.out,
        "accuracy",
        serde_json::to_value(cfg).map_err(|e| Error::internal("JSON serialisation", e))?,
        &cfg.train,
        &data,
        sweep_fields(
            serde_json::json!({ "seeds": cfg.seeds, "diverged": "a diverged run counts at chance (1/classes) in every mean, status `diverged`, acc_counted_as `chance`" }),
            opts,
            results.len(),
            total,
            start,
            run_seconds,
        ),
    )?;
    Ok(results)
}

/// Mean and sample standard deviation (`n - 1`; 0 for one value) of `v`; NaN when empty.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One point of the accuracy sweep over seeds: counted test accuracies (diverged runs at
/// chance) per mode, and the paired stored-minus-reconstructed differences (same seed).
#[derive(Debug, Clone, Default)]
pub struct PointStats {
    /// Stored accuracies, one per seed.
    pub stored: Vec<f64>,
    /// Reconstructed accuracies, one per seed.
    pub reconstructed: Vec<f64>,
    /// `stored - reconstructed` per seed that has both.
    pub diff: Vec<f64>,
    /// Diverged runs (stored, reconstructed).
    pub diverged: (usize, usize),
}

/// The statistics of `(arch, depth, slope)` over the seeds in `results`.
pub fn point_stats(results: &[AccuracyResult], arch: Arch, depth: usize, slope: f64) -> PointStats {
    let mut st = PointStats::default();
    let mut by_seed: std::collections::BTreeMap<u64, (Option<f64>, Option<f64>)> =
        Default::default();
    for r in results
        .iter()
        .filter(|r| r.point.arch == arch && r.point.depth == depth && r.point.slope == slope)
    {
        let a = r.test_acc();
        let e = by_seed.entry(r.point.seed).or_default();
        match r.point.mode {
            Source::Stored => {
                st.stored.push(a);
                st.diverged.0 += usize::from(r.diverged());
                e.0 = Some(a);
            }
            Source::Reconstructed => {
                st.reconstructed.push(a);
                st.diverged.1 += usize::from(r.diverged());
                e.1 = Some(a);
            }
            // Its gradients are bitwise the stored ones (the same run): the table pairs stored
            // with reconstructed only.
            Source::Checkpointed => {}
        }
    }
    st.diff = by_seed
        .values()
        .filter_map(|(a, b)| Some((*a)? - (*b)?))
        .collect();
    st
}

/// Table of stored vs reconstructed test accuracy (mean ± sample std over seeds, %; diverged
/// runs counted at chance and counted in the last column) and the paired stored-minus-
/// reconstructed difference, per sweep and arch.
pub fn accuracy_table(cfg: &AccuracyConfig, results: &[AccuracyResult]) -> String {
    use std::fmt::Write;
    let pm = |v: &[f64]| {
        let (m, sd) = mean_std(v);
        if m.is_finite() && v.len() == 1 {
            // One seed has no spread to show.
            format!("{:.1}", 100.0 * m)
        } else if m.is_finite() {
            format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * sd)
        } else {
            "-".into()
        }
    };
    let mut s = String::new();
    for &arch in &cfg.archs {
        let sweeps: [(&str, Vec<(usize, f64)>); 2] = [
            (
                &*format!("depth sweep at slope {}", cfg.depth_sweep.slope),
                cfg.depth_sweep
                    .depths
                    .iter()
                    .map(|&d| (d, cfg.depth_sweep.slope))
                    .collect(),
            ),
            (
                &*format!("slope sweep at depth {}", cfg.slope_sweep.depth),
                cfg.slope_sweep
                    .slopes
                    .iter()
                    .map(|&n| (cfg.slope_sweep.depth, n))
                    .collect(),
            ),
        ];
        for (title, pts) in sweeps.iter() {
            if pts.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "\n{arch}, {title}: test accuracy %, {}",
                match cfg.seeds.len() {
                    1 => "one seed (no spread)".to_string(),
                    n => format!("mean ± std over {n} seeds"),
                }
            );
            let _ = writeln!(
                s,
                "{:>6} {:>6} {:>13} {:>14} {:>17} {:>9}",
                "depth", "slope", "stored", "reconstructed", "stored - recon", "diverged"
            );
            for &(d, n) in pts {
                let st = point_stats(results, arch, d, n);
                let _ = writeln!(
                    s,
                    "{d:>6} {n:>6} {:>13} {:>14} {:>17} {:>9}",
                    pm(&st.stored),
                    pm(&st.reconstructed),
                    pm(&st.diff),
                    format!("{}/{}", st.diverged.0, st.diverged.1)
                );
            }
        }
    }
    s.push_str("\n(diverged: stored/reconstructed runs that stopped on a non-finite loss or gradient; each counts at chance)\n");
    s
}

/// Join the output directories of shards (`--shard K/N`, each a directory of `points/`) into
/// `out`: copies every finished run, then finishes `out` as a resumed run of the shards'
/// common config (computing any run no shard finished). Errors, before anything is written,
/// when the shards come from different configs.
pub fn merge(shards: &[PathBuf], opts: &SweepOptions) -> Result<String> {
    if shards.is_empty() {
        return Err(Error::config(
            "merge",
            "at least one shard directory",
            "none",
        ));
    }
    let mut manifest: Option<(PathBuf, serde_json::Value)> = None;
    let mut files = Vec::new();
    for dir in shards {
        let path = dir.join("points").join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::data(path.display(), "a manifest (JSON)", e))?;
        match &manifest {
            Some((first, m)) if *m != v => {
                return Err(Error::data(
                    format!("merge: {}", path.display()),
                    format!("the config of {}", first.display()),
                    "results of different configs",
                ))
            }
            Some(_) => {}
            None => manifest = Some((path.clone(), v)),
        }
        files.extend(point_files(&dir.join("points"))?);
    }
    let (path, v) = manifest.expect("at least one shard");
    let bad = |e: serde_json::Error| Error::data(path.display(), "a valid manifest", e);
    let experiment = match v.get("experiment").and_then(|e| e.as_str()) {
        Some("accuracy") => Experiment::Accuracy(serde_json::from_value(v.clone()).map_err(bad)?),
        Some("angles") => Experiment::Angles(serde_json::from_value(v.clone()).map_err(bad)?),
        _ => {
            return Err(Error::data(
                path.display(),
                "the manifest of an accuracy or angles experiment",
                format!(
                    "experiment = {}",
                    v.get("experiment").unwrap_or(&serde_json::Value::Null)
                ),
            ))
        }
    };
    experiment.validate()?;
    prepare_out(&opts.out)?;
    let points = opts.out.join("points");
    std::fs::create_dir_all(&points).map_err(|e| Error::io(&points, e))?;
    write_atomic(&points.join(MANIFEST), to_json(&v)?.as_bytes())?;
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        let name = f.file_name().expect("a point file has a name");
        write_atomic(&points.join(name), &bytes)?;
    }
    experiment.run(&SweepOptions {
        resume: true,
        shard: None,
        ..opts.clone()
    })
}

/// A training experiment read from a config file.
#[derive(Debug, Clone)]
pub enum Experiment {
    /// The accuracy sweeps.
    Accuracy(AccuracyConfig),
    /// The gradient angle through training.
    Angles(AnglesConfig),
}

/// What `train --config FILE` holds: an experiment (`experiment = "accuracy"` or `"angles"`),
/// or, without an `experiment` key, one training run (the keys of [`TrainConfig`] at the top
/// level, e.g. `arch = "hybrid"`, `depth = 8`, `epochs = 3`).
#[derive(Debug, Clone)]
pub enum ConfigFile {
    /// An experiment config.
    Experiment(Box<Experiment>),
    /// A single training run.
    Run(Box<TrainConfig>),
}

impl ConfigFile {
    /// Read `path` and dispatch on its `experiment` key (absent: a single run).
    pub fn from_toml_file(path: &Path) -> Result<ConfigFile> {
        let value: toml::Table = read_toml(path)?;
        if value.contains_key("experiment") {
            Ok(ConfigFile::Experiment(Box::new(
                Experiment::from_toml_file(path)?,
            )))
        } else {
            Ok(ConfigFile::Run(Box::new(read_toml(path)?)))
        }
    }
}

impl Experiment {
    /// The settings every run of the experiment shares (the `[train]` table).
    pub fn train_mut(&mut self) -> &mut TrainConfig {
        match self {
            Experiment::Accuracy(c) => &mut c.train,
            Experiment::Angles(c) => &mut c.train,
        }
    }

    /// Drop the per-network or per-architecture learning rates and epochs of the file (a
    /// command-line `--lr` or `--epochs` applies to every run).
    pub fn clear_overrides(&mut self, lr: bool, epochs: bool) {
        match self {
            Experiment::Accuracy(c) => {
                if lr {
                    c.arch_lr.clear();
                }
            }
            Experiment::Angles(c) => {
                for n in &mut c.nets {
                    if lr {
                        n.lr = None;
                    }
                    if epochs {
                        n.epochs = None;
                    }
                }
            }
        }
    }

    /// Read a config and dispatch on its `experiment` key (`accuracy` or `angles`).
    pub fn from_toml_file(path: &Path) -> Result<Experiment> {
        let value: toml::Table = read_toml(path)?;
        match value.get("experiment").and_then(|v| v.as_str()) {
            Some("accuracy") => Ok(Experiment::Accuracy(AccuracyConfig::from_toml_file(path)?)),
            Some("angles") => Ok(Experiment::Angles(AnglesConfig::from_toml_file(path)?)),
            other => Err(Error::Unknown {
                kind: "experiment",
                got: format!(
                    "{} (in {})",
                    other.unwrap_or("<missing `experiment` key>"),
                    path.display()
                ),
                expected: "experiment = \"accuracy\" or \"angles\"".into(),
            }),
        }
    }

    /// Name (default output directory under `results/`).
    pub fn name(&self) -> &'static str {
        match self {
            Experiment::Accuracy(_) => "accuracy",
            Experiment::Angles(_) => "angles",
        }
    }

    /// Check the configuration.
    pub fn validate(&self) -> Result<()> {
        match self {
            Experiment::Accuracy(c) => c.validate(),
            Experiment::Angles(c) => c.validate(),
        }
    }

    /// The runs already finished in `out` that `--resume` would keep, by index (grid order for
    /// the accuracy sweep, [`AnglesConfig::runs`] order for the angle experiment), ascending.
    /// Read-only: nothing is written and no lock is taken. Errors as `--resume` does: a
    /// manifest of another config, or a point file that does not parse. No `out/points` (or no
    /// manifest in it): none.
    pub fn finished_runs(&self, out: &Path) -> Result<Vec<usize>> {
        match self {
            Experiment::Accuracy(c) => {
                let done: Vec<AccuracyResult> = match extended_results(out, c)? {
                    Some(kept) => kept,
                    None => read_points(out, c)?,
                };
                Ok(c.grid()
                    .iter()
                    .filter(|p| done.iter().any(|d| d.point == **p))
                    .map(|p| p.index)
                    .collect())
            }
            Experiment::Angles(c) => {
                let done: Vec<AngleResult> = read_points(out, c)?;
                Ok(c.runs()
                    .iter()
                    .enumerate()
                    .filter(|(i, r)| done.iter().any(|d| d.index == *i && d.config == **r))
                    .map(|(i, _)| i)
                    .collect())
            }
        }
    }

    /// Run it; returns the printed summary.
    pub fn run(&self, opts: &SweepOptions) -> Result<String> {
        let start = Instant::now();
        let (table, n) = match self {
            Experiment::Accuracy(c) => {
                let r = run_accuracy(c, opts)?;
                (accuracy_table(c, &r), r.len())
            }
            Experiment::Angles(c) => {
                let r = run_angles(c, opts)?;
                (angles_table(&r), r.len())
            }
        };
        Ok(format!(
            "{table}\n{n} runs in {:.1} s",
            start.elapsed().as_secs_f64()
        ))
    }
}
