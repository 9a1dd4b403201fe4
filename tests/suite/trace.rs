//! Per-layer SNR traces in f32 (paper Fig. 10, 11, 13, 14, qualitatively), fixed seed 0,
//! Kaiming-normal init (`init_scale = 1`), width 8, batch 8, 16x16 unit-Gaussian input.
//! Reference of every figure here: the stored f32 activations; the backward starts from the
//! exact stored head input, so the first reconstruction carries only the rounding of one inverse.

use candle_core::{DType, Device};
use revstab::experiments::snr_sweep::{point_batch, SweepConfig};
use revstab::layers::Role;
use revstab::measure::trace::{snr_trace, SnrTrace, TraceOptions};
use revstab::nets::{Arch, NetConfig, Network};

fn trace(arch: Arch, depth: usize, slope: f64) -> SnrTrace {
    let sweep = SweepConfig::default();
    let mut cfg = NetConfig::new(arch);
    cfg.depth = depth;
    cfg.slope = slope;
    let net = Network::build(&cfg, DType::F32, &Device::Cpu).unwrap();
    let (x, y) = point_batch(&sweep, 0, &Device::Cpu).unwrap();
    snr_trace(
        &net,
        None,
        &x,
        &y,
        TraceOptions {
            depth_law: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn lowest(arch: Arch, depth: usize, slope: f64) -> f64 {
    trace(arch, depth, slope).lowest().unwrap().snr_db
}

#[test]
fn layerwise_trace_degrades_downward_through_the_units() {
    let t = trace(Arch::Layerwise, 8, 0.2);
    let units: Vec<(String, f64)> = t
        .points
        .iter()
        .filter(|p| p.layer.ends_with(".conv"))
        .map(|p| (p.layer.clone(), p.snr_db))
        .collect();
    assert_eq!(units.len(), 8);
    for w in units.windows(2) {
        assert!(
            w[1].1 <= w[0].1 + 1.0,
            "unit {} ({:.1} dB) is more than 1 dB above unit {} ({:.1} dB)",
            w[1].0,
            w[1].1,
            w[0].0,
            w[0].1
        );
    }
    // Every entry is finite and below the exact start.
    assert!(t.points.iter().all(|p| p.snr_db.is_finite()));
    // The depth law (eq. 19) is within 20 dB of the measurement at the bottom: rounding of every
    // inverse adds noise that the product of alphas does not count.
    let low = t.lowest().unwrap();
    assert!(
        (low.predicted_snr_db - low.snr_db).abs() < 20.0,
        "predicted {} vs measured {}",
        low.predicted_snr_db,
        low.snr_db
    );
}

#[test]
fn layerwise_lowest_snr_falls_with_depth_and_with_smaller_slope() {
    let by_depth: Vec<f64> = [2, 4, 8]
        .iter()
        .map(|&d| lowest(Arch::Layerwise, d, 0.2))
        .collect();
    assert!(
        by_depth.windows(2).all(|w| w[1] < w[0]),
        "SNR vs depth {by_depth:?}"
    );
    let by_slope: Vec<f64> = [0.5, 0.2, 0.1]
        .iter()
        .map(|&n| lowest(Arch::Layerwise, 4, n))
        .collect();
    assert!(
        by_slope.windows(2).all(|w| w[1] < w[0]),
        "SNR vs slope {by_slope:?}"
    );
}

#[test]
fn hybrid_keeps_at_least_50_db_more_than_layerwise_at_depth_16() {
    for slope in [0.1, 0.2, 0.5] {
        let h = trace(Arch::Hybrid, 16, slope);
        let hybrid = h.lowest().unwrap();
        assert_eq!(hybrid.role, Role::BlockInput);
        let layerwise = lowest(Arch::Layerwise, 16, slope);
        assert!(
            hybrid.snr_db >= layerwise + 50.0,
            "slope {slope}: hybrid {:.1} dB vs layer-wise {layerwise:.1} dB",
            hybrid.snr_db
        );
        // block inputs lose at most a few dB per block
        let blocks: Vec<f64> = h
            .points
            .iter()
            .filter(|p| p.role == Role::BlockInput)
            .map(|p| p.snr_db)
            .collect();
        assert_eq!(blocks.len(), 16);
        let per_block = (blocks[0] - blocks[15]) / 15.0;
        assert!(
            per_block <= 3.0,
            "slope {slope}: {per_block:.2} dB per block"
        );
        for w in blocks.windows(2) {
            assert!(
                w[0] - w[1] <= 6.0,
                "slope {slope}: one block lost {:.1} dB",
                w[0] - w[1]
            );
        }
        // hidden activations are traced too (8 per block)
        assert_eq!(
            h.points.iter().filter(|p| p.role == Role::Hidden).count(),
            16 * 8
        );
    }
}

#[test]
fn pooling_reconstructions_are_exact_and_f64_networks_nearly_so() {
    let mut cfg = NetConfig::new(Arch::Layerwise);
    cfg.depth = 4;
    let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
    let (x, y) = point_batch(&SweepConfig::default(), 0, &Device::Cpu).unwrap();
    let t = snr_trace(&net, None, &x, &y, TraceOptions::default()).unwrap();
    // f64 rounding (~313 dB per value) through 4 units of ~20 dB loss each
    assert!(
        t.lowest().unwrap().snr_db > 230.0,
        "f64 lowest {}",
        t.lowest().unwrap().snr_db
    );
    // A pool's input equals the entry above it permuted (exact): same SNR, up to the f64
    // summation order of the SNR itself (the permutation reorders the terms).
    for w in t.points.windows(2) {
        if w[1].layer.starts_with("pool") {
            assert!(
                (w[1].snr_db - w[0].snr_db).abs() <= 1e-12 * w[0].snr_db.abs(),
                "{} vs {}",
                w[1].snr_db,
                w[0].snr_db
            );
        }
    }
}

/// The device the test network lives on: a CUDA GPU when the build and the machine have one,
/// else the CPU (then the flag below is what sends the shadow to the CPU).
fn test_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(gpu) = Device::new_cuda(0) {
        return gpu;
    }
    Device::Cpu
}

/// The f64 shadow runs on the CPU whenever the network's device has no f64 (Metal).
/// `f64_shadow_on(false)` is the stand-in for such a device: the shadow is built on the CPU
/// with the network's weights cast to f64, `snr_trace` moves the batch to it, and the f64
/// column of the trace is the one the shadow on the network's own device gives.
#[test]
fn f64_shadow_takes_the_cpu_path_when_the_device_lacks_f64() {
    let device = test_device();
    let mut cfg = NetConfig::new(Arch::Hybrid);
    cfg.depth = 2;
    let net = Network::build(&cfg, DType::F32, &device).unwrap();
    let on_cpu = net.f64_shadow_on(false).unwrap();
    assert!(on_cpu.device.is_cpu());
    assert_eq!(on_cpu.dtype, DType::F64);
    let own = net.f64_shadow_on(true).unwrap();
    assert_eq!(own.device.location(), device.location());
    assert_eq!(
        net.f64_shadow().unwrap().device.location(),
        device.location(),
        "the CPU and CUDA have f64: the default shadow stays on the network's device"
    );
    for ((name, w), (shadow_name, s)) in net.named_params().iter().zip(on_cpu.named_params()) {
        assert_eq!(name, &shadow_name);
        let w = revstab::util::to_f64_vec(w.as_tensor()).unwrap();
        let s = revstab::util::to_f64_vec(s.as_tensor()).unwrap();
        assert_eq!(
            w, s,
            "{name}: the shadow's weights are the f32 weights, cast"
        );
    }
    let (x, y) = point_batch(&SweepConfig::default(), 0, &device).unwrap();
    let opts = TraceOptions::default();
    let via_cpu = snr_trace(&net, Some(&on_cpu), &x, &y, opts).unwrap();
    let via_own = snr_trace(&net, Some(&own), &x, &y, opts).unwrap();
    assert_eq!(via_cpu.points.len(), via_own.points.len());
    assert!(!via_cpu.points.is_empty());
    for (a, b) in via_cpu.points.iter().zip(&via_own.points) {
        assert_eq!(a.layer, b.layer);
        assert_eq!(a.snr_db, b.snr_db, "{}: same-dtype column", a.layer);
        let close = a.snr_db_f64 == b.snr_db_f64
            || (a.snr_db_f64 - b.snr_db_f64).abs() <= 1e-6 * a.snr_db_f64.abs().max(1.0);
        assert!(
            close,
            "{}: f64 column {} vs {}",
            a.layer, a.snr_db_f64, b.snr_db_f64
        );
        assert!(
            a.snr_db_f64.is_finite() && a.snr_db_f64 > 100.0,
            "{}: {}",
            a.layer,
            a.snr_db_f64
        );
    }
}

/// The depth law anchors at the first inexact reconstruction: with slope 1 the top leaky ReLU's
/// inverse is exact (`+inf`), and every prediction below the anchor is finite (it was `+inf`
/// for every entry of such a trace: the anchor was taken from the exact entry). Entries above
/// the anchor, exact, have none (NaN).
#[test]
fn depth_law_is_anchored_below_exact_reconstructions() {
    for (arch, slope) in [
        (Arch::Layerwise, 1.0),
        (Arch::Layerwise, 0.5),
        (Arch::Hybrid, 1.0),
    ] {
        let t = trace(arch, 4, slope);
        let top: Vec<_> = t.points.iter().filter(|p| p.role != Role::Hidden).collect();
        let anchor = top
            .iter()
            .position(|p| p.snr_db.is_finite())
            .expect("some reconstruction rounds");
        if arch == Arch::Layerwise {
            assert!(
                anchor > 0,
                "the top inverse (leaky ReLU of slope {slope}) is exact"
            );
        }
        for p in &top[..anchor] {
            assert!(
                p.predicted_snr_db.is_nan(),
                "{arch:?} {}: {}",
                p.layer,
                p.predicted_snr_db
            );
        }
        assert_eq!(top[anchor].predicted_snr_db, top[anchor].snr_db);
        for p in &top[anchor..] {
            assert!(
                p.predicted_snr_db.is_finite(),
                "{arch:?} {}: {}",
                p.layer,
                p.predicted_snr_db
            );
        }
    }
}
