//! `train`: train a network with stored or reconstructed activations, or run the training
//! experiments (accuracy sweeps, gradient angle through training).
//! Thin: arguments -> checked config -> `revstab::train` / `revstab::experiments::training`.

use anyhow::Context;
use clap::{Args as ClapArgs, Parser, Subcommand};
use revstab::backend::Backend;
use revstab::experiments::training::{
    self as exp, AccuracyConfig, AnglesConfig, Experiment, SweepOptions,
};
use revstab::nets::NetOverrides;
use revstab::nets::{Arch, Source};
use revstab::train::{Progress, TrainConfig};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Train reversible networks with stored or reconstructed activations and measure what
/// reconstruction error does to training.
///
/// With no subcommand: one training run (flags below; defaults: layer-wise network, depth 6,
/// width 8, slope 0.2, stored activations, 3 epochs of batch 64 on 1500 16x16 synthetic images
/// (1000 test images), one-cycle SGD peaking at lr 0.2, momentum 0.9, weight decay 5e-4, gradient norm clipped to 1, f32 on
/// the CPU).
/// `--config FILE` runs the experiment the file names (`experiment = "accuracy"` or
/// `"angles"`), or, in a file without `experiment`, one run (the run's keys, e.g.
/// `arch = "hybrid"`); flags given beside it override the file (an experiment's grid axes
/// --arch, --depth, --slope, --mode, --min-snr-db are an error); the `accuracy` and `angles` subcommands run those experiments with their
/// built-in defaults or a config.
#[derive(Parser, Debug)]
#[command(
    name = "train",
    version,
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true,
    after_help = revstab::cli::EXIT_CODES_HELP
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config: an experiment (`experiment = "accuracy"` or `"angles"`) or, without
    /// `experiment`, one run; flags given beside it override the file
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    common: CommonArgs,
}

/// Flags of a single run (each overrides the default, or the `[train]` table of a config).
#[derive(ClapArgs, Debug, Default)]
struct RunArgs {
    /// Architecture: layerwise, hybrid, revnet, irevnet, resnet [default: layerwise]
    #[arg(long, alias = "archs")]
    arch: Option<Arch>,
    /// Depth: units (layer-wise) or blocks (others) [default: 6]
    #[arg(long)]
    depth: Option<usize>,
    /// Channels after the stem [default: 8]
    #[arg(long)]
    width: Option<usize>,
    /// Leaky-ReLU slope n > 0 [default: 0.2]
    #[arg(long, allow_negative_numbers = true)]
    slope: Option<f64>,
    /// Activations for the backward: stored, reconstructed, checkpointed (the input of every
    /// K-th unit or block stored, segments recomputed; see --segment) or anchored
    /// (reconstructed, with the inputs of planned or listed layers stored; see --min-snr-db,
    /// --anchors, --replan-every) [default: stored]
    #[arg(long)]
    mode: Option<Source>,
    #[command(flatten)]
    anchoring: revstab::cli::AnchorArgs,
    /// Checkpointed mode: units or blocks per segment, K in 1..=depth [default: ceil(sqrt(depth))]
    #[arg(long, value_name = "K")]
    segment: Option<usize>,
    /// Epochs [default: 3]
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size [default: 64]
    #[arg(long)]
    batch: Option<usize>,
    /// Peak learning rate of the one-cycle schedule [default: 0.2]
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// SGD momentum [default: 0.9]
    #[arg(long)]
    momentum: Option<f64>,
    /// L2 weight decay [default: 5e-4]
    #[arg(long = "weight-decay")]
    weight_decay: Option<f64>,
    /// Clip the gradient's global L2 norm to this before each step (0 = off) [default: 1]
    #[arg(long = "clip-grad-norm")]
    clip_grad_norm: Option<f64>,
    /// Data: synthetic, synthetic:KEY=VALUE,..., cifar10:DIR, fashion-mnist[:DIR][,KEY=VALUE...] or mnist:DIR[,KEY=VALUE...] (keys train=N, test=N, fit=pad32|pool2-pad16|pool2|none, channels=1|3) [default: synthetic:train=1500,test=1000,size=16]
    #[arg(long)]
    data: Option<String>,
    /// Input height = width: the synthetic set's `size`, or for Fashion-MNIST and MNIST the
    /// `fit` giving it (32, 28, 16 or 14) [default: the data's]
    #[arg(long = "input-size", value_name = "N")]
    input_size: Option<usize>,
    /// Random crop and horizontal flip of the training images
    #[arg(long)]
    augment: bool,
    /// Gradient-angle probe every N steps (0 = off) [default: 0]
    #[arg(long = "angle-every", value_name = "N")]
    angle_every: Option<usize>,
    /// Batch-norm eps_i [default: 0]
    #[arg(long = "eps-i", allow_negative_numbers = true)]
    eps_i: Option<f64>,
    #[command(
        flatten,
        next_help_heading = "Network options (the config's [net] table)"
    )]
    net: NetOverrides,
    /// Checkpoint every N steps (0 = every epoch) [default: 0]
    #[arg(long = "checkpoint-every", value_name = "N")]
    checkpoint_every: Option<usize>,
}

