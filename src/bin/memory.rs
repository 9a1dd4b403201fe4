//! `memory`: measured peak memory of one training step beside the analytic model (paper
//! Table 1), and its scaling with depth, batch and resolution in stored and reconstructed mode.
//!
//! `cargo run --release --bin memory -- --out results/memory` (one stage, seconds);
//! `cargo run --release --bin memory -- --preset paper` (the paper's configurations, under a
//! minute).
//! Writes `summary.csv` (one row per architecture and mode: analytic, measured and marginal
//! bytes per input pixel of activations), `measured.csv`, `scaling.csv`, `table1.csv` and
//! `run.json` into `--out`.

use anyhow::Context;
use clap::Parser;
use revstab::backend::Backend;
use revstab::experiments::memory::{check_writable, run_with, MemoryConfig, Preset};
use revstab::nets::NetOverrides;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;

/// Peak training memory per architecture, measured with a counting allocator, beside the
/// analytic model of Hascoet et al. (Table 1); depth, batch and resolution scaling.
#[derive(Debug, Parser)]
#[command(name = "memory", version, allow_negative_numbers = true, after_help = revstab::cli::EXIT_CODES_HELP)]
struct Args {
    /// Output directory (summary.csv, measured.csv, scaling.csv, table1.csv, run.json).
    #[arg(long, default_value = "results/memory")]
    out: PathBuf,
    /// TOML config file (fields of MemoryConfig; flags given on the command line override it),
    /// e.g. experiments/memory-paper.toml; a `.json` file is read as JSON (the older format).
    #[arg(long, conflicts_with = "preset")]
    config: Option<PathBuf>,
    /// Built-in configuration: `default` (one stage, width 32, 16x16, depths 2-32; seconds),
    /// `quick` (smoke test), `paper` (the paper's configurations: width 32, 32x32, every
    /// pooling, Table 1's blocks per stage, batches 2-8; under a minute).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Seed of the weights and the input batch.
    #[arg(long, alias = "seeds")]
    seed: Option<u64>,
    /// Channels after the stem.
    #[arg(long)]
    width: Option<usize>,
    /// Network options shared by every tool (the analytic model covers the convolutional stem
    /// and the default F/G chains; other choices are measured without it).
    #[command(
        flatten,
        next_help_heading = "Network options (the config's [net] table)"
    )]
    net: NetOverrides,
    /// Input height = width of the single-size measurements.
    #[arg(long = "input-size")]
    input_size: Option<usize>,
    /// Storage dtype: f16, bf16, f32, f64.
    #[arg(long, alias = "dtypes")]
    dtype: Option<revstab::device::Precision>,
    /// Device (only cpu can be measured).
    #[arg(long)]
    device: Option<revstab::device::DeviceSpec>,
    /// Threads of candle's CPU kernels (0 = all cores) [default: 0]
    #[arg(long, value_parser = revstab::cli::parse_threads)]
    threads: Option<usize>,
    /// Backend computing the layers: `kernels` (the crate's own CPU kernels where they apply)
    /// or `candle` (candle's ops only) [default: kernels].
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// Sources of the activations, comma-separated: stored, reconstructed, checkpointed,
    /// anchored (see --min-snr-db, --anchors) [default: stored,reconstructed].
    #[arg(long, value_enum, value_delimiter = ',')]
    modes: Option<Vec<revstab::nets::Source>>,
    /// Checkpointed mode: units or blocks per segment, K in 1..=every depth measured
    /// [default: ceil(sqrt(depth)) at each depth].
    #[arg(long, value_name = "K")]
    segment: Option<usize>,
    /// Anchored mode: the plan, made once per measured network on its batch (the config's
    /// `[anchors]` table; --replan-every is a train flag: memory refuses it).
    #[command(
        flatten,
        next_help_heading = "Anchored mode (planned once per network)"
    )]
    anchoring: revstab::cli::AnchorArgs,
    /// Smaller grid (under a second); the same as `--preset quick`.
    #[arg(long, conflicts_with = "preset")]
    quick: bool,
    /// Do not print a line per measured point.
    #[arg(long, short, alias = "silent")]
    quiet: bool,
    /// Check the config, print the points a run would measure and an estimate of its time
    /// (the cheapest point of each architecture and mode timed here), write nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
}

