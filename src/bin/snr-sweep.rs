//! `snr-sweep`: reconstruction SNR of reversible networks over depth, slope, dtype and more.
//! Thin: arguments -> checked config -> `revstab::experiments::snr_sweep` -> files.

use anyhow::Context;
use clap::{Parser, Subcommand};
use revstab::backend::Backend;
use revstab::cli::AnchorArgs;
use revstab::error::{bad_input, failed};
use revstab::experiments::anchor_plan;
use revstab::experiments::snr_sweep::{self as sweep, RunOptions, Shard, SweepConfig};
use revstab::lock::lock_out;
use revstab::nets::Arch;
use revstab::nets::NetOverrides;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Reconstruction SNR of reversible networks: per-layer SNR of every rebuilt activation against
/// the stored one (same dtype) and against an f64 shadow, over a grid of architectures, depths
/// and slopes. With no arguments: layer-wise and hybrid networks, depths 1-32, slopes 0.01-1,
/// f32 on the CPU, seed 0, width 8, batch 8, 16x16 inputs.
#[derive(Parser, Debug)]
#[command(
    name = "snr-sweep",
    version,
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true,
    after_help = revstab::cli::EXIT_CODES_HELP
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config (fields of the sweep config; flags below override it)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Output directory
    #[arg(long, value_name = "DIR", default_value = "results/snr-sweep")]
    out: PathBuf,
    /// Architectures [default: layerwise,hybrid] (layerwise, hybrid, revnet, irevnet, resnet)
    #[arg(long, alias = "arch", value_delimiter = ',', value_name = "LIST")]
    archs: Option<Vec<Arch>>,
    /// Depths: units (layer-wise) or blocks [default: 1,2,4,8,16,32]
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    depths: Option<Vec<usize>>,
    /// Leaky-ReLU slopes n > 0 [default: 0.01,0.05,0.1,0.2,0.5,1.0]
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        allow_negative_numbers = true
    )]
    slopes: Option<Vec<f64>>,
    /// Batch-norm reparameterisation eps_i values [default: 0]
    #[arg(
        long = "eps-i",
        value_delimiter = ',',
        value_name = "LIST",
        allow_negative_numbers = true
    )]
    eps_i: Option<Vec<f64>>,
    /// Widths (channels after the stem) [default: 8]
    #[arg(long, alias = "width", value_delimiter = ',', value_name = "LIST")]
    widths: Option<Vec<usize>>,
    /// Batch size [default: 8]
    #[arg(long)]
    batch: Option<usize>,
    /// Input height = width [default: 16]
    #[arg(long = "input-size")]
    input_size: Option<usize>,
    /// Storage dtypes, several allowed: f16,bf16,f32,f64 [default: f32]
    #[arg(long, alias = "dtype", value_delimiter = ',', value_name = "LIST")]
    dtypes: Option<Vec<revstab::device::Precision>>,
    /// Device: cpu, cuda[:N], metal[:N] [default: cpu]
    #[arg(long)]
    device: Option<revstab::device::DeviceSpec>,
    /// Backend computing the layers: the crate's own CPU kernels where they apply, or candle's
    /// ops only [default: kernels]
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// Seeds of weights and input [default: 0]
    #[arg(long, alias = "seed", value_delimiter = ',', value_name = "LIST")]
    seeds: Option<Vec<u64>>,
    /// Std of white noise injected on the output before reconstructing (0 = pure rounding) [default: 0]
    #[arg(long = "noise-std")]
    noise_std: Option<f64>,
    #[command(
        flatten,
        next_help_heading = "Network options (the config's [net] table)"
    )]
    net: NetOverrides,
    /// Skip the per-layer alpha measurements and depth-law predictions
    #[arg(long = "no-depth-law")]
    no_depth_law: bool,
    /// Also estimate each top-level layer's forward and inverse local Lipschitz constants
    /// (power iteration; columns lip_forward, lip_inverse; about 60x the sweep's time)
    #[arg(long)]
    lipschitz: bool,
    /// Skip points already finished in --out (after an interrupted run)
    #[arg(long)]
    resume: bool,
    /// Run only shard K of N of the grid (e.g. 2/4, for a Slurm job array); join with `merge`
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Threads running points in parallel (0 = all cores)
    #[arg(long, default_value_t = 0, value_parser = revstab::cli::parse_threads)]
    threads: usize,
    /// Check the reconstruction error bounds in FILE (e.g. experiments/bounds.toml) instead of
    /// sweeping; exits 1 with a table of every bound that regressed
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
    /// Do not render the figure
    #[arg(long = "no-figure")]
    no_figure: bool,
    /// No per-point lines or progress bar
    #[arg(long, short, alias = "silent")]
    quiet: bool,
    /// Check the config, print the points a run would compute and an estimate of its time
    /// (measured on the cheapest point of each architecture and dtype), write nothing
    #[arg(long = "dry-run")]
    dry_run: bool,
}

