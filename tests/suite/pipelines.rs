//! The pipelines the README advertises, end to end from the real binaries on tiny inputs: what
//! one tool writes, the next one reads. No hand-written fixture stands in for
//! a tool's output here.
//!
//! - `train` (accuracy and angle experiments) feeds `figures` (fig12, fig15, revnet-fig4);
//! - `train --shard` feeds `train merge`, which feeds `figures`;
//! - `snr-sweep` feeds `report`, and `snr-sweep --shard` feeds `snr-sweep merge` (which draws
//!   the figure), which feeds `report`;
//! - `memory` and `bench` feed `report`;
//! - `scripts/reproduce-real-data.sh --quick` runs on Fashion-MNIST-format IDX files the test
//!   writes.

use crate::common::exe;
use std::path::Path;
use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    crate::common::run_tool(bin, args)
}

/// `bin args` must exit 0; its stdout.
fn ok(bin: &str, args: &[&str]) -> String {
    let o = run(bin, args);
    assert!(
        o.status.success(),
        "{bin} {args:?} exited {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `figures --only IDS` drawn into `dir/figs` from the `train` results in `results` (named by
/// `flag`: `--accuracy-results` or `--angles-results`); the directory of the figures.
fn figures(dir: &Path, ids: &str, flag: &str, results: &Path) -> std::path::PathBuf {
    let figs = dir.join("figs");
    let cache = dir.join("cache");
    ok(
        "figures",
        &[
            "--only",
            ids,
            flag,
            s(results),
            "--out",
            s(&figs),
            "--results",
            s(&cache),
            "-q",
        ],
    );
    figs
}

/// An accuracy sweep over two architectures, two depths and two slopes, one epoch of two
/// batches on 64 synthetic 8x8 images.
const ACCURACY: &str = r#"
experiment = "accuracy"
archs = ["layerwise", "hybrid"]
modes = ["stored", "reconstructed"]
seeds = [0]
[depth_sweep]
slope = 0.2
depths = [1, 2]
[slope_sweep]
depth = 2
slopes = [0.2, 1.0]
[arch_lr]
hybrid = 0.05
[train]
width = 4
epochs = 1
batch = 32
data = "synthetic:train=64,test=32,size=8"
[train.net]
init_scale = 0.5
"#;

/// The angle experiment on every architecture of Gomez Fig. 4, one epoch, a probe every step.
const ANGLES: &str = r#"
experiment = "angles"
modes = ["reconstructed"]
seeds = [0]
[[nets]]
arch = "revnet"
depth = 2
lr = 0.01
[[nets]]
arch = "hybrid"
depth = 2
slope = 0.2
[[nets]]
arch = "layerwise"
depth = 2
slope = 0.2
[train]
width = 4
epochs = 1
batch = 32
data = "synthetic:train=64,test=32,size=8"
angle_every = 1
eval_samples = 32
[train.net]
init_scale = 0.5
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// The figure's PNG, SVG and CSV exist, and the CSV's provenance names the init that `train`
/// recorded in `run.json` (a map since the init became configurable).
fn assert_figure(dir: &Path, id: &str) {
    for ext in ["png", "svg", "csv"] {
        let p = dir.join(format!("{id}.{ext}"));
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .len();
        assert!(len > 0, "{} is empty", p.display());
    }
}

#[test]
fn train_run_json_init_map_feeds_figures_fig12_fig15() {
    let t = tempfile::tempdir().unwrap();
    let cfg = write(t.path(), "acc.toml", ACCURACY);
    let acc = t.path().join("accuracy");
    ok("train", &["--config", &cfg, "--out", s(&acc), "-q"]);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(acc.join("run.json")).unwrap()).unwrap();
    assert!(run["init"].is_object(), "train writes init as a map");
    let figs = figures(t.path(), "fig12,fig15", "--accuracy-results", &acc);
    assert_figure(&figs, "fig12");
    assert_figure(&figs, "fig15");
    let caption = std::fs::read_to_string(figs.join("fig12.provenance.json")).unwrap();
    let description = run["init"]["description"].as_str().unwrap();
    assert!(
        caption.contains(description),
        "fig12's provenance names the run's init `{description}`:\n{caption}"
    );
}

#[test]
fn train_angles_feed_figures_revnet_fig4() {
    let t = tempfile::tempdir().unwrap();
    let cfg = write(t.path(), "angles.toml", ANGLES);
    let ang = t.path().join("angles");
    ok("train", &["--config", &cfg, "--out", s(&ang), "-q"]);
    let figs = figures(t.path(), "revnet-fig4", "--angles-results", &ang);
    assert_figure(&figs, "revnet-fig4");
}

#[test]
fn train_shards_feed_merge_which_feeds_figures() {
    let t = tempfile::tempdir().unwrap();
    let cfg = write(t.path(), "acc.toml", ACCURACY);
    let (a, b) = (t.path().join("shard0"), t.path().join("shard1"));
    ok(
        "train",
        &["--config", &cfg, "--shard", "1/2", "--out", s(&a), "-q"],
    );
    ok(
        "train",
        &["--config", &cfg, "--shard", "2/2", "--out", s(&b), "-q"],
    );
    let merged = t.path().join("merged");
    ok("train", &["merge", "--out", s(&merged), s(&a), s(&b), "-q"]);
    let whole = t.path().join("whole");
    ok("train", &["--config", &cfg, "--out", s(&whole), "-q"]);
    assert_eq!(
        std::fs::read(merged.join("accuracy.csv")).unwrap(),
        std::fs::read(whole.join("accuracy.csv")).unwrap(),
        "the merged shards hold exactly the unsharded run's rows"
    );
    let figs = figures(t.path(), "fig12", "--accuracy-results", &merged);
    assert_figure(&figs, "fig12");
    let report = ok("report", &[s(&merged)]);
    assert!(
        report.contains("layerwise"),
        "report of the merge:\n{report}"
    );
}

/// A small snr-sweep grid.
const SWEEP: [&str; 8] = [
    "--archs",
    "layerwise,hybrid",
    "--depths",
    "1,2",
    "--slopes",
    "0.2,1",
    "--input-size",
    "8",
];

#[test]
fn snr_sweep_shards_feed_merge_which_draws_the_figure_and_feeds_report() {
    let t = tempfile::tempdir().unwrap();
    let whole = t.path().join("whole");
    let mut args: Vec<&str> = SWEEP.to_vec();
    args.extend(["--out", s(&whole), "-q"]);
    let printed = ok("snr-sweep", &args);
    let report = ok("report", &[s(&whole)]);
    // The report prints the sweep's own table, line for line.
    for line in printed.lines().filter(|l| l.contains(" | ")) {
        assert!(report.contains(line), "report lacks `{line}`:\n{report}");
    }
    let mut shards = Vec::new();
    for k in 0..2 {
        let dir = t.path().join(format!("shard{k}"));
        let spec = format!("{}/2", k + 1);
        let mut args: Vec<&str> = SWEEP.to_vec();
        args.extend(["--shard", &spec, "--out", s(&dir), "-q"]);
        ok("snr-sweep", &args);
        shards.push(dir);
    }
    let merged = t.path().join("merged");
    ok(
        "snr-sweep",
        &[
            "merge",
            "--out",
            s(&merged),
            s(&shards[0]),
            s(&shards[1]),
            "-q",
        ],
    );
    for f in ["snr_sweep.csv", "summary.csv"] {
        assert_eq!(
            std::fs::read(merged.join(f)).unwrap(),
            std::fs::read(whole.join(f)).unwrap(),
            "{f}: merged shards differ from the unsharded run"
        );
    }
    for f in ["snr_vs_depth.png", "snr_vs_depth.svg"] {
        assert!(merged.join(f).is_file(), "merge draws {f}");
    }
    let report = ok("report", &[s(&merged)]);
    assert!(report.contains("lowest-layer input SNR"), "{report}");
}

#[test]
fn memory_feeds_report() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("memory");
    let printed = ok("memory", &["--quick", "--out", s(&out), "-q"]);
    let report = ok("report", &[s(&out)]);
    // The report prints memory's own table, row for row.
    let rows: Vec<&str> = printed.lines().filter(|l| l.starts_with('|')).collect();
    assert!(rows.len() > 2, "memory printed a table:\n{printed}");
    for row in rows {
        assert!(report.contains(row), "report lacks `{row}`:\n{report}");
    }
}

