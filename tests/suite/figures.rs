//! The figure layer of `experiments::figures`: every figure renders from a tiny synthetic result
//! set to a valid PNG + SVG + CSV (with its provenance line), missing and malformed result files
//! are errors naming the file, and the cache reuses results until the config changes.

use revstab::backend::Backend;
use revstab::experiments::figures::*;
use revstab::experiments::memory::{Axis, MemoryConfig};
use revstab::experiments::tradeoff::{TradeoffConfig, TradeoffData, TradeoffPoint};
use revstab::nets::{Arch, Source};
use revstab::plot::registry::*;
use revstab::plot::*;
use std::path::Path;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

fn provenance(dtype: &str) -> Provenance {
    Provenance {
        git_revision: "test".into(),
        crate_version: "0".into(),
        seed: "0".into(),
        dtype: dtype.into(),
        device: "cpu".into(),
        backend: Default::default(),
        backend_that_ran: "kernels".into(),
        init: "synthetic".into(),
        seconds: 0.0,
        threads: 1,
        created_unix: 0,
        cpu: String::new(),
        kernels: String::new(),
    }
}

fn file(id: &str, config: ExperimentConfig, data: ResultData) -> ResultFile {
    ResultFile {
        id: id.into(),
        config_path: format!("test/{id}.toml"),
        config_key: config.key(),
        config,
        provenance: provenance("f32"),
        data,
    }
}

fn lowest(arch: Arch, dtype: &str, depth: usize, slope: f64, eps_i: f64, snr: f64) -> LowestRow {
    LowestRow {
        arch,
        dtype: dtype.parse().unwrap(),
        depth,
        slope,
        eps_i,
        layers: 3 * depth + 5,
        lowest_layer: "s0.u0.conv".into(),
        lowest_snr_db: snr,
        lowest_snr_db_f64: snr - 1.0,
        predicted_db: snr + 5.0,
        predicted_rounding_db: snr + 1.0,
        predicted_coherent_db: snr - 1.0,
        predicted_law_db: snr - 0.5,
        min_snr_db: snr - 3.0,
        seconds: 0.1,
    }
}

fn trace_run(noise: f64, hybrid: bool) -> TraceRun {
    let mut entries = Vec::new();
    let names: Vec<(String, &str)> = if hybrid {
        let mut v = Vec::new();
        for b in [1, 0] {
            for h in ["G.bn2", "G.conv2", "F.bn1"] {
                v.push((format!("s{b}.b0.{h}"), "hidden"));
            }
            v.push((format!("s{b}.b0"), "block-input"));
            if b == 1 {
                v.push(("pool0".into(), "layer"));
            }
        }
        v
    } else {
        let mut v = Vec::new();
        for u in [1, 0] {
            for l in ["act", "bn", "conv"] {
                v.push((format!("s0.u{u}.{l}"), "layer"));
            }
        }
        v
    };
    for (i, (layer, role)) in names.into_iter().enumerate() {
        let snr = if i == 0 {
            f64::INFINITY
        } else {
            150.0 - 5.0 * i as f64
        };
        let hidden = role == "hidden";
        entries.push(TraceRow {
            index: i,
            layer,
            role: role.into(),
            snr_db: snr,
            snr_db_f64: 128.0,
            alpha_db: if hidden { f64::NAN } else { -4.0 },
            predicted_snr_db: if hidden || i == 0 {
                f64::NAN
            } else {
                152.0 - 4.0 * i as f64
            },
            predicted_snr_db_rounding: if hidden || i == 0 {
                f64::NAN
            } else {
                151.0 - 5.0 * i as f64
            },
            predicted_snr_db_coherent: if hidden || i == 0 {
                f64::NAN
            } else {
                149.0 - 5.0 * i as f64
            },
            predicted_snr_db_law: if hidden || i == 0 {
                f64::NAN
            } else {
                150.0 - 5.0 * i as f64
            },
            lip_forward: if hidden { f64::NAN } else { 1.5 },
            lip_inverse: if hidden { f64::NAN } else { 2.5 },
        });
    }
    TraceRun {
        noise_std: noise,
        output_snr_db: if noise > 0.0 { 60.0 } else { f64::INFINITY },
        entries,
    }
}

