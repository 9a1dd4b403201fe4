//! `snr-sweep` end to end: defaults on a reduced grid, resume after SIGKILL, shards + merge,
//! the bounds check, and bad input (exit code 2, no files touched).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snr-sweep"))
}

const REDUCED: &[&str] = &[
    "--depths",
    "1,2,4",
    "--slopes",
    "0.2,0.5",
    "--quiet",
    "--no-figure",
];

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run snr-sweep")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sweep_into(dir: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&str> = REDUCED.to_vec();
    let d = dir.to_str().unwrap();
    args.extend(["--out", d]);
    args.extend(extra);
    let out = run(&args);
    assert!(
        out.status.success(),
        "snr-sweep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn defaults_run_end_to_end_on_a_reduced_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("res");
    let d = out.to_str().unwrap();
    let o = run(&["--depths", "1,2", "--slopes", "0.2,0.5", "--out", d]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("layerwise (f32") && stdout.contains("hybrid (f32"),
        "summary table: {stdout}"
    );
    let summary = read(&out.join("summary.csv"));
    let header = summary.lines().next().unwrap();
    for col in [
        "arch",
        "depth",
        "slope",
        "eps_i",
        "dtype",
        "seed",
        "lowest_snr_db",
        "lowest_snr_db_f64",
    ] {
        assert!(
            header.split(',').any(|c| c == col),
            "summary.csv lacks {col}"
        );
    }
    assert_eq!(summary.lines().count(), 1 + 2 * 2 * 2);
    let trace = read(&out.join("snr_sweep.csv"));
    let th = trace.lines().next().unwrap();
    for col in [
        "arch",
        "depth",
        "slope",
        "eps_i",
        "dtype",
        "seed",
        "layer",
        "role",
        "snr_db",
        "snr_db_f64",
        "predicted_snr_db",
    ] {
        assert!(th.split(',').any(|c| c == col), "snr_sweep.csv lacks {col}");
    }
    assert!(trace.lines().count() > 20);
    let run_json: serde_json::Value = serde_json::from_str(&read(&out.join("run.json"))).unwrap();
    for key in [
        "config",
        "crate_version",
        "device",
        "backend",
        "wall_seconds",
    ] {
        assert!(run_json.get(key).is_some(), "run.json lacks {key}");
    }
    assert_eq!(
        run_json["backend"], "kernels",
        "the default backend is recorded"
    );
    for ext in ["png", "svg"] {
        let f = out.join(format!("snr_vs_depth.{ext}"));
        assert!(
            std::fs::metadata(&f)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{} missing",
            f.display()
        );
    }
}

fn tables(dir: &Path) -> (String, String) {
    (
        read(&dir.join("snr_sweep.csv")),
        read(&dir.join("summary.csv")),
    )
}

#[test]
fn resume_after_sigkill_gives_the_files_of_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    sweep_into(&full, &[]);

    let killed = tmp.path().join("killed");
    let mut args: Vec<String> = REDUCED.iter().map(|s| s.to_string()).collect();
    args.extend([
        "--out".into(),
        killed.to_str().unwrap().into(),
        "--threads".into(),
        "1".into(),
    ]);
    let mut child = bin().args(&args).spawn().unwrap();
    let points = killed.join("points");
    let start = std::time::Instant::now();
    loop {
        let n = std::fs::read_dir(&points)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "json")
                })
                .count()
            })
            .unwrap_or(0);
        // manifest + at least two finished points
        if n >= 3 || start.elapsed().as_secs() > 120 {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    sweep_into(&killed, &["--resume"]);
    assert_eq!(tables(&killed), tables(&full));
}

