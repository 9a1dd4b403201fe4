//! A single training run with its files (`history.csv`, `timings.csv`, the angle CSVs,
//! `result.json`, `run.json`; see the module doc of [`super`]).

use super::{angle_rows, prepare_out, to_json, write_run_json, ANGLES_HEADER, ANGLE_LAYERS_HEADER};
use crate::error::{Error, Result};
use crate::experiments::snr_sweep::fmt_f;
use crate::results::csv::csv_text;
use crate::train::{train, PlanRecord, Progress, TrainConfig, TrainOptions, TrainOutcome};
use crate::util::write_atomic;
use std::path::PathBuf;

/// Header of `plans.csv`: one row per plan of an anchored run.
pub const PLANS_HEADER: [&str; 9] = [
    "step",
    "anchors",
    "n_anchors",
    "min_measured_snr_db",
    "predicted_snr_db",
    "bytes_held",
    "next_batch_snr_db",
    "lowest_batch_snr_db",
    "batches_checked",
];

/// The rows of `plans.csv` (anchors joined with `;`).
pub fn plans_rows(plans: &[PlanRecord]) -> Vec<Vec<String>> {
    plans
        .iter()
        .map(|p| {
            vec![
                p.step.to_string(),
                p.anchors.join(";"),
                p.anchors.len().to_string(),
                fmt_f(p.min_measured_snr_db),
                fmt_f(p.predicted_snr_db),
                p.bytes_held.to_string(),
                fmt_f(p.next_batch_snr_db),
                fmt_f(p.lowest_batch_snr_db),
                p.batches_checked.to_string(),
            ]
        })
        .collect()
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
            ]
        })
        .collect();
    // Wall times go to timings.csv so that history.csv of a rerun is byte-identical.
    write_atomic(
        &opts.out.join("history.csv"),
        csv_text(&["epoch", "train_loss", "train_acc", "lr"], &history)?.as_bytes(),
    )?;
    let timings: Vec<Vec<String>> = outcome
        .history
        .iter()
        .map(|h| vec![h.epoch.to_string(), fmt_f(h.seconds)])
        .collect();
    write_atomic(
        &opts.out.join("timings.csv"),
        csv_text(&["epoch", "seconds"], &timings)?.as_bytes(),
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
    if !outcome.plans.is_empty() {
        write_atomic(
            &opts.out.join("plans.csv"),
            csv_text(&PLANS_HEADER, &plans_rows(&outcome.plans))?.as_bytes(),
        )?;
        write_atomic(
            &opts.out.join("plan.csv"),
            crate::measure::anchors::plan_csv(&outcome.plan_rows).as_bytes(),
        )?;
    }
    write_atomic(&opts.out.join("result.json"), to_json(&outcome)?.as_bytes())?;
    write_run_json(
        &opts.out,
        "single",
        serde_json::to_value(cfg).map_err(|e| Error::internal("JSON serialisation", e))?,
        cfg,
        &data,
        serde_json::json!({ "seed": cfg.seed, "seconds": outcome.seconds }),
    )?;
    Ok(outcome)
}
