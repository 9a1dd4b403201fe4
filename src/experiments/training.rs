//! Training experiments: a single run with its files, the accuracy sweeps of Hascoet et al.
//! Fig. 12 and 15 (accuracy with and without reconstruction over depth and slope), and the
//! gradient angle through training of Gomez et al. Fig. 4.
//!
//! Files of a single run (`--out DIR`): `history.csv` (per epoch), `angles.csv` and
//! `angles_layers.csv` (when the probe is on), `result.json`, `run.json`, and the checkpoints
//! of [`crate::train`].
//!
//! Files of the accuracy sweep: `points/` (one JSON per finished run, what `--resume` reads),
//! `accuracy.csv` (one row per run, grid order, rewritten after every run), `run.json`.
//! Files of the angle experiment: `angles.csv`, `angles_layers.csv`, `summary.csv`, `run.json`.
//! Every file is written atomically.

use crate::data::DataSplit;
use crate::device::{device_name, parse_device};
use crate::error::{Error, Result};
use crate::experiments::snr_sweep::fmt_f;
use crate::nets::{Arch, Source};
use crate::train::{
    read_toml, train, AngleRecord, Progress, TrainConfig, TrainOptions, TrainOutcome,
};
use crate::util::write_atomic;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// Create `out` and check that it is writable, before anything else is done.
pub fn prepare_out(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let probe = out.join(".write-test");
    std::fs::write(&probe, b"").map_err(|e| Error::io(&probe, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Config(e.to_string()))
}

/// Rows to CSV text (fields quoted where needed).
fn csv_text(header: &[&str], rows: &[Vec<String>]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Config(format!("csv: {e}"));
    w.write_record(header).map_err(err)?;
    for r in rows {
        w.write_record(r).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Config(format!("csv: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Config(e.to_string()))
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
    let device = parse_device(&train.device)
        .map(|d| device_name(&d))
        .unwrap_or_else(|_| train.device.clone());
    let source = crate::data::parse_data_spec(&train.data, train.data_seed)
        .map(|s| s.describe())
        .unwrap_or_else(|_| train.data.clone());
    let mut v = serde_json::json!({
        "tool": "train",
        "experiment": experiment,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "git_revision": crate::util::git_revision(),
        "device": device,
        "backend": train.backend.as_str(),
        "dtype": train.dtype,
        "config": config,
        "data": { "source": source, "train": data.train.len(), "test": data.test.len(), "classes": data.classes(), "image": data.train.image_dims() },
        "optimiser": "SGD, momentum buffer v = mu v + (g + wd w) (coupled L2 weight decay on every parameter), w -= lr v",
        "schedule": format!("one-cycle per step: lr/{} -> lr over the first {} of the steps, then linear to lr/{}", train.lr_div, train.warmup, train.lr_final_div),
        "init": format!("conv weights N(0, ({} * sqrt(2/fan_in))^2), BN gamma 1, beta 0, head N(0, 1/c)", train.init_scale),
        "test_accuracy": "eval mode (running batch-norm statistics), whole test split",
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
    }
    write_atomic(&out.join("run.json"), to_json(&v)?.as_bytes())
}

/// Header of `angles.csv`.
pub const ANGLES_HEADER: [&str; 14] = [
    "arch",
    "depth",
    "slope",
    "seed",
    "step",
    "epoch",
    "mode",
    "loss",
    "train_err",
    "test_err",
    "angle_deg",
    "lowest_snr_db",
    "lowest_layer",
    "lr",
];
/// Header of `angles_layers.csv`.
pub const ANGLE_LAYERS_HEADER: [&str; 8] = [
    "arch",
    "depth",
    "slope",
    "seed",
    "mode",
    "step",
    "layer",
    "angle_deg",
];

fn angle_rows(
    cfg: &TrainConfig,
    angles: &[AngleRecord],
    total_steps: usize,
) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let schedule = cfg.schedule(total_steps);
    let prefix = || {
        vec![
            cfg.arch.to_string(),
            cfg.depth.to_string(),
            cfg.slope.to_string(),
            cfg.seed.to_string(),
        ]
    };
    let mut rows = Vec::new();
    let mut layers = Vec::new();
    for a in angles {
        let mut r = prefix();
        r.extend([
            a.step.to_string(),
            a.epoch.to_string(),
            a.mode.as_str().into(),
            fmt_f(a.loss),
            fmt_f(a.train_err),
            fmt_f(a.test_err),
            fmt_angle(a.angle_deg),
            fmt_f(a.lowest_snr_db),
            a.lowest_layer.clone(),
            fmt_f(schedule.lr(a.step)),
        ]);
        rows.push(r);
        for l in &a.per_layer {
            let mut r = prefix();
            r.extend([
                a.mode.as_str().into(),
                a.step.to_string(),
                l.layer.clone(),
                fmt_angle(l.angle_deg),
            ]);
            layers.push(r);
        }
    }
    (rows, layers)
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
                fmt_f(h.seconds),
            ]
        })
        .collect();
    write_atomic(
        &opts.out.join("history.csv"),
        csv_text(
            &["epoch", "train_loss", "train_acc", "lr", "seconds"],
            &history,
        )?
        .as_bytes(),
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
        serde_json::to_value(cfg).map_err(|e| Error::Config(e.to_string()))?,
        cfg,
        &data,
        serde_json::json!({ "seed": cfg.seed, "seconds": outcome.seconds }),
    )?;
    Ok(outcome)
}

/// The depth sweep: every depth at one slope (Fig. 12/15 right).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthSweep {
    /// Slope of every point.
    pub slope: f64,
    /// Depths (units for layer-wise, blocks for hybrid).
    pub depths: Vec<usize>,
}

