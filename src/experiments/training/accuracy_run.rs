//! Running the accuracy sweep: one point ([`run_accuracy_point`], a diverged run is a result),
//! the whole resumable grid ([`run_accuracy`]) and its `accuracy.csv` / `timings.csv`.

use super::extend;
use super::{
    prepare_out, run_points, sweep_fields, write_run_json, AccuracyConfig, AccuracyPoint,
    AccuracyResult, SweepOptions, ACCURACY_HEADER, ACCURACY_TIMINGS_HEADER,
};
use crate::data::DataSplit;
use crate::error::{Error, Result};
use crate::experiments::snr_sweep::fmt_f;
use crate::results::csv::csv_text;
use crate::train::{train, TrainOptions};
use crate::util::write_atomic;
use std::path::Path;
use std::time::Instant;

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
        p.mode_label(),
        p.seed.to_string(),
    ];
    let mut row = head;
    let mut plans = Vec::new();
    let seconds = match train(&run, data, &TrainOptions::default()) {
        Ok((_, o)) => {
            plans = o.plans.clone();
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
    let (_, h, w) = data.train.image_dims();
    let anchor_bytes_per_pixel = if plans.is_empty() {
        f64::NAN
    } else {
        let most = plans.iter().map(|q| q.bytes_held).max().unwrap_or(0);
        most as f64 / (run.batch * h * w) as f64
    };
    Ok(AccuracyResult {
        point: p.clone(),
        row,
        seconds,
        plans,
        anchor_bytes_per_pixel,
    })
}

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
    let anchored: Vec<Vec<String>> = sorted
        .iter()
        .filter(|r| !r.plans.is_empty())
        .map(|r| anchors_row(r))
        .collect();
    if !anchored.is_empty() {
        write_atomic(
            &out.join("anchors.csv"),
            csv_text(&ANCHORS_HEADER, &anchored)?.as_bytes(),
        )?;
    }
    write_atomic(
        &out.join("accuracy.csv"),
        csv_text(&ACCURACY_HEADER, &rows)?.as_bytes(),
    )
}

/// Header of the accuracy sweep's `anchors.csv`: per anchored run, its plans (how many, the
/// anchors of each, the bytes they hold) and whether their targets held on the training
/// batches. `honest_plans` counts the plans whose next training batch kept at least the target
/// minus 3 dB (a plan from an explicit list has no target: empty).
pub const ANCHORS_HEADER: [&str; 14] = [
    "arch",
    "depth",
    "slope",
    "mode",
    "seed",
    "plans",
    "anchors_mean",
    "anchors_max",
    "bytes_held_max",
    "anchor_bytes_per_pixel",
    "min_measured_snr_db",
    "lowest_next_batch_snr_db",
    "lowest_batch_snr_db",
    "honest_plans",
];

/// A run's row of `anchors.csv`.
fn anchors_row(r: &AccuracyResult) -> Vec<String> {
    let plans = &r.plans;
    let n = plans.len();
    let counts: Vec<usize> = plans.iter().map(|p| p.anchors.len()).collect();
    let low = |f: fn(&crate::train::PlanRecord) -> f64| {
        plans.iter().map(f).fold(
            f64::INFINITY,
            |m, v| if v.is_nan() || v < m { v } else { m },
        )
    };
    let honest = match r.point.min_snr_db {
        Some(t) => plans
            .iter()
            .filter(|p| p.next_batch_snr_db >= t - 3.0)
            .count()
            .to_string(),
        None => String::new(),
    };
    let mut row: Vec<String> = r.row.iter().take(5).cloned().collect();
    row.extend([
        n.to_string(),
        fmt_f(counts.iter().sum::<usize>() as f64 / n.max(1) as f64),
        counts.iter().max().copied().unwrap_or(0).to_string(),
        plans
            .iter()
            .map(|p| p.bytes_held)
            .max()
            .unwrap_or(0)
            .to_string(),
        fmt_f(r.anchor_bytes_per_pixel),
        fmt_f(low(|p| p.min_measured_snr_db)),
        fmt_f(low(|p| p.next_batch_snr_db)),
        fmt_f(low(|p| p.lowest_batch_snr_db)),
        honest,
    ]);
    row
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
            p.mode_label(),
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
