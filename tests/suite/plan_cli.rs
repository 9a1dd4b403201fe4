//! `snr-sweep plan` and `snr-sweep trace` end to end (the target held on every rebuilt input,
//! an explicit list, bad input exiting 2 with nothing written, a `train` run's checkpoint),
//! and the quick variant of the `anchors` experiment (resumable, rendered).

use std::path::Path;
use std::process::{Command, Output};

fn snr_sweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_snr-sweep"))
        .args(args)
        .output()
        .expect("run snr-sweep")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (layer, anchored, measured dB, bytes held) of each row of `plan.csv`.
fn plan_rows(dir: &Path) -> Vec<(String, bool, f64, usize)> {
    let text = std::fs::read_to_string(dir.join("plan.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "layer,anchored,measured_snr_db,predicted_snr_db,bytes_held"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            (
                f[0].to_string(),
                f[1] == "true",
                f[2].parse::<f64>().unwrap(),
                f[4].parse::<usize>().unwrap(),
            )
        })
        .collect()
}

/// A layer-wise network deep enough at slope 0.05 to need anchors for 60 dB.
const NET: &[&str] = &[
    "--arch",
    "layerwise",
    "--depth",
    "8",
    "--slope",
    "0.05",
    "--width",
    "4",
    "--batch",
    "4",
    "--input-size",
    "8",
];

#[test]
fn plan_holds_the_target_on_every_rebuilt_input_and_lists_anchorable_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("plan");
    let mut args = vec!["plan", "--out", out.to_str().unwrap(), "--min-snr-db", "60"];
    args.extend(NET);
    let stdout = ok(&snr_sweep(&args));
    assert!(stdout.contains("anchorable layers"), "{stdout}");
    assert!(stdout.contains("bytes per input pixel"), "{stdout}");
    let rows = plan_rows(&out);
    assert!(rows.len() > 8, "{rows:?}");
    let anchored: Vec<_> = rows.iter().filter(|r| r.1).collect();
    assert!(!anchored.is_empty(), "depth 8 at n = 0.05 needs anchors");
    for (layer, a, snr, bytes) in &rows {
        if *a {
            assert_eq!(*snr, f64::INFINITY, "{layer}: an anchor is exact");
            assert!(*bytes > 0, "{layer}: an anchor holds its input");
        } else {
            assert!(*snr >= 60.0, "{layer}: {snr} dB below the target");
            assert_eq!(*bytes, 0);
        }
    }
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    for key in [
        "config",
        "seed",
        "dtype",
        "device",
        "backend",
        "git_revision",
    ] {
        assert!(run.get(key).is_some(), "run.json lacks {key}: {run}");
    }
    assert_eq!(run["tool"], "snr-sweep plan");
    // Same flags, same bytes.
    let again = tmp.path().join("again");
    args[2] = again.to_str().unwrap();
    ok(&snr_sweep(&args));
    assert_eq!(
        std::fs::read(out.join("plan.csv")).unwrap(),
        std::fs::read(again.join("plan.csv")).unwrap()
    );
}

#[test]
fn an_explicit_list_gives_those_anchors_by_name_or_position() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let mut args = vec!["plan", "--out", first.to_str().unwrap(), "--anchors", "0"];
    args.extend(NET);
    let stdout = ok(&snr_sweep(&args));
    let rows = plan_rows(&first);
    // The listing: `  <position>  <name>` lines under its header.
    let listed: Vec<(usize, String)> = stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pos = f.next()?.parse::<usize>().ok()?;
            Some((pos, f.next()?.to_string()))
        })
        .collect();
    assert_eq!(listed.len(), rows.len(), "{stdout}");
    let names = [rows[2].0.clone(), rows[5].0.clone()];
    let list = names.join(",");
    let out = tmp.path().join("list");
    let mut args = vec!["plan", "--out", out.to_str().unwrap(), "--anchors", &list];
    args.extend(NET);
    ok(&snr_sweep(&args));
    let got: Vec<String> = plan_rows(&out)
        .into_iter()
        .filter(|r| r.1)
        .map(|r| r.0)
        .collect();
    assert_eq!(got, names.to_vec());
    // Position 0 is the listing's first layer, and the only anchor of the first plan.
    let only: Vec<&String> = rows.iter().filter(|r| r.1).map(|r| &r.0).collect();
    assert_eq!(only, vec![&listed[0].1], "{rows:?}");
    assert_eq!(listed[0].0, 0);
}

#[test]
fn bad_targets_and_anchors_exit_2_with_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never");
    let o = out.to_str().unwrap();
    for bad in [
        vec!["--min-snr-db", "nan"],
        vec!["--min-snr-db", "inf"],
        vec!["--min-snr-db", "-inf"],
        vec!["--anchors", "999"],
        vec!["--anchors", "no-such-layer"],
        vec!["--anchors", "0,0"],
        vec!["--anchors", "0", "--min-snr-db", "60"],
        vec!["--min-snr-db", "60", "--checkpoint", "/nonexistent/run"],
    ] {
        let mut args = vec!["plan", "--out", o];
        args.extend(&bad);
        if !bad.contains(&"--checkpoint") {
            args.extend(NET);
        }
        let r = snr_sweep(&args);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(
            !stderr.trim().is_empty() && !stderr.contains("panicked"),
            "{stderr}"
        );
        assert!(!out.exists(), "{bad:?} wrote {}", out.display());
    }
}