/// Flags shared by runs and experiments.
#[derive(ClapArgs, Debug, Default)]
struct CommonArgs {
    /// Output directory [default: results/train, results/accuracy or results/angles]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Seed of weights, shuffling and augmentation (experiments: the list of seeds) [default: 0]
    #[arg(
        long,
        alias = "seeds",
        value_delimiter = ',',
        value_name = "SEED[,SEED...]"
    )]
    seed: Option<Vec<u64>>,
    /// Storage dtype: f16, bf16, f32, f64 [default: f32]
    #[arg(long, alias = "dtypes")]
    dtype: Option<String>,
    /// Device: cpu, cuda[:N], metal[:N] [default: cpu]
    #[arg(long)]
    device: Option<String>,
    /// Backend computing the layers: kernels (the crate's own CPU kernels where they apply) or
    /// candle (candle's ops only) [default: kernels]
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// Continue from the last checkpoint (run) or skip finished points (experiments)
    #[arg(long)]
    resume: bool,
    /// Experiments: run only shard K of N of the runs (round robin, e.g. 2/4 for a job array);
    /// join the shards' directories with `train merge`
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Threads (0 = all cores); experiments run this many points in parallel
    #[arg(long, default_value_t = 0, value_parser = revstab::cli::parse_threads)]
    threads: usize,
    /// No progress output
    #[arg(long, short, alias = "silent")]
    quiet: bool,
    /// Check the config, print the runs that would train and an estimate of their time (one
    /// training step of the shallowest network of each architecture and mode timed here),
    /// write nothing
    #[arg(long = "dry-run")]
    dry_run: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Accuracy with and without reconstruction over depth and slope (Hascoet Fig. 12, 15)
    Accuracy {
        /// TOML config [default: built-in, as experiments/accuracy-synthetic.toml]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Gradient angle, loss and error through training (Gomez Fig. 4)
    Angles {
        /// TOML config [default: built-in, as experiments/revnet-fig4-synthetic.toml]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Join the output directories of `--shard` runs of one experiment into one (runs no shard
    /// finished are computed)
    Merge {
        /// Output directory
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The shards' output directories
        #[arg(required = true, value_name = "SHARD_DIR")]
        shards: Vec<PathBuf>,
        /// Threads (0 = all cores)
        #[arg(long, default_value_t = 0, value_parser = revstab::cli::parse_threads)]
        threads: usize,
        /// No progress output
        #[arg(long, short, alias = "silent")]
        quiet: bool,
    },
}

/// Bad input (exit code 2) or a failure while running (exit code 1).
enum Failure {
    Input(anyhow::Error),
    Run(anyhow::Error),
}

fn input<T>(r: revstab::Result<T>) -> Result<T, Failure> {
    r.map_err(|e| Failure::Input(flat(e)))
}

/// The library's error as one message: its `Display` already contains its source (an I/O
/// error's text), which `{:#}` would print a second time.
fn flat(e: revstab::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Errors of the library that are the user's input rather than a failure of the run
/// ([`revstab::Error::is_bad_input`]).
fn classify(e: revstab::Error) -> Failure {
    if e.is_bad_input() {
        Failure::Input(flat(e))
    } else {
        Failure::Run(flat(e))
    }
}

/// Candle's CPU kernels read their thread count from `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS`
/// (and otherwise parse /proc/cpuinfo on every matrix product). Experiments run one point per
/// thread, so each point's kernels run single-threaded; a single run gives its kernels all the
/// threads. Values the user set are kept.
fn set_kernel_threads(args: &Args) {
    let (threads, experiment) = match &args.command {
        Some(Command::Accuracy { common, .. }) | Some(Command::Angles { common, .. }) => {
            (common.threads, true)
        }
        Some(Command::Merge { threads, .. }) => (*threads, true),
        None => (
            args.common.threads,
            args.config.as_ref().is_some_and(|p| {
                matches!(
                    exp::ConfigFile::from_toml_file(p),
                    Ok(exp::ConfigFile::Experiment(_))
                )
            }),
        ),
    };
    let resolved = resolve_threads(threads);
    let kernel = if experiment { 1 } else { resolved };
    for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, kernel.to_string());
        }
    }
}

