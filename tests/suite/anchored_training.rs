//! Anchored training: the plan is made before the first step and again every `replan_every`
//! steps, each plan holds its target on the probe batch, the plans are written to `plans.csv`
//! and the last plan to `plan.csv`, a resumed run writes the same bytes, and the accuracy sweep
//! runs one anchored run per target. Bad anchored input exits 2 before anything is written.

use crate::common::{output_text, run_tool, TINY_ACCURACY_SWEEP};
use revstab::data::DataSplit;
use revstab::measure::anchors::Anchoring;
use revstab::nets::{Arch, Source};
use revstab::train::{train, TrainConfig, TrainOptions};
use std::path::Path;

/// A layer-wise network of depth 4 on 64 synthetic 8x8 images, batch 16 (4 steps per epoch),
/// 2 epochs, anchored at 100 dB (high enough that f32 rounding needs anchors).
fn tiny_anchored() -> TrainConfig {
    TrainConfig {
        arch: Arch::Layerwise,
        depth: 4,
        width: 4,
        batch: 16,
        epochs: 2,
        mode: Source::Anchored,
        anchors: Anchoring {
            min_snr_db: Some(100.0),
            list: None,
            replan_every: 3,
        },
        data: "synthetic:train=64,test=32,size=8".into(),
        ..TrainConfig::default()
    }
}

fn data(cfg: &TrainConfig) -> DataSplit {
    cfg.load_data().unwrap()
}

#[test]
fn plans_are_made_every_k_steps_and_hold_their_target_on_the_probe_batch() {
    let cfg = tiny_anchored();
    let (_, out) = train(&cfg, &data(&cfg), &TrainOptions::default()).unwrap();
    let steps: Vec<usize> = out.plans.iter().map(|p| p.step).collect();
    assert_eq!(steps, [0, 3, 6], "8 steps, a plan every 3");
    for p in &out.plans {
        assert!(!p.anchors.is_empty(), "100 dB needs anchors in f32: {p:?}");
        assert!(p.min_measured_snr_db >= 100.0, "{p:?}");
        assert!(p.bytes_held > 0);
        // Each plan's batches: 3, 3 and 2 steps, every one checked.
        assert!(p.next_batch_snr_db.is_finite() || p.next_batch_snr_db == f64::INFINITY);
        assert!(p.lowest_batch_snr_db <= p.next_batch_snr_db);
    }
    let checked: Vec<usize> = out.plans.iter().map(|p| p.batches_checked).collect();
    assert_eq!(checked, [3, 3, 2]);
    // The last plan's rows: one per rebuilt input, its anchors marked, bytes only there.
    let last = out.plans.last().unwrap();
    let marked: Vec<&str> = out
        .plan_rows
        .iter()
        .filter(|r| r.anchored)
        .map(|r| r.layer.as_str())
        .collect();
    assert_eq!(
        marked,
        last.anchors.iter().map(|a| a.as_str()).collect::<Vec<_>>()
    );
    assert!(out
        .plan_rows
        .iter()
        .all(|r| r.anchored == (r.bytes_held > 0)));
    assert_eq!(
        out.plan_rows.iter().map(|r| r.bytes_held).sum::<usize>(),
        last.bytes_held
    );
}