/// The slope sweep: every slope at one depth (Fig. 12/15 left).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlopeSweep {
    /// Depth of every point.
    pub depth: usize,
    /// Slopes `n > 0`.
    pub slopes: Vec<f64>,
}

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
            train: TrainConfig {
                epochs: 4,
                data: ACCURACY_DATA.into(),
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

/// Header of `accuracy.csv`.
pub const ACCURACY_HEADER: [&str; 16] = [
    "arch",
    "depth",
    "slope",
    "mode",
    "seed",
    "test_acc",
    "train_loss",
    "train_acc",
    "epochs",
    "seconds",
    "layers",
    "test_loss",
    "steps",
    "sweep",
    "status",
    "diagnosis",
];

/// The result of one run of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccuracyResult {
    /// The point.
    pub point: AccuracyPoint,
    /// Its `accuracy.csv` row.
    pub row: Vec<String>,
}

impl AccuracyResult {
    /// Test accuracy (NaN when the run diverged).
    pub fn test_acc(&self) -> f64 {
        self.row
            .get(5)
            .and_then(|v| crate::experiments::snr_sweep::parse_f(v).ok())
            .unwrap_or(f64::NAN)
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
            return Err(Error::Config(format!(
                "experiment = `{}` in an accuracy config (expected `accuracy`)",
                self.experiment
            )));
        }
        if self.archs.is_empty() || self.modes.is_empty() || self.seeds.is_empty() {
            return Err(Error::Config(
                "empty grid: archs, modes and seeds need at least one value each".into(),
            ));
        }
        if self.depth_sweep.depths.is_empty() && self.slope_sweep.slopes.is_empty() {
            return Err(Error::Config("empty grid: no depths and no slopes".into()));
        }
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
            ..self.train.clone()
        }
    }
}

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Skip points already finished in `out` (accuracy sweep).
    pub resume: bool,
    /// Points in parallel (0: all cores).
    pub threads: usize,
    /// Progress display.
    pub progress: Progress,
}

fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Config(format!("thread pool: {e}")))
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
    match train(&run, data, &TrainOptions::default()) {
        Ok((_, o)) => row.extend([
            fmt_f(o.test_acc),
            fmt_f(o.train_loss),
            fmt_f(o.train_acc),
            o.epochs.to_string(),
            format!("{:.2}", o.seconds),
            o.layers.to_string(),
            fmt_f(o.test_loss),
            o.steps.to_string(),
            p.sweep.clone(),
            "ok".into(),
            String::new(),
        ]),
        Err(Error::Diverged { step, diagnosis }) => {
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
                fmt_f(f64::NAN),
                fmt_f(f64::NAN),
                fmt_f(f64::NAN),
                (step / steps_per_epoch).to_string(),
                format!("{:.2}", start.elapsed().as_secs_f64()),
                layers,
                fmt_f(f64::NAN),
                step.to_string(),
                p.sweep.clone(),
                "diverged".into(),
                diagnosis,
            ]);
        }
        Err(e) => return Err(e),
    }
    Ok(AccuracyResult {
        point: p.clone(),
        row,
    })
}

