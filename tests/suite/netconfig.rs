//! One network description for every tool: the topology options of
//! `NetConfig` (pools, stem, input channels, F/G chain, gamma init, nested depths), their
//! validation, and the item-1 configuration end to end.

use candle_core::{DType, Device, Tensor};
use revstab::data::{DataSplit, Dataset};
use revstab::experiments::snr_sweep::{run_point, SweepConfig};
use revstab::nets::{Arch, GammaInit, LayerKind, NetConfig, NetOptions, Network, PoolKind, Stem};
use revstab::train::{train, TrainConfig, TrainOptions};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

fn params_bits(net: &Network) -> HashMap<String, (Vec<usize>, Vec<u64>)> {
    net.named_params()
        .into_iter()
        .map(|(name, var)| {
            let t = var.as_tensor();
            let bits = t
                .to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()
                .into_iter()
                .map(f64::to_bits)
                .collect();
            (name, (t.dims().to_vec(), bits))
        })
        .collect()
}

/// Under `nested_depth`, every depth is the prefix of the deepest network: every parameter of
/// the shallow network exists in the deep one with the same bits, and the deep network's
/// parameters below the prefix's last unit are all in the shallow one.
#[test]
fn nested_depths_share_weights_bit_for_bit() {
    for (arch, pools) in [
        (Arch::Hybrid, vec![]),
        (Arch::Layerwise, Arch::Layerwise.default_pools()),
        (Arch::Revnet, Arch::Revnet.default_pools()),
    ] {
        let deep_cfg = NetConfig {
            depth: 8,
            nested_depth: Some(8),
            net: NetOptions {
                pools: Some(pools.clone()),
                gamma_init: Some(GammaInit::AbsNormal {
                    std: 0.5,
                    offset: 0.1,
                }),
                ..NetOptions::default()
            },
            ..NetConfig::new(arch)
        };
        let deep = Network::build(&deep_cfg, DType::F32, &Device::Cpu).unwrap();
        let deep_params = params_bits(&deep);
        for depth in [1, 2, 3, 5] {
            let cfg = NetConfig {
                depth,
                ..deep_cfg.clone()
            };
            let net = Network::build(&cfg, DType::F32, &Device::Cpu).unwrap();
            assert_eq!(net.unit_starts.len(), depth, "{arch} depth {depth}");
            let mut shared = 0;
            for (name, (dims, bits)) in params_bits(&net) {
                if name.starts_with("head") {
                    continue;
                }
                let (deep_dims, deep_bits) = deep_params.get(&name).unwrap_or_else(|| {
                    panic!("{arch} depth {depth}: `{name}` not in the deep net")
                });
                assert_eq!(&dims, deep_dims, "{name}");
                assert!(&bits == deep_bits, "{arch} depth {depth}: `{name}` differs");
                shared += 1;
            }
            assert!(shared > 0, "{arch} depth {depth}: no shared parameter");
            // The prefix's units are the deep network's first units: the stage layout is cut.
            let layout = cfg.units_per_stage();
            assert_eq!(layout.iter().sum::<usize>(), depth);
            let deep_layout = deep_cfg.units_per_stage();
            let mut left = depth;
            for (s, &n) in layout.iter().enumerate() {
                assert_eq!(
                    n,
                    deep_layout[s].min(left),
                    "{arch} depth {depth} stage {s}"
                );
                left -= n;
            }
        }
    }
}

/// Without nesting, depth 2 of a 3-stage network spreads its units over the stages, so its
/// second unit's weights are not the nested prefix's: the switch changes what is measured.
#[test]
fn unnested_depths_lay_out_their_own_stages() {
    let cfg = NetConfig {
        depth: 2,
        ..NetConfig::new(Arch::Layerwise)
    };
    assert_eq!(cfg.units_per_stage(), vec![1, 1, 0, 0]);
    let nested = NetConfig {
        nested_depth: Some(8),
        ..cfg.clone()
    };
    assert_eq!(nested.units_per_stage(), vec![2, 0, 0, 0]);
    assert!(!nested.keeps_pool(0), "a prefix ends with its last unit");
    assert!(cfg.keeps_pool(0));
}

use crate::common::randn_f64 as randn;