#[test]
fn a_train_runs_checkpoint_is_traced_and_planned_with_its_trained_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let net = [
        "--arch",
        "layerwise",
        "--depth",
        "2",
        "--width",
        "4",
        "--slope",
        "0.2",
    ];
    let mut args = vec![
        "--out",
        run.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch",
        "8",
        "--lr",
        "0.5",
        "--data",
        "synthetic:train=64,test=16,size=8",
        "--quiet",
    ];
    args.extend(net);
    let o = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(&args)
        .output()
        .unwrap();
    ok(&o);
    let trained = tmp.path().join("trained");
    let r = snr_sweep(&[
        "trace",
        "--checkpoint",
        run.to_str().unwrap(),
        "--input",
        "gaussian",
        "--out",
        trained.to_str().unwrap(),
    ]);
    let stdout = ok(&r);
    assert!(stdout.contains("trained"), "{stdout}");
    // The same network at initialisation on the same Gaussian batch (seed 0, batch 8, 8x8).
    let init = tmp.path().join("init");
    let mut args = vec![
        "trace",
        "--out",
        init.to_str().unwrap(),
        "--batch",
        "8",
        "--input-size",
        "8",
    ];
    args.extend(net);
    ok(&snr_sweep(&args));
    let read = |d: &Path| std::fs::read_to_string(d.join("trace.csv")).unwrap();
    let (t, i) = (read(&trained), read(&init));
    let header = |s: &str| s.lines().next().unwrap().to_string();
    assert_eq!(header(&t), header(&i));
    assert!(header(&t).starts_with("arch,depth,slope,eps_i,width,dtype,seed,layer_index"));
    assert_eq!(t.lines().count(), i.lines().count());
    assert_ne!(t, i, "the trained weights trace as the initial ones");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(trained.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["weights"], "trained (checkpoint)");
    assert!(json["input"].as_str().unwrap().contains("Gaussian"));
    // Plan on the run's own data, and network flags are refused beside --checkpoint.
    let plan = tmp.path().join("plan");
    let stdout = ok(&snr_sweep(&[
        "plan",
        "--checkpoint",
        run.to_str().unwrap(),
        "--min-snr-db",
        "30",
        "--out",
        plan.to_str().unwrap(),
    ]));
    assert!(stdout.contains("training samples"), "{stdout}");
    assert!(!plan_rows(&plan).is_empty());
    let r = snr_sweep(&[
        "plan",
        "--checkpoint",
        run.to_str().unwrap(),
        "--depth",
        "4",
        "--out",
        tmp.path().join("refused").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(!tmp.path().join("refused").exists());
}

#[test]
fn anchors_quick_variant_runs_resumes_and_renders() {
    use revstab::experiments::anchors::{run_anchors, AnchorsConfig, AnchorsTrain};
    use revstab::experiments::figures::{run_experiment_in, ExperimentConfig, Results};
    use revstab::nets::Arch;
    let c = AnchorsConfig {
        archs: vec![Arch::Layerwise, Arch::Hybrid],
        targets_db: vec![60.0, 90.0],
        depths: vec![1, 2],
        slopes: vec![0.5],
        slope_depth: 1,
        width: 4,
        batch: 4,
        input_size: 8,
        train: AnchorsTrain {
            epochs: 1,
            samples: 16,
            batch: 8,
            lr: 0.05,
        },
        ..AnchorsConfig::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let points = tmp.path().join("points");
    let d = run_anchors(&c, Some(&points)).unwrap();
    // 3 networks per arch (depth 1 and 2 at n = 0.2, depth 1 at n = 0.5), 2 weights, 2 targets.
    assert_eq!(d.points.len(), 2 * 3 * 2 * 2);
    for p in &d.points {
        assert!(p.lowest_snr_db >= p.target_db, "{p:?}");
        let pixels = (c.batch * c.input_size * c.input_size) as f64;
        assert!((p.bytes_per_pixel - p.bytes_held as f64 / pixels).abs() < 1e-12);
        assert_eq!(p.weights == "trained", p.train_loss.is_finite(), "{p:?}");
    }
    let files = std::fs::read_dir(&points).unwrap().count();
    assert_eq!(files, 6);
    // Resumed: the point files are read back, giving the same data.
    let again = run_anchors(&c, Some(&points)).unwrap();
    // NaN (the initial rows' loss) is not equal to itself: compare the serialised text.
    let text = |d: &revstab::experiments::anchors::AnchorsData| serde_json::to_string(d).unwrap();
    assert_eq!(text(&again), text(&d));
    let cfg = ExperimentConfig::Anchors(c);
    let r = run_experiment_in("anchors", &cfg, "test", 1, Some(&points)).unwrap();
    let res = Results::new(tmp.path().join("cache"));
    res.store(&r).unwrap();
    let out = tmp.path().join("figures");
    revstab::plot::anchors::anchors(&res, &out).unwrap();
    let csv = std::fs::read_to_string(out.join("anchors.csv")).unwrap();
    assert!(
        csv.contains("arch,depth,slope,weights,target_db,anchors"),
        "{csv}"
    );
    for ext in ["png", "svg", "provenance.json"] {
        assert!(out.join(format!("anchors.{ext}")).exists(), "{ext}");
    }
}