/// A complete small result set in `dir` (cache files + train outputs).
fn synthetic_results(dir: &Path) -> Results {
    let res = Results {
        dir: dir.join("cache"),
        accuracy_dir: dir.join("accuracy"),
        angles_dir: dir.join("angles"),
    };
    for (id, layer) in [
        ("fig05", AlphaLayer::ToyBn),
        ("fig06", AlphaLayer::LeakyRelu),
    ] {
        let xs = [1e-2, 1e-1, 1.0, 10.0];
        let th = |x: f64| 4.0 / ((1.0 + 1.0 / (x * x)) * (1.0 + x * x));
        let points = ["f64", "f32"]
            .iter()
            .flat_map(|dt| {
                xs.iter().map(move |&x| AlphaPoint {
                    dtype: dt.parse().unwrap(),
                    x,
                    theory: th(x),
                    empirical: th(x) * 1.01,
                    snr_in_db: 80.0,
                    snr_out_db: 100.0,
                })
            })
            .collect();
        let data = ResultData::Alpha(AlphaData {
            layer,
            theory: xs.iter().map(|&x| Xy { x, y: th(x) }).collect(),
            points,
        });
        res.store(&file(
            id,
            ExperimentConfig::Alpha(AlphaConfig {
                layer,
                ..AlphaConfig::default()
            }),
            data,
        ))
        .unwrap();
    }
    for (id, arch, hybrid) in [
        ("fig10", Arch::Layerwise, false),
        ("fig13", Arch::Hybrid, true),
        ("lipschitz", Arch::Layerwise, false),
    ] {
        let data = ResultData::Trace(TraceData {
            arch,
            depth: 2,
            slope: 0.2,
            layers: 11,
            runs: vec![trace_run(0.0, hybrid), trace_run(1e-3, hybrid)],
        });
        res.store(&file(
            id,
            ExperimentConfig::Trace(TraceConfig {
                arch,
                ..TraceConfig::default()
            }),
            data,
        ))
        .unwrap();
    }
    for (id, arch) in [("fig11", Arch::Layerwise), ("fig14", Arch::Hybrid)] {
        let data = ResultData::Scaling(ScalingData {
            arch,
            depth_sweep_slope: 0.5,
            slope_sweep_depth: 3,
            depth_sweep: [1, 2, 4]
                .iter()
                .map(|&d| lowest(arch, "f32", d, 0.5, 0.0, 140.0 - 20.0 * d as f64))
                .collect(),
            slope_sweep: [0.01, 0.1, 1.0]
                .iter()
                .map(|&n: &f64| lowest(arch, "f32", 3, n, 0.0, 120.0 + 30.0 * n.log10()))
                .collect(),
        });
        res.store(&file(
            id,
            ExperimentConfig::Scaling(ScalingConfig {
                arch,
                ..ScalingConfig::default()
            }),
            data,
        ))
        .unwrap();
    }
    let rows = [Arch::Layerwise, Arch::Hybrid]
        .iter()
        .flat_map(|&a| {
            ["f16", "f32"].iter().flat_map(move |dt| {
                [1, 4].iter().map(move |&d| {
                    lowest(
                        a,
                        dt,
                        d,
                        0.2,
                        0.0,
                        if *dt == "f16" { 60.0 } else { 140.0 } - 10.0 * d as f64,
                    )
                })
            })
        })
        .collect();
    res.store(&file(
        "precision",
        ExperimentConfig::Precision(PrecisionConfig::default()),
        ResultData::Precision(PrecisionData { slope: 0.2, rows }),
    ))
    .unwrap();
    let eps = [0.0, 0.1, 1.0];
    let data = ResultData::BnEps(BnEpsData {
        channels: 4,
        gammas: vec![0.1, 1.0, 2.0, 5.0],
        alpha: eps
            .iter()
            .map(|&e| BnAlphaRow {
                eps_i: e,
                theory: 0.1 + e / 2.0,
                printed: 0.2 + e / 3.0,
                empirical: 0.1 + e / 2.0,
                min_scale: 0.1 + e,
            })
            .collect(),
        snr: [4, 8]
            .iter()
            .flat_map(|&d| {
                eps.iter().map(move |&e| {
                    lowest(
                        Arch::Layerwise,
                        "f32",
                        d,
                        0.2,
                        e,
                        50.0 + 10.0 * e - 5.0 * d as f64,
                    )
                })
            })
            .collect(),
    });
    res.store(&file(
        "bn-eps",
        ExperimentConfig::BnEps(BnEpsConfig::default()),
        data,
    ))
    .unwrap();
    let row = |model: &str, arch: Arch| MemoryRow {
        model: model.into(),
        arch,
        channels: "32-64".into(),
        pooling: "P_c".into(),
        paper_bytes_per_pixel: 352.0,
        analytic_bytes_per_pixel: 352.0,
        paper_weight_bytes: 14.8e6,
        analytic_weight_bytes: 14.79e6,
        paper_peak_bytes: 648e6,
        analytic_peak_bytes: 663e6,
        measured_layers: 14,
        measured_channels: "32-128".into(),
        measured_blocks: "2-1".into(),
        measured_analytic_bytes_per_pixel: 160.0,
        measured_stored_bytes_per_pixel: 300.0,
        measured_reconstructed_bytes_per_pixel: f64::NAN,
        measured_over_analytic: f64::NAN,
        measured_marginal_bytes_per_pixel: 250.0,
        marginal_over_analytic: f64::NAN,
    };
    let data = ResultData::Memory(MemoryData {
        rows: vec![
            row("ResNet", Arch::Resnet),
            row("Hybrid (ours)", Arch::Hybrid),
        ],
        analytic_markdown: "| a |\n|---|\n| 1 |".into(),
        measured_markdown: "| b |\n|---|\n| 2 |".into(),
        points: vec![],
    });
    res.store(&file(
        "table1",
        ExperimentConfig::Memory(MemoryConfig::quick()),
        data,
    ))
    .unwrap();
    res.store(&file(
        "memory-scaling",
        ExperimentConfig::Memory(MemoryConfig::quick()),
        ResultData::Memory(MemoryData {
            rows: vec![],
            analytic_markdown: String::new(),
            measured_markdown: String::new(),
            points: memory_points(),
        }),
    ))
    .unwrap();
    res.store(&file(
        "tradeoff",
        ExperimentConfig::Tradeoff(TradeoffConfig::default()),
        ResultData::Tradeoff(TradeoffData {
            points: tradeoff_points(),
        }),
    ))
    .unwrap();
    res.store(&file(
        "anchors",
        ExperimentConfig::Anchors(AnchorsConfig::default()),
        ResultData::Anchors(anchors_data()),
    ))
    .unwrap();
    let family = revstab::experiments::depth_law::DepthLawConfig {
        networks: 4,
        report: vec![1, 3],
        ..Default::default()
    };
    let members: Vec<_> = (0..4).map(|i| family.member(i).unwrap()).collect();
    let entries = (0..4)
        .flat_map(|m| {
            (0..3).map(move |i| revstab::experiments::depth_law::LawEntryRow {
                member: m,
                seed: 0,
                index: i,
                layer: format!("s0.u{i}.conv"),
                snr_db: 100.0 - 20.0 * i as f64,
                law_db: 100.5 - 20.0 * i as f64,
                coherent_db: 97.0 - 20.0 * i as f64,
                rounding_db: 103.0 - 20.0 * i as f64,
                eq19_db: 110.0 - 20.0 * i as f64,
                alpha_db: -6.0,
                alpha_error_db: -6.1,
                step_snr_db: 140.0,
                chain_step_snr_db: 135.0,
                injection_corr: 0.01,
                error_signal_corr: 0.0,
                error_lag1: 0.0,
            })
        })
        .collect();
    res.store(&file(
        "depth-law",
        ExperimentConfig::DepthLaw(family),
        ResultData::DepthLaw(DepthLawData { members, entries }),
    ))
    .unwrap();

    std::fs::create_dir_all(&res.accuracy_dir).unwrap();
    let run_json = r#"{"tool":"train","git_revision":"test","dtype":"f32","device":"cpu","seeds":[0],"config":{"experiment":"accuracy"},"data":{"source":"synthetic","classes":10},"init":{"description":"test init","init_scale":1.0,"gamma_init":"ones"}}"#;
    std::fs::write(res.accuracy_dir.join("run.json"), run_json).unwrap();
    let mut acc = String::from("arch,depth,slope,mode,seed,test_acc,train_loss,train_acc,epochs,seconds,layers,test_loss,steps,sweep,status,diagnosis\n");
    for arch in ["layerwise", "hybrid"] {
        for (d, n, sweep) in [
            (2, 0.2, "depth"),
            (6, 0.2, "depth+slope"),
            (6, 0.05, "slope"),
            (6, 1.0, "slope"),
        ] {
            for (mode, acc_v, status) in [
                ("stored", "0.8", "ok"),
                (
                    "reconstructed",
                    if n == 0.05 { "nan" } else { "0.7" },
                    if n == 0.05 { "diverged" } else { "ok" },
                ),
            ] {
                acc.push_str(&format!(
                    "{arch},{d},{n},{mode},0,{acc_v},0.5,0.8,2,1.0,20,0.6,10,{sweep},{status},\n"
                ));
            }
        }
    }
    std::fs::write(res.accuracy_dir.join("accuracy.csv"), acc).unwrap();
    std::fs::create_dir_all(&res.angles_dir).unwrap();
    std::fs::write(res.angles_dir.join("run.json"), run_json).unwrap();
    let mut ang = String::from("arch,depth,slope,seed,step,epoch,mode,loss,train_err,test_err,angle_deg,lowest_snr_db,lowest_layer,lr\n");
    for (arch, mode) in [
        ("revnet", "reconstructed"),
        ("revnet", "stored"),
        ("layerwise", "reconstructed"),
    ] {
        for step in [0, 10, 20] {
            ang.push_str(&format!(
                "{arch},6,0.2,0,{step},0,{mode},{},0.5,0.6,{},120.0,s0.b0,0.1\n",
                2.3 - 0.05 * step as f64,
                0.01 * step as f64
            ));
        }
    }
    std::fs::write(res.angles_dir.join("angles.csv"), ang).unwrap();
    res
}