/// The |N(1, s)| + offset gamma init is the folded normal drawn from the parameter's own
/// stream, shifted: the same numbers drawn by hand.
#[test]
fn abs_normal_gammas_are_the_folded_shifted_draw() {
    let cfg = NetConfig {
        depth: 1,
        net: NetOptions {
            gamma_init: Some("absnormal:0.5:0.1".parse().unwrap()),
            ..NetOptions::default()
        },
        ..NetConfig::new(Arch::Layerwise)
    };
    let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
    let (name, gamma) = net
        .named_params()
        .into_iter()
        .find(|(n, _)| n.ends_with(".bn.gamma"))
        .unwrap();
    let got = gamma.as_tensor().to_vec1::<f64>().unwrap();
    let want: Vec<f64> = revstab::util::randn(
        &mut revstab::util::rng_for(cfg.seed, &name),
        &[cfg.width],
        1.0,
        0.5,
        DType::F64,
        &Device::Cpu,
    )
    .unwrap()
    .to_vec1::<f64>()
    .unwrap()
    .into_iter()
    .map(|v| v.abs() + 0.1)
    .collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(g.to_bits() == w.to_bits(), "{g} vs {w}");
        assert!(*g >= 0.1);
    }
    // gamma_spread stays the log-normal alias, and `ones` is exactly 1.
    assert_eq!(
        GammaInit::resolve(None, 0.3),
        GammaInit::LogNormal { spread: 0.3 }
    );
    assert_eq!(GammaInit::resolve(None, 0.0), GammaInit::Ones);
    assert!("absnormal:-1".parse::<GammaInit>().is_err());
    assert!("gauss:1".parse::<GammaInit>().is_err());
}

/// Bad topology options are errors that name what is wrong.
#[test]
fn bad_topology_options_are_clear_errors() {
    let check = |cfg: NetConfig, needle: &str| {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "`{needle}` not in: {e}");
        assert!(Network::build(&cfg, DType::F32, &Device::Cpu).is_err());
    };
    check(
        NetConfig {
            net: NetOptions {
                stem: Stem::Identity,
                ..NetOptions::default()
            },
            ..NetConfig::new(Arch::Hybrid)
        },
        "expected in_channels = width (8)",
    );
    check(
        NetConfig {
            net: NetOptions {
                fg: Some(vec![]),
                ..NetOptions::default()
            },
            ..NetConfig::new(Arch::Hybrid)
        },
        "at least one layer",
    );
    check(
        NetConfig {
            net: NetOptions {
                fg: Some(vec![LayerKind::Conv, LayerKind::Relu]),
                ..NetOptions::default()
            },
            ..NetConfig::new(Arch::Hybrid)
        },
        "`relu` is not invertible",
    );
    check(
        NetConfig {
            net: NetOptions {
                fg: Some(vec![LayerKind::Conv]),
                ..NetOptions::default()
            },
            ..NetConfig::new(Arch::Layerwise)
        },
        "no F/G blocks",
    );
    check(
        NetConfig {
            depth: 4,
            nested_depth: Some(2),
            ..NetConfig::new(Arch::Hybrid)
        },
        "nested_depth: expected >= depth (4)",
    );
    // A non-invertible F/G is fine where F/G is recomputed.
    NetConfig {
        net: NetOptions {
            fg: Some(vec![LayerKind::Conv, LayerKind::Relu, LayerKind::Conv]),
            ..NetOptions::default()
        },
        ..NetConfig::new(Arch::Revnet)
    }
    .validate()
    .unwrap();
}

fn sweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_snr-sweep"))
        .args(args)
        .output()
        .expect("run snr-sweep")
}

/// `snr-sweep` with an identity stem (8-channel inputs), no pooling and a custom F/G chain:
/// every point measures, and the lowest layer is the network input itself.
#[test]
fn sweep_cli_runs_identity_stem_without_pools() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = sweep(&[
        "--archs",
        "layerwise,hybrid",
        "--depths",
        "1,2",
        "--slopes",
        "0.2",
        "--widths",
        "8",
        "--in-channels",
        "8",
        "--stem",
        "identity",
        "--pools",
        "none",
        "--input-size",
        "8",
        "--nested",
        "-q",
        "--no-figure",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<&str> = summary.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{summary}");
    for r in &rows {
        let f: Vec<&str> = r.split(',').collect();
        // lowest_layer: the first unit or block (no stem below it); a finite SNR.
        assert!(f[8].starts_with("s0."), "{r}");
        let snr: f64 = f[9].parse().unwrap();
        assert!(snr.is_finite() && snr > 50.0, "{r}");
    }
    let trace = std::fs::read_to_string(out.join("snr_sweep.csv")).unwrap();
    assert!(!trace.contains(",stem,"), "an identity stem has no layer");
    assert!(!trace.contains("pool"), "no pooling");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["topology"]["stem"], "identity");
    assert_eq!(run["init"]["init_scale"], 1.0);
}

