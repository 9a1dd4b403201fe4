//! `--dry-run` of every long tool checks the config as a run does (bad input: exit
//! 2), lists the points it would compute with an estimate of the time measured on the spot,
//! writes nothing (the --out directory is not created) and exits 0.

use crate::common::{exe, TINY_ACCURACY_SWEEP};
use std::path::Path;
use std::process::{Command, Output};

fn run(bin: &str, args: &[&str], out: &Path) -> Output {
    Command::new(exe(bin))
        .args(args)
        .arg("--dry-run")
        .arg("--out")
        .arg(out)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"))
}

/// Runs the dry run, checks exit 0, that `out` was not created, the announced count and an
/// estimate that names how it was made; returns stdout.
fn dry_run_lists(bin: &str, args: &[&str], what: &str, expected: usize) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run(bin, args, &out);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{bin} {args:?}: {stdout}\n{stderr}"
    );
    assert!(!out.exists(), "{bin} --dry-run created {}", out.display());
    // One of them is counted in the singular ("1 training run").
    let what = match (expected, what.strip_suffix('s')) {
        (1, Some(one)) => one,
        _ => what,
    };
    assert!(
        stdout.contains(&format!("dry run: {expected} {what} would be computed")),
        "{bin} {args:?}: expected {expected} {what} in\n{stdout}"
    );
    let listed = stdout.lines().filter(|l| l.starts_with("  ")).count();
    assert!(listed >= expected.min(revstab::dry_run::HEAD), "{stdout}");
    assert!(stdout.contains("estimated time: "), "{stdout}");
    assert!(stdout.contains("estimated by timing") || stdout.contains("estimated from"));
    assert!(stdout.contains("nothing written"), "{stdout}");
    stdout
}