const MANIFEST: &str = "manifest.json";

fn read_done(out: &Path, cfg: &AccuracyConfig) -> Result<Vec<AccuracyResult>> {
    let dir = out.join("points");
    let manifest = dir.join(MANIFEST);
    match std::fs::read_to_string(&manifest) {
        Ok(text) => {
            let old: AccuracyConfig = serde_json::from_str(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", manifest.display())))?;
            if old != *cfg {
                return Err(Error::Config(format!("{}: --resume with a different config than the one that produced these results; use another --out or drop --resume", out.display())));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&manifest, e)),
    }
    let mut done = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let name = path
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == MANIFEST || name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        done.push(
            serde_json::from_str::<AccuracyResult>(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?,
        );
    }
    Ok(done)
}

fn write_accuracy_csv(out: &Path, results: &[AccuracyResult]) -> Result<()> {
    let mut sorted: Vec<&AccuracyResult> = results.iter().collect();
    sorted.sort_by_key(|r| r.point.index);
    let rows: Vec<Vec<String>> = sorted.iter().map(|r| r.row.clone()).collect();
    write_atomic(
        &out.join("accuracy.csv"),
        csv_text(&ACCURACY_HEADER, &rows)?.as_bytes(),
    )
}

/// Run the accuracy sweep into `opts.out`; returns the results in grid order.
pub fn run_accuracy(cfg: &AccuracyConfig, opts: &SweepOptions) -> Result<Vec<AccuracyResult>> {
    cfg.validate()?;
    prepare_out(&opts.out)?;
    let start = Instant::now();
    let data = cfg.train.load_data()?;
    let points_dir = opts.out.join("points");
    let done = if opts.resume {
        read_done(&opts.out, cfg)?
    } else {
        Vec::new()
    };
    if !opts.resume && points_dir.is_dir() {
        for entry in std::fs::read_dir(&points_dir)
            .map_err(|e| Error::io(&points_dir, e))?
            .flatten()
        {
            if entry.path().extension().is_some_and(|e| e == "json") {
                std::fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            }
        }
    }
    write_atomic(&points_dir.join(MANIFEST), to_json(cfg)?.as_bytes())?;
    let grid = cfg.grid();
    let mut todo: Vec<AccuracyPoint> = grid
        .iter()
        .filter(|p| !done.iter().any(|d| d.point == **p))
        .cloned()
        .collect();
    // Longest runs first, so the parallel tail is short.
    let cost = |p: &AccuracyPoint| p.depth * if p.arch == Arch::Hybrid { 3 } else { 1 };
    todo.sort_by_key(|p| std::cmp::Reverse(cost(p)));
    let total = todo.len();
    let results = Mutex::new(
        done.into_iter()
            .filter(|r| grid.contains(&r.point))
            .collect::<Vec<_>>(),
    );
    let bar = bar(opts.progress, total);
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let queue = Mutex::new(todo.into_iter());
    pool(opts.threads)?.install(|| {
        rayon::iter::repeat(())
            .take(total)
            .map(|_| -> Result<()> {
                let p = match queue.lock().expect("queue").next() {
                    Some(p) => p,
                    None => return Ok(()),
                };
                let r = run_accuracy_point(cfg, &p, &data)?;
                write_atomic(
                    &points_dir.join(format!("{}.json", p.key())),
                    to_json(&r)?.as_bytes(),
                )?;
                let k = finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                let status = if r.row[14] == "ok" {
                    format!("test acc {:.1}%", 100.0 * r.test_acc())
                } else {
                    format!("diverged at step {}", r.row[12])
                };
                report(
                    &bar,
                    opts.progress,
                    format!(
                        "[{k}/{total}] {} depth {} slope {} {} seed {}: {status} ({} s)",
                        p.arch,
                        p.depth,
                        p.slope,
                        p.mode.as_str(),
                        p.seed,
                        r.row[9]
                    ),
                );
                let mut all = results.lock().expect("results");
                all.push(r);
                write_accuracy_csv(&opts.out, &all)
            })
            .collect::<Result<Vec<()>>>()
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|r| r.point.index);
    write_accuracy_csv(&opts.out, &results)?;
    let threads = if opts.threads == 0 {
        rayon::current_num_threads()
    } else {
        opts.threads
    };
    write_run_json(
        &opts.out,
        "accuracy",
        serde_json::to_value(cfg).map_err(|e| Error::Config(e.to_string()))?,
        &cfg.train,
        &data,
        serde_json::json!({ "seeds": cfg.seeds, "threads": threads, "runs": results.len(), "computed": total, "wall_seconds": start.elapsed().as_secs_f64() }),
    )?;
    Ok(results)
}

/// Mean over seeds of the test accuracy of `(arch, depth, slope, mode)`.
fn mean_acc(results: &[AccuracyResult], arch: Arch, depth: usize, slope: f64, mode: Source) -> f64 {
    let accs: Vec<f64> = results
        .iter()
        .filter(|r| {
            r.point.arch == arch
                && r.point.depth == depth
                && r.point.slope == slope
                && r.point.mode == mode
        })
        .map(|r| r.test_acc())
        .collect();
    if accs.is_empty() {
        f64::NAN
    } else {
        accs.iter().sum::<f64>() / accs.len() as f64
    }
}

/// Table of stored vs reconstructed test accuracy (mean over seeds, %) per sweep and arch.
pub fn accuracy_table(cfg: &AccuracyConfig, results: &[AccuracyResult]) -> String {
    use std::fmt::Write;
    let pct = |v: f64| {
        if v.is_finite() {
            format!("{:.1}", 100.0 * v)
        } else {
            "div".into()
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
                "\n{arch}, {title}: test accuracy % (mean over {} seed(s))",
                cfg.seeds.len()
            );
            let _ = writeln!(
                s,
                "{:>6} {:>6} {:>7} {:>14} {:>7}",
                "depth", "slope", "stored", "reconstructed", "diff"
            );
            for &(d, n) in pts {
                let a = mean_acc(results, arch, d, n, Source::Stored);
                let b = mean_acc(results, arch, d, n, Source::Reconstructed);
                let diff = if a.is_finite() && b.is_finite() {
                    format!("{:+.1}", 100.0 * (b - a))
                } else {
                    "-".into()
                };
                let _ = writeln!(s, "{d:>6} {n:>6} {:>7} {:>14} {diff:>7}", pct(a), pct(b));
            }
        }
    }
    s
}

/// One network of the angle experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AngleNet {
    /// Architecture.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// Slope (layer-wise, hybrid).
    #[serde(default = "default_slope")]
    pub slope: f64,
    /// Peak learning rate (default: `train.lr`).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Epochs (default: `train.epochs`).
    #[serde(default)]
    pub epochs: Option<usize>,
}

