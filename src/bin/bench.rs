//! `bench`: time of one real training step (`Network::step` with gradients, then the training
//! loop's `Sgd::step`) of a network of `revstab::nets`, by default a one-stage RevNet, with
//! stored activations, reconstructed activations (per-layer backward), Gomez et al.'s
//! Algorithm 1 and checkpointed activations (every k-th block's input stored, segments
//! recomputed), with the peak live heap bytes of the step.
//!
//! `cargo run --release --bin bench -- --depths 4,8,16 --steps 5 --threads 2 --out results/bench`
//! `cargo run --release --bin bench -- --arch hybrid --pools default --depths 4`
//! `cargo run --release --bin bench -- --backend candle` (the "before" column: candle's ops only)
//! `cargo run --release --bin bench -- --workload stack --depths 16 --modes stored,checkpointed --segment 4`
//! `cargo run --release --bin bench -- --arch layerwise --depths 16 --modes stored,reconstructed,anchored --min-snr-db 60`

use anyhow::Context;
use clap::Parser;
use revstab::backend::Backend;
use revstab::device::{DeviceSpec, Precision};
use revstab::experiments::bench::{
    conv_shape_timings, format_shape_table, format_table, loadavg, parse_pools, run,
    shape_csv_line, BenchConfig, BenchResults, ThreadEnv, SHAPE_CSV_HEADER,
};
use revstab::nets::Arch;
use revstab::nets::BackwardPlan;
use revstab::nets::NetOverrides;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;

/// What `bench` times when `--arch`, `--pools` and `--depths` are not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// The paper's networks: hybrid and layer-wise, pools `c,c,b` (32 channels at 32x32 become
    /// 128 at 16x16, 512 at 8x8, then 512 at 4x4 with 4x the batch), depths 4 and 8.
    Paper,
    /// The one-stage RevNet stack (no pooling, 32 channels at 32x32), depths 4, 8 and 16.
    Stack,
}

impl Workload {
    fn archs(self) -> Vec<Arch> {
        match self {
            Workload::Paper => vec![Arch::Hybrid, Arch::Layerwise],
            Workload::Stack => vec![Arch::Revnet],
        }
    }

    fn pools(self) -> &'static str {
        match self {
            Workload::Paper => "c,c,b",
            Workload::Stack => "none",
        }
    }

    fn depths(self) -> Vec<usize> {
        match self {
            Workload::Paper => vec![4, 8],
            Workload::Stack => vec![4, 8, 16],
        }
    }
}