/// Bad topology flags exit 2 with a clear line, before any file is written.
#[test]
fn sweep_cli_rejects_bad_topology_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never");
    let cases: &[(&[&str], &str)] = &[
        (&["--stem", "identity"], "expected in_channels = width (8)"),
        (
            &["--archs", "hybrid", "--fg", "conv,relu"],
            "not invertible",
        ),
        (&["--archs", "hybrid", "--fg", "conv,pool"], "pool"),
        (
            &["--archs", "layerwise", "--fg", "conv,bn"],
            "no F/G blocks",
        ),
        (&["--pools", "c,x"], "pooling"),
        (&["--archs", "hybrid", "--pools", "max"], "pooling"),
        (&["--gamma-init", "absnormal:nan"], "gamma"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["--depths", "1", "--slopes", "0.2", "-q", "--no-figure"];
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(extra.iter());
        let o = sweep(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: `{needle}` not in {err}");
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
}

/// Training runs with an identity stem and no pooling, on 4-channel images.
#[test]
fn train_runs_identity_stem_without_pools() {
    let n = 32;
    let make = |stream: &str| {
        let x = randn(&[n, 4, 8, 8], stream);
        let labels = Tensor::new(
            (0..n as u32).map(|i| i % 2).collect::<Vec<_>>(),
            &Device::Cpu,
        )
        .unwrap();
        Dataset::new(x, labels, 2).unwrap()
    };
    let data = DataSplit {
        train: make("train"),
        test: make("test"),
    };
    let cfg = TrainConfig {
        arch: Arch::Hybrid,
        depth: 2,
        width: 4,
        mode: revstab::nets::Source::Reconstructed,
        epochs: 1,
        batch: 8,
        eval_samples: 0,
        eval_batch: 16,
        net: NetOptions {
            stem: Stem::Identity,
            pools: Some(vec![]),
            fg: Some(vec![
                LayerKind::Conv,
                LayerKind::Bn,
                LayerKind::Lrelu,
                LayerKind::Conv,
            ]),
            ..NetOptions::default()
        },
        ..TrainConfig::default()
    };
    let net_cfg = cfg.net_config_for(&data).unwrap();
    assert_eq!(net_cfg.net.stem, Stem::Identity);
    assert!(net_cfg.pools().is_empty());
    let (net, outcome) = train(&cfg, &data, &TrainOptions::default()).unwrap();
    assert_eq!(outcome.epochs, 1);
    assert!(outcome.train_loss.is_finite(), "{}", outcome.train_loss);
    assert!(!net
        .named_params()
        .iter()
        .any(|(n, _)| n.starts_with("stem")));
    // 8-channel images do not fit an identity stem of width 4: a clear error.
    let wide = DataSplit {
        train: Dataset::new(
            randn(&[8, 8, 8, 8], "w"),
            Tensor::zeros(8, DType::U32, &Device::Cpu).unwrap(),
            2,
        )
        .unwrap(),
        test: Dataset::new(
            randn(&[8, 8, 8, 8], "v"),
            Tensor::zeros(8, DType::U32, &Device::Cpu).unwrap(),
            2,
        )
        .unwrap(),
    };
    let e = cfg.net_config_for(&wide).unwrap_err().to_string();
    assert!(
        e.contains("expected in_channels = width (4)") && e.contains("got in_channels = 8"),
        "{e}"
    );
}

/// The identity-stem hybrid (`experiments/identity-stem-hybrid.toml`) loads with every option as
/// written and its networks measure: a reduced grid (depths 1 and 2, one slope).
#[test]
fn identity_stem_hybrid_config_loads_and_runs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/identity-stem-hybrid.toml");
    let cfg = SweepConfig::from_toml_file(&path).unwrap();
    cfg.validate().unwrap();
    assert_eq!(
        (cfg.batch, cfg.net.in_channels, cfg.input_size),
        (16, 16, 32)
    );
    assert_eq!(cfg.widths, vec![16]);
    assert_eq!(cfg.net.stem, Stem::Identity);
    assert_eq!(cfg.net.pools, Some(Vec::<PoolKind>::new()));
    assert_eq!(
        cfg.net.fg,
        Some(vec![
            LayerKind::Conv,
            LayerKind::Bn,
            LayerKind::Lrelu,
            LayerKind::Conv
        ])
    );
    assert_eq!(
        cfg.net.gamma_init,
        Some(GammaInit::AbsNormal {
            std: 0.5,
            offset: 0.1
        })
    );
    assert_eq!(cfg.net.init_scale, 1.0);
    assert!(cfg.net.nested);
    let grid = cfg.grid();
    // Reduced: the two shallowest depths at one slope (still prefixes of the depth-32 net).
    for p in grid.iter().filter(|p| p.depth <= 2 && p.slope == 0.2) {
        let net_cfg = cfg.net_config(p);
        assert_eq!(net_cfg.nested_depth, Some(32));
        let (result, trace) = run_point(&cfg, p, &Device::Cpu).unwrap();
        let lowest = trace.lowest().unwrap();
        assert_eq!(
            lowest.layer, "s0.b0",
            "the lowest block input is the input itself"
        );
        assert!(
            result.lowest_snr_db.is_finite() && result.lowest_snr_db > 60.0,
            "depth {}: {}",
            p.depth,
            result.lowest_snr_db
        );
    }
}

/// `train` rejects bad topology flags the same way: exit 2, nothing written.
#[test]
fn train_cli_rejects_bad_topology_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never");
    let cases: &[(&[&str], &str)] = &[
        (&["--arch", "hybrid", "--fg", "conv,relu"], "not invertible"),
        (&["--stem", "identity"], "expected in_channels = width (8)"),
        (&["--arch", "layerwise", "--fg", "conv"], "no F/G blocks"),
        (&["--nested"], "--nested"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["--epochs", "1", "-q", "--out", out.to_str().unwrap()];
        args.extend(extra.iter());
        let o = Command::new(env!("CARGO_BIN_EXE_train"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: `{needle}` not in {err}");
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
}

/// `train` from the command line with no pooling, a custom F/G chain and the folded-normal
/// gammas: it trains, and its `run.json` records the topology and the init.
#[test]
fn train_cli_runs_without_pools_and_records_the_topology() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_train"))
        .args([
            "--arch",
            "hybrid",
            "--depth",
            "2",
            "--pools",
            "none",
            "--fg",
            "conv,bn,lrelu,conv",
            "--gamma-init",
            "absnormal:0.5:0.1",
            "--epochs",
            "1",
            "--batch",
            "16",
            "--data",
            "synthetic:train=32,test=16,size=8",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["topology"]["pools"], serde_json::json!([]), "{run}");
    assert_eq!(
        run["topology"]["fg"],
        serde_json::json!(["conv", "bn", "lrelu", "conv"])
    );
    assert_eq!(run["init"]["gamma_init"], "absnormal:0.5:0.1");
    assert_eq!(run["init"]["init_scale"], 1.0);
}

/// `memory` takes the same network flags: no pooling and another init are measured and
/// recorded; a bad chain is exit 2 before anything is written.
#[test]
fn memory_cli_takes_the_shared_network_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mem");
    let o = Command::new(env!("CARGO_BIN_EXE_memory"))
        .args([
            "--quick",
            "--pools",
            "none",
            "--init-scale",
            "0.5",
            "-q",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["topology"]["pools"], serde_json::json!([]), "{run}");
    assert_eq!(run["init"]["init_scale"], 0.5);
    let never = tmp.path().join("never");
    let o = Command::new(env!("CARGO_BIN_EXE_memory"))
        .args(["--quick", "--fg", "conv,relu", "--out"])
        .arg(&never)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not invertible"), "{err}");
    assert!(!never.exists());
}

/// `bn_momentum` (a network option added as the docs' recipe says: its field, its use, its
/// row) reaches the batch norms: after two training steps the running statistics differ from
/// the default momentum's, and eval-mode logits with it; a momentum outside (0, 1] is a
/// configuration error naming the key.
#[test]
fn bn_momentum_reaches_the_running_statistics() {
    let run = |m: f64| {
        let cfg = NetConfig {
            depth: 2,
            net: NetOptions {
                bn_momentum: m,
                ..NetOptions::default()
            },
            ..NetConfig::new(Arch::Layerwise)
        };
        let net = Network::build(&cfg, DType::F64, &Device::Cpu).unwrap();
        let y = Tensor::new(&[0u32, 1, 2, 3], &Device::Cpu).unwrap();
        // The first step sets the running statistics; the second mixes with the momentum.
        for stream in ["bn-momentum-1", "bn-momentum-2"] {
            let x = randn(&[4, 3, 16, 16], stream);
            net.step(&x, &y, revstab::nets::Source::Stored, Default::default())
                .unwrap();
        }
        net.eval_logits(&randn(&[4, 3, 16, 16], "bn-momentum-1"))
            .unwrap()
    };
    let default = run(0.1);
    let again = run(0.1);
    let full = run(1.0);
    let diff = |a: &Tensor, b: &Tensor| {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    assert_eq!(diff(&default, &again), 0.0);
    assert!(diff(&default, &full) > 1e-6);
    for bad in [0.0, -0.5, 1.5, f64::NAN] {
        let cfg = NetConfig {
            net: NetOptions {
                bn_momentum: bad,
                ..NetOptions::default()
            },
            ..NetConfig::new(Arch::Layerwise)
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("bn_momentum"), "{e}");
    }
}
