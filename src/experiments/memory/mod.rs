//! Memory experiment (paper Table 1, docs/design.md section 5): the measured peak heap bytes of one training
//! step beside the analytic model of [`crate::measure::memory`], and how the peak scales with
//! depth, batch and resolution in stored and reconstructed mode.
//!
//! What is measured: [`Network::step`](crate::nets::Network::step) with gradients on a fixed batch, inside
//! [`alloc::measure_peak`](crate::measure::alloc::measure_peak). The number is the highest live heap bytes reached during the step
//! *above* the live bytes before it: the weights, the input batch and the labels are already
//! allocated and do not count; everything the step allocates does, including what it still
//! holds when it returns (the parameter gradients, the logits). Before the first point in a
//! dtype every architecture runs one small step (what candle allocates once and keeps, such as
//! worker threads and per-thread workspaces, is not charged to a point), and each network runs
//! one training forward before its measured step (its batch-norm statistics exist already).
//! The counter is process-wide, so allocations of candle's worker threads count too (they are
//! part of the step) and nothing else may allocate at the same time: measure one thing at a
//! time. It needs the [`alloc::CountingAlloc`](crate::measure::alloc::CountingAlloc) global allocator installed in the binary and sees
//! CPU memory only, so the device must be the CPU.
//!
//! Besides the total peak every point records the bytes of the parameter gradients the step
//! returns (`grad_bytes`) and `act_peak_bytes`, the peak of the live bytes *minus the parameter
//! gradients live at that moment*: the backward declares every gradient it keeps to the
//! counting allocator ([`crate::backprop::Grads`], [`alloc::measure_peaks`](crate::measure::alloc::measure_peaks)). The gradients grow
//! with depth like the weights do (they belong with `M_theta` in
//! `M = M_theta + (M'_z + M'_g) h w bs`, not with the per-pixel figure); subtracting all of
//! them from the whole peak would undercount when the peak comes early in the backward (wide
//! top stages), which is why they are tracked as they appear. The scratch buffers that
//! compute a weight gradient (a few weight-sized partial sums, whatever the batch) are counted
//! with the activations: they are fixed costs, which the marginal figure removes. Every per-pixel figure of the summary ([`SummaryRow`],
//! `summary.csv`) is made of `act_peak_bytes`: activations and activation gradients only,
//! weights and parameter gradients excluded (those are in `measured.csv`, `weight_bytes` and
//! `grad_bytes`).
//!
//! Networks have one stage by default (`stages = 1`, no pooling): every layer has `width`
//! channels at the input resolution, the analytic model's stage-uniform layout with one stage,
//! so the model's `M'_z + M'_g` applies directly (and with `width = 32` the model's figures are
//! the paper's for the layer-wise, hybrid and i-RevNet networks). The paper preset
//! ([`MemoryConfig::paper`], `memory --preset paper`, `experiments/memory-paper.toml`) measures
//! the paper's own configurations instead: width 32, 32x32 inputs, all three poolings of each
//! architecture (`stages = 4`: 32-128-512-512 channels for layer-wise and hybrid, 32-128-512-2048
//! for the i-RevNet, 32-64-128-256 for RevNet and ResNet) and the paper's blocks per stage
//! where the even spread of [`NetConfig::units_per_stage`](crate::nets::NetConfig::units_per_stage) can give them ([`ArchDepth`]).
//!
//! Entry point: [`MemoryConfig`] -> [`run`] -> [`MemoryResults`] (CSV, Markdown and JSON
//! writers; [`MemoryResults::write_all`] writes every file atomically: `summary.csv`,
//! `measured.csv`, `scaling.csv`, `table1.csv`, `run.json`; [`MemorySummary`] reads the printed
//! table back from `run.json`, for `report`).

mod config;
mod model;
mod output;
mod point;
mod results;
mod summary;
mod sweeps;

pub use config::{ArchDepth, MemoryConfig, Preset};
pub use model::{
    analytic_bytes_per_pixel, analytic_bytes_per_pixel_in, analytic_stored_bytes_per_pixel,
    mem_config, mem_config_stored, paper_bytes_per_pixel, pools_label, stage_channels,
};
pub use output::*;
pub use point::{batch_for, measure_point, measure_point_segment, measure_point_with, PeakPoint};
pub use results::{Axis, MemoryResults, ScalingFit, Timings};
pub use summary::SummaryRow;
pub use sweeps::{plan, run, run_with};