/// Median seconds per training step (forward, backward, SGD with momentum and weight decay) of
/// networks of revstab::nets in the modes given, run interleaved: stored, reconstructed,
/// algorithm1, checkpointed (default: the first three).
/// By default the paper's networks (hybrid and layer-wise, width 32, pools c,c,b, 32x32, batch
/// 32, depths 4 and 8); `--workload stack` is the one-stage RevNet stack.
#[derive(Debug, Parser)]
#[command(name = "bench", version, allow_negative_numbers = true, after_help = revstab::cli::EXIT_CODES_HELP)]
struct Args {
    /// Preset of architectures, pools and depths (each overridden by its own flag).
    #[arg(long, value_enum, default_value_t = Workload::Paper)]
    workload: Workload,
    /// Architectures, comma-separated (default: the workload's).
    #[arg(long, alias = "archs", value_enum, value_delimiter = ',')]
    arch: Vec<Arch>,
    /// Depths (blocks; units for layerwise), comma-separated (default: the workload's).
    #[arg(long, value_delimiter = ',')]
    depths: Vec<usize>,
    /// Timed steps per mode and depth (the median is reported).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed rounds before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Threads of candle's CPU kernels (0 = all cores).
    #[arg(long, default_value_t = 0, value_parser = revstab::cli::parse_threads)]
    threads: usize,
    /// Threads of candle's elementwise ops (its barrier pool: its workers spin between ops and
    /// oversubscribe the cores beside the kernels' pool).
    #[arg(long, default_value_t = 1, value_parser = revstab::cli::parse_threads)]
    elementwise_threads: usize,
    /// Modes, comma-separated: stored, reconstructed, algorithm1, checkpointed, anchored
    /// (reconstructed with the inputs of planned or listed layers stored; see --min-snr-db,
    /// --anchors) (resnet has only `stored` and `checkpointed`: the others are skipped with a
    /// note).
    #[arg(
        long,
        value_parser = BackwardPlan::parse,
        value_delimiter = ',',
        default_value = "stored,reconstructed,algorithm1"
    )]
    modes: Vec<BackwardPlan>,
    /// Checkpointed mode: blocks (units for layerwise) per segment, K in 1..=every depth
    /// [default: ceil(sqrt(depth)) at each depth].
    #[arg(long, value_name = "K")]
    segment: Option<usize>,
    /// Anchored mode: the plan, made once per depth on the benchmark's batch before the first
    /// step (--replan-every is a train flag: bench refuses it).
    #[command(flatten, next_help_heading = "Anchored mode (planned once per depth)")]
    anchoring: revstab::cli::AnchorArgs,
    /// Network options shared by every tool (--pools default: the workload's).
    #[command(
        flatten,
        next_help_heading = "Network options (the config's [net] table)"
    )]
    net: NetOverrides,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Input height = width.
    #[arg(long = "input-size", alias = "size", default_value_t = 32)]
    size: usize,
    /// Channels after the stem (both halves of a block).
    #[arg(long, alias = "channels", default_value_t = 32)]
    width: usize,
    /// Storage dtype: f16, bf16, f32, f64.
    #[arg(long, alias = "dtypes", default_value = "f32")]
    dtype: Precision,
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
    #[arg(long, alias = "seeds", default_value_t = 0)]
    seed: u64,
    /// TOML file of settings: each key a long flag of this command (`archs = ["hybrid"]`,
    /// `depths = [4, 8]`, `input_size = 16`, `conv_shapes = true`); flags given on the command
    /// line win over the file
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Backend computing the layers: `kernels` (the crate's own CPU kernels for conv, batch
    /// norm, ReLU, coupling adds where they apply) or `candle` (candle's ops only: the "before"
    /// column).
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
    /// Older spelling of `--backend`: `on` is `kernels`, `off` is `candle`.
    #[arg(long, value_parser = ["on", "off"], conflicts_with = "backend")]
    kernels: Option<String>,
    /// Instead of training steps, time every convolution shape of the networks (at the largest
    /// depth) on both kernel paths, direct and gemm: forward, input gradient and weight gradient,
    /// with their GFLOP/s (`*` marks the path the layers take); writes conv_shapes.csv.
    #[arg(long)]
    conv_shapes: bool,
    /// Check the config, print the (architecture, depth, mode) points a run would time and an
    /// estimate of its time (one step of the shallowest depth timed here), write nothing
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Device: cpu, cuda[:N] (build with `--features cuda`), metal[:N]. Off the CPU the layers
    /// run on candle's ops and every timed step ends with a device synchronisation.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Output directory (bench.csv or conv_shapes.csv, run.json).
    #[arg(long, default_value = "results/bench")]
    out: PathBuf,
    /// No per-step lines
    #[arg(long, short, alias = "silent")]
    quiet: bool,
}