/// Exit 2 and `out` not created.
fn dry_run_rejects(bin: &str, args: &[&str], needle: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run(bin, args, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{bin} {args:?}: {stderr}");
    assert!(stderr.contains(needle), "expected `{needle}` in {stderr}");
    assert!(!out.exists());
}

#[test]
fn snr_sweep_dry_run_lists_the_grid_and_writes_nothing() {
    let cfg = revstab::experiments::snr_sweep::SweepConfig {
        depths: vec![1, 2],
        slopes: vec![0.1, 0.5, 1.0],
        ..Default::default()
    };
    let expected = cfg.grid().len();
    assert_eq!(expected, 12, "layerwise and hybrid x 2 depths x 3 slopes");
    let stdout = dry_run_lists(
        "snr-sweep",
        &["--depths", "1,2", "--slopes", "0.1,0.5,1.0"],
        "points",
        expected,
    );
    // The probes were timed here: one per architecture (one dtype).
    assert!(stdout.contains("00000-layerwise-d1-n0.1"), "{stdout}");
    // A shard lists only its points.
    dry_run_lists(
        "snr-sweep",
        &[
            "--depths",
            "1,2",
            "--slopes",
            "0.1,0.5,1.0",
            "--shard",
            "2/3",
        ],
        "points",
        4,
    );
    dry_run_rejects("snr-sweep", &["--slopes", "-1"], "slope");
}

#[test]
fn memory_dry_run_lists_its_points_and_writes_nothing() {
    let expected =
        revstab::experiments::memory::plan(&revstab::experiments::memory::MemoryConfig::quick())
            .len();
    assert!(expected > 0);
    let stdout = dry_run_lists("memory", &["--quick"], "points", expected);
    // The rows a real run writes: the measured points and ResNet's copied reconstructed rows.
    let rows: usize = match stdout.find(" rows in all") {
        Some(end) => {
            let start = stdout[..end].rfind(' ').unwrap() + 1;
            stdout[start..end].parse().unwrap()
        }
        None => expected,
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(exe("memory"))
        .args(["--quick", "--quiet", "--out"])
        .arg(&out)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        real.contains(&format!("({rows} points,")),
        "{rows} rows planned:\n{real}"
    );
    dry_run_rejects("memory", &["--quick", "--dtype", "f17"], "f17");
}

#[test]
fn bench_dry_run_lists_its_points_and_writes_nothing() {
    // One architecture, two depths, two modes.
    dry_run_lists(
        "bench",
        &[
            "--arch",
            "revnet",
            "--pools",
            "none",
            "--depths",
            "1,2",
            "--modes",
            "stored,reconstructed",
            "--width",
            "4",
            "--batch",
            "2",
            "--size",
            "8",
            "--steps",
            "1",
        ],
        "points",
        4,
    );
    dry_run_rejects("bench", &["--steps", "0"], "steps");
}

#[test]
fn train_dry_run_lists_its_runs_and_writes_nothing() {
    let data = "synthetic:train=64,test=32,size=8";
    let stdout = dry_run_lists(
        "train",
        &[
            "--data", data, "--epochs", "2", "--batch", "16", "--width", "4", "--depth", "2",
        ],
        "training runs",
        1,
    );
    // 2 epochs of ceil(64 / 16) batches.
    assert!(stdout.contains("= 8 steps"), "{stdout}");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("sweep.toml");
    std::fs::write(&cfg, TINY_ACCURACY_SWEEP).unwrap();
    let expected = match revstab::experiments::training::Experiment::from_toml_file(&cfg).unwrap() {
        revstab::experiments::training::Experiment::Accuracy(c) => c.grid().len(),
        other => panic!("not an accuracy experiment: {}", other.name()),
    };
    assert!(expected >= 2, "{expected}");
    dry_run_lists(
        "train",
        &["--config", cfg.to_str().unwrap()],
        "training runs",
        expected,
    );
    dry_run_rejects("train", &["--data", data, "--epochs", "0"], "epochs");
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut m = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                m.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    m
}

fn train_dry_run(args: &[&str], out: &Path) -> (Option<i32>, String, String) {
    let o = Command::new(exe("train"))
        .args(args)
        .args(["--dry-run", "--resume", "--out"])
        .arg(out)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `train --dry-run --resume` lists what --out already holds (finished runs of an
/// experiment, a single run's checkpoint) and estimates only the rest, read-only.
#[test]
fn train_dry_run_with_resume_estimates_only_what_is_left_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("sweep.toml");
    std::fs::write(&cfg, TINY_ACCURACY_SWEEP).unwrap();
    let cfg = cfg.to_str().unwrap();
    let out = tmp.path().join("sweep");
    let o = Command::new(exe("train"))
        .args(["--config", cfg, "--quiet", "--out"])
        .arg(&out)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Both runs finished: nothing to estimate.
    let before = snapshot(&out);
    let (code, stdout, stderr) = train_dry_run(&["--config", cfg], &out);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("dry run: 2 training runs already finished in")
            && stdout.contains("run 0: layerwise depth 2 slope 0.2 stored seed 0")
            && stdout.contains("run 1: layerwise depth 2 slope 0.2 reconstructed seed 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dry run: 0 training runs would be computed"),
        "{stdout}"
    );
    assert!(stdout.contains("estimated time: 0.00 s"), "{stdout}");
    assert_eq!(snapshot(&out), before, "the dry run changed --out");
    // One point file gone: that run alone is estimated.
    let points = out.join("points");
    let gone = std::fs::read_dir(&points)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains("reconstructed")
        })
        .unwrap();
    std::fs::remove_file(&gone).unwrap();
    let before = snapshot(&out);
    let (code, stdout, stderr) = train_dry_run(&["--config", cfg], &out);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("dry run: 1 training run already finished in")
            && stdout.contains("dry run: 1 training run would be computed")
            && stdout
                .contains("run 1: layerwise depth 2 slope 0.2 reconstructed seed 0, 1 epoch = ")
            && stdout.contains("estimated by timing one training step"),
        "{stdout}"
    );
    assert_eq!(snapshot(&out), before, "the dry run changed --out");
    // Another config than the one in --out: rejected as --resume rejects it.
    let (code, _, stderr) = train_dry_run(&["--config", cfg, "--dtype", "f64"], &out);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("different config"), "{stderr}");

    // A single run interrupted at step 3 of 4 (64 samples in whole batches of 24: 2 steps per
    // epoch, the partial batch dropped as the run drops it): 1 step left.
    let run_toml = tmp.path().join("run.toml");
    std::fs::write(
        &run_toml,
        "width = 4\ndepth = 2\nepochs = 2\nbatch = 24\ndata = \"synthetic:train=64,test=32,size=8\"\n",
    )
    .unwrap();
    let run_cfg =
        match revstab::experiments::training::ConfigFile::from_toml_file(&run_toml).unwrap() {
            revstab::experiments::training::ConfigFile::Run(c) => *c,
            _ => panic!("not a single run"),
        };
    let data = run_cfg.load_data().unwrap();
    let single = tmp.path().join("single");
    let opts = revstab::train::TrainOptions {
        run_dir: Some(single.clone()),
        stop_after: Some(3),
        ..revstab::train::TrainOptions::default()
    };
    let (_, stopped) = revstab::train::train(&run_cfg, &data, &opts).unwrap();
    assert!(stopped.stopped);
    let before = snapshot(&single);
    let run_toml = run_toml.to_str().unwrap();
    let (code, stdout, stderr) = train_dry_run(&["--config", run_toml], &single);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("= 4 steps, resumed from the checkpoint at step 3")
            && stdout.contains(": 1 steps left"),
        "{stdout}"
    );
    assert_eq!(snapshot(&single), before, "the dry run changed --out");
    let (code, _, stderr) = train_dry_run(&["--config", run_toml, "--epochs", "3"], &single);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("different configuration"), "{stderr}");
}

