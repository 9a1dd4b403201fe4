//! `bench`: time of one real training step (`Network::step` with gradients, then the training
//! loop's `Sgd::step`) of a network of `revstab::nets`, by default a one-stage RevNet, with
//! stored activations, reconstructed activations (per-layer backward) and Gomez et al.'s
//! Algorithm 1, with the peak live heap bytes of the step (issues 7 and 13).
//!
//! `cargo run --release --bin bench -- --depths 4,8,16 --steps 5 --threads 2 --out results/bench`
//! `cargo run --release --bin bench -- --arch hybrid --pools default --depths 4`
//! `cargo run --release --bin bench -- --backend candle` (the "before" column: candle's ops only)

use anyhow::Context;
use clap::Parser;
use revstab::backend::Backend;
use revstab::experiments::bench::{format_table, parse_pools, run, to_csv, BenchConfig, BenchMode};
use revstab::nets::Arch;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;

/// Median seconds per training step (forward, backward, SGD with momentum and weight decay) of a
/// network (default: RevNet, one stage: stem, D blocks with F = G = conv3x3-BN-ReLU-conv3x3-BN,
/// average pool + linear head, cross-entropy) in three modes run interleaved: stored,
/// reconstructed, algorithm1.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Depths (blocks; units for layerwise), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4,8,16")]
    depths: Vec<usize>,
    /// Timed steps per mode and depth (the median is reported).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed rounds before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Threads of candle's CPU kernels.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Threads of candle's elementwise ops (its barrier pool: its workers spin between ops and
    /// oversubscribe the cores beside the kernels' pool).
    #[arg(long, default_value_t = 1)]
    elementwise_threads: usize,
    /// Modes, comma-separated (resnet has only `stored`: the others are skipped with a note).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "stored,reconstructed,algorithm1"
    )]
    modes: Vec<BenchMode>,
    /// Architecture.
    #[arg(long, value_enum, default_value_t = Arch::Revnet)]
    arch: Arch,
    /// Downsampling between stages: `none` (one stage), `default` (the architecture's), or
    /// comma-separated `c` (channel pooling), `b` (batch pooling), `max` (max pool + 1x1 conv;
    /// revnet and resnet only).
    #[arg(long, default_value = "none")]
    pools: String,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Input height = width.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Channels after the stem (both halves of a block).
    #[arg(long, alias = "channels", default_value_t = 32)]
    width: usize,
    /// Storage dtype: f16, bf16, f32, f64.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// SGD learning rate (constant).
    #[arg(long, default_value_t = BenchConfig::default().lr)]
    lr: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = BenchConfig::default().momentum)]
    momentum: f64,
    /// SGD weight decay (coupled L2, as in training).
    #[arg(long, default_value_t = BenchConfig::default().weight_decay)]
    weight_decay: f64,
    /// Seed of the weights, input and labels.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend computing the layers: `kernels` (the crate's own CPU kernels for conv, batch
    /// norm, ReLU, coupling adds where they apply) or `candle` (candle's ops only: the "before"
    /// column).
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
    /// Older spelling of `--backend`: `on` is `kernels`, `off` is `candle`.
    #[arg(long, value_parser = ["on", "off"], conflicts_with = "backend")]
    kernels: Option<String>,
    /// Output directory (bench.csv, run.json).
    #[arg(long, default_value = "results/bench")]
    out: PathBuf,
}

fn run_main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = BenchConfig {
        depths: args.depths,
        modes: args.modes,
        steps: args.steps,
        warmup: args.warmup,
        threads: Some(args.threads),
        elementwise_threads: Some(args.elementwise_threads),
        arch: args.arch,
        pools: parse_pools(&args.pools, args.arch)?,
        width: args.width,
        batch: args.batch,
        size: args.size,
        dtype: args.dtype,
        seed: args.seed,
        lr: args.lr,
        momentum: args.momentum,
        weight_decay: args.weight_decay,
        backend: match args.kernels.as_deref() {
            Some("off") => Backend::Candle,
            Some(_) => Backend::Kernels,
            None => args.backend,
        },
        ..BenchConfig::default()
    };
    cfg.validate()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    if !revstab::measure::alloc::is_installed() {
        eprintln!("warning: counting allocator not active, peak bytes will read 0");
    }
    let note = cfg.skip_note();
    if let Some(n) = &note {
        eprintln!("note: {n}");
    }
    println!("{}", cfg.describe());
    let started = std::time::Instant::now();
    let rows = run(&cfg, |r| {
        eprintln!(
            "{:>13} D={:<3} median {:.4} s/step ({} steps, loss {:.4})",
            r.mode.as_str(),
            r.depth,
            r.median_s,
            r.times_s.len(),
            r.last_loss
        )
    })?;
    let total_s = started.elapsed().as_secs_f64();
    print!("{}", format_table(&rows));
    revstab::util::write_atomic(&args.out.join("bench.csv"), to_csv(&cfg, &rows).as_bytes())?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let run_json = serde_json::json!({
        "experiment": "bench",
        "git_revision": revstab::util::git_revision(),
        "backend": cfg.backend.as_str(),
        "config": cfg,
        "candle_threads": candle_core::utils::get_num_threads(),
        "env": {
            "RAYON_NUM_THREADS": std::env::var("RAYON_NUM_THREADS").ok(),
            "CANDLE_NUM_THREADS": std::env::var("CANDLE_NUM_THREADS").ok(),
        },
        "available_parallelism": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "loadavg_at_end": load.trim(),
        "total_s": total_s,
        "workload": cfg.describe(),
        "skipped": note,
        "rows": rows,
        "notes": "step = Network::step (gradients, the mode's source and rebuild) then train::Sgd::step; modes interleaved step by step, each training its own copy of the weights; median of the timed steps; peak_bytes = peak live heap bytes during a step above those live at its start (counting allocator); conv_gflops counts forward + dX + dW of every convolution (the stem without dX), recomputations not counted",
    });
    revstab::util::write_atomic(
        &args.out.join("run.json"),
        serde_json::to_string_pretty(&run_json)?.as_bytes(),
    )?;
    println!("wrote {} ({:.1} s)", args.out.display(), total_s);
    Ok(())
}

fn main() -> ExitCode {
    match run_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