#[test]
fn bench_feeds_report() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("bench");
    let printed = ok(
        "bench",
        &[
            "--arch",
            "hybrid",
            "--depths",
            "1",
            "--width",
            "4",
            "--input-size",
            "8",
            "--batch",
            "4",
            "--pools",
            "none",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--out",
            s(&out),
            "-q",
        ],
    );
    let report = ok("report", &[s(&out)]);
    // The report prints the bench's own table, row for row (the timings are its run's).
    let rows: Vec<&str> = printed
        .lines()
        .filter(|l| l.starts_with("stored") || l.starts_with("reconstructed"))
        .collect();
    assert_eq!(rows.len(), 2, "bench printed both modes:\n{printed}");
    for row in rows {
        assert!(report.contains(row), "report lacks `{row}`:\n{report}");
    }
}

/// Fashion-MNIST-format IDX files (gzipped, as the Debian package ships them): `n` training and
/// `m` test images of 28x28 with labels 0-9.
fn write_fashion_mnist(dir: &Path, n: usize, m: usize) {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let images = |count: usize, offset: usize| {
        let mut b = Vec::new();
        for v in [2051u32, count as u32, 28, 28] {
            b.extend(v.to_be_bytes());
        }
        for k in 0..count {
            let class = (k + offset) % 10;
            b.extend((0..28 * 28).map(|p| {
                let (i, j) = (p / 28, p % 28);
                // A class-dependent stripe pattern (learnable) plus a per-image shift.
                if (i + j * class + k) % (class + 2) == 0 {
                    255u8
                } else {
                    ((i * 7 + j * 3 + k) % 64) as u8
                }
            }));
        }
        b
    };
    let labels = |count: usize, offset: usize| {
        let mut b = Vec::new();
        b.extend(2049u32.to_be_bytes());
        b.extend((count as u32).to_be_bytes());
        b.extend((0..count).map(|k| ((k + offset) % 10) as u8));
        b
    };
    for (name, bytes) in [
        ("train-images-idx3-ubyte", images(n, 0)),
        ("train-labels-idx1-ubyte", labels(n, 0)),
        ("t10k-images-idx3-ubyte", images(m, 3)),
        ("t10k-labels-idx1-ubyte", labels(m, 3)),
    ] {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&bytes).unwrap();
        std::fs::write(dir.join(format!("{name}.gz")), e.finish().unwrap()).unwrap();
    }
}

#[test]
fn reproduce_real_data_quick_mode_runs_end_to_end_on_idx_files() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("fashion-mnist");
    std::fs::create_dir(&data).unwrap();
    write_fashion_mnist(&data, 64, 32);
    let out = t.path().join("out");
    let bin_dir = Path::new(exe("train")).parent().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/reproduce-real-data.sh");
    let o = Command::new("bash")
        .arg(&script)
        .arg("--quick")
        .arg("1")
        .env("BIN_DIR", bin_dir)
        .env("DATA_DIR", &data)
        .env("OUT", &out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "reproduce-real-data.sh --quick exited {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for id in ["fig12", "fig15", "revnet-fig4"] {
        assert_figure(&out.join("figures"), id);
    }
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("accuracy/run.json")).unwrap())
            .unwrap();
    let source = run["data"]["source"].as_str().unwrap();
    assert!(
        source.contains("fashion-mnist") || source.contains("Fashion"),
        "the quick mode trains on the IDX files: {source}"
    );
}
