//! The benchmark workload (issue 7): Algorithm 1 and the per-layer reconstructed backward give
//! the stored-mode gradients in f64, and a step of every mode runs and updates the weights.

mod common;

use candle_core::{DType, Device};
use common::rel_l2;
use revstab::experiments::bench::{median, run, BenchConfig, BenchMode, RevStack, StackSpec};
use revstab::layers::Layer;

fn spec() -> StackSpec {
    StackSpec {
        depth: 3,
        channels: 8,
        batch: 4,
        size: 8,
        init_scale: 0.5,
        seed: 3,
    }
}

#[test]
fn reconstructed_modes_match_stored_gradients_in_f64() {
    let spec = spec();
    let stored = RevStack::build(&spec, BenchMode::Stored, DType::F64, &Device::Cpu).unwrap();
    let (x, r) = stored.batch().unwrap();
    let reference = stored.step(&x, &r, None).unwrap();
    assert_eq!(
        reference.grads.len(),
        3 * 2 * 4,
        "every parameter has a gradient"
    );
    for mode in [BenchMode::Reconstructed, BenchMode::Algorithm1] {
        let stack = RevStack::build(&spec, mode, DType::F64, &Device::Cpu).unwrap();
        let out = stack.step(&x, &r, None).unwrap();
        assert!(
            (out.loss - reference.loss).abs() <= 1e-12 * reference.loss.abs().max(1.0),
            "{mode:?}: loss {} vs {}",
            out.loss,
            reference.loss
        );
        assert_eq!(out.grads.len(), reference.grads.len());
        for (name, g) in &reference.grads {
            let err = rel_l2(&out.grads[name], g);
            assert!(err <= 1e-10, "{mode:?}: {name} relative error {err:e}");
        }
    }
}

#[test]
fn algorithm1_equals_the_per_layer_reconstruction_bitwise() {
    // Same recomputations with the same recorded statistics: identical numbers, in f32 too.
    let spec = StackSpec { depth: 4, ..spec() };
    let per_layer =
        RevStack::build(&spec, BenchMode::Reconstructed, DType::F32, &Device::Cpu).unwrap();
    let alg1 = RevStack::build(&spec, BenchMode::Algorithm1, DType::F32, &Device::Cpu).unwrap();
    let (x, r) = per_layer.batch().unwrap();
    let a = per_layer.step(&x, &r, None).unwrap();
    let b = alg1.step(&x, &r, None).unwrap();
    for (name, g) in &a.grads {
        assert_eq!(rel_l2(&b.grads[name], g), 0.0, "{name}");
    }
}

#[test]
fn sgd_step_changes_the_weights_by_lr_times_the_gradient() {
    let stack = RevStack::build(&spec(), BenchMode::Algorithm1, DType::F64, &Device::Cpu).unwrap();
    let (x, r) = stack.batch().unwrap();
    let before: Vec<_> = stack
        .chain
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.var.as_tensor().copy().unwrap()))
        .collect();
    let out = stack.step(&x, &r, Some(0.1)).unwrap();
    for (name, w0) in before {
        let p = stack
            .chain
            .params()
            .into_iter()
            .find(|p| p.name == name)
            .unwrap();
        let want = (&w0 - (&out.grads[&name] * 0.1).unwrap()).unwrap();
        assert!(rel_l2(p.var.as_tensor(), &want) <= 1e-15, "{name}");
    }
}

#[test]
fn run_gives_a_row_per_mode_and_depth_with_ratios_to_stored() {
    let cfg = BenchConfig {
        depths: vec![1, 2],
        steps: 3,
        warmup: 0,
        threads: None,
        elementwise_threads: None,
        channels: 4,
        batch: 2,
        size: 4,
        ..BenchConfig::default()
    };
    let rows = run(&cfg, |_| {}).unwrap();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r.times_s.len(), 3);
        assert!(r.median_s > 0.0 && r.images_per_s > 0.0 && r.ratio_to_stored > 0.0);
        if r.mode == BenchMode::Stored {
            assert_eq!(r.ratio_to_stored, 1.0);
        }
    }
    let csv = revstab::experiments::bench::to_csv(&cfg, &rows);
    assert_eq!(csv.lines().count(), 7);
    assert!(BenchConfig {
        steps: 0,
        ..cfg.clone()
    }
    .validate()
    .is_err());
    assert!(BenchConfig { channels: 3, ..cfg }.validate().is_err());
}

#[test]
fn median_of_odd_and_even_lengths() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    assert!(median(&[]).is_nan());
}