fn default_slope() -> f64 {
    0.2
}

/// The gradient-angle experiment (`experiments/revnet-fig4.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnglesConfig {
    /// Must be `angles`.
    pub experiment: String,
    /// The networks.
    pub nets: Vec<AngleNet>,
    /// Training modes (the angle is measured in each).
    pub modes: Vec<Source>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Everything else of each run (arch, depth, slope, mode, seed overridden).
    pub train: TrainConfig,
}

impl Default for AnglesConfig {
    fn default() -> Self {
        AnglesConfig {
            experiment: "angles".into(),
            nets: vec![
                AngleNet {
                    arch: Arch::Revnet,
                    depth: 6,
                    slope: 0.2,
                    lr: Some(0.01),
                    epochs: Some(10),
                },
                AngleNet {
                    arch: Arch::Hybrid,
                    depth: 6,
                    slope: 0.2,
                    lr: Some(0.05),
                    epochs: None,
                },
                AngleNet {
                    arch: Arch::Layerwise,
                    depth: 6,
                    slope: 0.2,
                    lr: None,
                    epochs: None,
                },
            ],
            modes: vec![Source::Reconstructed],
            seeds: vec![0],
            // The accuracy sweep's data and epochs (the hybrid overfits the single run's).
            train: TrainConfig {
                angle_every: 5,
                epochs: 4,
                data: ACCURACY_DATA.into(),
                ..TrainConfig::default()
            },
        }
    }
}

/// One run of the angle experiment.
#[derive(Debug, Clone)]
pub struct AngleRun {
    /// Its training config.
    pub config: TrainConfig,
    /// What it produced, or `step N: diagnosis` when it diverged.
    pub outcome: std::result::Result<TrainOutcome, String>,
}