/// `--threads 0` as a number (all cores).
fn resolve_threads(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    }
}

fn main() -> ExitCode {
    revstab::provenance::started();
    let args =
        revstab::cli::parse_with_net::<Args>(std::env::args_os().collect(), |a| &mut a.run.net);
    // Before any other thread exists.
    set_kernel_threads(&args);
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => revstab::error::report("train", &revstab::error::bad_input(e)),
        Err(Failure::Run(e)) => revstab::error::report("train", &revstab::error::failed(e)),
    }
}

fn progress(common: &CommonArgs) -> Progress {
    if common.quiet {
        Progress::Silent
    } else if std::io::stderr().is_terminal() {
        Progress::Bar
    } else {
        Progress::Lines
    }
}

/// Apply the flags every command shares. `--dtype` and `--device` stay text for clap and are
/// parsed here, once, so that a bad name is a one-line input error (exit 2).
fn apply_common(train: &mut TrainConfig, common: &CommonArgs) -> Result<(), Failure> {
    if let Some(d) = &common.dtype {
        train.dtype = input(d.parse())?;
    }
    if let Some(d) = &common.device {
        train.device = input(d.parse())?;
    }
    if let Some(b) = common.backend {
        train.backend = b;
    }
    Ok(())
}

fn run(args: Args) -> Result<(), Failure> {
    let (experiment, common) = match args.command {
        Some(Command::Merge {
            out,
            shards,
            threads,
            quiet,
        }) => {
            // The shards' experiment: merged results belong to it.
            let tool = shards
                .iter()
                .find_map(|d| revstab::lock::owner_of(d))
                .unwrap_or_else(|| "train".into());
            let _lock = out_dir(&out, &tool)?;
            let common = CommonArgs {
                quiet,
                ..CommonArgs::default()
            };
            let opts = SweepOptions {
                out: out.clone(),
                resume: true,
                shard: None,
                threads: resolve_threads(threads),
                progress: progress(&common),
            };
            let summary = exp::merge(&shards, &opts).map_err(classify)?;
            println!("{summary}");
            println!("merged {} shard(s) into {}", shards.len(), out.display());
            return Ok(());
        }
        Some(Command::Accuracy { config, common }) => {
            let cfg = match &config {
                Some(p) => input(AccuracyConfig::from_toml_file(p))?,
                None => AccuracyConfig::default(),
            };
            (Experiment::Accuracy(cfg), common)
        }
        Some(Command::Angles { config, common }) => {
            let cfg = match &config {
                Some(p) => input(AnglesConfig::from_toml_file(p))?,
                None => AnglesConfig::default(),
            };
            (Experiment::Angles(cfg), common)
        }
        // Flags given beside `--config` override the file (a single run: any field; an
        // experiment: the settings its runs share; its grid axes are an error).
        None => match &args.config {
            Some(p) => match input(exp::ConfigFile::from_toml_file(p))? {
                exp::ConfigFile::Run(cfg) => return single_run(*cfg, &args.run, &args.common),
                exp::ConfigFile::Experiment(mut e) => {
                    run_flags_over_experiment(&mut e, &args.run, p)?;
                    (*e, args.common)
                }
            },
            None => return single_run(TrainConfig::default(), &args.run, &args.common),
        },
    };
    run_experiment(experiment, &common)
}

fn pool(threads: usize) -> Result<rayon::ThreadPool, Failure> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("thread pool")
        .map_err(Failure::Run)
}

/// Take the lock of `--out` (creating it; held until the process ends, so a second run into it
/// stops with exit 2 before writing anything) and check that it is writable.
///
/// `tool` names what writes there as [`revstab::lock::owner_of`] does (`train single`, `train
/// accuracy`, `train angles`): a directory of another tool or experiment is refused (exit 2).
fn out_dir(out: &std::path::Path, tool: &str) -> Result<revstab::lock::OutLock, Failure> {
    let lock = input(revstab::lock::lock_out(out, tool))?;
    exp::prepare_out(out).map_err(|e| {
        Failure::Input(flat(e).context(format!("output directory {}", out.display())))
    })?;
    Ok(lock)
}