/// Sweeps of a small memory run: stored grows with depth, reconstructed is flat in depth
/// (ResNet has no inverse: equal modes), both grow with the pixels.
fn memory_points() -> Vec<MemoryPoint> {
    let mut v = Vec::new();
    for arch in [Arch::Layerwise, Arch::Revnet, Arch::Resnet] {
        for mode in [Source::Stored, Source::Reconstructed] {
            let flat = mode == Source::Reconstructed && arch != Arch::Resnet;
            for (sweep, depth, batch, size) in [
                (Axis::Depth, 2, 2, 8),
                (Axis::Depth, 4, 2, 8),
                (Axis::Depth, 8, 2, 8),
                (Axis::Batch, 4, 2, 8),
                (Axis::Batch, 4, 4, 8),
                (Axis::Size, 4, 2, 8),
                (Axis::Size, 4, 2, 16),
            ] {
                let per_layer = 512 * batch * size * size;
                let act = per_layer * if flat { 3 } else { 3 * depth + 2 };
                let grad = 10_000 * depth;
                v.push(MemoryPoint {
                    sweep,
                    arch,
                    mode,
                    depth,
                    batch,
                    size,
                    layers: 3 * depth + 2,
                    peak_bytes: act + grad,
                    act_peak_bytes: act,
                    grad_bytes: grad,
                    tape_bytes: if flat { 0 } else { act / 2 },
                    weight_bytes: grad,
                });
            }
        }
    }
    v
}