impl AngleRun {
    /// The probes (none for a diverged run).
    pub fn angles(&self) -> &[AngleRecord] {
        self.outcome.as_ref().map_or(&[], |o| &o.angles)
    }

    /// Test accuracy (NaN for a diverged run).
    fn test_acc(&self) -> f64 {
        self.outcome.as_ref().map_or(f64::NAN, |o| o.test_acc)
    }

    /// `ok` or `diverged at step N: diagnosis`.
    pub fn status(&self) -> String {
        match &self.outcome {
            Err(d) => format!("diverged at {d}"),
            Ok(_) => "ok".into(),
        }
    }
}

impl AnglesConfig {
    /// Read a TOML config.
    pub fn from_toml_file(path: &Path) -> Result<AnglesConfig> {
        read_toml(path)
    }

    /// The runs, in order.
    pub fn runs(&self) -> Vec<TrainConfig> {
        let mut v = Vec::new();
        for n in &self.nets {
            for &seed in &self.seeds {
                for &mode in &self.modes {
                    v.push(TrainConfig {
                        arch: n.arch,
                        depth: n.depth,
                        slope: n.slope,
                        mode,
                        seed,
                        lr: n.lr.unwrap_or(self.train.lr),
                        epochs: n.epochs.unwrap_or(self.train.epochs),
                        ..self.train.clone()
                    });
                }
            }
        }
        v
    }

    /// Check every value.
    pub fn validate(&self) -> Result<()> {
        if self.experiment != "angles" {
            return Err(Error::Config(format!(
                "experiment = `{}` in an angles config (expected `angles`)",
                self.experiment
            )));
        }
        if self.nets.is_empty() || self.modes.is_empty() || self.seeds.is_empty() {
            return Err(Error::Config(
                "empty experiment: nets, modes and seeds need at least one value each".into(),
            ));
        }
        if self.train.angle_every == 0 {
            return Err(Error::Config(
                "train.angle_every must be >= 1 in the angle experiment".into(),
            ));
        }
        self.runs().iter().try_for_each(|r| r.validate())
    }
}

/// Header of the angle experiment's `summary.csv`.
pub const ANGLE_SUMMARY_HEADER: [&str; 14] = [
    "arch",
    "depth",
    "slope",
    "mode",
    "seed",
    "test_acc",
    "angle_start_deg",
    "angle_end_deg",
    "angle_max_deg",
    "lowest_snr_start_db",
    "lowest_snr_end_db",
    "epochs",
    "seconds",
    "status",
];