#[test]
fn two_shards_merged_equal_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    sweep_into(&full, &[]);
    let (a, b, merged) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("merged"),
    );
    sweep_into(&a, &["--shard", "1/2"]);
    sweep_into(&b, &["--shard", "2/2"]);
    assert_ne!(tables(&a).1, tables(&full).1, "a shard is a strict subset");
    let o = run(&[
        "merge",
        "--out",
        merged.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(tables(&merged), tables(&full));
    // merging one shard alone is an error: points are missing
    let o = run(&[
        "merge",
        "--out",
        tmp.path().join("m2").to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_tightened_bound_fails_the_check_with_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let bounds = std::fs::read_to_string("experiments/bounds.toml").unwrap();
    // tighten the first bound far above anything f32 can reach
    let tightened = bounds.replacen(
        "min_lowest_snr_db = ",
        "min_lowest_snr_db = 400.0 # was ",
        1,
    );
    let path = tmp.path().join("tight.toml");
    std::fs::write(&path, tightened).unwrap();
    let o = run(&["--check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("1 reconstruction bound(s) regressed"), "{err}");
    assert!(
        err.contains("REGRESSED") && err.contains("measured") && err.contains("margin"),
        "{err}"
    );
    assert!(err.contains("layerwise"), "{err}");
}

fn expect_bad_input(args: &[&str], out: &Path) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "args {args:?}: stderr {err}");
    assert!(!err.contains("panicked"), "args {args:?}: {err}");
    assert!(err.to_lowercase().contains("error"), "args {args:?}: {err}");
    assert!(
        !out.exists(),
        "args {args:?}: {} was created",
        out.display()
    );
}

#[test]
fn bad_input_exits_2_without_touching_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out: PathBuf = tmp.path().join("never");
    let o = out.to_str().unwrap();
    expect_bad_input(&["--archs", "transformer", "--out", o], &out);
    expect_bad_input(&["--slopes", "0", "--out", o], &out);
    expect_bad_input(&["--slopes", "-0.1", "--out", o], &out);
    expect_bad_input(&["--shard", "3/2", "--out", o], &out);
    expect_bad_input(&["--shard", "x", "--out", o], &out);
    expect_bad_input(
        &[
            "--config",
            tmp.path().join("missing.toml").to_str().unwrap(),
            "--out",
            o,
        ],
        &out,
    );
    let empty = tmp.path().join("empty.toml");
    std::fs::write(&empty, "depths = []\n").unwrap();
    expect_bad_input(&["--config", empty.to_str().unwrap(), "--out", o], &out);
    let malformed = tmp.path().join("malformed.toml");
    std::fs::write(&malformed, "depths = \"deep\"\n").unwrap();
    expect_bad_input(&["--config", malformed.to_str().unwrap(), "--out", o], &out);
    let unknown = tmp.path().join("unknown.toml");
    std::fs::write(&unknown, "depthz = [1]\n").unwrap();
    expect_bad_input(&["--config", unknown.to_str().unwrap(), "--out", o], &out);
    expect_bad_input(&["--dtypes", "f8", "--out", o], &out);
    expect_bad_input(&["--device", "tpu", "--out", o], &out);
    expect_bad_input(&["--widths", "6", "--archs", "hybrid", "--out", o], &out);
    // unwritable output: a directory under a regular file
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let under = file.join("out");
    expect_bad_input(
        &[
            "--depths",
            "1",
            "--slopes",
            "0.2",
            "--out",
            under.to_str().unwrap(),
        ],
        &under,
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

/// A finished sweep never fails in its plot step: with ResNet, which reconstructs
/// nothing, the figure draws the other architectures and names ResNet in its caption; when
/// every point overflows, no figure is written, the run exits 0 and the table is printed.
#[test]
fn sweeps_with_nothing_to_draw_still_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let all = tmp.path().join("all");
    let o = run(&[
        "--archs",
        "layerwise,hybrid,revnet,irevnet,resnet",
        "--depths",
        "2",
        "--slopes",
        "0.2",
        "--out",
        all.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("resnet"));
    assert!(read(&all.join("snr_vs_depth.svg")).contains("resnet"));
    let over = tmp.path().join("overflow");
    let o = run(&[
        "--archs",
        "layerwise",
        "--depths",
        "32",
        "--slopes",
        "0.01",
        "--out",
        over.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("-inf"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no figure"));
    assert!(over.join("snr_sweep.csv").exists() && !over.join("snr_vs_depth.png").exists());
}

/// RevNet, i-RevNet and ResNet have no leaky ReLU: their rows of `snr_sweep.csv` and
/// `summary.csv` leave the slope field empty, layer-wise rows carry it.
#[test]
fn revnet_and_resnet_rows_carry_no_slope() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run(&[
        "--archs",
        "layerwise,revnet,resnet",
        "--depths",
        "1",
        "--slopes",
        "0.3",
        "--widths",
        "4",
        "--batch",
        "2",
        "--input-size",
        "8",
        "--no-depth-law",
        "--quiet",
        "--no-figure",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in ["summary.csv", "snr_sweep.csv"] {
        let text = read(&out.join(file));
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let slope = header.iter().position(|h| *h == "slope").unwrap();
        let mut seen = std::collections::HashSet::new();
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            let expected = if f[0] == "layerwise" { "0.3" } else { "" };
            assert_eq!(f[slope], expected, "{file}: {line}");
            seen.insert(f[0].to_string());
        }
        assert_eq!(seen.len(), 3, "{file}: {seen:?}");
    }
    assert_eq!(revstab::nets::Arch::Revnet.slope_field(0.3), "");
    assert_eq!(revstab::nets::Arch::Hybrid.slope_field(0.3), "0.3");
}

/// A sweep's results are one typed value, `SweepResults`: what `run_sweep`, a resume
/// and `merge` produce, read back equal from the point files (also from a directory without a
/// manifest, whose config is in `run.json`), and through serde.
#[test]
fn sweep_results_round_trip_and_are_what_run_resume_and_merge_produce() {
    use revstab::experiments::snr_sweep::{
        merge, run_sweep, RunOptions, Shard, SweepConfig, SweepResults,
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SweepConfig {
        depths: vec![1, 2],
        slopes: vec![0.2, 0.5],
        ..SweepConfig::default()
    };
    let opts = |dir: &str, shard: Option<Shard>, resume: bool| RunOptions {
        out: tmp.path().join(dir),
        resume,
        shard,
        threads: 1,
        progress_bar: false,
        verbose: false,
    };
    let full = run_sweep(&cfg, &opts("full", None, false)).unwrap();
    assert_eq!(full.results.config, cfg);
    assert_eq!(full.results.points.len(), cfg.grid().len());
    assert_eq!(full.computed, cfg.grid().len());
    let read = SweepResults::read(&tmp.path().join("full")).unwrap();
    assert_eq!(read, full.results);
    let back: SweepResults = serde_json::from_str(&serde_json::to_string(&read).unwrap()).unwrap();
    assert_eq!(back, read);
    let resumed = run_sweep(&cfg, &opts("full", None, true)).unwrap();
    assert_eq!((resumed.computed, resumed.skipped), (0, cfg.grid().len()));
    assert_eq!(resumed.results, full.results);
    let shard = |k| Some(format!("{k}/2").parse::<Shard>().unwrap());
    let a = run_sweep(&cfg, &opts("a", shard(1), false)).unwrap();
    let b = run_sweep(&cfg, &opts("b", shard(2), false)).unwrap();
    assert_eq!(
        a.results.points.len() + b.results.points.len(),
        cfg.grid().len()
    );
    let merged_dir = tmp.path().join("merged");
    let merged = merge(&[tmp.path().join("a"), tmp.path().join("b")], &merged_dir).unwrap();
    assert_eq!(merged, full.results);
    assert_eq!(SweepResults::read(&merged_dir).unwrap(), merged);
    assert_eq!(tables(&merged_dir), tables(&tmp.path().join("full")));
    // A directory without a manifest: the config of its run.json.
    std::fs::remove_file(merged_dir.join("points/manifest.json")).unwrap();
    assert!(SweepResults::read(&merged_dir).is_err());
    std::fs::write(
        merged_dir.join("run.json"),
        serde_json::json!({ "tool": "snr-sweep", "config": cfg }).to_string(),
    )
    .unwrap();
    assert_eq!(SweepResults::read(&merged_dir).unwrap(), merged);
}

/// A sweep written before the `[net]` table (its manifest and `run.json` hold the network keys
/// at the top level of the config) resumes without recomputing a point, and its results read
/// back with the config.
#[test]
fn a_sweep_written_before_the_net_table_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old");
    let net = ["--init-scale", "0.5", "--gamma-init", "absnormal:0.5:0.1"];
    sweep_into(&dir, &net);
    let before = tables(&dir);
    // Rewrite the manifest and run.json as the earlier versions wrote them.
    let flatten = |c: &mut serde_json::Value| {
        let net = c.as_object_mut().unwrap().remove("net").unwrap();
        for (k, v) in net.as_object().unwrap() {
            c[k.as_str()] = v.clone();
        }
    };
    let manifest = dir.join("points").join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_str(&read(&manifest)).unwrap();
    flatten(&mut m["config"]);
    assert!(m["config"].get("init_scale").is_some());
    std::fs::write(&manifest, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let run_json = dir.join("run.json");
    let mut r: serde_json::Value = serde_json::from_str(&read(&run_json)).unwrap();
    flatten(&mut r["config"]);
    std::fs::write(&run_json, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    let old = revstab::experiments::snr_sweep::SweepResults::read(&dir).unwrap();
    assert_eq!(old.config.net.init_scale, 0.5);
    let out = sweep_into(&dir, &[&net[..], &["--resume"]].concat());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(0 computed,"), "{text}");
    assert_eq!(tables(&dir), before);
}