/// The flags of a run over `cfg` (the defaults or a config file's values): a flag given on the
/// command line wins.
fn apply_run_flags(cfg: &mut TrainConfig, a: &RunArgs) -> Result<(), Failure> {
    macro_rules! set {
        ($($field:ident),*) => {$(
            if let Some(v) = &a.$field {
                cfg.$field = v.clone();
            }
        )*};
    }
    set!(
        arch,
        depth,
        width,
        slope,
        mode,
        epochs,
        batch,
        lr,
        momentum,
        weight_decay,
        clip_grad_norm,
        data,
        angle_every,
        eps_i,
        checkpoint_every
    );
    cfg.net = input(a.net.apply(&cfg.net))?;
    cfg.augment |= a.augment;
    if let Some(n) = a.input_size {
        cfg.data = input(revstab::cli::data_with_input_size(&cfg.data, n))?;
    }
    if let Some(k) = a.segment {
        cfg.segment = Some(k);
    }
    cfg.anchors = a.anchoring.apply(&cfg.anchors);
    Ok(())
}

/// Run flags beside an experiment's `--config FILE`: the settings every run shares override
/// the file's `[train]` table (`--lr` and `--epochs` also its per-network values); the grid's
/// own axes (architecture, depth, slope, mode, the anchored target) are an error naming the file.
fn run_flags_over_experiment(
    e: &mut Experiment,
    a: &RunArgs,
    path: &std::path::Path,
) -> Result<(), Failure> {
    let axes = [
        ("--arch", a.arch.is_some()),
        ("--depth", a.depth.is_some()),
        ("--slope", a.slope.is_some()),
        ("--mode", a.mode.is_some()),
        ("--min-snr-db", a.anchoring.min_snr_db.is_some()),
    ];
    let given: Vec<&str> = axes.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
    if !given.is_empty() {
        return Err(Failure::Input(anyhow::anyhow!(
            "{} set(s) the grid of the {} experiment in {}; edit the file's grid instead (other flags, such as --epochs or --lr, override the file)",
            given.join(", "),
            e.name(),
            path.display()
        )));
    }
    e.clear_overrides(a.lr.is_some(), a.epochs.is_some());
    apply_run_flags(e.train_mut(), a)?;
    Ok(())
}

fn single_run(base: TrainConfig, a: &RunArgs, common: &CommonArgs) -> Result<(), Failure> {
    if common.shard.is_some() {
        return Err(Failure::Input(anyhow::anyhow!(
            "--shard applies to experiments (`--config FILE`, `accuracy`, `angles`), not to a single run"
        )));
    }
    let mut cfg = base;
    apply_run_flags(&mut cfg, a)?;
    apply_common(&mut cfg, common)?;
    if let Some(seeds) = &common.seed {
        match seeds.as_slice() {
            [s] => cfg.seed = *s,
            _ => {
                return Err(Failure::Input(anyhow::anyhow!(
                    "a single run takes one --seed (got {})",
                    seeds.len()
                )))
            }
        }
    }
    input(cfg.validate())?;
    input(cfg.check_data_channels())?;
    input(cfg.device.open())?;
    let out = common
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results/train"));
    if common.dry_run {
        let done = if common.resume {
            vec![(0, Done::FromCheckpoint)]
        } else {
            Vec::new()
        };
        return dry_run(vec![cfg], None, &done, &out);
    }
    let _lock = out_dir(&out, "train single")?;
    let opts = exp::SingleRunOptions {
        out: out.clone(),
        resume: common.resume,
        progress: progress(common),
    };
    let outcome = pool(resolve_threads(common.threads))?
        .install(|| exp::single_run(&cfg, &opts))
        .map_err(classify)?;
    println!(
        "{} depth {} slope {} {}: test acc {:.2}%, train loss {:.4}, train acc {:.2}% after {} ({} steps) in {:.1} s; results in {}",
        cfg.arch,
        cfg.depth,
        cfg.slope,
        cfg.mode_label(),
        100.0 * outcome.test_acc,
        outcome.train_loss,
        100.0 * outcome.train_acc,
        revstab::util::count(outcome.epochs, "epoch"),
        outcome.steps,
        outcome.seconds,
        out.display()
    );
    Ok(())
}