/// Run the angle experiment into `opts.out`.
pub fn run_angles(cfg: &AnglesConfig, opts: &SweepOptions) -> Result<Vec<AngleRun>> {
    cfg.validate()?;
    prepare_out(&opts.out)?;
    let start = Instant::now();
    let data = cfg.train.load_data()?;
    let runs = cfg.runs();
    let bar = bar(opts.progress, runs.len());
    let total = runs.len();
    let done: Vec<AngleRun> = pool(opts.threads)?.install(|| {
        runs.par_iter()
            .map(|r| {
                let outcome = match train(r, &data, &TrainOptions::default()) {
                    Ok((_, outcome)) => Ok(outcome),
                    Err(Error::Diverged { step, diagnosis }) => {
                        Err(format!("step {step}: {diagnosis}"))
                    }
                    Err(e) => return Err(e),
                };
                let run = AngleRun {
                    config: r.clone(),
                    outcome,
                };
                let line = match &run.outcome {
                    Ok(o) => {
                        let (a0, a1) = (
                            o.angles.first().map_or(f64::NAN, |a| a.angle_deg),
                            o.angles.last().map_or(f64::NAN, |a| a.angle_deg),
                        );
                        format!(
                            "test acc {:.1}%, angle {} -> {} deg ({:.1} s)",
                            100.0 * o.test_acc,
                            fmt_angle(a0),
                            fmt_angle(a1),
                            o.seconds
                        )
                    }
                    Err(_) => run.status(),
                };
                report(
                    &bar,
                    opts.progress,
                    format!(
                        "{} depth {} {}: {line} [{total} runs]",
                        r.arch,
                        r.depth,
                        r.mode.as_str()
                    ),
                );
                Ok(run)
            })
            .collect::<Result<Vec<_>>>()
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (mut rows, mut layers, mut summary) = (Vec::new(), Vec::new(), Vec::new());
    for run in &done {
        let c = &run.config;
        let angles = run.angles();
        let (r, l) = angle_rows(c, angles, data.train.len() / c.batch * c.epochs);
        rows.extend(r);
        layers.extend(l);
        let max = angles.iter().map(|a| a.angle_deg).fold(f64::NAN, f64::max);
        let first = angles.first();
        let last = angles.last();
        summary.push(vec![
            c.arch.to_string(),
            c.depth.to_string(),
            c.slope.to_string(),
            c.mode.as_str().into(),
            c.seed.to_string(),
            fmt_f(run.test_acc()),
            fmt_angle(first.map_or(f64::NAN, |a| a.angle_deg)),
            fmt_angle(last.map_or(f64::NAN, |a| a.angle_deg)),
            fmt_angle(max),
            fmt_f(first.map_or(f64::NAN, |a| a.lowest_snr_db)),
            fmt_f(last.map_or(f64::NAN, |a| a.lowest_snr_db)),
            c.epochs.to_string(),
            format!(
                "{:.2}",
                run.outcome.as_ref().map_or(f64::NAN, |o| o.seconds)
            ),
            run.status(),
        ]);
    }
    write_atomic(
        &opts.out.join("angles.csv"),
        csv_text(&ANGLES_HEADER, &rows)?.as_bytes(),
    )?;
    write_atomic(
        &opts.out.join("angles_layers.csv"),
        csv_text(&ANGLE_LAYERS_HEADER, &layers)?.as_bytes(),
    )?;
    write_atomic(
        &opts.out.join("summary.csv"),
        csv_text(&ANGLE_SUMMARY_HEADER, &summary)?.as_bytes(),
    )?;
    let threads = if opts.threads == 0 {
        rayon::current_num_threads()
    } else {
        opts.threads
    };
    write_run_json(
        &opts.out,
        "angles",
        serde_json::to_value(cfg).map_err(|e| Error::Config(e.to_string()))?,
        &cfg.train,
        &data,
        serde_json::json!({ "seeds": cfg.seeds, "threads": threads, "wall_seconds": start.elapsed().as_secs_f64(), "angle": "acos(<g_stored, g_reconstructed> / (|g_stored| |g_reconstructed|)) over all parameters, same batch and weights; the run trains in `mode`" }),
    )?;
    Ok(done)
}

/// Table of the angle experiment: angle and lowest-layer SNR at the first and last probe.
pub fn angles_table(runs: &[AngleRun]) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "{:<10} {:>5} {:>6} {:>13} {:>8} {:>11} {:>11} {:>11} {:>15}\n",
        "arch",
        "depth",
        "slope",
        "mode",
        "test %",
        "angle0 deg",
        "angleN deg",
        "max deg",
        "SNR0 / SNRN dB"
    );
    for r in runs {
        let a = r.angles();
        let (f, l) = (a.first(), a.last());
        let max = a.iter().map(|a| a.angle_deg).fold(f64::NAN, f64::max);
        let g = |x: Option<&AngleRecord>, k: fn(&AngleRecord) -> f64| x.map_or(f64::NAN, k);
        let _ = writeln!(
            s,
            "{:<10} {:>5} {:>6} {:>13} {:>8.1} {:>11} {:>11} {:>11} {:>15}",
            r.config.arch,
            r.config.depth,
            r.config.slope,
            r.config.mode.as_str(),
            100.0 * r.test_acc(),
            fmt_angle(g(f, |a| a.angle_deg)),
            fmt_angle(g(l, |a| a.angle_deg)),
            fmt_angle(max),
            format!(
                "{} / {}",
                short(g(f, |a| a.lowest_snr_db)),
                short(g(l, |a| a.lowest_snr_db))
            )
        );
        if let Err(d) = &r.outcome {
            let _ = writeln!(s, "{:<10} diverged at {d}", r.config.arch);
        }
    }
    s
}

/// An angle in degrees for result files: 4 significant digits in scientific notation (the
/// angles of exact-ish reconstructions are far below 1e-4 degrees).
pub fn fmt_angle(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3e}")
    } else {
        fmt_f(v)
    }
}

fn short(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        fmt_f(v)
    }
}

/// A training experiment read from a config file.
#[derive(Debug, Clone)]
pub enum Experiment {
    /// The accuracy sweeps.
    Accuracy(AccuracyConfig),
    /// The gradient angle through training.
    Angles(AnglesConfig),
}

impl Experiment {
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
