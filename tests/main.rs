//! The integration tests, one binary (one link of the crate and candle instead of one per test
//! file). Each file of `tests/suite/` is a module named after what it tests; `tests/common/`
//! holds the helpers they share (the float tolerance).
//!
//! `tests/memory.rs` stays a binary of its own: it installs the counting allocator as the
//! process's `#[global_allocator]` and serialises its tests with a lock so that nothing else
//! allocates while a training step's peak is measured; in this binary the other modules' tests
//! would run (and allocate) on the harness's other threads and move the measured peaks.

mod common;

mod suite {
    mod anchored_training;
    mod anchors;
    mod bad_input;
    mod bench;
    mod bounds;
    mod cli_consistency;
    mod data;
    mod data_idx;
    mod depth_law;
    mod depth_law_family;
    mod docs;
    mod dry_run;
    mod errors;
    mod extending;
    mod figures;
    mod gradients;
    mod hardening;
    mod kernels;
    mod kernels_off;
    mod law;
    mod layers;
    mod layout;
    mod lipschitz;
    mod netconfig;
    mod new_user;
    mod outputs;
    mod pipelines;
    mod plan_cli;
    mod plot;
    mod portable;
    mod precision;
    mod report;
    mod snr_sweep_cli;
    mod stale_outputs;
    mod tolerance;
    mod trace;
    mod train_config;
    mod train_exact;
    mod training;
}