#[test]
fn figures_dry_run_lists_its_figures_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let experiments = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments");
    let stdout = dry_run_lists(
        "figures",
        &[
            "--only",
            "fig10,fig13",
            "--experiments",
            experiments,
            "--results",
            results.to_str().unwrap(),
        ],
        "figures",
        2,
    );
    assert!(
        stdout.contains("fig10          compute (no cached results)"),
        "{stdout}"
    );
    assert!(!results.exists());
    dry_run_rejects("figures", &["--only", "fig99"], "fig99");
}

/// An experiment never run here gets an estimate measured on the spot (its
/// shallowest network timed, every point scaled by depth + 1), or a line saying why it is not
/// probed; still nothing written.
#[test]
fn figures_dry_run_probes_experiments_never_run_here_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let exps = tmp.path().join("experiments");
    std::fs::create_dir_all(&exps).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/fig10.toml"),
        exps.join("fig10.toml"),
    )
    .unwrap();
    // Depths 1, 2, 4 and two slopes at depth 1: (2 + 3 + 5 + 2 + 2) / 2 = 7 probes' worth.
    std::fs::write(
        exps.join("fig11.toml"),
        r#"
experiment = "scaling"
arch = "layerwise"
seed = 0
dtype = "f32"
[depth_sweep]
slope = 0.5
depths = [1, 2, 4]
[slope_sweep]
depth = 1
slopes = [0.5, 0.2]
[net]
width = 4
batch = 2
input_size = 8
"#,
    )
    .unwrap();
    let results = tmp.path().join("results");
    let stdout = dry_run_lists(
        "figures",
        &[
            "--only",
            "fig10,fig11",
            "--experiments",
            exps.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
        "figures",
        2,
    );
    let line = |id: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("no line for {id} in\n{stdout}"))
            .to_string()
    };
    let fig11 = line("fig11");
    assert!(
        fig11.contains("compute (no cached results): ~")
            && fig11.contains("probed: depth 1 took")
            && fig11.contains("costs 7.0 times that"),
        "{fig11}"
    );
    let fig10 = line("fig10");
    assert!(
        fig10.contains("time unknown") && fig10.contains("not probed: it traces one network"),
        "{fig10}"
    );
    assert!(
        stdout.contains("for 1 of the 2 experiment(s)")
            && stdout.contains("not included (never run here, not probed): fig10")
            && stdout.contains("scaling each point by (depth + 1)"),
        "{stdout}"
    );
    assert!(
        !results.exists(),
        "the dry run created {}",
        results.display()
    );
}
