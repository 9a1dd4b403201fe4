//! The anchored source in the tools that time or measure one step (`bench`, `memory`, the
//! `tradeoff` figure): the plan made once per network on the tool's own batch
//! ([`plan_for`]), and what the tool records of it ([`AnchorRecord`]). An explicit list is
//! checked against each network before anything runs ([`Anchoring::check_against`]).
//!
//! The plan is the planner's for a target, or an explicit list checked against the network
//! ([`Anchoring::plan`]). Planning runs stored and anchored traces of the batch in training
//! mode; their updates of the batch-norm running statistics are undone, so the network is left
//! as it was and the steps timed or measured afterwards are those of an unplanned network.
//!
//! Bytes held: the bytes of the anchors' inputs (elements times the dtype's bytes) on that
//! batch ([`crate::measure::anchors::AnchorPlan::bytes_held`]): what the anchored forward
//! keeps beyond the reconstructed one.

use crate::error::Result;
use crate::measure::anchors::Anchoring;
use crate::nets::{BackwardPlan, Network};
use crate::train::keeping_running_stats;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// Which anchors an anchored step ran with, as a tool records it (`run.json`, and its CSV
/// columns where the tool has them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchorRecord {
    /// How they were chosen ([`Anchoring::describe`]): `min-snr-db=60` or `anchors=a;b`.
    pub anchoring: String,
    /// The planner's target (dB); `None` for an explicit list.
    pub min_snr_db: Option<f64>,
    /// The anchors, top down (the order the planner placed them, or the list's).
    pub anchors: Vec<String>,
    /// `anchors.len()`.
    pub n_anchors: usize,
    /// Bytes of the anchors' inputs on the planning batch (module docs).
    pub bytes_held: usize,
    /// The lowest SNR (dB) of the rebuilt inputs under the plan on the planning batch, against
    /// the stored step (`inf` when every rebuilt input is anchored).
    #[serde(with = "crate::results::text::float_text")]
    pub lowest_snr_db: f64,
}

impl AnchorRecord {
    /// The backward that follows the record's anchors.
    pub fn backward(&self) -> BackwardPlan {
        BackwardPlan::anchored(self.anchors.clone())
    }
}

/// Plan the anchors of `net` on the batch `x`, `labels` ([`Anchoring::plan`]), leaving the
/// batch-norm running statistics as they were. Errors: the anchoring's (a target that is not
/// finite, an anchor the network does not have: [`crate::Error::Config`]).
pub fn plan_for(
    net: &Network,
    anchoring: &Anchoring,
    x: &Tensor,
    labels: &Tensor,
) -> Result<AnchorRecord> {
    let plan = keeping_running_stats(net, || anchoring.plan(net, x, labels))?;
    let bytes_held = plan.bytes_held();
    Ok(AnchorRecord {
        anchoring: anchoring.describe(),
        min_snr_db: anchoring.planned_target(),
        n_anchors: plan.anchors.len(),
        lowest_snr_db: plan.lowest_snr_db(),
        anchors: plan.anchors,
        bytes_held,
    })
}
