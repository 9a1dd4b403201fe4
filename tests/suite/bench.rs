//! The benchmark: its modes are the real network's stored, reconstructed and
//! Algorithm 1 steps (the same gradients in f64), its update is the training optimiser's, and a
//! run gives one row per mode and depth for every architecture.

use crate::common::Tolerance;
use candle_core::{DType, Device};
use revstab::backend::Backend;
use revstab::device::DeviceSpec;
use revstab::experiments::bench::{
    batch_for, csv_line, format_table, forward_conv_macs, median, parse_pools, pools_name, run,
    to_csv, BenchConfig, BenchResults, Trainee,
};
use revstab::nets::BackwardPlan;
use revstab::nets::{Arch, NetConfig, NetOptions, PoolKind};
use revstab::train::Sgd;

/// A small one-stage RevNet: depth 3, width 8, 8x8 inputs.
fn small() -> BenchConfig {
    BenchConfig {
        depths: vec![3],
        threads: None,
        elementwise_threads: None,
        width: 8,
        batch: 4,
        size: 8,
        seed: 3,
        net: NetOptions {
            init_scale: 0.5,
            ..BenchConfig::default().net
        },
        ..BenchConfig::default()
    }
}

#[test]
fn every_mode_gives_the_stored_gradients_in_f64() {
    let cfg = small();
    let net = cfg.net_config(3);
    let (x, labels) = batch_for(&net, cfg.batch, cfg.seed, DType::F64, &Device::Cpu).unwrap();
    let build = |mode| {
        Trainee::build(
            &net,
            mode,
            Sgd::new(0.9, 5e-4),
            DType::F64,
            &Device::Cpu,
            Backend::default(),
        )
        .unwrap()
    };
    let stored = build(BackwardPlan::STORED);
    let reference = stored.grads(&x, &labels).unwrap();
    assert!(reference.loss.is_finite());
    assert_eq!(
        reference.grads.len(),
        stored.params.len(),
        "every parameter has a gradient"
    );
    for mode in [BackwardPlan::RECONSTRUCTED, BackwardPlan::ALGORITHM1] {
        let out = build(mode.clone()).grads(&x, &labels).unwrap();
        assert!(
            (out.loss - reference.loss).abs() <= 1e-12 * reference.loss.abs().max(1.0),
            "{mode:?}: loss {} vs {}",
            out.loss,
            reference.loss
        );
        assert_eq!(out.grads.len(), reference.grads.len());
        for (name, g) in &reference.grads {
            Tolerance::rel(1e-10).assert_rel_l2(&out.grads[name], g, &format!("{mode:?}: {name}"));
        }
    }
}

#[test]
fn a_step_is_the_training_optimisers_update() {
    // First step of SGD with momentum and coupled weight decay: v = g + wd w, w' = w - lr v.
    let (lr, wd) = (0.1, 5e-4);
    let cfg = small();
    let net = cfg.net_config(2);
    let (x, labels) = batch_for(&net, cfg.batch, cfg.seed, DType::F64, &Device::Cpu).unwrap();
    let mut t = Trainee::build(
        &net,
        BackwardPlan::ALGORITHM1,
        Sgd::new(0.9, wd),
        DType::F64,
        &Device::Cpu,
        Backend::default(),
    )
    .unwrap();
    let before: Vec<_> = t
        .params
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().copy().unwrap()))
        .collect();
    let grads = t.grads(&x, &labels).unwrap().grads;
    let loss = t.step(&x, &labels, lr).unwrap();
    assert!(loss.is_finite());
    assert_eq!(
        t.sgd.buffers.len(),
        t.params.len(),
        "a momentum buffer each"
    );
    for ((name, var), (_, w0)) in t.params.iter().zip(&before) {
        let v = (&grads[name] + (w0 * wd).unwrap()).unwrap();
        let want = (w0 - (v * lr).unwrap()).unwrap();
        Tolerance::rel(1e-12).assert_rel_l2(var.as_tensor(), &want, name);
    }
}

