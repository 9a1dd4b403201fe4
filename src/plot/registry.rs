//! The figure registry: every figure id, what it shows, where its data come from and its
//! renderer (`(&Results, &Path) -> Result<()>`).

use crate::error::{Error, Result};
use crate::experiments::figures::Results;
use crate::plot::{
    accuracy::*, alpha::*, bn_eps::*, depth_law::*, memory::*, precision::*, revnet::*, scaling::*,
    trace::*, tradeoff::*,
};
use std::path::Path;

/// Every figure id, in the order the figures binary produces them.
pub const FIGURE_IDS: [&str; 17] = [
    "fig05",
    "fig06",
    "fig10",
    "fig11",
    "fig12",
    "fig13",
    "fig14",
    "fig15",
    "revnet-fig4",
    "table1",
    "precision",
    "bn-eps",
    "memory-scaling",
    "tradeoff",
    "lipschitz",
    "anchors",
    "depth-law",
];

/// Where a figure's data come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSource {
    /// An experiment run by [`run_experiment`] from `experiments/<id>.toml` (`table1`,
    /// `memory-scaling`: a built-in config unless that file exists), cached as
    /// `<results>/<id>.json`.
    Experiment,
    /// The accuracy sweep of the `train` binary (`accuracy.csv`, `run.json` in
    /// [`Results::accuracy_dir`]).
    Accuracy,
    /// The angle experiment of the `train` binary (`angles.csv`, `run.json` in
    /// [`Results::angles_dir`]).
    Angles,
}

/// One figure: id, what it shows, its data and its render function.
#[derive(Clone, Copy)]
pub struct FigureSpec {
    /// Figure id (file stem).
    pub id: &'static str,
    /// What it shows (and the paper figure it reproduces).
    pub what: &'static str,
    /// Where its data come from.
    pub source: DataSource,
    /// Render from results into an output directory.
    pub render: fn(&Results, &Path) -> Result<()>,
}

/// The figures in [`FIGURE_IDS`] order.
pub fn specs() -> Vec<FigureSpec> {
    use DataSource::*;
    let s = |id, what, source, render| FigureSpec {
        id,
        what,
        source,
        render,
    };
    vec![
        s(
            "fig05",
            "alpha vs rho, toy batch norm: theory and empirical (Hascoet Fig. 5)",
            Experiment,
            fig05 as fn(&Results, &Path) -> Result<()>,
        ),
        s(
            "fig06",
            "alpha vs slope n, leaky ReLU: theory and empirical (Hascoet Fig. 6)",
            Experiment,
            fig06,
        ),
        s(
            "fig10",
            "SNR per layer through a layer-wise network (Hascoet Fig. 10)",
            Experiment,
            fig10,
        ),
        s(
            "fig11",
            "lowest-layer SNR vs depth and vs slope, layer-wise (Hascoet Fig. 11)",
            Experiment,
            fig11,
        ),
        s(
            "fig12",
            "accuracy with and without reconstruction, layer-wise (Hascoet Fig. 12)",
            Accuracy,
            fig12,
        ),
        s(
            "fig13",
            "SNR per layer through a hybrid network (Hascoet Fig. 13)",
            Experiment,
            fig13,
        ),
        s(
            "fig14",
            "lowest block-input SNR vs depth and vs slope, hybrid (Hascoet Fig. 14)",
            Experiment,
            fig14,
        ),
        s(
            "fig15",
            "accuracy with and without reconstruction, hybrid (Hascoet Fig. 15)",
            Accuracy,
            fig15,
        ),
        s(
            "revnet-fig4",
            "gradient angle, loss and error through training (Gomez Fig. 4)",
            Angles,
            revnet_fig4,
        ),
        s(
            "table1",
            "memory per architecture: paper, analytic model, measured (Hascoet Table 1)",
            Experiment,
            table1,
        ),
        s(
            "precision",
            "lowest SNR vs depth for f16, bf16, f32, f64 (beyond the papers)",
            Experiment,
            precision,
        ),
        s(
            "bn-eps",
            "alpha and lowest SNR vs the eps_i reparameterisation (beyond the papers)",
            Experiment,
            bn_eps,
        ),
        s(
            "memory-scaling",
            "peak training-step memory vs depth, batch and resolution, stored vs reconstructed (beyond the papers)",
            Experiment,
            memory_scaling,
        ),
        s(
            "tradeoff",
            "peak bytes/pixel vs step time: stored, checkpointed (k), reconstructed, per arch and depth (beyond the papers)",
            Experiment,
            tradeoff,
        ),
        s(
            "lipschitz",
            "forward and inverse local Lipschitz constants per layer beside alpha (Behrmann et al. 2021; beyond the papers)",
            Experiment,
            crate::plot::lipschitz::lipschitz,
        ),
        s(
            "anchors",
            "anchors needed and their bytes per pixel vs depth and slope, for SNR targets, at init and trained (beyond the papers)",
            Experiment,
            crate::plot::anchors::anchors,
        ),
        s(
            "depth-law",
            "depth laws predicted vs measured on a held-out family of random networks (beyond the papers)",
            Experiment,
            depth_law,
        ),
    ]
}

/// The spec of `id`; an unknown id is an error listing the valid ones.
pub fn spec(id: &str) -> Result<FigureSpec> {
    specs()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Error::Unknown {
            kind: "figure id",
            got: id.into(),
            expected: FIGURE_IDS.join(", "),
        })
}