/// A small frontier: one reversible architecture (every source) and the ResNet (no
/// reconstructed source) at depth 4, made-up but plausible numbers.
/// Anchors of a small grid: layer-wise needs 1 anchor per 8 units at 60 dB, hybrid none.
fn anchors_data() -> AnchorsData {
    use revstab::experiments::anchors::AnchorsNet;
    let mut points = Vec::new();
    for arch in [Arch::Layerwise, Arch::Hybrid] {
        for (depth, slope) in [(1, 0.2), (8, 0.2), (32, 0.2), (8, 0.01), (8, 1.0)] {
            for weights in ["init", "trained"] {
                let anchors = if arch == Arch::Layerwise {
                    depth / 8
                } else {
                    0
                };
                points.push(AnchorsPoint {
                    net: AnchorsNet { arch, depth, slope },
                    weights: weights.into(),
                    target_db: 60.0,
                    anchors,
                    anchor_names: String::new(),
                    rebuilt: 3 * depth,
                    bytes_held: anchors * 4096,
                    bytes_per_pixel: (anchors * 4096) as f64 / 2048.0,
                    lowest_snr_db: 70.0,
                    lowest_predicted_db: 68.0,
                    train_loss: if weights == "init" { f64::NAN } else { 2.0 },
                });
            }
        }
    }
    AnchorsData {
        probe: "test batch".into(),
        points,
    }
}

fn tradeoff_points() -> Vec<TradeoffPoint> {
    let point =
        |arch, source: &str, segment, bpx: f64, ratio: f64, snr: f64, angle: f64| TradeoffPoint {
            arch,
            depth: 4,
            source: source.into(),
            segment,
            act_peak_bytes: (bpx * 2048.0) as usize,
            peak_bytes: (bpx * 2048.0) as usize + 5000,
            bytes_per_pixel: bpx,
            median_s: 0.01 * ratio,
            time_ratio: ratio,
            lowest_snr_db: snr,
            lowest_layer: "s0.b0".into(),
            grad_angle_deg: angle,
            anchors: None,
        };
    let inf = f64::INFINITY;
    let mut v = Vec::new();
    for arch in [Arch::Revnet, Arch::Resnet] {
        v.push(point(arch, "stored", None, 1200.0, 1.0, inf, 0.0));
        v.push(point(arch, "checkpointed", Some(1), 700.0, 1.3, inf, 0.0));
        v.push(point(arch, "checkpointed", Some(2), 650.0, 1.25, inf, 0.0));
        v.push(point(arch, "checkpointed", Some(4), 1200.0, 1.0, inf, 0.0));
    }
    v.push(point(
        Arch::Revnet,
        "reconstructed",
        None,
        300.0,
        1.4,
        110.0,
        4e-5,
    ));
    v.push(point(
        Arch::Revnet,
        "algorithm1",
        None,
        300.0,
        1.2,
        110.0,
        4e-5,
    ));
    let mut anchored = point(Arch::Revnet, "anchored", None, 400.0, 1.1, 61.0, 1e-3);
    anchored.anchors = Some(revstab::experiments::anchored::AnchorRecord {
        anchoring: "min-snr-db=60".into(),
        min_snr_db: Some(60.0),
        anchors: vec!["s0.b1".into(), "s0.b3".into()],
        n_anchors: 2,
        bytes_held: 8192,
        lowest_snr_db: 61.0,
    });
    v.push(anchored);
    v
}

/// The frontier renders one panel per architecture and writes one CSV row per point, exact
/// sources with `inf` SNR and angle 0, labels in the SVG.
#[test]
fn tradeoff_renders_every_point_with_its_exactness() {
    let tmp = tempfile::tempdir().unwrap();
    let res = synthetic_results(tmp.path());
    let out = tmp.path().join("figures");
    tradeoff(&res, &out).unwrap();
    assert_outputs(&out, "tradeoff");
    let csv = std::fs::read_to_string(out.join("tradeoff.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), tradeoff_points().len(), "{csv}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("revnet,4,checkpointed,2,,650,")
                && r.ends_with(",inf,s0.b0,0,,,")),
        "{csv}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("revnet,4,reconstructed,,,300,") && r.contains(",110,")),
        "{csv}"
    );
    assert!(
        rows.contains(&"revnet,4,anchored,,60,400,819200,824200,61,s0.b0,0.001,2,s0.b1;s0.b3,8192"),
        "{csv}"
    );
    let svg = std::fs::read_to_string(out.join("tradeoff.svg")).unwrap();
    for label in [
        "k=2",
        "rec 110 dB",
        "alg1 110 dB",
        "≥60 dB n=2",
        "Pareto front",
    ] {
        assert!(svg.contains(label), "`{label}` missing from the SVG");
    }
    assert!(FIGURE_IDS.contains(&"tradeoff"));
}

/// `tradeoff.csv` held the wall times (`median_s`, `time_ratio`), so its bytes changed from run
/// to run although no figure CSV may hold one: they are in `tradeoff.timings.csv`, keyed by the
/// CSV's row, and the CSV of results that differ only in their times is the same bytes.
#[test]
fn tradeoff_csv_holds_no_wall_times() {
    let tmp = tempfile::tempdir().unwrap();
    let res = synthetic_results(tmp.path());
    let out = tmp.path().join("figures");
    tradeoff(&res, &out).unwrap();
    let csv = std::fs::read_to_string(out.join("tradeoff.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header,
        [
            "arch",
            "depth",
            "source",
            "segment",
            "min_snr_db",
            "bytes_per_pixel",
            "act_peak_bytes",
            "peak_bytes",
            "lowest_snr_db",
            "lowest_layer",
            "grad_angle_deg",
            "n_anchors",
            "anchors",
            "anchor_bytes"
        ]
    );
    for time in ["median_s", "time_ratio", "seconds"] {
        assert!(!header.contains(&time), "{csv}");
    }
    let timings_path = revstab::plot::common::timings_path;
    let timings = std::fs::read_to_string(timings_path(&out, "tradeoff")).unwrap();
    let mut lines = timings.lines();
    assert_eq!(
        lines.next().unwrap(),
        "arch,depth,source,segment,min_snr_db,median_s,time_ratio,pareto"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), tradeoff_points().len(), "{timings}");
    assert!(
        rows.contains(&"revnet,4,checkpointed,2,,0.0125,1.25,false"),
        "{timings}"
    );
    assert!(rows.contains(&"revnet,4,stored,,,0.01,1,true"), "{timings}");
    assert!(
        rows.contains(&"revnet,4,algorithm1,,,0.012,1.2,true"),
        "{timings}"
    );
    // Other wall times: the same CSV bytes, another sidecar.
    let mut r = res.load("tradeoff").unwrap();
    let ResultData::Tradeoff(d) = &mut r.data else {
        panic!("wrong kind")
    };
    for p in &mut d.points {
        p.median_s *= 3.0;
        p.time_ratio *= 1.5;
    }
    res.store(&r).unwrap();
    let out2 = tmp.path().join("figures2");
    tradeoff(&res, &out2).unwrap();
    assert_eq!(
        std::fs::read(out.join("tradeoff.csv")).unwrap(),
        std::fs::read(out2.join("tradeoff.csv")).unwrap()
    );
    assert_ne!(
        timings,
        std::fs::read_to_string(timings_path(&out2, "tradeoff")).unwrap()
    );
}

