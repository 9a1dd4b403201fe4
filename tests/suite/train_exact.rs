//! `train --resume` restores the batch-norm running statistics (a
//! resumed run evaluates bitwise as an uninterrupted one), and the gradient-angle probe leaves
//! the training state untouched (a probed run ends with the weights and statistics of an
//! unprobed one).

use revstab::nets::{Arch, Network, Source};
use revstab::train::{running_stats, train, TrainConfig, TrainOptions};

fn tiny(arch: Arch) -> TrainConfig {
    TrainConfig {
        arch,
        depth: 3,
        width: if arch == Arch::Hybrid { 8 } else { 4 },
        epochs: 2,
        batch: 16,
        lr: 0.2,
        data: "synthetic:train=64,test=32,size=8".into(),
        eval_batch: 64,
        ..TrainConfig::default()
    }
}

/// Every weight and every running statistic as exact bits, by name.
fn state_bits(net: &Network) -> Vec<(String, Vec<u64>)> {
    let bits = |t: &candle_core::Tensor| -> Vec<u64> {
        revstab::util::to_f64_vec(t)
            .unwrap()
            .into_iter()
            .map(f64::to_bits)
            .collect()
    };
    let mut v: Vec<(String, Vec<u64>)> = net
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, bits(p.as_tensor())))
        .collect();
    let stats = running_stats(net);
    assert!(!stats.is_empty(), "the network has batch norms");
    for (name, s) in stats {
        let (mean, var) = s.expect("running statistics after training");
        v.push((format!("{name}.running_mean"), bits(&mean)));
        v.push((format!("{name}.running_var"), bits(&var)));
    }
    v
}

#[test]
fn resume_restores_batch_norm_running_statistics_so_the_test_loss_bytes_match() {
    for arch in [Arch::Layerwise, Arch::Hybrid, Arch::Revnet] {
        let cfg = tiny(arch);
        let data = cfg.load_data().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let whole = TrainOptions {
            run_dir: Some(tmp.path().join("whole")),
            ..TrainOptions::default()
        };
        let (net_a, a) = train(&cfg, &data, &whole).unwrap();
        // Interrupted mid-epoch (after 5 of 8 updates), then resumed in a fresh network.
        let dir = tmp.path().join("interrupted");
        let first = TrainOptions {
            run_dir: Some(dir.clone()),
            stop_after: Some(5),
            ..TrainOptions::default()
        };
        let (_, stopped) = train(&cfg, &data, &first).unwrap();
        assert!(stopped.stopped);
        let resumed = TrainOptions {
            run_dir: Some(dir),
            resume: true,
            ..TrainOptions::default()
        };
        let (net_b, b) = train(&cfg, &data, &resumed).unwrap();
        assert_eq!(a.steps, b.steps);
        assert_eq!(
            a.test_loss.to_bits(),
            b.test_loss.to_bits(),
            "{arch}: test loss {} uninterrupted vs {} resumed",
            a.test_loss,
            b.test_loss
        );
        assert_eq!(a.test_acc.to_bits(), b.test_acc.to_bits(), "{arch}");
        assert_eq!(
            state_bits(&net_a),
            state_bits(&net_b),
            "{arch}: weights or statistics differ"
        );
    }
}

#[test]
fn the_angle_probe_leaves_weights_and_batch_norm_statistics_untouched() {
    for (arch, mode) in [
        (Arch::Layerwise, Source::Stored),
        (Arch::Layerwise, Source::Reconstructed),
        (Arch::Revnet, Source::Reconstructed),
    ] {
        let plain = TrainConfig { mode, ..tiny(arch) };
        let probed = TrainConfig {
            angle_every: 2,
            ..plain.clone()
        };
        let data = plain.load_data().unwrap();
        let (net_a, a) = train(&plain, &data, &TrainOptions::default()).unwrap();
        let (net_b, b) = train(&probed, &data, &TrainOptions::default()).unwrap();
        assert!(a.angles.is_empty());
        assert!(b.angles.len() >= 4, "{arch}: {} probes", b.angles.len());
        assert_eq!(
            state_bits(&net_a),
            state_bits(&net_b),
            "{arch} {mode:?}: the probe changed the training state"
        );
        assert_eq!(a.test_loss.to_bits(), b.test_loss.to_bits(), "{arch}");
    }
}