#[test]
fn run_gives_a_row_per_mode_and_depth_with_ratios_to_stored() {
    let cfg = BenchConfig {
        depths: vec![1, 2],
        steps: 3,
        warmup: 0,
        width: 4,
        batch: 2,
        size: 4,
        ..small()
    };
    let rows = run(&cfg, |_| {}).unwrap();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r.arch, Arch::Revnet);
        assert_eq!(r.times_s.len(), 3);
        assert!(r.median_s > 0.0 && r.images_per_s > 0.0 && r.ratio_to_stored > 0.0);
        assert!(r.last_loss.is_finite() && r.conv_gflops > 0.0);
        if r.mode == BackwardPlan::STORED {
            assert_eq!(r.ratio_to_stored, 1.0);
        }
    }
    let csv = to_csv(&cfg, &rows);
    assert_eq!(csv.lines().count(), 7);
    assert!(csv
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("revnet,none,stored,1,"));
    assert!(BenchConfig {
        steps: 0,
        ..cfg.clone()
    }
    .validate()
    .is_err());
    assert!(
        BenchConfig { width: 3, ..cfg }.validate().is_err(),
        "odd width"
    );
}

#[test]
fn resnet_skips_the_reconstructed_modes_with_a_note() {
    let cfg = BenchConfig {
        arch: Arch::Resnet,
        depths: vec![1],
        steps: 1,
        warmup: 0,
        width: 4,
        batch: 2,
        size: 4,
        ..small()
    };
    let note = cfg.skip_note().expect("a note");
    assert!(note.contains("reconstructed, algorithm1"), "{note}");
    let rows = run(&cfg, |_| {}).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].mode, BackwardPlan::STORED);
    assert!(BenchConfig {
        modes: vec![BackwardPlan::ALGORITHM1],
        ..cfg
    }
    .validate()
    .is_err());
    assert!(small().skip_note().is_none());
}

#[test]
fn every_arch_runs_with_its_default_pooling() {
    for arch in Arch::ALL {
        let cfg = BenchConfig {
            arch,
            depths: vec![4],
            steps: 1,
            warmup: 0,
            batch: 2,
            net: NetOptions {
                pools: Some(arch.default_pools()),
                ..small().net
            },
            ..small()
        };
        let rows = run(&cfg, |_| {}).unwrap_or_else(|e| panic!("{arch}: {e}"));
        let want = if arch.reconstructable() { 3 } else { 1 };
        assert_eq!(rows.len(), want, "{arch}");
        assert!(rows.iter().all(|r| r.last_loss.is_finite() && r.layers > 4));
    }
}

#[test]
fn pools_parse_and_print() {
    assert!(parse_pools("none", Arch::Revnet).unwrap().is_empty());
    assert!(parse_pools("", Arch::Hybrid).unwrap().is_empty());
    assert_eq!(
        parse_pools("default", Arch::Hybrid).unwrap(),
        Arch::Hybrid.default_pools()
    );
    let p = parse_pools("c, B,max", Arch::Irevnet).unwrap();
    assert_eq!(p, [PoolKind::Channel, PoolKind::Batch, PoolKind::Max]);
    assert_eq!(pools_name(&p), "c,b,max");
    assert_eq!(parse_pools(&pools_name(&p), Arch::Revnet).unwrap(), p);
    assert!(parse_pools("c,x", Arch::Revnet).is_err());
}

#[test]
fn conv_work_is_counted_per_block_and_projection() {
    // Stem 3 -> 8 and three RevNet blocks with four 4 -> 4 convolutions, on 2 x 4 x 4 pixels.
    let mut net = NetConfig {
        depth: 3,
        width: 8,
        input_size: 4,
        net: NetOptions {
            pools: Some(vec![]),
            ..NetOptions::default()
        },
        ..NetConfig::new(Arch::Revnet)
    };
    let px = 2.0 * 16.0;
    let (stem, rest) = forward_conv_macs(&net, 2);
    assert_eq!(stem, px * 3.0 * 8.0 * 9.0);
    assert_eq!(rest, 3.0 * 4.0 * px * 4.0 * 4.0 * 9.0);
    // One max pooling after the first stage (2 blocks, then 1 on 16 channels at a quarter of
    // the pixels) and its 1x1 projection 8 -> 16.
    net.net.pools = Some(vec![PoolKind::Max]);
    let (_, rest) = forward_conv_macs(&net, 2);
    let want = 2.0 * 4.0 * px * 16.0 * 9.0 + px / 4.0 * 8.0 * 16.0 + 4.0 * px / 4.0 * 64.0 * 9.0;
    assert_eq!(rest, want);
}