/// Some results depend on the CPU (candle's ops, CPUs without FMA): every figure computed
/// from an experiment names, in its caption and its CSV's provenance sidecar, the CPU (model,
/// vendor, extensions, L1 data cache) and the kernel paths that computed its results.
#[test]
fn figure_provenance_names_cpu_and_kernel_path() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("experiments");
    std::fs::create_dir_all(&exp).unwrap();
    let res = Results::new(tmp.path().join("cache"));
    let out = tmp.path().join("figures");
    let precision = "experiment = \"precision\"\narchs = [\"layerwise\"]\ndtypes = [\"f64\", \"f16\"]\ndepths = [1]\n[net]\nwidth = 4\nbatch = 2\ninput_size = 8\n";
    std::fs::write(exp.join("precision.toml"), precision).unwrap();
    ensure_results("precision", &exp, &res, false, 1).unwrap();
    let r = res.load("precision").unwrap();
    assert_eq!(r.provenance.cpu, revstab::provenance::cpu_summary());
    assert_eq!(r.provenance.kernels, revstab::backend::cpu::kernel_paths());
    (spec("precision").unwrap().render)(&res, &out).unwrap();
    let side = provenance_of(&out, "precision").provenance;
    assert!(
        side.contains(&format!("; CPU {}", revstab::provenance::cpu_summary()))
            && side.contains(&format!(
                "; kernels {}",
                revstab::backend::cpu::kernel_paths()
            )),
        "{side}"
    );
    assert!(side.contains(&revstab::provenance::cpu_model()), "{side}");
    // Results cached before the CPU was recorded still load, and their caption says nothing
    // about it.
    let mut old = serde_json::to_value(&r.provenance).unwrap();
    old.as_object_mut().unwrap().remove("cpu");
    old.as_object_mut().unwrap().remove("kernels");
    let old: Provenance = serde_json::from_value(old).unwrap();
    assert!(old.cpu.is_empty() && old.kernels.is_empty());
    let before = ResultFile {
        provenance: old,
        ..r.clone()
    };
    assert!(!before.caption().contains("CPU"), "{}", before.caption());
}

fn assert_outputs(out: &Path, id: &str) {
    let png =
        std::fs::read(out.join(format!("{id}.png"))).unwrap_or_else(|e| panic!("{id}.png: {e}"));
    assert!(
        png.len() > 1000 && png[..8] == PNG_SIGNATURE,
        "{id}.png is not a PNG"
    );
    let svg = std::fs::read_to_string(out.join(format!("{id}.svg"))).unwrap();
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{id}.svg is not an SVG"
    );
    let csv = std::fs::read_to_string(out.join(format!("{id}.csv"))).unwrap();
    // Plain CSV: the header first, no comment lines; the provenance in the sidecar.
    assert!(!csv.starts_with('#'), "{id}.csv starts with a comment");
    assert!(csv.lines().count() >= 2, "{id}.csv has no data rows");
    let side = provenance_of(out, id);
    assert_eq!(side.csv, format!("{id}.csv"));
    assert!(
        side.provenance.starts_with(&format!("{id}: ")) && side.provenance.contains("rev test"),
        "{id}.provenance.json: {}",
        side.provenance
    );
}