/// One network: the sweep's network of one point at initialisation, or the trained network of
/// a `train` run directory (`--checkpoint`).
#[derive(clap::Args, Debug)]
struct OneNet {
    /// Output directory
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Take the network and its trained weights from this `train` run directory (its
    /// checkpoint.json); the network flags below are then not allowed
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
    /// With --checkpoint: the batch measured on, the first --batch training samples of the
    /// run's data (file order), or the seeded unit-Gaussian batch [default: data]
    #[arg(long, value_enum, requires = "checkpoint")]
    input: Option<anchor_plan::ProbeInput>,
    /// Architecture [default: hybrid]
    #[arg(long)]
    arch: Option<Arch>,
    /// Depth: units (layer-wise) or blocks [default: 8]
    #[arg(long)]
    depth: Option<usize>,
    /// Leaky-ReLU slope n > 0 [default: 0.2]
    #[arg(long, allow_negative_numbers = true)]
    slope: Option<f64>,
    /// Batch-norm reparameterisation eps_i [default: 0]
    #[arg(long = "eps-i", allow_negative_numbers = true)]
    eps_i: Option<f64>,
    /// Width (channels after the stem) [default: 8]
    #[arg(long)]
    width: Option<usize>,
    /// Batch size [default: 8; with --checkpoint the run's batch]
    #[arg(long)]
    batch: Option<usize>,
    /// Input height = width [default: 16]
    #[arg(long = "input-size")]
    input_size: Option<usize>,
    /// Storage dtype: f16, bf16, f32, f64 [default: f32]
    #[arg(long)]
    dtype: Option<revstab::device::Precision>,
    /// Seed of weights and input [default: 0]
    #[arg(long)]
    seed: Option<u64>,
    /// Device: cpu, cuda[:N], metal[:N] [default: cpu]
    #[arg(long)]
    device: Option<revstab::device::DeviceSpec>,
    /// Backend computing the layers [default: kernels]
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    #[command(
        flatten,
        next_help_heading = "Network options (the config's [net] table)"
    )]
    net: NetOverrides,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Plan the anchors of one network: writes plan.csv (each rebuilt input: anchored, measured
    /// SNR, the depth law's prediction, bytes held) and run.json, prints the plan and the
    /// anchorable layers with their positions
    Plan {
        #[command(flatten)]
        one: OneNet,
        #[command(flatten, next_help_heading = "Anchors")]
        anchors: AnchorArgs,
    },
    /// Trace the per-layer SNR of one network (the columns of snr_sweep.csv): trace.csv,
    /// summary.csv and run.json; with --checkpoint, of the trained weights
    Trace {
        #[command(flatten)]
        one: OneNet,
    },
    /// Join shard outputs into exactly the files of the unsharded run
    Merge {
        /// Output directory of the merged results
        #[arg(long, default_value = "results/snr-sweep")]
        out: PathBuf,
        /// Shard output directories
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Do not render the figure
        #[arg(long = "no-figure")]
        no_figure: bool,
        /// No table (the closing line still prints)
        #[arg(long, short, alias = "silent")]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    revstab::provenance::started();
    let args = parse_args(std::env::args_os().collect());
    match run(args) {
        Ok(code) => code,
        Err(e) => revstab::error::report("snr-sweep", &e),
    }
}

/// Parse the command line, recording which network flags were given (at the top level, or in
/// the `plan` and `trace` subcommands). A usage error exits as clap does (exit 2).
fn parse_args(argv: Vec<std::ffi::OsString>) -> Args {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Args::command().get_matches_from(argv);
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    args.net.record_given(&matches);
    if let (Some(Command::Plan { one, .. } | Command::Trace { one }), Some((_, sub))) =
        (&mut args.command, matches.subcommand())
    {
        one.net.record_given(sub);
    }
    args
}

/// The user's input: exit code 2 (see `revstab::error`).
fn input<T>(r: anyhow::Result<T>) -> anyhow::Result<T> {
    r.map_err(bad_input)
}

fn config(args: &Args) -> anyhow::Result<SweepConfig> {
    let mut cfg = match &args.config {
        Some(path) => SweepConfig::from_toml_file(path)?,
        None => SweepConfig::default(),
    };
    macro_rules! set {
        ($field:ident) => {
            if let Some(v) = &args.$field {
                cfg.$field = v.clone();
            }
        };
    }
    set!(archs);
    set!(depths);
    set!(slopes);
    set!(eps_i);
    set!(widths);
    set!(batch);
    set!(input_size);
    set!(dtypes);
    set!(device);
    set!(backend);
    set!(seeds);
    set!(noise_std);
    cfg.net = args.net.apply(&cfg.net)?;
    if args.no_depth_law {
        cfg.depth_law = false;
    }
    if args.lipschitz {
        cfg.lipschitz = true;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(Command::Plan { one, anchors }) => return plan(one, anchors),
        Some(Command::Trace { one }) => return trace(one),
        _ => {}
    }
    if let Some(Command::Merge {
        out,
        dirs,
        no_figure,
        quiet,
    }) = &args.command
    {
        let _lock = input(lock_out(out, "snr-sweep").map_err(anyhow::Error::from))?;
        let merged = input(sweep::merge(dirs, out).map_err(anyhow::Error::from))?;
        sweep::write_run_json(
            out,
            &merged.config,
            serde_json::json!({ "merged_from": dirs }),
        )
        .map_err(failed)?;
        if !quiet {
            println!("{}", merged.summary_table());
        }
        draw_figure(&merged, out, *no_figure)?;
        println!(
            "merged {} points from {} shard(s) into {}",
            merged.points.len(),
            dirs.len(),
            out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &args.check {
        let file = input(sweep::read_bounds(path).map_err(anyhow::Error::from))?;
        let start = std::time::Instant::now();
        let checks = input(sweep::check_bounds(&file, args.threads).map_err(anyhow::Error::from))?;
        let failed = checks.iter().filter(|c| !c.ok()).count();
        println!("{}", sweep::bounds_table(&checks, false));
        println!(
            "{} bound(s) checked in {:.1} s (bounds set {} dB below measured values)",
            checks.len(),
            start.elapsed().as_secs_f64(),
            file.margin_db
        );
        if failed > 0 {
            eprintln!(
                "snr-sweep: {failed} reconstruction bound(s) regressed:\n{}",
                sweep::bounds_table(&checks, true)
            );
            return Ok(ExitCode::from(revstab::error::EXIT_FAILURE));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = input(config(&args))?;
    let shard = match &args.shard {
        Some(s) => Some(input(s.parse::<Shard>().map_err(anyhow::Error::from))?),
        None => None,
    };
    if args.dry_run {
        return dry_run(&args, &cfg, shard);
    }
    // Held until the process ends: a second run into this directory stops here (exit 2).
    let _lock = input(lock_out(&args.out, "snr-sweep").map_err(anyhow::Error::from))?;
    input(
        sweep::prepare_out(&args.out)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("output directory {}", args.out.display())),
    )?;
    if args.resume {
        // A resume of another config is bad input (exit 2), as in every tool.
        input(sweep::resumable_points(&args.out, &cfg).map_err(anyhow::Error::from))?;
    }
    let terminal = std::io::stderr().is_terminal();
    let opts = RunOptions {
        out: args.out.clone(),
        resume: args.resume,
        shard,
        threads: args.threads,
        progress_bar: terminal && !args.quiet,
        verbose: !args.quiet,
    };
    let outcome = sweep::run_sweep(&cfg, &opts).map_err(failed)?;
    let threads = if args.threads == 0 {
        rayon::current_num_threads()
    } else {
        args.threads
    };
    sweep::write_run_json_resumable(
        &args.out,
        &cfg,
        serde_json::json!({
            "shard": shard,
            "threads": threads,
            "points": outcome.results.points.len(),
            "computed": outcome.computed,
            "skipped": outcome.skipped,
            "wall_seconds": outcome.seconds,
            "point_seconds": outcome.results.point_seconds(),
        }),
        args.resume,
    )
    .map_err(failed)?;
    if !args.quiet {
        println!("{}", outcome.results.summary_table());
    }
    draw_figure(&outcome.results, &args.out, args.no_figure)?;
    println!(
        "{} points ({} computed, {} resumed) in {:.1} s on {} thread(s); results in {}",
        outcome.results.points.len(),
        outcome.computed,
        outcome.skipped,
        outcome.seconds,
        threads,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Draw `snr_vs_depth.{png,svg}` of `results` into `out` (unless `no_figure`); a figure of an
/// earlier run that this one does not redraw is removed.
fn draw_figure(results: &sweep::SweepResults, out: &Path, no_figure: bool) -> anyhow::Result<()> {
    let stem = out.join("snr_vs_depth");
    let drawn = if !no_figure && !results.points.is_empty() {
        let drawn = revstab::plot::snr_sweep::render_figure(results, &stem).map_err(failed)?;
        if !drawn {
            eprintln!(
                "no figure: no point has a finite SNR to draw (nothing reconstructed, or every \
                 point overflowed); the table and CSVs have the results"
            );
        }
        drawn
    } else {
        false
    };
    if !drawn {
        // A figure of an earlier run in this directory would show other results: remove it.
        for ext in ["png", "svg"] {
            let old = stem.with_extension(ext);
            if old.exists() {
                std::fs::remove_file(&old)
                    .with_context(|| format!("cannot remove the stale {}", old.display()))
                    .map_err(failed)?;
                eprintln!(
                    "note: removed {} of an earlier run (this run drew no figure)",
                    old.display()
                );
            }
        }
    }
    Ok(())
}

/// Cost of a point in the dry run's model: (depth + 1) x width^2 (convolutions of `width`
/// channels at every layer; batch and input size are the same for every point of a sweep).
fn point_cost(p: &sweep::Point) -> f64 {
    revstab::dry_run::probe_cost(p.depth, p.width, 1)
}

/// `--dry-run`: the points this run would compute (shard and `--resume` applied) and its time,
/// estimated by timing the cheapest point of each (architecture, dtype) and scaling by
/// [`point_cost`]. Reads --out when resuming, writes nothing.
fn dry_run(args: &Args, cfg: &SweepConfig, shard: Option<Shard>) -> anyhow::Result<ExitCode> {
    use revstab::dry_run::{fmt_seconds, print_nothing_written, print_plan, scale};
    let mut done = std::collections::HashSet::new();
    if args.resume && args.out.is_dir() {
        let finished = input(sweep::resumable_points(&args.out, cfg).map_err(anyhow::Error::from))?;
        for r in finished.points {
            done.insert(r.point.key());
        }
    }
    let grid = cfg.grid();
    let total = grid.len();
    let plan: Vec<sweep::Point> = grid
        .into_iter()
        .filter(|p| shard.is_none_or(|s| s.owns(p.index)))
        .filter(|p| !done.contains(&p.key()))
        .collect();
    let lines: Vec<String> = plan.iter().map(|p| p.key()).collect();
    print_plan("points", &lines);
    println!(
        "({} of the grid's {total}; {} already finished in {})",
        plan.len(),
        done.len(),
        args.out.display()
    );
    // Probes: the cheapest planned point of each (arch, dtype), timed here.
    let device = input(cfg.device.open().map_err(anyhow::Error::from))?;
    let mut kinds: Vec<(Arch, revstab::device::Precision, sweep::Point)> = Vec::new();
    for p in &plan {
        match kinds
            .iter_mut()
            .find(|(a, d, _)| *a == p.arch && *d == p.dtype)
        {
            Some(k) if point_cost(p) < point_cost(&k.2) => k.2 = p.clone(),
            Some(_) => {}
            None => kinds.push((p.arch, p.dtype, p.clone())),
        }
    }
    let mut probes = Vec::new();
    let mut probe_text = Vec::new();
    for (_, _, p) in &kinds {
        // A point deeper or wider than a probe is timed scaled down (its own config with only
        // the probe's depth and width), then scaled up by the cost model.
        let (depth, width) = revstab::dry_run::probe_shape(p.depth, p.width);
        let probe = sweep::Point {
            depth,
            width,
            ..p.clone()
        };
        let mut probe_cfg = cfg.clone();
        probe_cfg.depths = vec![depth];
        probe_cfg.widths = vec![width];
        if probe_cfg.net.stem == revstab::nets::Stem::Identity {
            probe_cfg.net.in_channels = width;
        }
        let (r, _) = sweep::run_point(&probe_cfg, &probe, &device).map_err(failed)?;
        probes.push((point_cost(&probe), r.seconds));
        probe_text.push(format!("{} {:.4} s", probe.key(), r.seconds));
    }
    let costed: Vec<(usize, f64)> = plan
        .iter()
        .map(|p| {
            let k = kinds
                .iter()
                .position(|(a, d, _)| *a == p.arch && *d == p.dtype)
                .expect("every planned point has a probe");
            (k, point_cost(p))
        })
        .collect();
    let sequential = scale(&probes, &costed);
    let threads = if args.threads == 0 {
        rayon::current_num_threads()
    } else {
        args.threads
    };
    println!(
        "estimated time: {} one point after the other, about {} on {threads} thread(s)",
        fmt_seconds(sequential),
        fmt_seconds(sequential / threads.max(1) as f64)
    );
    println!(
        "  estimated by timing the cheapest point of each architecture and dtype here, at most \
         {} deep and {} wide ({}), and scaling each point by (depth + 1) x width^2 relative to \
         its probe",
        revstab::dry_run::PROBE_DEPTH,
        revstab::dry_run::PROBE_WIDTH,
        if probe_text.is_empty() {
            "no point to time".to_string()
        } else {
            probe_text.join("; ")
        }
    );
    print_nothing_written();
    Ok(ExitCode::SUCCESS)
}

/// The network of `plan` and `trace`: from the checkpoint, or the sweep's network of the one
/// point the flags give. Bad flags or a bad run directory: exit 2.
fn one_net(one: &OneNet) -> anyhow::Result<anchor_plan::Probe> {
    if let Some(dir) = &one.checkpoint {
        let given: Vec<&str> = [
            ("--arch", one.arch.is_some()),
            ("--depth", one.depth.is_some()),
            ("--slope", one.slope.is_some()),
            ("--eps-i", one.eps_i.is_some()),
            ("--width", one.width.is_some()),
            ("--input-size", one.input_size.is_some()),
            ("--dtype", one.dtype.is_some()),
            ("--seed", one.seed.is_some()),
            ("--backend", one.backend.is_some()),
            (
                "network options",
                one.net.apply(&Default::default())? != Default::default(),
            ),
        ]
        .into_iter()
        .filter_map(|(f, g)| g.then_some(f))
        .collect();
        if !given.is_empty() {
            return Err(bad_input(anyhow::anyhow!(
                "--checkpoint takes the network from the run directory: {} not allowed with it",
                given.join(", ")
            )));
        }
        let source = one.input.unwrap_or(anchor_plan::ProbeInput::Data);
        let device = one.device.unwrap_or_default();
        return input(
            anchor_plan::probe_from_checkpoint(dir, device, one.batch, source)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("--checkpoint {}", dir.display())),
        );
    }
    let mut cfg = SweepConfig::default();
    cfg.archs = vec![one.arch.unwrap_or(Arch::Hybrid)];
    cfg.depths = vec![one.depth.unwrap_or(8)];
    cfg.slopes = vec![one.slope.unwrap_or(0.2)];
    cfg.eps_i = vec![one.eps_i.unwrap_or(0.0)];
    cfg.widths = vec![one.width.unwrap_or(cfg.widths[0])];
    cfg.batch = one.batch.unwrap_or(cfg.batch);
    cfg.input_size = one.input_size.unwrap_or(cfg.input_size);
    cfg.dtypes = vec![one.dtype.unwrap_or(revstab::device::Precision::F32)];
    cfg.seeds = vec![one.seed.unwrap_or(0)];
    cfg.device = one.device.unwrap_or(cfg.device);
    cfg.backend = one.backend.unwrap_or(cfg.backend);
    cfg.net = input(one.net.apply(&cfg.net).map_err(anyhow::Error::from))?;
    input(anchor_plan::probe_at_init(&cfg).map_err(anyhow::Error::from))
}

/// `snr-sweep plan`: everything is checked (flags, anchors against the network) before the
/// output directory is touched.
fn plan(one: &OneNet, anchor_args: &AnchorArgs) -> anyhow::Result<ExitCode> {
    let probe = one_net(one)?;
    let anchoring = anchor_args.apply(&Default::default());
    input(
        anchoring
            .check_against(&probe.net)
            .map_err(anyhow::Error::from),
    )?;
    print!("{}", anchor_plan::anchorable_listing(&probe.net));
    let outcome = anchor_plan::make_plan(&probe, &anchoring).map_err(failed)?;
    let _lock = input(lock_out(&one.out, "snr-sweep").map_err(anyhow::Error::from))?;
    anchor_plan::write_plan(&one.out, &probe, &anchoring, &outcome).map_err(failed)?;
    println!("{}", anchor_plan::plan_report(&probe, &anchoring, &outcome));
    println!(
        "{} on {}; plan.csv and run.json in {}",
        if probe.checkpoint.is_some() {
            "trained weights"
        } else {
            "initial weights"
        },
        probe.input,
        one.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `snr-sweep trace`: the per-layer SNR of one network (trained with --checkpoint).
fn trace(one: &OneNet) -> anyhow::Result<ExitCode> {
    let probe = one_net(one)?;
    let _lock = input(lock_out(&one.out, "snr-sweep").map_err(anyhow::Error::from))?;
    let r = anchor_plan::write_trace(&one.out, &probe).map_err(failed)?;
    println!(
        "{} layers traced ({} weights, on {}); lowest SNR {} dB; trace.csv, summary.csv and \
         run.json in {}",
        r.trace_lines.len(),
        if probe.checkpoint.is_some() {
            "trained"
        } else {
            "initial"
        },
        probe.input,
        revstab::results::text::fmt_f(r.lowest_snr_db),
        one.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