fn run() -> anyhow::Result<()> {
    let args = revstab::cli::parse_with_net::<Args>(std::env::args_os().collect(), |a| &mut a.net);
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            let json = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let mut c: MemoryConfig = if json {
                serde_json::from_str(&text)
                    .with_context(|| format!("invalid config {}", path.display()))?
            } else {
                toml::from_str(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "invalid config {}: {}",
                        path.display(),
                        e.to_string().trim()
                    )
                })?
            };
            c.quick |= args.quick;
            c
        }
        None if args.quick => MemoryConfig::quick(),
        None => MemoryConfig::preset(args.preset.unwrap_or(Preset::Default)),
    };
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if let Some(w) = args.width {
        cfg.width = w;
    }
    cfg.net = args.net.apply(&cfg.net)?;
    if let Some(s) = args.input_size {
        cfg.input_size = s;
    }
    if let Some(m) = args.modes {
        cfg.modes = m;
    }
    if args.segment.is_some() {
        cfg.segment = args.segment;
    }
    cfg.anchors = args.anchoring.apply(&cfg.anchors);
    if let Some(d) = args.dtype {
        cfg.dtype = d;
    }
    if let Some(d) = args.device {
        cfg.device = d;
    }
    match args.threads {
        // 0: all cores, candle's default.
        Some(0) => cfg.threads = None,
        Some(n) => cfg.threads = Some(n),
        None => {}
    }
    if let Some(b) = args.backend {
        cfg.backend = b;
    }
    cfg.validate().context("invalid configuration")?;
    if args.dry_run {
        return dry_run(&cfg);
    }
    // Held until the process ends: a second run into this directory stops here (exit 2).
    let _lock = revstab::lock::lock_out(&args.out, "memory")
        .with_context(|| format!("cannot write to output directory {}", args.out.display()))?;
    check_writable(&args.out)
        .with_context(|| format!("cannot write to output directory {}", args.out.display()))?;
    let silent = args.quiet;
    let results = run_with(&cfg, |p| {
        if !silent {
            eprintln!(
                "{:>9} {:>13} depth {:>2} batch {:>2} size {:>2}: peak {:>9} B ({:.0} B/px), grads {} B, activations {:.0} B/px, {:.2} s",
                p.arch.as_str(),
                p.mode.as_str(),
                p.depth,
                p.batch,
                p.size,
                p.peak_bytes,
                p.bytes_per_pixel,
                p.grad_bytes,
                p.act_bytes_per_pixel,
                p.step_seconds
            );
        }
    })
    .map_err(revstab::error::failed)?;
    println!("{}", results.markdown());
    results
        .write_all(&args.out)
        .with_context(|| format!("cannot write results to {}", args.out.display()))
        .map_err(revstab::error::failed)?;
    println!(
        "wrote {} ({} points, {:.1} s)",
        args.out.display(),
        results.timings.points,
        results.timings.total_s
    );
    Ok(())
}

/// Cost of a point in the dry run's model: (depth + 1) x width^2 x batch x size^2 (every block,
/// and the stem, runs convolutions of `width` channels over every pixel of every image).
fn point_cost(depth: usize, batch: usize, size: usize, width: usize) -> f64 {
    revstab::dry_run::probe_cost(depth, width, batch * size * size)
}

