//! `figures`: regenerate every figure of the papers in `figures/` from the experiment configs
//! under `experiments/`, computing results only when they are missing, stale or `--rerun`.
//! Thin: arguments -> `revstab::experiments::figures` (ensure results) -> `revstab::plot` (the
//! registry's renderers).
//!
//! `cargo run --release --bin figures [-- --only fig10,fig13 --rerun]`

use clap::Parser;
use revstab::device::DeviceSpec;
use revstab::error::{EXIT_BAD_INPUT, EXIT_FAILURE};
use revstab::experiments::figures::{self as figs, CacheStatus, Results};
use revstab::plot::registry::{self, DataSource, FIGURE_IDS};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

// The memory experiment (table1, memory-scaling) measures peak heap bytes with the counting
// allocator.
#[global_allocator]
static ALLOC: revstab::measure::alloc::CountingAlloc = revstab::measure::alloc::CountingAlloc;

/// Regenerate the figures of Hascoet et al. (Fig. 5, 6, 10-15, Table 1), Gomez et al. (Fig. 4)
/// and seven extra ones (precision, bn-eps, memory-scaling, tradeoff, lipschitz, anchors, depth-law) as PNG + SVG + CSV in --out.
///
/// Experiments configured by `experiments/<id>.toml` run here (seconds to a minute or two each
/// on a CPU) and are cached in --results, keyed by their config; later runs reuse them unless
/// the config changed or --rerun is given. fig12, fig15 and revnet-fig4 are drawn from the
/// output of the `train` binary (`train --config experiments/accuracy.toml`,
/// `train --config experiments/revnet-fig4.toml`), which this command only reads; without
/// those results they are skipped with a note (exit 0), or fail (exit 1) when named by --only.
#[derive(Parser, Debug)]
#[command(name = "figures", version, allow_negative_numbers = true, after_help = revstab::cli::EXIT_CODES_HELP)]
struct Args {
    /// Only these figure ids (repeatable or comma separated); default: all
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    only: Vec<String>,
    /// Output directory of the figures
    #[arg(long, value_name = "DIR", default_value = "figures")]
    out: PathBuf,
    /// Directory of cached experiment results
    #[arg(long, value_name = "DIR", default_value = "results/figures")]
    results: PathBuf,
    /// Directory of the experiment configs
    #[arg(long, value_name = "DIR", default_value = "experiments")]
    experiments: PathBuf,
    /// Output of the accuracy sweep of `train` (fig12, fig15)
    #[arg(
        long = "accuracy-results",
        value_name = "DIR",
        default_value = "results/accuracy"
    )]
    accuracy_results: PathBuf,
    /// Output of the angle experiment of `train` (revnet-fig4)
    #[arg(
        long = "angles-results",
        value_name = "DIR",
        default_value = "results/angles"
    )]
    angles_results: PathBuf,
    /// Recompute the experiments even when cached results exist
    #[arg(long)]
    rerun: bool,
    /// Threads running points in parallel (0 = all cores)
    #[arg(long, default_value_t = 0, value_parser = revstab::cli::parse_threads)]
    threads: usize,
    /// Device of the computed experiments: cpu, cuda[:N] (build with `--features cuda`),
    /// metal[:N]; default: each config's own (cpu). f64 work runs on the CPU when the device
    /// has no f64. Results computed on another device than a cached one are not reused.
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
    /// List the figure ids and exit
    #[arg(long)]
    list: bool,
    /// No line per figure (the final count and failures still print)
    #[arg(long, short, alias = "silent")]
    quiet: bool,
    /// Check the figure ids and configs, print which experiments would be computed or reused
    /// and an estimate of the time (from the cached results' measured wall times; for
    /// experiments never run here, from their shallowest networks timed on the spot where
    /// that applies, otherwise named with why), write nothing
    #[arg(long = "dry-run")]
    dry_run: bool,
}

