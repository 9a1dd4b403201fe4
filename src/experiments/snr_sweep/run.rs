//! Running a sweep ([`run_sweep`]: the grid, or a [`Shard`] of it, in parallel, resumable) and
//! merging the outputs of shards ([`merge`]).

use super::resume::{rekey_points, resumable_points_extending};
use super::store::clear_points;
use super::{
    fmt_f, points_dir, prepare_out, read_points, run_point, write_atomic, write_point, Manifest,
    Point, PointResult, SweepConfig, SweepResults, MANIFEST,
};
use crate::error::{Error, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

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