fn run_experiment(mut experiment: Experiment, common: &CommonArgs) -> Result<(), Failure> {
    let train = match &mut experiment {
        Experiment::Accuracy(c) => &mut c.train,
        Experiment::Angles(c) => &mut c.train,
    };
    apply_common(train, common)?;
    if let Some(seeds) = &common.seed {
        match &mut experiment {
            Experiment::Accuracy(c) => c.seeds = seeds.clone(),
            Experiment::Angles(c) => c.seeds = seeds.clone(),
        }
    }
    input(experiment.validate())?;
    // The device before anything is written (a CPU build asked for cuda stops here).
    input(experiment.train_mut().device.open())?;
    let out = common
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("results/{}", experiment.name())));
    if common.dry_run {
        let shard = match &common.shard {
            Some(s) => Some(input(s.parse::<revstab::experiments::snr_sweep::Shard>())?),
            None => None,
        };
        let runs = match &experiment {
            Experiment::Accuracy(c) => c.grid().iter().map(|p| c.run_config(p)).collect(),
            Experiment::Angles(c) => c.runs(),
        };
        let done = if common.resume {
            experiment
                .finished_runs(&out)
                .map_err(classify)?
                .into_iter()
                .map(|i| (i, Done::Finished))
                .collect()
        } else {
            Vec::new()
        };
        return dry_run(runs, shard, &done, &out);
    }
    let _lock = out_dir(&out, &format!("train {}", experiment.name()))?;
    let shard = match &common.shard {
        Some(s) => Some(input(s.parse::<revstab::experiments::snr_sweep::Shard>())?),
        None => None,
    };
    let opts = SweepOptions {
        out: out.clone(),
        resume: common.resume,
        shard,
        threads: resolve_threads(common.threads),
        progress: progress(common),
    };
    let summary = experiment.run(&opts).map_err(classify)?;
    println!("{summary}");
    println!("results in {}", out.display());
    Ok(())
}

/// What `--resume` would keep of a run, found read-only in `--out`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Done {
    /// An experiment's run with its point file: skipped.
    Finished,
    /// A single run with `--resume`: it continues from its checkpoint in `out`, if there is
    /// one (read where the run's data, and so its step count, are known).
    FromCheckpoint,
}