fn main() -> ExitCode {
    revstab::provenance::started();
    let args = Args::parse();
    if args.list {
        for s in registry::specs() {
            println!("{:<14} {}", s.id, s.what);
        }
        return ExitCode::SUCCESS;
    }
    let mut ids: Vec<String> = Vec::new();
    for id in &args.only {
        let id = id.trim().to_ascii_lowercase();
        if id.is_empty() {
            continue;
        }
        if registry::spec(&id).is_err() {
            eprintln!(
                "figures: error: unknown figure id `{id}`; expected one of {}",
                FIGURE_IDS.join(", ")
            );
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        ids = FIGURE_IDS.iter().map(|s| s.to_string()).collect();
    }
    // Parsed (and opened, to fail early) once; the flag stays text so that a bad name is the
    // one-line error every tool gives.
    let device = match args.device.as_deref().map(|d| {
        let spec = d.parse::<DeviceSpec>()?;
        spec.open().map(|_| spec)
    }) {
        None => None,
        Some(Ok(spec)) => Some(spec),
        Some(Err(e)) => {
            eprintln!("figures: error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if ids
        .iter()
        .any(|id| registry::spec(id).is_ok_and(|s| s.source == DataSource::Experiment))
        && !args.experiments.is_dir()
    {
        eprintln!(
            "figures: error: --experiments {}: no such directory (it holds the experiment configs, e.g. experiments/fig10.toml)",
            args.experiments.display()
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    // Bad input before anything is written (exit 2): a path that must be a directory naming
    // a file, and a config of a requested figure that does not load or validate.
    for (flag, dir) in [
        ("--out", &args.out),
        ("--results", &args.results),
        ("--accuracy-results", &args.accuracy_results),
        ("--angles-results", &args.angles_results),
    ] {
        if dir.exists() && !dir.is_dir() {
            eprintln!(
                "figures: error: {flag} {}: expected a directory, got a file",
                dir.display()
            );
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    }
    if !args.dry_run {
        for id in &ids {
            if registry::spec(id).is_ok_and(|s| s.source == DataSource::Experiment) {
                if let Err(e) =
                    figs::load_config(id, &args.experiments).and_then(|(c, _)| c.validate())
                {
                    eprintln!("figures: error: {id}: {e}");
                    return ExitCode::from(EXIT_BAD_INPUT);
                }
            }
        }
    }
    if args.dry_run {
        return dry_run(&args, &ids, device);
    }
    // Held until the process ends: a second run writing these figures stops here (exit 2).
    let _lock = match revstab::lock::lock_out(&args.out, "figures") {
        Ok(l) => l,
        Err(e) => return revstab::error::report("figures", &e.into()),
    };
    let results = Results {
        dir: args.results.clone(),
        accuracy_dir: args.accuracy_results.clone(),
        angles_dir: args.angles_results.clone(),
    };
    let start = Instant::now();
    let mut failed: Vec<(String, String)> = Vec::new();
    let requested = !args.only.is_empty();
    let mut skipped: Vec<(String, String)> = Vec::new();
    for id in &ids {
        let spec = registry::spec(id).expect("checked above");
        let t = Instant::now();
        let mut note = String::new();
        // Figures of `train` results whose run has not been made: skipped with a note when
        // drawing everything (exit 0), a failure when asked for by --only (exit 1). Nothing is
        // written for them.
        let train_dir = match spec.source {
            DataSource::Accuracy => Some((&results.accuracy_dir, "accuracy")),
            DataSource::Angles => Some((&results.angles_dir, "angles")),
            DataSource::Experiment => None,
        };
        if let Some((dir, experiment)) = train_dir {
            if !dir.join("run.json").exists() {
                let why = format!(
                    "needs the results of `train {experiment}` in {} (none yet: run `cargo run --release --bin train -- --config experiments/<config>.toml --out {}` first)",
                    dir.display(),
                    dir.display()
                );
                if requested {
                    eprintln!("{id:<14} FAILED: {why}");
                    failed.push((id.clone(), why));
                } else {
                    println!("{id:<14} skipped: {why}");
                    skipped.push((id.clone(), why));
                }
                continue;
            }
        }
        if spec.source == DataSource::Experiment {
            match figs::ensure_results_on(
                id,
                &args.experiments,
                &results,
                args.rerun,
                args.threads,
                device,
            ) {
                Ok(CacheStatus::Reused) => note = format!("reused {}", results.path(id).display()),
                Ok(CacheStatus::Computed(s, why)) => note = format!("computed in {s:.1} s ({why})"),
                Err(e) => {
                    eprintln!("{id:<14} FAILED: {e}");
                    failed.push((id.clone(), e.to_string()));
                    continue;
                }
            }
        }
        match (spec.render)(&results, &args.out) {
            Ok(()) => {
                let extra = if *id == "table1" {
                    ", table1.md".to_string()
                } else if revstab::plot::common::timings_path(&args.out, id).exists() {
                    ", timings.csv".to_string()
                } else {
                    String::new()
                };
                let sep = if note.is_empty() { "" } else { "; " };
                if args.quiet {
                    continue;
                }
                println!(
                    "{id:<14} {note}{sep}wrote {}/{id}.{{png,svg,csv{extra}}} ({:.1} s)",
                    args.out.display(),
                    t.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                eprintln!("{id:<14} FAILED: {e}");
                failed.push((id.clone(), e.to_string()));
            }
        }
    }
    let done = ids.len() - failed.len() - skipped.len();
    let skipped_note = if skipped.is_empty() {
        String::new()
    } else {
        format!(
            " ({} skipped for missing `train` results: {})",
            skipped.len(),
            skipped
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    println!(
        "{done} of {} figures written to {} in {:.1} s{skipped_note}",
        ids.len(),
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("not produced:");
        for (id, e) in &failed {
            eprintln!("  {id}: {e}");
        }
        ExitCode::from(EXIT_FAILURE)
    }
}

/// `--dry-run`: what a run would do for each figure (reuse cached results, compute them and
/// why, or skip for missing `train` results), and the time of the computations. An experiment
/// with cached results is estimated from the wall time that earlier run measured
/// (`provenance.seconds`, scaled by threads). One never run here is probed on the spot where
/// its points are networks of one cost model ([`probe`]: `scaling`, `precision`); the others
/// are named, each with why it is not probed. Configs are loaded and checked as a run does; a
/// bad one is reported and fails the dry run (exit 1) as it fails a run. Writes nothing.
fn dry_run(args: &Args, ids: &[String], device: Option<DeviceSpec>) -> ExitCode {
    use revstab::dry_run::{fmt_seconds, print_nothing_written, print_plan};
    let results = Results {
        dir: args.results.clone(),
        accuracy_dir: args.accuracy_results.clone(),
        angles_dir: args.angles_results.clone(),
    };
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.threads
    };
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    let mut bad_config = false;
    let (mut estimated, mut unknown, mut computed) = (0.0, Vec::new(), 0usize);
    let mut probe_failed = 0usize;
    let mut probed: Vec<String> = Vec::new();
    for id in ids {
        let spec = registry::spec(id).expect("checked above");
        let train_dir = match spec.source {
            DataSource::Accuracy => Some(&results.accuracy_dir),
            DataSource::Angles => Some(&results.angles_dir),
            DataSource::Experiment => None,
        };
        if let Some(dir) = train_dir {
            if dir.join("run.json").exists() {
                lines.push(format!("{id:<14} render from {}", dir.display()));
            } else if args.only.is_empty() {
                lines.push(format!(
                    "{id:<14} skipped (no `train` results in {})",
                    dir.display()
                ));
            } else {
                failed.push(format!("{id}: no `train` results in {}", dir.display()));
            }
            continue;
        }
        let cfg = figs::load_config(id, &args.experiments).and_then(|(mut c, _)| {
            if let Some(d) = device {
                c.set_device(d);
            }
            c.validate().map(|()| c)
        });
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => {
                // Bad input, as in a run (exit 2).
                bad_config = true;
                failed.push(format!("{id}: {e}"));
                continue;
            }
        };
        let cached = results.load(id);
        let why = match &cached {
            _ if args.rerun => Some("--rerun"),
            Ok(r) if r.config_key == cfg.key() => None,
            Ok(_) => Some("config changed"),
            Err(_) => Some("no cached results"),
        };
        let Some(why) = why else {
            lines.push(format!("{id:<14} reuse {}", results.path(id).display()));
            continue;
        };
        computed += 1;
        match &cached {
            Ok(r) => {
                // Points run in parallel: scale the earlier wall time by its threads.
                let s = r.provenance.seconds * r.provenance.threads.max(1) as f64 / threads as f64;
                estimated += s;
                lines.push(format!(
                    "{id:<14} compute ({why}): ~{} (earlier run: {:.1} s on {} thread(s))",
                    fmt_seconds(s),
                    r.provenance.seconds,
                    r.provenance.threads
                ));
            }
            Err(_) => match probe(id, &cfg) {
                Ok(Probe {
                    seconds,
                    ratio,
                    what,
                }) => {
                    // The probe ran on one thread; the experiment's points run in parallel.
                    let s = seconds * ratio / threads as f64;
                    estimated += s;
                    probed.push(format!("{id}: {what}, {seconds:.3} s, x {ratio:.1}"));
                    lines.push(format!(
                        "{id:<14} compute ({why}): ~{} (never run here; probed: {what} took \
                         {seconds:.3} s, the whole experiment costs {ratio:.1} times that)",
                        fmt_seconds(s)
                    ));
                }
                Err(ProbeError::NotProbed(reason)) => {
                    unknown.push(id.as_str());
                    lines.push(format!(
                        "{id:<14} compute ({why}): time unknown (never run here; not probed: \
                         {reason})"
                    ));
                }
                Err(ProbeError::Failed(e)) => {
                    probe_failed += 1;
                    failed.push(format!("{id}: {e}"));
                }
            },
        }
    }
    print_plan("figures", &lines);
    // Estimated: the computations with a cached timing or a probe that ran.
    let timed = computed - unknown.len() - probe_failed;
    println!(
        "estimated time: {} for {timed} of the {computed} experiment(s) to compute, on \
         {threads} thread(s), plus rendering{}",
        fmt_seconds(estimated),
        if unknown.is_empty() {
            String::new()
        } else {
            format!(
                "; not included (never run here, not probed): {}",
                unknown.join(", ")
            )
        }
    );
    println!(
        "  estimated from the wall time each experiment took in its earlier run (provenance of \
         the cached results in {}), scaled by threads{}",
        results.dir.display(),
        if probed.is_empty() {
            String::new()
        } else {
            format!(
                "; an experiment never run here estimated by timing its shallowest network of \
                 each architecture and dtype here (one thread) and scaling each point by \
                 (depth + 1), divided by threads ({})",
                probed.join("; ")
            )
        }
    );
    print_nothing_written();
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("would not be produced:");
        for f in &failed {
            eprintln!("  {f}");
        }
        ExitCode::from(if bad_config {
            EXIT_BAD_INPUT
        } else {
            EXIT_FAILURE
        })
    }
}

/// A probe of an experiment: what was timed, its seconds, and the cost of the whole experiment
/// in units of the probe.
struct Probe {
    seconds: f64,
    ratio: f64,
    what: String,
}

/// Why an experiment has no probe.
enum ProbeError {
    /// No cheap part to time (the reason).
    NotProbed(&'static str),
    /// The probe itself failed (a run would fail too).
    Failed(String),
}

/// Time the cheapest part of figure `id`'s experiment here, on one thread, in memory (nothing
/// is written): the experiment cut to its shallowest depth. Cost model: a point's time is
/// linear in depth + 1 (every point of one experiment has the same width, batch and input
/// size); the probe holds the shallowest network of each architecture and dtype of the
/// experiment, so the ratio is the sum of (depth + 1) over the experiment's depths (per
/// architecture and dtype) over (shallowest depth + 1). Only experiments whose points are
/// such networks are probed (`scaling`, `precision`); the others return why not.
fn probe(id: &str, cfg: &figs::ExperimentConfig) -> Result<Probe, ProbeError> {
    use figs::ExperimentConfig as E;
    let cost = |d: usize| (d + 1) as f64;
    let (probe_cfg, ratio, what) =
        match cfg {
            E::Scaling(c) => {
                let mut depths = c.depth_sweep.depths.clone();
                depths.extend(c.slope_sweep.slopes.iter().map(|_| c.slope_sweep.depth));
                let Some(&min) = depths.iter().min() else {
                    return Err(ProbeError::NotProbed("no points"));
                };
                let mut p = c.clone();
                p.depth_sweep.depths = vec![min];
                p.slope_sweep.slopes.clear();
                let ratio = depths.iter().map(|&d| cost(d)).sum::<f64>() / cost(min);
                (E::Scaling(p), ratio, format!("depth {min}"))
            }
            E::Precision(c) => {
                let Some(&min) = c.depths.iter().min() else {
                    return Err(ProbeError::NotProbed("no points"));
                };
                let mut p = c.clone();
                p.depths = vec![min];
                let ratio = c.depths.iter().map(|&d| cost(d)).sum::<f64>() / cost(min);
                (
                    E::Precision(p),
                    ratio,
                    format!(
                        "depth {min} x {} arch(s) x {} dtype(s)",
                        c.archs.len(),
                        c.dtypes.len()
                    ),
                )
            }
            E::Alpha(_) => {
                return Err(ProbeError::NotProbed(
                    "the alpha curves are sampled layers, not networks of a depth; no part of it \
                 is cheaper in a known proportion",
                ))
            }
            E::Trace(_) => {
                return Err(ProbeError::NotProbed(
                    "it traces one network: its cheapest point is the whole run",
                ))
            }
            E::BnEps(_) => {
                return Err(ProbeError::NotProbed(
                    "its alpha part and its SNR networks follow different cost models",
                ))
            }
            E::Memory(_) => {
                return Err(ProbeError::NotProbed(
                    "peak-memory steps over batch and size; `memory --dry-run` times its points",
                ))
            }
            E::Anchors(_) => {
                return Err(ProbeError::NotProbed(
                    "each network is planned, trained and planned again; the planner's cost grows \
                 with the anchors it places",
                ))
            }
            E::DepthLaw(_) => return Err(ProbeError::NotProbed(
                "its networks are drawn at random over sizes, depths and dtypes; no part of it \
                 is cheaper in a known proportion",
            )),
            E::Tradeoff(_) => {
                return Err(ProbeError::NotProbed(
                    "timed steps, checkpoint segments and an exactness check per point; no single \
                 cost model",
                ))
            }
        };
    let r = figs::run_experiment(id, &probe_cfg, "dry-run probe", 1)
        .map_err(|e| ProbeError::Failed(e.to_string()))?;
    Ok(Probe {
        seconds: r.provenance.seconds,
        ratio,
        what,
    })
}