#[test]
fn median_of_odd_and_even_lengths() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    assert!(median(&[]).is_nan());
}

/// The bench takes a device; a name that does not parse, or a backend this build
/// lacks, is a configuration error before anything runs, and `cpu` is the default.
#[test]
fn bench_device_is_checked_before_running() {
    assert_eq!(BenchConfig::default().device, DeviceSpec::Cpu);
    small().validate().unwrap();
    // A name that does not parse never makes a config.
    let e = "tpu".parse::<DeviceSpec>().unwrap_err().to_string();
    assert!(e.contains("tpu"), "{e}");
    if !cfg!(feature = "cuda") {
        let cuda = BenchConfig {
            device: DeviceSpec::Cuda(None),
            ..small()
        };
        let e = cuda.validate().unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
        assert!(run(&cuda, |_| {}).is_err());
    }
}

/// A checkpointed segment of 0 blocks or longer than a depth is a configuration
/// error naming the depth and the value, in the bench, training and memory configs; the bench
/// names its checkpointed rows with the segment they ran.
#[test]
fn checkpointed_segment_is_checked_and_reported() {
    use revstab::experiments::memory::MemoryConfig;
    use revstab::nets::Source;
    use revstab::train::TrainConfig;
    for segment in [0, 9] {
        let bench = BenchConfig {
            depths: vec![4, 8],
            modes: vec![BackwardPlan::STORED, BackwardPlan::checkpointed(None)],
            segment: Some(segment),
            ..BenchConfig::default()
        };
        let e = bench.validate().unwrap_err().to_string();
        assert!(
            e.contains("between 1 and the depth") && e.contains(&format!("got {segment}")),
            "{e}"
        );
        let train = TrainConfig {
            mode: Source::Checkpointed,
            depth: 8,
            segment: Some(segment),
            ..TrainConfig::default()
        };
        let e = train.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("got {segment}")), "{e}");
        let memory = MemoryConfig {
            modes: vec![Source::Checkpointed],
            segment: Some(segment),
            ..MemoryConfig::quick()
        };
        assert!(memory.validate().is_err());
    }
    // Without checkpointed mode the segment is not read.
    let stored_only = BenchConfig {
        depths: vec![4],
        modes: vec![BackwardPlan::STORED],
        segment: Some(9),
        ..BenchConfig::default()
    };
    assert!(stored_only.validate().is_ok());
    let cfg = BenchConfig {
        depths: vec![4],
        modes: vec![BackwardPlan::STORED, BackwardPlan::checkpointed(None)],
        steps: 1,
        warmup: 0,
        width: 8,
        batch: 2,
        size: 8,
        ..BenchConfig::default()
    };
    let rows = run(&cfg, |_| {}).unwrap();
    assert_eq!(rows[1].mode, BackwardPlan::checkpointed(None));
    assert_eq!(rows[1].segment, Some(2), "default ceil(sqrt(4))");
    assert_eq!(rows[0].segment, None);
    assert!(format_table(&rows).contains("checkpointed(k=2)"));
    assert!(csv_line(&cfg, &rows[1]).ends_with(",2,,"));
    assert_eq!(rows[0].last_loss.to_bits(), rows[1].last_loss.to_bits());
}