/// `--dry-run`: the training runs that would be made (an experiment's shard applied; with
/// `--resume`, `done` lists what `out` already holds: finished runs are listed apart and not
/// estimated, a single run's checkpoint leaves only its remaining steps) and their time,
/// estimated by timing one training step (`Network::step` with gradients, as the training
/// loop takes it; the second of two, after a warm-up) of the shallowest network of each
/// (architecture, mode) still to run on a batch of its data here, and scaling each run by
/// (depth + 1) x steps (epochs x batches per epoch, less the steps a checkpoint holds).
/// Evaluation is not counted. Writes nothing and takes no lock.
fn dry_run(
    runs: Vec<TrainConfig>,
    shard: Option<revstab::experiments::snr_sweep::Shard>,
    done: &[(usize, Done)],
    out: &std::path::Path,
) -> Result<(), Failure> {
    use revstab::dry_run::{fmt_seconds, print_list, print_nothing_written, print_plan, scale};
    let runs: Vec<(usize, TrainConfig)> = runs
        .into_iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|s| s.owns(*i)))
        .collect();
    let state = |i: usize| done.iter().find(|d| d.0 == i).map(|d| d.1);
    let describe = |i: usize, c: &TrainConfig| {
        format!(
            "run {i}: {} depth {} slope {} {} seed {}",
            c.arch,
            c.depth,
            c.slope,
            c.mode_label(),
            c.seed
        )
    };
    let finished: Vec<String> = runs
        .iter()
        .filter(|(i, _)| state(*i) == Some(Done::Finished))
        .map(|(i, c)| describe(*i, c))
        .collect();
    let runs: Vec<(usize, TrainConfig)> = runs
        .into_iter()
        .filter(|(i, _)| state(*i) != Some(Done::Finished))
        .collect();
    if !finished.is_empty() {
        print_list(
            &format!(
                "{} already finished in {} (--resume keeps them)",
                revstab::util::count(finished.len(), "training run"),
                out.display()
            ),
            &finished,
        );
    }
    let mut data: Vec<(String, revstab::data::DataSplit)> = Vec::new();
    let mut lines = Vec::new();
    let mut kinds: Vec<(Arch, Source, usize)> = Vec::new();
    let mut steps = Vec::new();
    for (i, c) in &runs {
        if !data.iter().any(|(d, _)| *d == c.data) {
            data.push((c.data.clone(), input(c.load_data())?));
        }
        let split = &data.iter().find(|(d, _)| *d == c.data).expect("loaded").1;
        // The run's own count: whole batches only (a last partial batch is dropped).
        let n = input(revstab::train::total_steps(c, split.train.len()))?;
        let mut line = format!(
            "{}, {} = {}",
            describe(*i, c),
            revstab::util::count(c.epochs, "epoch"),
            revstab::util::count(n, "step")
        );
        // Read-only, with the run's own errors (exit 2): a checkpoint of another configuration,
        // one that does not parse, or one already at the last step.
        let resumed = match state(*i) {
            Some(Done::FromCheckpoint) => input(revstab::train::resumable_step(out, c, n))?,
            _ => None,
        };
        match resumed {
            Some(k) => {
                line.push_str(&format!(
                    ", resumed from the checkpoint at step {k} in {}: {} steps left",
                    out.display(),
                    n.saturating_sub(k)
                ));
                steps.push(n.saturating_sub(k));
            }
            _ => steps.push(n),
        }
        lines.push(line);
        match kinds.iter_mut().find(|k| k.0 == c.arch && k.1 == c.mode) {
            Some(k) if c.depth < runs[k.2].1.depth => k.2 = lines.len() - 1,
            Some(_) => {}
            None => kinds.push((c.arch, c.mode, lines.len() - 1)),
        }
    }
    print_plan("training runs", &lines);
    let mut probes = Vec::new();
    let mut text = Vec::new();
    for &(_, _, at) in &kinds {
        let c = &runs[at].1;
        let split = &data.iter().find(|(d, _)| *d == c.data).expect("loaded").1;
        let s = time_step(c, split).map_err(|e| Failure::Run(flat(e)))?;
        probes.push(((c.depth + 1) as f64, s));
        text.push(format!(
            "{} depth {} {}: {:.4} s/step",
            c.arch,
            c.depth,
            c.mode.as_str(),
            s
        ));
    }
    let costed: Vec<(usize, f64)> = runs
        .iter()
        .zip(&steps)
        .map(|((_, c), &n)| {
            let k = kinds
                .iter()
                .position(|k| k.0 == c.arch && k.1 == c.mode)
                .expect("every run has a probe");
            (k, ((c.depth + 1) * n) as f64)
        })
        .collect();
    println!(
        "estimated time: {} of training steps, runs one after the other (evaluation not counted)",
        fmt_seconds(scale(&probes, &costed))
    );
    if text.is_empty() {
        println!("  estimated by timing nothing: no run is left to train");
    } else {
        println!(
            "  estimated by timing one training step of the shallowest network of each \
             architecture and mode here, at most {} wide ({}), and scaling each run by \
             (depth + 1) x steps (and width^2 from the probe's width)",
            revstab::dry_run::PROBE_WIDTH,
            text.join("; ")
        );
    }
    print_nothing_written();
    Ok(())
}

/// Seconds of one training step of `c` on the first batch of `data` (the second of two steps;
/// the first warms up); a network wider than `dry_run::PROBE_WIDTH` is timed at that width and
/// scaled by width^2.
fn time_step(c: &TrainConfig, data: &revstab::data::DataSplit) -> revstab::Result<f64> {
    let device = c.device.open()?;
    let dtype = c.dtype.dtype();
    let mut net_cfg = c.net_config_for(data)?;
    // At most `dry_run::PROBE_WIDTH` wide (an identity stem keeps the data's channels), and
    // `width_scale` brings a narrower probe back.
    let width = if net_cfg.net.stem == revstab::nets::Stem::Identity {
        net_cfg.width
    } else {
        revstab::dry_run::probe_shape(1, net_cfg.width).1
    };
    let width_scale = (net_cfg.width as f64 / width as f64).powi(2);
    net_cfg.width = width;
    let net = revstab::nets::Network::build_with(&net_cfg, dtype, &device, c.backend)?;
    let b = c.batch.min(data.train.len()).max(1);
    let x = data.train.images.narrow(0, 0, b)?.to_device(&device)?;
    let y = data.train.labels.narrow(0, 0, b)?.to_device(&device)?;
    let opts = revstab::nets::StepOptions {
        grads: true,
        ..revstab::nets::StepOptions::default()
    };
    let mut seconds = 0.0;
    for _ in 0..2 {
        let t = std::time::Instant::now();
        net.step_with_grad_norm(&x, &y, c.plan(), opts)?;
        seconds = t.elapsed().as_secs_f64();
    }
    Ok(seconds * width_scale)
}