fn run_main() -> anyhow::Result<()> {
    use clap::CommandFactory;
    let argv = revstab::cli::args_with_config(&Args::command(), std::env::args_os().collect())?;
    let args = revstab::cli::parse_with_net::<Args>(argv, |a| &mut a.net);
    let archs = if args.arch.is_empty() {
        args.workload.archs()
    } else {
        args.arch.clone()
    };
    let depths = if args.depths.is_empty() {
        args.workload.depths()
    } else {
        args.depths.clone()
    };
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.threads
    };
    let configs = archs
        .iter()
        .map(|&arch| {
            let cfg = BenchConfig {
                depths: depths.clone(),
                modes: args.modes.clone(),
                segment: args.segment,
                anchors: args.anchoring.apply(&Default::default()),
                steps: args.steps,
                warmup: args.warmup,
                threads: Some(threads),
                elementwise_threads: Some(args.elementwise_threads),
                arch,
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
                device: args.device,
                ..BenchConfig::default()
            };
            let mut cfg = cfg;
            cfg.net.pools = Some(parse_pools(args.workload.pools(), arch)?);
            cfg.net = args.net.apply(&cfg.net)?;
            cfg.validate()?;
            Ok(cfg)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.dry_run {
        return dry_run(&args, &configs);
    }
    // Held until the process ends: a second run into this directory stops here (exit 2).
    let _lock = revstab::lock::lock_out(&args.out, "bench")
        .with_context(|| format!("cannot use output directory {}", args.out.display()))?;
    if args.conv_shapes {
        anyhow::ensure!(
            args.device.is_cpu(),
            "--conv-shapes times the CPU kernels; it takes no --device (got {})",
            args.device
        );
        return conv_shapes_main(&args, &configs);
    }
    let device = args.device.open()?;
    if !revstab::measure::alloc::is_installed() {
        eprintln!("warning: counting allocator not active, peak bytes will read 0");
    }
    let started = std::time::Instant::now();
    let mut all_rows = Vec::new();
    for cfg in &configs {
        if let Some(n) = cfg.skip_note() {
            eprintln!("note: {n}");
        }
        println!("{}", cfg.describe());
        for &d in &cfg.depths {
            // Only counted: built on the CPU whatever the device.
            let net = revstab::nets::Network::build(
                &cfg.net_config(d),
                candle_core::DType::F32,
                &candle_core::Device::Cpu,
            )?;
            println!("parameters D={d} {}", net.num_params());
        }
        let rows = run(cfg, |r| {
            if args.quiet {
                return;
            }
            eprintln!(
                "{:>13} D={:<3} median {:.4} s/step ({} steps, loss {:.4})",
                r.mode.name(),
                r.depth,
                r.median_s,
                r.times_s.len(),
                r.last_loss
            )
        })?;
        print!("{}", format_table(&rows));
        all_rows.extend(rows);
    }
    let total_s = started.elapsed().as_secs_f64();
    // bench.csv and run.json, both from the typed results.
    BenchResults::new(configs, all_rows, total_s, &device).write(&args.out)?;
    println!("wrote {} ({:.1} s)", args.out.display(), total_s);
    Ok(())
}

/// `--dry-run`: the (architecture, depth, mode) points a run would time and its time,
/// estimated by timing one step of every mode at the shallowest depth of each architecture here
/// (the same `run` with one step, no warm-up) and scaling by (depth + 1) x (warm-up + timed
/// steps). Writes nothing.
fn dry_run(args: &Args, configs: &[BenchConfig]) -> anyhow::Result<()> {
    use revstab::dry_run::{fmt_seconds, print_nothing_written, print_plan, scale};
    if args.conv_shapes {
        let shapes: usize = configs
            .iter()
            .flat_map(|c| {
                c.depths.iter().map(|&d| {
                    revstab::experiments::bench::conv_shapes(&c.net_config(d), c.batch).len()
                })
            })
            .sum();
        println!("dry run: --conv-shapes would time {shapes} convolution shape(s); no estimate");
        print_nothing_written();
        return Ok(());
    }
    let mut lines = Vec::new();
    let mut probes = Vec::new();
    let mut text = Vec::new();
    let mut costed = Vec::new();
    for cfg in configs {
        let Some(&d0) = cfg.depths.iter().min() else {
            continue;
        };
        // Timed scaled down (at most `dry_run::PROBE_DEPTH` deep and `PROBE_WIDTH` wide), then
        // scaled up by the cost model.
        let (d0, w0) = revstab::dry_run::probe_shape(d0, cfg.width);
        let mut probe_cfg = BenchConfig {
            depths: vec![d0],
            width: w0,
            segment: cfg.segment.map(|k| k.min(d0)),
            steps: 1,
            warmup: 0,
            ..cfg.clone()
        };
        if cfg.net.stem == revstab::nets::Stem::Identity {
            probe_cfg.net.in_channels = w0;
        }
        let rows = run(&probe_cfg, |_| {}).map_err(revstab::error::failed)?;
        for mode in cfg.modes_to_run() {
            let Some(r) = rows.iter().find(|r| r.mode == mode) else {
                continue;
            };
            let kind = probes.len();
            probes.push((revstab::dry_run::probe_cost(d0, w0, 1), r.median_s));
            text.push(format!(
                "{} {} D={d0} width {w0}: {:.4} s/step",
                cfg.arch,
                mode.name(),
                r.median_s
            ));
            for &d in &cfg.depths {
                lines.push(format!(
                    "{} D={d} {} ({} warm-up + {} timed steps)",
                    cfg.arch,
                    mode.name(),
                    cfg.warmup,
                    cfg.steps
                ));
                let steps = (cfg.warmup + cfg.steps) as f64;
                costed.push((kind, revstab::dry_run::probe_cost(d, cfg.width, 1) * steps));
            }
        }
    }
    print_plan("points", &lines);
    println!(
        "estimated time: {} (plus building each network)",
        fmt_seconds(scale(&probes, &costed))
    );
    println!(
        "  estimated by timing one step of each architecture and mode at its shallowest depth, \
         at most {} deep and {} wide, here ({}) and scaling each point by (depth + 1) x \
         width^2 x (warm-up + timed steps)",
        revstab::dry_run::PROBE_DEPTH,
        revstab::dry_run::PROBE_WIDTH,
        text.join("; ")
    );
    print_nothing_written();
    Ok(())
}

/// `--conv-shapes`: the per-shape table of every network (at its largest depth) on both paths.
fn conv_shapes_main(args: &Args, configs: &[BenchConfig]) -> anyhow::Result<()> {
    revstab::experiments::bench::set_threads(configs[0].threads.unwrap_or(args.threads));
    let dtype = args.dtype.dtype();
    anyhow::ensure!(
        matches!(dtype, candle_core::DType::F32 | candle_core::DType::F64),
        "--conv-shapes times the CPU kernels, which take f32 and f64 (got {})",
        args.dtype
    );
    let started = std::time::Instant::now();
    let mut csv = format!("{SHAPE_CSV_HEADER}\n");
    let mut all = Vec::new();
    for cfg in configs {
        let depth = *cfg
            .depths
            .iter()
            .max()
            .expect("validated: depths not empty");
        let net = cfg.net_config(depth);
        println!("{} D={depth}: convolution shapes, {}", cfg.arch, args.dtype);
        let t = conv_shape_timings(&net, cfg.batch, dtype, args.steps)?;
        print!("{}", format_shape_table(&t));
        for row in &t {
            csv.push_str(&shape_csv_line(cfg.arch, row));
            csv.push('\n');
        }
        all.push(serde_json::json!({ "arch": cfg.arch, "depth": depth, "timings": t }));
    }
    let total_s = started.elapsed().as_secs_f64();
    revstab::util::write_atomic(&args.out.join("conv_shapes.csv"), csv.as_bytes())?;
    let mut run_json = serde_json::json!({
        "experiment": "bench-conv-shapes",
        "git_revision": revstab::util::git_revision(),
        "configs": configs,
        "dtype": args.dtype,
        "threads": args.threads,
        "repetitions": args.steps,
        "env": ThreadEnv::current(),
        "loadavg_at_end": loadavg(),
        "total_s": total_s,
        "shapes": all,
        "notes": "median of `repetitions` calls after one untimed call, each path forced (direct kernels or im2col + gemm); GFLOP/s = 2 * batch * size^2 * cin * cout * k^2 / seconds; `chosen` is the path the layers take (the forward's choice; the input gradient decides on cout)",
    });
    revstab::provenance::attach(&mut run_json);
    revstab::util::write_atomic(
        &args.out.join("run.json"),
        serde_json::to_string_pretty(&run_json)?.as_bytes(),
    )?;
    println!("wrote {} ({:.1} s)", args.out.display(), total_s);
    Ok(())
}

fn main() -> ExitCode {
    revstab::provenance::started();
    match run_main() {
        Ok(()) => ExitCode::SUCCESS,
        // Unmarked errors are the checks of the input; the run's own are marked `failed`.
        Err(e) => revstab::error::report_or("bench", &e, revstab::error::EXIT_BAD_INPUT),
    }
}
