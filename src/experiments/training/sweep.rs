//! The resumable, shardable machinery both sweeps (accuracy and angles) share: their
//! [`SweepOptions`], the thread pool and progress display, the loop over the runs with their
//! `points/` files ([`run_points`]), the shared `run.json` fields and the [`merge`] of shards.

use super::{clear_points, point_files, prepare_out, read_points, to_json, Experiment};
use crate::error::{Error, Result};
use crate::experiments::snr_sweep::Shard;
use crate::experiments::MANIFEST;
use crate::train::Progress;
use crate::util::write_atomic;
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

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

/// The resumable, shardable core of both experiments. Restores the finished runs of
/// `opts.out/points` (`--resume`, checked against `cfg`'s manifest; otherwise removes them) and
/// writes the manifest; `plan` turns the restored results into those still valid and the runs
/// to compute, in the order to compute them. They run on `opts.threads` threads, taken in that
/// order; each result is written to `points/<key>.json` as soon as it exists, reported with
/// `line`, and `write` then rewrites the CSVs from every result so far. Returns every result
/// (unordered) and how many were computed.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_points<C, P, R>(
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
pub(super) fn sweep_fields(
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
