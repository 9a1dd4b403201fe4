//! Anchored training ([`Source::Anchored`]): the plan made on the probe batch before the first
//! step and again every `replan_every` steps on the current weights, and the check of the
//! training batches trained under it.
//!
//! The probe batch is the first `batch` samples of the training set, in file order and
//! without augmentation, so every plan of a run is made on the same images. A plan runs a
//! stored trace and anchored traces of the probe batch in training mode; their updates of the
//! batch-norm running statistics are undone, so planning leaves the run as it was.
//!
//! The check: a training batch's rebuilt inputs (traced by its own anchored step) are compared
//! with a stored forward of the same batch (its running-statistics update undone too), and the
//! lowest SNR over the rebuilt inputs is kept per plan ([`PlanRecord`]). It costs one extra
//! stored forward per checked step.
//!
//! [`Source::Anchored`]: crate::nets::Source::Anchored

use super::checkpoint::State;
use super::keeping_running_stats;
use super::records::PlanRecord;
use crate::data::DataSplit;
use crate::error::Result;
use crate::measure::anchors::{
    lowest_predicted_db, predict_plan, rebuilt_snrs, stored_trace, Anchoring,
};
use crate::nets::{BackwardPlan, Network, StepOutput};
use candle_core::{Device, Tensor};

/// The probe batch of a run: its first `batch` training samples, in file order.
pub(super) fn probe_batch(
    data: &DataSplit,
    batch: usize,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let (x, y) = data
        .train
        .batch_iter(batch, None, None)?
        .next()
        .expect("batch_iter refuses a batch larger than the set")?;
    Ok((x.to_device(device)?, y.to_device(device)?))
}

/// Whether a plan is due before the update of step `step`.
pub(super) fn plan_due(anchoring: &Anchoring, st: &State, step: usize) -> bool {
    match st.plans.last() {
        None => true,
        Some(_) if anchoring.planned_target().is_none() => false,
        Some(last) => anchoring.replan_every > 0 && step >= last.step + anchoring.replan_every,
    }
}

/// Make a plan on the probe batch and push it (and its rows) onto the state.
pub(super) fn make_plan(
    net: &Network,
    anchoring: &Anchoring,
    probe: &(Tensor, Tensor),
    st: &mut State,
    seed: u64,
) -> Result<()> {
    let (plan, rows) = keeping_running_stats(net, || {
        let plan = anchoring.plan(net, &probe.0, &probe.1)?;
        let rows = predict_plan(net, &probe.0, &probe.1, &plan, seed)?;
        Ok::<_, crate::Error>((plan, rows))
    })?;
    st.plans.push(PlanRecord {
        step: st.step,
        anchors: plan.anchors.clone(),
        min_measured_snr_db: plan.lowest_snr_db(),
        predicted_snr_db: lowest_predicted_db(&rows),
        bytes_held: plan.bytes_held(),
        next_batch_snr_db: f64::NAN,
        lowest_batch_snr_db: f64::INFINITY,
        batches_checked: 0,
    });
    st.plan_rows = rows;
    Ok(())
}

/// The backward of the plan in force.
pub(super) fn current_plan(st: &State) -> BackwardPlan {
    BackwardPlan::anchored(
        st.plans
            .last()
            .map(|p| p.anchors.clone())
            .unwrap_or_default(),
    )
}

/// Check a training batch trained under the plan in force: `out` is its anchored step's
/// output with a trace. Records its lowest SNR in the last plan.
pub(super) fn check_batch(
    net: &Network,
    x: &Tensor,
    labels: &Tensor,
    out: &StepOutput,
    st: &mut State,
) -> Result<()> {
    let Some(plan) = st.plans.last_mut() else {
        return Ok(());
    };
    let stored = keeping_running_stats(net, || stored_trace(net, x, labels))?;
    let lowest = rebuilt_snrs(net, &stored, out, &plan.anchors)?
        .iter()
        .map(|l| l.snr_db)
        // NaN counts as the lowest.
        .fold(
            f64::INFINITY,
            |m, v| if v.is_nan() || v < m { v } else { m },
        );
    if plan.batches_checked == 0 {
        plan.next_batch_snr_db = lowest;
    }
    if lowest.is_nan() || lowest < plan.lowest_batch_snr_db {
        plan.lowest_batch_snr_db = lowest;
    }
    plan.batches_checked += 1;
    Ok(())
}