/// `back`, read from `want`'s `run.json`, is `want`: every field equal, the rows' floats to
/// within 1e-15 relative (serde_json, built without its `float_roundtrip` feature, parses
/// decimal text to within an ulp or so of the number written), NaN as NaN; the same CSV.
fn assert_read_back(back: &BenchResults, want: &BenchResults) {
    let close = |a: f64, b: f64| {
        a.to_bits() == b.to_bits()
            || (a.is_nan() && b.is_nan())
            || (a - b).abs() <= 1e-15 * a.abs().max(b.abs())
    };
    assert_eq!(back.rows.len(), want.rows.len());
    for (b, w) in back.rows.iter().zip(&want.rows) {
        assert_eq!(
            (b.arch, &b.mode, b.depth, b.segment, b.layers, b.peak_bytes),
            (w.arch, &w.mode, w.depth, w.segment, w.layers, w.peak_bytes)
        );
        assert_eq!(b.times_s.len(), w.times_s.len());
        let floats = [
            (b.median_s, w.median_s),
            (b.min_s, w.min_s),
            (b.max_s, w.max_s),
            (b.images_per_s, w.images_per_s),
            (b.ratio_to_stored, w.ratio_to_stored),
            (b.conv_gflops, w.conv_gflops),
            (b.last_loss, w.last_loss),
        ];
        for (x, y) in floats
            .into_iter()
            .chain(b.times_s.iter().copied().zip(w.times_s.iter().copied()))
        {
            assert!(close(x, y), "{x} vs {y}");
        }
    }
    // Everything but the rows' floats, exactly (NaN included: through the JSON text).
    let others = BenchResults {
        rows: want.rows.clone(),
        ..back.clone()
    };
    assert_eq!(others.json().unwrap(), want.json().unwrap());
    assert_eq!(back.csv().unwrap(), want.csv().unwrap());
}

/// The results of a run are one typed value, `BenchResults`: written, `run.json`
/// is its JSON and reads back equal to it, and `bench.csv` is every config's rows under one
/// header.
#[test]
fn results_round_trip_through_run_json_and_give_the_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let tiny = BenchConfig {
        depths: vec![1, 2],
        steps: 2,
        warmup: 0,
        width: 4,
        batch: 2,
        size: 4,
        ..small()
    };
    let configs = vec![
        tiny.clone(),
        BenchConfig {
            arch: Arch::Resnet,
            depths: vec![1],
            ..tiny
        },
    ];
    let parts: Vec<_> = configs.iter().map(|c| run(c, |_| {}).unwrap()).collect();
    let rows: Vec<_> = parts.iter().flatten().cloned().collect();
    let res = BenchResults::new(configs.clone(), rows, 1.25, &Device::Cpu);
    res.write(tmp.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("run.json")).unwrap(),
        res.json().unwrap()
    );
    let back = BenchResults::read(tmp.path()).unwrap();
    assert_read_back(&back, &res);
    assert_eq!(
        BenchResults {
            rows: res.rows.clone(),
            ..back.clone()
        },
        res
    );
    assert_eq!(back.rows.len(), 2 * 3 + 1);
    assert_eq!(back.skipped, vec![configs[1].skip_note().unwrap()]);
    assert_eq!(back.total_s, 1.25);
    assert_eq!(back.experiment, "bench");
    let runs = back.runs().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].1.len(), 1);
    assert_eq!(runs[1].1[0].arch, Arch::Resnet);
    // One header, then each config's lines as `to_csv` gives them.
    let want =
        to_csv(&configs[0], &parts[0]) + to_csv(&configs[1], &parts[1]).split_once('\n').unwrap().1;
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("bench.csv")).unwrap(),
        want
    );
    assert_eq!(back.csv().unwrap(), want);
    let table = back.table().unwrap();
    assert!(table.contains(&format_table(&parts[0])), "{table}");
    assert!(table.contains(&configs[1].describe()), "{table}");
}

/// Without the stored mode the ratio is not finite: `null` in `run.json`, NaN read back; rows
/// that do not follow their configs are an error.
#[test]
fn results_without_a_stored_mode_read_back_nan_ratios() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = BenchConfig {
        depths: vec![1],
        modes: vec![BackwardPlan::RECONSTRUCTED],
        steps: 1,
        warmup: 0,
        width: 4,
        batch: 2,
        size: 4,
        ..small()
    };
    let rows = run(&cfg, |_| {}).unwrap();
    let res = BenchResults::new(vec![cfg.clone()], rows, 0.5, &Device::Cpu);
    res.write(tmp.path()).unwrap();
    let text = std::fs::read_to_string(tmp.path().join("run.json")).unwrap();
    assert!(text.contains("\"ratio_to_stored\": null"), "{text}");
    let back = BenchResults::read(tmp.path()).unwrap();
    assert!(back.rows[0].ratio_to_stored.is_nan());
    assert_read_back(&back, &res);
    let broken = BenchResults {
        configs: vec![cfg.clone(), cfg],
        ..back
    };
    let e = broken.csv().unwrap_err().to_string();
    assert!(e.contains("do not follow"), "{e}");
}