/// `--dry-run`: the points [`run_with`] would measure and its time, estimated by timing the
/// cheapest point of each (architecture, mode) here (one measured step, as a run does) and
/// scaling by [`point_cost`]. Writes nothing.
fn dry_run(cfg: &MemoryConfig) -> anyhow::Result<()> {
    use revstab::dry_run::{fmt_seconds, print_nothing_written, print_plan, scale};
    use revstab::experiments::memory::{measure_point_segment, plan};
    let plan = plan(cfg);
    let lines: Vec<String> = plan
        .iter()
        .map(|(a, m, d, b, s)| {
            format!("{} {} depth {d} batch {b} size {s}", a.as_str(), m.as_str())
        })
        .collect();
    print_plan("points", &lines);
    // An architecture without an inverse (ResNet) has its reconstructed step equal to its
    // stored one: those rows are copied, not measured.
    // (`run_with` copies them when the stored mode comes first in --modes.)
    let at = |m| cfg.modes.iter().position(|x| *x == m);
    let stored_first = matches!(
        (at(revstab::nets::Source::Stored), at(revstab::nets::Source::Reconstructed)),
        (Some(s), Some(r)) if s < r
    );
    let copied = if stored_first {
        plan.iter()
            .filter(|p| !p.0.reconstructable() && p.1 == revstab::nets::Source::Stored)
            .count()
    } else {
        0
    };
    if copied > 0 {
        println!(
            "(plus {copied} reconstructed row(s) of architectures without an inverse, copied from \
             their stored ones: {} rows in all)",
            plan.len() + copied
        );
    }
    let dtype = cfg.dtype.dtype();
    let device = cfg.device.open()?;
    let mut kinds: Vec<(
        revstab::nets::Arch,
        revstab::nets::Source,
        (usize, usize, usize),
    )> = Vec::new();
    for &(a, m, d, b, s) in &plan {
        let c = point_cost(d, b, s, cfg.width);
        match kinds.iter_mut().find(|k| k.0 == a && k.1 == m) {
            Some(k) if c < point_cost(k.2 .0, k.2 .1, k.2 .2, cfg.width) => k.2 = (d, b, s),
            Some(_) => {}
            None => kinds.push((a, m, (d, b, s))),
        }
    }
    let mut probes = Vec::new();
    let mut text = Vec::new();
    // A point deeper or wider than a probe is timed scaled down (at most
    // `dry_run::PROBE_DEPTH` deep and `PROBE_WIDTH` wide), then scaled up by the cost model.
    let (_, probe_width) = revstab::dry_run::probe_shape(1, cfg.width);
    let mut probe_cfg = MemoryConfig {
        width: probe_width,
        ..cfg.clone()
    };
    if cfg.net.stem == revstab::nets::Stem::Identity {
        probe_cfg.net.in_channels = probe_width;
    }
    for &(a, m, (d, b, s)) in &kinds {
        let (d, _) = revstab::dry_run::probe_shape(d, cfg.width);
        let p = measure_point_segment(
            &probe_cfg.net_config(a, d, s),
            b,
            m,
            cfg.segment.map(|k| k.min(d)),
            dtype,
            &device,
            cfg.backend,
            1,
        )
        .map_err(revstab::error::failed)?;
        probes.push((point_cost(d, b, s, probe_width), p.step_seconds));
        text.push(format!(
            "{} {} depth {d} width {probe_width} batch {b} size {s}: {:.4} s",
            a.as_str(),
            m.as_str(),
            p.step_seconds
        ));
    }
    let costed: Vec<(usize, f64)> = plan
        .iter()
        .map(|&(a, m, d, b, s)| {
            let k = kinds
                .iter()
                .position(|k| k.0 == a && k.1 == m)
                .expect("every planned point has a probe");
            (k, point_cost(d, b, s, cfg.width))
        })
        .collect();
    println!(
        "estimated time: {} (points run one after the other)",
        fmt_seconds(scale(&probes, &costed))
    );
    println!(
        "  estimated by timing one step of the cheapest point of each architecture and mode here, \
         at most {} deep and {} wide ({}), and scaling each point by (depth + 1) x width^2 x \
         batch x size^2 relative to its probe",
        revstab::dry_run::PROBE_DEPTH,
        revstab::dry_run::PROBE_WIDTH,
        if text.is_empty() {
            "no point to time".to_string()
        } else {
            text.join("; ")
        }
    );
    print_nothing_written();
    Ok(())
}

fn main() -> ExitCode {
    revstab::provenance::started();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        // Unmarked errors are the checks of the input; the run's own are marked `failed`.
        Err(e) => revstab::error::report_or("memory", &e, revstab::error::EXIT_BAD_INPUT),
    }
}