fn provenance_of(out: &Path, id: &str) -> revstab::results::csv::CsvProvenance {
    let path = revstab::results::csv::provenance_path(out, id);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_figure_renders_from_a_small_result_set() {
    let tmp = tempfile::tempdir().unwrap();
    let res = synthetic_results(tmp.path());
    let out = tmp.path().join("figures");
    for spec in specs() {
        (spec.render)(&res, &out).unwrap_or_else(|e| panic!("{}: {e}", spec.id));
        assert_outputs(&out, spec.id);
    }
    let md = std::fs::read_to_string(out.join("table1.md")).unwrap();
    assert!(
        md.starts_with("# Table 1") && md.contains("| Hybrid (ours) |"),
        "{md}"
    );
    // table1's measured block: the network's channels and blocks, the marginal figure
    assert!(
        md.contains("marginal B/px") && md.contains("32-128 (2-1, 14 layers)"),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.join("table1.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with("measured_over_analytic,measured_marginal_bpx,marginal_over_analytic"),
        "{header}"
    );
    assert_eq!(specs().len(), FIGURE_IDS.len());
}

#[test]
fn missing_and_malformed_result_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let res = synthetic_results(tmp.path());
    let out = tmp.path().join("figures");
    // missing cache file
    std::fs::remove_file(res.path("fig10")).unwrap();
    let e = fig10(&res, &out).unwrap_err().to_string();
    assert!(
        e.contains("fig10.json") && e.contains("not available"),
        "{e}"
    );
    // malformed cache file
    std::fs::write(res.path("fig05"), "{ not json").unwrap();
    let e = fig05(&res, &out).unwrap_err().to_string();
    assert!(e.contains("fig05.json") && e.contains("malformed"), "{e}");
    // results of another figure under this name
    std::fs::copy(res.path("fig11"), res.path("fig14")).unwrap();
    let e = fig14(&res, &out).unwrap_err().to_string();
    assert!(e.contains("fig14.json") && e.contains("malformed"), "{e}");
    // wrong kind of data
    std::fs::copy(res.path("fig11"), res.path("fig13")).unwrap();
    let text = std::fs::read_to_string(res.path("fig13"))
        .unwrap()
        .replacen("\"id\": \"fig11\"", "\"id\": \"fig13\"", 1);
    std::fs::write(res.path("fig13"), text).unwrap();
    let e = fig13(&res, &out).unwrap_err().to_string();
    assert!(e.contains("fig13.json") && e.contains("scaling"), "{e}");
    // missing training results
    std::fs::remove_file(res.accuracy_dir.join("accuracy.csv")).unwrap();
    let e = fig12(&res, &out).unwrap_err().to_string();
    assert!(e.contains("accuracy.csv") && e.contains("results for fig12 not available: run `cargo run --release --bin train -- --config experiments/accuracy.toml` first"), "{e}");
    // malformed training results
    std::fs::write(res.angles_dir.join("angles.csv"), "arch,depth\nrevnet,6\n").unwrap();
    let e = revnet_fig4(&res, &out).unwrap_err().to_string();
    assert!(
        e.contains("angles.csv") && e.contains("malformed") && e.contains("slope"),
        "{e}"
    );
    std::fs::write(res.accuracy_dir.join("accuracy.csv"), "arch,depth,slope,mode,seed,test_acc,sweep,status\nlayerwise,two,0.2,stored,0,0.5,depth,ok\n").unwrap();
    let e = fig12(&res, &out).unwrap_err().to_string();
    assert!(e.contains("accuracy.csv") && e.contains("depth"), "{e}");
    // nothing was written for the failed figures
    assert!(!out.join("fig10.png").exists() && !out.join("fig12.png").exists());
}

#[test]
fn experiments_run_cache_and_recompute_when_the_config_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("experiments");
    std::fs::create_dir_all(&exp).unwrap();
    let res = Results::new(tmp.path().join("cache"));
    let out = tmp.path().join("figures");
    let alpha = "experiment = \"alpha\"\nlayer = \"leaky-relu\"\nfrom = 0.01\nto = 1.0\npoints = 4\ntheory_points = 20\nsamples = 2000\nnoise_std = 1e-5\ndtypes = [\"f64\"]\n";
    std::fs::write(exp.join("fig06.toml"), alpha).unwrap();
    let trace = "experiment = \"trace\"\narch = \"hybrid\"\ndepth = 1\nslope = 0.2\nnoise_std = 1e-3\n[net]\nwidth = 4\nbatch = 2\ninput_size = 8\n";
    std::fs::write(exp.join("fig13.toml"), trace).unwrap();
    for id in ["fig06", "fig13"] {
        assert!(
            matches!(
                ensure_results(id, &exp, &res, false, 1).unwrap(),
                CacheStatus::Computed(..)
            ),
            "{id}"
        );
        assert_eq!(
            ensure_results(id, &exp, &res, false, 1).unwrap(),
            CacheStatus::Reused,
            "{id}"
        );
        (spec(id).unwrap().render)(&res, &out).unwrap();
        assert_outputs_real(&out, id);
    }
    // the measured alpha follows the theory
    let r = res.load("fig06").unwrap();
    let ResultData::Alpha(d) = &r.data else {
        panic!("wrong kind")
    };
    assert!(
        d.points
            .iter()
            .all(|p| (p.empirical / p.theory - 1.0).abs() < 0.1),
        "{:?}",
        d.points
    );
    // the hybrid trace has block inputs, hidden entries and a depth-law line with noise
    let r = res.load("fig13").unwrap();
    let ResultData::Trace(t) = &r.data else {
        panic!("wrong kind")
    };
    assert_eq!(t.runs.len(), 2);
    assert!(t.runs[1]
        .entries
        .iter()
        .any(|e| e.role == "block-input" && e.predicted_snr_db.is_finite()));
    // comments do not change the key; values do; --rerun recomputes
    std::fs::write(exp.join("fig06.toml"), format!("# a comment\n{alpha}")).unwrap();
    assert_eq!(
        ensure_results("fig06", &exp, &res, false, 1).unwrap(),
        CacheStatus::Reused
    );
    std::fs::write(
        exp.join("fig06.toml"),
        alpha.replace("points = 4", "points = 3"),
    )
    .unwrap();
    assert!(
        matches!(ensure_results("fig06", &exp, &res, false, 1).unwrap(), CacheStatus::Computed(_, ref why) if why == "config changed")
    );
    assert!(matches!(
        ensure_results("fig06", &exp, &res, true, 1).unwrap(),
        CacheStatus::Computed(..)
    ));
    // bad configs are errors naming the file
    std::fs::write(
        exp.join("fig05.toml"),
        "experiment = \"alpha\"\nbogus = 1\n",
    )
    .unwrap();
    let e = ensure_results("fig05", &exp, &res, false, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fig05.toml") && e.contains("bogus"), "{e}");
    std::fs::write(exp.join("fig10.toml"), alpha).unwrap();
    let e = ensure_results("fig10", &exp, &res, false, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fig10.toml") && e.contains("trace"), "{e}");
    let e = ensure_results("fig11", &exp, &res, false, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fig11.toml"), "{e}");
    assert!(spec("fig99").is_err());
}

/// The backend is a config setting that leaves the key of a default config unchanged (results
/// cached before it existed stay valid), changes it when set, and is recorded in the
/// provenance; a provenance cached before it was recorded reads as `kernels`.
#[test]
fn the_backend_keeps_old_cache_keys_and_is_recorded_in_the_provenance() {
    let parse = |text: &str| ExperimentConfig::from_toml_str(text, Path::new("t.toml")).unwrap();
    let default = ExperimentConfig::Trace(TraceConfig::default());
    assert!(!serde_json::to_string(&default).unwrap().contains("backend"));
    let explicit = parse("experiment = \"trace\"\n[net]\nbackend = \"kernels\"\n");
    assert_eq!(explicit.key(), default.key());
    let candle = parse("experiment = \"trace\"\n[net]\nbackend = \"candle\"\n");
    assert_eq!(candle.backend(), Backend::Candle);
    assert_ne!(candle.key(), default.key());
    let alpha = parse("experiment = \"alpha\"\nbackend = \"candle\"\n");
    assert_eq!(alpha.backend(), Backend::Candle);
    let mut old = serde_json::to_value(provenance("f32")).unwrap();
    assert_eq!(old["backend"], "kernels");
    old.as_object_mut().unwrap().remove("backend");
    let old: Provenance = serde_json::from_value(old).unwrap();
    assert_eq!(old.backend, Backend::Kernels);
}

fn assert_outputs_real(out: &Path, id: &str) {
    let png = std::fs::read(out.join(format!("{id}.png"))).unwrap();
    assert!(png[..8] == PNG_SIGNATURE);
    let csv = std::fs::read_to_string(out.join(format!("{id}.csv"))).unwrap();
    assert!(!csv.starts_with('#'), "{csv}");
    let side = provenance_of(out, id);
    assert!(
        side.provenance.starts_with(&format!("{id}: config ")),
        "{side:?}"
    );
}

#[test]
fn the_shipped_configs_parse_and_validate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for id in FIGURE_IDS {
        if experiment_kind(id).is_some() {
            let (cfg, path) = load_config(id, &dir).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(Some(cfg.kind()), experiment_kind(id), "{path}");
        }
    }
}

/// The alpha figures' shipped configs sample as many points as the code defaults, the counts
/// that keep every f64 alpha within 1% of its closed form (see `AlphaConfig::samples` and
/// `BnAlphaSettings::samples`).
#[test]
fn the_alpha_figures_sample_as_many_as_the_defaults() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for id in ["fig05", "fig06"] {
        match load_config(id, &dir).unwrap().0 {
            ExperimentConfig::Alpha(c) => {
                assert_eq!(c.samples, AlphaConfig::default().samples, "{id}");
                assert_eq!(c.samples, 2_000_000, "{id}");
            }
            other => panic!("{id} is an alpha experiment, got {}", other.kind()),
        }
    }
    match load_config("bn-eps", &dir).unwrap().0 {
        ExperimentConfig::BnEps(c) => {
            assert_eq!(c.alpha.samples, BnAlphaSettings::default().samples);
            assert_eq!(c.alpha.samples, 500_000);
        }
        other => panic!("bn-eps is a bn-eps experiment, got {}", other.kind()),
    }
}

#[test]
fn memory_scaling_renders_its_sweeps_and_rejects_bad_results() {
    let tmp = tempfile::tempdir().unwrap();
    let res = synthetic_results(tmp.path());
    let out = tmp.path().join("figures");
    memory_scaling(&res, &out).unwrap();
    assert_outputs(&out, "memory-scaling");
    // one CSV row per point, every sweep, architecture and mode; bytes and MB agree
    let csv = std::fs::read_to_string(out.join("memory-scaling.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "sweep,arch,mode,depth,batch,size,pixels_per_image,layers,peak_bytes,peak_mb,act_peak_bytes,grad_bytes,tape_bytes,weight_bytes"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), memory_points().len());
    for sweep in ["depth", "batch", "size"] {
        for arch in ["layerwise", "revnet", "resnet"] {
            for mode in ["stored", "reconstructed"] {
                assert!(
                    rows.iter()
                        .any(|r| r[0] == sweep && r[1] == arch && r[2] == mode),
                    "{sweep} {arch} {mode}"
                );
            }
        }
    }
    for r in &rows {
        let bytes: f64 = r[8].parse().unwrap();
        let mb: f64 = r[9].parse().unwrap();
        assert!((bytes / 1e6 - mb).abs() < 1e-9, "{r:?}");
    }
    // the caption names the modes and gives the depth slopes
    let first = provenance_of(&out, "memory-scaling").provenance;
    assert!(
        first.contains("solid: stored") && first.contains("Depth slopes"),
        "{first}"
    );
    // the id is registered, computed by the memory experiment, with a built-in config
    assert!(FIGURE_IDS.contains(&"memory-scaling"));
    assert_eq!(
        spec("memory-scaling").unwrap().source,
        DataSource::Experiment
    );
    assert_eq!(experiment_kind("memory-scaling"), Some("memory"));
    let (cfg, path) = load_config("memory-scaling", &tmp.path().join("no-such-dir")).unwrap();
    assert_eq!(cfg, ExperimentConfig::Memory(MemoryConfig::default()));
    assert!(path.starts_with("built-in"), "{path}");
    // table1 is the paper preset (`memory --preset paper`), here and with the shipped configs
    for dir in [
        tmp.path().join("no-such-dir"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"),
    ] {
        let (cfg, path) = load_config("table1", &dir).unwrap();
        assert_eq!(cfg, ExperimentConfig::Memory(MemoryConfig::paper()));
        assert_eq!(path, "built-in MemoryConfig::paper()");
    }

    let out = tmp.path().join("figures-bad");
    // results cached without the sweep points
    let mut r = res.load("memory-scaling").unwrap();
    let ResultData::Memory(d) = &mut r.data else {
        panic!("wrong kind")
    };
    d.points.clear();
    res.store(&r).unwrap();
    let e = memory_scaling(&res, &out).unwrap_err().to_string();
    assert!(
        e.contains("memory-scaling.json") && e.contains("malformed") && e.contains("--rerun"),
        "{e}"
    );
    // results of another kind under this name
    let text = std::fs::read_to_string(res.path("fig11"))
        .unwrap()
        .replacen("\"id\": \"fig11\"", "\"id\": \"memory-scaling\"", 1);
    std::fs::write(res.path("memory-scaling"), text).unwrap();
    let e = memory_scaling(&res, &out).unwrap_err().to_string();
    assert!(
        e.contains("memory-scaling.json") && e.contains("needs `memory` data"),
        "{e}"
    );
    // malformed file
    std::fs::write(res.path("memory-scaling"), "{ \"id\": ").unwrap();
    let e = memory_scaling(&res, &out).unwrap_err().to_string();
    assert!(
        e.contains("memory-scaling.json") && e.contains("malformed"),
        "{e}"
    );
    // missing file
    std::fs::remove_file(res.path("memory-scaling")).unwrap();
    let e = memory_scaling(&res, &out).unwrap_err().to_string();
    assert!(
        e.contains("memory-scaling.json") && e.contains("not available"),
        "{e}"
    );
    assert!(!out.join("memory-scaling.png").exists());
}

#[test]
fn accuracy_figure_counts_diverged_runs_and_reports_mean_std_and_paired_differences() {
    let tmp = tempfile::tempdir().unwrap();
    let res = synthetic_results(tmp.path());
    let out = tmp.path().join("figures");
    // One depth point, 3 seeds: stored 80, 82, 84 %; reconstructed 70, 74 % and a run that
    // diverged at step 40 (its test_acc is chance, 10 %, as the sweep writes it).
    let mut acc = String::from("arch,depth,slope,mode,seed,test_acc,train_loss,train_acc,epochs,seconds,layers,test_loss,steps,sweep,status,diagnosis,acc_counted_as,collapse_layer\n");
    for (seed, stored, recon, status) in [
        (0, "0.80", "0.70", "ok"),
        (1, "0.82", "0.74", "ok"),
        (2, "0.84", "0.1", "diverged"),
    ] {
        acc.push_str(&format!(
            "layerwise,8,0.2,stored,{seed},{stored},0.5,0.8,2,1.0,20,0.6,100,depth,ok,,test,\n"
        ));
        let (counted, layer) = if status == "ok" {
            ("test", "")
        } else {
            ("chance", "s1.u0.act")
        };
        acc.push_str(&format!(
            "layerwise,8,0.2,reconstructed,{seed},{recon},0.5,0.8,2,1.0,20,0.6,{},depth,{status},x,{counted},{layer}\n",
            if status == "ok" { 100 } else { 40 }
        ));
    }
    std::fs::write(res.accuracy_dir.join("accuracy.csv"), acc).unwrap();
    fig12(&res, &out).unwrap();
    let csv = std::fs::read_to_string(out.join("fig12.csv")).unwrap();
    let mut lines = csv.lines();
    let caption = provenance_of(&out, "fig12").provenance;
    assert!(
        caption.contains("1 reconstructed run(s) diverged and are counted at chance"),
        "{caption}"
    );
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let get = |k: &str| row[header.iter().position(|h| *h == k).unwrap()];
    let num = |k: &str| get(k).parse::<f64>().unwrap();
    // Sample standard deviation (n - 1), by hand.
    let sd = |v: [f64; 3]| {
        let m = v.iter().sum::<f64>() / 3.0;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 2.0).sqrt()
    };
    assert_eq!(get("seeds"), "3");
    assert!((num("stored_mean_pct") - 82.0).abs() < 0.006);
    assert!((num("stored_std_pct") - 2.0).abs() < 0.006);
    assert!((num("reconstructed_mean_pct") - 154.0 / 3.0).abs() < 0.006);
    assert!((num("reconstructed_std_pct") - sd([70.0, 74.0, 10.0])).abs() < 0.006);
    // Paired by seed: 10, 8 and 74 points.
    assert!((num("diff_mean_pct") - 92.0 / 3.0).abs() < 0.006);
    assert!((num("diff_std_pct") - sd([10.0, 8.0, 74.0])).abs() < 0.006);
    assert_eq!(
        (get("stored_diverged"), get("reconstructed_diverged")),
        ("0", "1")
    );
    assert_eq!(get("diverged_where"), "seed 2 step 40 at s1.u0.act");
}