#[test]
fn an_explicit_list_is_one_plan_with_those_anchors() {
    let cfg = TrainConfig {
        anchors: Anchoring {
            min_snr_db: None,
            list: Some(vec!["0".into(), "4".into()]),
            replan_every: 3,
        },
        ..tiny_anchored()
    };
    let (net, out) = train(&cfg, &data(&cfg), &TrainOptions::default()).unwrap();
    assert_eq!(out.plans.len(), 1, "a list is not planned again");
    let names = net.anchorable();
    assert_eq!(out.plans[0].anchors, [names[0].clone(), names[4].clone()]);
    assert_eq!(out.plans[0].batches_checked, 8);
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_binary_writes_plans_and_a_resumed_run_writes_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let args = |out: &Path| -> Vec<String> {
        [
            "--mode",
            "anchored",
            "--min-snr-db",
            "100",
            "--replan-every",
            "3",
            "--depth",
            "4",
            "--width",
            "4",
            "--batch",
            "16",
            "--epochs",
            "2",
            "--data",
            "synthetic:train=64,test=32,size=8",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let o = run_tool(
        "train",
        &args(&whole).iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let plans = read(&whole, "plans.csv");
    assert!(plans.starts_with(
        "step,anchors,n_anchors,min_measured_snr_db,predicted_snr_db,bytes_held,next_batch_snr_db,lowest_batch_snr_db,batches_checked\n"
    ));
    assert_eq!(plans.lines().count(), 4, "{plans}");
    let plan = read(&whole, "plan.csv");
    assert!(plan.starts_with("layer,anchored,measured_snr_db,predicted_snr_db,bytes_held\n"));
    assert!(plan.contains(",true,inf,inf,"), "{plan}");
    // The same run, stopped after 5 steps in the library and resumed by the binary.
    let part = tmp.path().join("part");
    let cfg = TrainConfig {
        seed: 0,
        ..tiny_anchored()
    };
    let opts = TrainOptions {
        run_dir: Some(part.clone()),
        resume: true,
        stop_after: Some(5),
        ..TrainOptions::default()
    };
    let (_, stopped) = train(&cfg, &data(&cfg), &opts).unwrap();
    assert!(stopped.stopped);
    let mut resumed = args(&part);
    resumed.push("--resume".into());
    let o = run_tool(
        "train",
        &resumed.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", output_text(&o));
    for name in ["plans.csv", "plan.csv", "history.csv"] {
        assert_eq!(read(&part, name), read(&whole, name), "{name}");
    }
}

#[test]
fn bad_anchored_input_exits_2_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let base = [
        "--mode",
        "anchored",
        "--depth",
        "2",
        "--width",
        "4",
        "--data",
        "synthetic:train=64,test=32,size=8",
        "--out",
        out.to_str().unwrap(),
    ];
    for (extra, says) in [
        (vec!["--min-snr-db", "nan"], "finite"),
        (vec!["--min-snr-db", "inf"], "finite"),
        (vec!["--anchors", "999"], "anchor position"),
        (vec!["--anchors", "s0.u0.nothing"], "s0.u0.nothing"),
        (vec!["--anchors", "1,1"], "twice"),
        (vec!["--replan-every", "x"], "replan-every"),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(&extra);
        let o = run_tool("train", &args);
        let text = output_text(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {text}");
        assert!(text.contains(says), "{extra:?}: {text}");
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
    // Anchor settings without the anchored mode would be ignored: refused.
    let o = run_tool(
        "train",
        &[
            "--mode",
            "stored",
            "--min-snr-db",
            "30",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(output_text(&o).contains("anchored mode"));
    assert!(!out.exists());
}

#[test]
fn the_accuracy_sweep_runs_one_anchored_run_per_target_with_its_plans() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("sweep.toml");
    let text = TINY_ACCURACY_SWEEP
        .replace(
            r#"modes = ["stored", "reconstructed"]"#,
            "modes = [\"stored\", \"anchored\"]\nanchor_targets = [30.0, 130.0]",
        )
        .replace("[train]\n", "[train]\nanchors = { replan_every = 1 }\n");
    std::fs::write(&config, text).unwrap();
    let out = tmp.path().join("out");
    let o = run_tool(
        "train",
        &[
            "--config",
            config.to_str().unwrap(),
            "-q",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", output_text(&o));
    let acc = read(&out, "accuracy.csv");
    let modes: Vec<&str> = acc
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    assert_eq!(modes, ["stored", "anchored:30", "anchored:130"]);
    let anchors = read(&out, "anchors.csv");
    let rows: Vec<Vec<&str>> = anchors
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 2, "{anchors}");
    // Two steps (64 images, batch 32), a plan before each.
    assert!(rows.iter().all(|r| r[5] == "2"), "{anchors}");
    // 130 dB needs anchors in f32 (about 110 dB without), 30 dB none.
    let most = |r: &Vec<&str>| r[7].parse::<usize>().unwrap();
    assert!(most(&rows[1]) > most(&rows[0]), "{anchors}");
    assert_eq!(most(&rows[0]), 0, "{anchors}");
    assert!(read(&out, "run.json").contains("anchor_targets"));
}
