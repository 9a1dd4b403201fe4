//! Progress without a terminal before the first epoch
//! ends, and `history.csv` counting epochs from 1 like the console; no data CSV (history,
//! accuracy sweep, angle experiment, lowest-layer figure CSVs) holds a wall time, so reruns
//! write them byte-identical, and the times go to `timings.csv` sidecars.

use crate::common::{exe, TINY_ACCURACY_SWEEP, TINY_ANGLES};
use std::path::Path;
use std::process::Command;

#[test]
fn train_without_a_terminal_reports_progress_before_the_first_epoch_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // 320 images, batch 16: 20 steps per epoch, a line every 2 steps.
    let o = Command::new(env!("CARGO_BIN_EXE_train"))
        .args([
            "--depth",
            "2",
            "--width",
            "4",
            "--epochs",
            "2",
            "--batch",
            "16",
            "--data",
            "synthetic:train=320,test=32,size=8",
            "--out",
        ])
        .arg(&out)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let first_step = err.find("epoch 1/2: step 2/20").expect(&err);
    let first_epoch = err.find("epoch 1/2: train loss").expect(&err);
    assert!(first_step < first_epoch, "{err}");
    let lines = err.lines().filter(|l| l.contains(": step ")).count();
    assert_eq!(lines, 2 * 9, "{err}");
    // history.csv: epochs 1 and 2, as the console printed them.
    let history = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let epochs: Vec<&str> = history
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(epochs, ["1", "2"], "{history}");
    assert!(err.contains("epoch 2/2: train loss"), "{err}");
}

/// `history.csv` has no wall-time column (those go to `timings.csv`), so two runs of
/// the same seed and config write the same bytes.
#[test]
fn history_csv_of_a_rerun_is_byte_identical_and_timings_are_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["a", "b"] {
        let out = tmp.path().join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_train"))
            .args([
                "--depth",
                "2",
                "--width",
                "4",
                "--epochs",
                "2",
                "--batch",
                "16",
                "--data",
                "synthetic:train=64,test=32,size=8",
                "--quiet",
                "--out",
            ])
            .arg(&out)
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        files.push((
            std::fs::read(out.join("history.csv")).unwrap(),
            std::fs::read_to_string(out.join("timings.csv")).unwrap(),
        ));
    }
    assert_eq!(files[0].0, files[1].0, "history.csv differs between reruns");
    let history = String::from_utf8(files[0].0.clone()).unwrap();
    assert_eq!(
        history.lines().next().unwrap(),
        "epoch,train_loss,train_acc,lr"
    );
    let timings = &files[0].1;
    let mut lines = timings.lines();
    assert_eq!(lines.next().unwrap(), "epoch,seconds");
    let rows: Vec<(String, f64)> = lines
        .map(|l| {
            let (e, s) = l.split_once(',').unwrap();
            (e.to_string(), s.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 2, "{timings}");
    assert_eq!((rows[0].0.as_str(), rows[1].0.as_str()), ("1", "2"));
    assert!(rows[0].1 > 0.0 && rows[1].1 >= rows[0].1, "{timings}");
}

/// A tiny `fig11` (scaling) config: two depths, one slope.
const FIG11: &str = r#"
experiment = "scaling"
arch = "layerwise"
seed = 0
dtype = "f32"
[depth_sweep]
slope = 0.5
depths = [1, 2]
[slope_sweep]
depth = 1
slopes = [0.5]
[net]
width = 4
batch = 2
input_size = 8
"#;

fn run_ok(bin: &str, args: &[&str], dir: &Path) {
    let o = Command::new(exe(bin))
        .args(args)
        .arg(dir)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `timings.csv`-like sidecar: its header is `key` + `seconds`, it has `rows` rows and every
/// time parses as a non-negative number.
fn assert_timings(path: &Path, key: &[&str], rows: usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let mut header: Vec<&str> = key.to_vec();
    header.push("seconds");
    assert_eq!(
        lines.next().unwrap(),
        header.join(","),
        "{}",
        path.display()
    );
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), rows, "{text}");
    for l in body {
        let s: f64 = l.rsplit(',').next().unwrap().parse().unwrap();
        assert!(s >= 0.0, "{text}");
    }
}

fn header_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().next().unwrap().to_string()
}

/// `accuracy.csv`, the angle experiment's `summary.csv` and the lowest-layer
/// figure CSVs had a `seconds` column, so no rerun was byte-identical. Two runs of the same
/// config into two directories now write the same bytes; the times are in the sidecars.
#[test]
fn rerun_data_csvs_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let exps = tmp.path().join("experiments");
    std::fs::create_dir_all(&exps).unwrap();
    std::fs::write(exps.join("accuracy.toml"), TINY_ACCURACY_SWEEP).unwrap();
    std::fs::write(exps.join("angles.toml"), TINY_ANGLES).unwrap();
    std::fs::write(exps.join("fig11.toml"), FIG11).unwrap();
    let key = ["arch", "depth", "slope", "mode", "seed"];
    for (config, csv, rows) in [
        ("accuracy.toml", "accuracy.csv", 2),
        ("angles.toml", "summary.csv", 1),
    ] {
        let cfg = exps.join(config);
        let mut bytes = Vec::new();
        for run in ["a", "b"] {
            let out = tmp.path().join(format!("{config}-{run}"));
            run_ok(
                "train",
                &["--config", cfg.to_str().unwrap(), "--quiet", "--out"],
                &out,
            );
            assert!(
                !header_of(&out.join(csv)).split(',').any(|c| c == "seconds"),
                "{csv} still has a seconds column"
            );
            assert_timings(&out.join("timings.csv"), &key, rows);
            bytes.push(std::fs::read(out.join(csv)).unwrap());
        }
        assert_eq!(bytes[0], bytes[1], "{csv} differs between reruns");
    }
    // fig11 computed twice (two result caches), rendered into two directories.
    let mut bytes = Vec::new();
    for run in ["a", "b"] {
        let out = tmp.path().join(format!("figures-{run}"));
        let results = tmp.path().join(format!("results-{run}"));
        let o = Command::new(exe("figures"))
            .args(["--only", "fig11", "--quiet", "--experiments"])
            .arg(&exps)
            .arg("--results")
            .arg(&results)
            .arg("--out")
            .arg(&out)
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            !header_of(&out.join("fig11.csv")).contains("seconds"),
            "fig11.csv still has a seconds column"
        );
        assert_timings(
            &revstab::plot::common::timings_path(&out, "fig11"),
            &["sweep", "arch", "dtype", "depth", "slope", "eps_i"],
            3,
        );
        bytes.push(std::fs::read(out.join("fig11.csv")).unwrap());
    }
    assert_eq!(bytes[0], bytes[1], "fig11.csv differs between reruns");
}

/// Point files written while the data CSVs still had `seconds` (inside the stored rows) still
/// load: `--resume` computes nothing, the CSVs come out without the column and the old times
/// land in `timings.csv`.
#[test]
fn resume_reads_point_files_that_still_hold_seconds_in_their_rows() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text, field, at, csv) in [
        (
            "accuracy.toml",
            TINY_ACCURACY_SWEEP,
            "row",
            9,
            "accuracy.csv",
        ),
        ("angles.toml", TINY_ANGLES, "summary", 12, "summary.csv"),
    ] {
        let cfg = tmp.path().join(name);
        std::fs::write(&cfg, text).unwrap();
        let out = tmp.path().join(format!("{name}-out"));
        let args = ["--config", cfg.to_str().unwrap(), "--quiet", "--out"];
        run_ok("train", &args, &out);
        let fresh = std::fs::read(out.join(csv)).unwrap();
        // Rewrite every point file in the older layout: the time inside the row, no field.
        let mut n = 0;
        for e in std::fs::read_dir(out.join("points")).unwrap() {
            let path = e.unwrap().path();
            if path.file_name().unwrap() == "manifest.json" {
                continue;
            }
            let mut v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let obj = v.as_object_mut().unwrap();
            assert!(obj.remove("seconds").is_some(), "{}", path.display());
            let row = obj[field].as_array_mut().unwrap();
            row.insert(at, serde_json::Value::String(format!("{}.25", 40 + n)));
            std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
            n += 1;
        }
        assert!(n > 0);
        let mut resume = args.to_vec();
        resume.insert(0, "--resume");
        run_ok("train", &resume, &out);
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
        assert_eq!(run["computed"], 0, "{name}: resumed runs were recomputed");
        assert_eq!(
            std::fs::read(out.join(csv)).unwrap(),
            fresh,
            "{name}: {csv}"
        );
        let timings = std::fs::read_to_string(out.join("timings.csv")).unwrap();
        for k in 0..n {
            assert!(
                timings.contains(&format!(",{}.25\n", 40 + k)),
                "{name}: old time {}.25 not in\n{timings}",
                40 + k
            );
        }
    }
}

/// The `## `figures`` section of `docs/outputs.md`, and every name it sets in backticks (a
/// backticked list such as `` `arch, depth, source` `` gives each of its names).
fn figures_section_names() -> (String, std::collections::BTreeSet<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/outputs.md")).unwrap();
    let start = docs.find("## `figures`").expect("a figures section");
    let rest = &docs[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    let section = rest[..end].to_string();
    let names = section
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| {
            span.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    (section, names)
}

/// `docs/outputs.md` did not document the columns of the fig05, bn-eps,
/// memory-scaling, tradeoff and table1 figure CSVs. Every column of every committed figure CSV
/// (sidecars included) is named, in backticks, in the docs' figures section.
#[test]
fn outputs_md_documents_every_figure_csv_column() {
    let (_, names) = figures_section_names();
    let figures = Path::new(env!("CARGO_MANIFEST_DIR")).join("figures");
    let mut csvs: Vec<_> = std::fs::read_dir(&figures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    csvs.sort();
    assert!(csvs.len() >= 15, "{csvs:?}");
    let mut missing = Vec::new();
    for csv in &csvs {
        let id = csv.file_name().unwrap().to_string_lossy().into_owned();
        let id = id.trim_end_matches(".csv").trim_end_matches(".timings");
        if !names.contains(id) {
            missing.push(format!("figure id {id}"));
        }
        for column in header_of(csv).split(',') {
            if !names.contains(column) {
                missing.push(format!("{}: {column}", csv.display()));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
}

/// The docs called the role of a block's input `block`; the CSVs write
/// `block-input` ([`revstab::layers::Role`]), as the committed `fig13.csv` shows.
#[test]
fn outputs_md_names_block_input_as_the_role() {
    use revstab::layers::Role;
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/outputs.md"))
            .unwrap();
    let role_row = docs
        .lines()
        .find(|l| l.starts_with("| `role` |"))
        .expect("snr_sweep.csv documents `role`");
    for role in [Role::Layer, Role::BlockInput, Role::Hidden] {
        assert!(
            role_row.contains(&format!("`{}`", role.as_str())),
            "{role_row}"
        );
    }
    assert!(
        !docs.contains("`block`"),
        "a role named `block` is documented"
    );
    let fig13 =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("figures/fig13.csv"))
            .unwrap();
    assert!(
        fig13.contains(",block-input,"),
        "fig13.csv has no block-input row"
    );
    let (section, _) = figures_section_names();
    assert!(section.contains("`block-input`"), "{section}");
}

/// The angle experiment with a RevNet (no leaky ReLU) and a layer-wise network, a probe every
/// other step.
const ANGLES_REVNET: &str = r#"
experiment = "angles"
modes = ["reconstructed"]
seeds = [0]
[[nets]]
arch = "revnet"
depth = 1
[[nets]]
arch = "layerwise"
depth = 2
[train]
width = 4
epochs = 1
batch = 32
angle_every = 2
data = "synthetic:train=64,test=32,size=8"
"#;

/// The angle experiment wrote the config's slope (0.2) in RevNet rows, where
/// the snr-sweep's CSVs leave it empty for an architecture without a leaky ReLU
/// (`Arch::has_slope`); its CSVs now do as the snr-sweep's.
#[test]
fn angle_csvs_leave_the_slope_empty_without_a_leaky_relu() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("angles.toml");
    std::fs::write(&cfg, ANGLES_REVNET).unwrap();
    let out = tmp.path().join("out");
    run_ok(
        "train",
        &["--config", cfg.to_str().unwrap(), "--quiet", "--out"],
        &out,
    );
    for file in [
        "angles.csv",
        "angles_layers.csv",
        "summary.csv",
        "timings.csv",
    ] {
        let mut rdr = csv::Reader::from_path(out.join(file)).unwrap();
        let header = rdr.headers().unwrap().clone();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (arch, slope) = (col("arch"), col("slope"));
        let mut seen = Vec::new();
        for rec in rdr.records() {
            let rec = rec.unwrap();
            let want = match &rec[arch] {
                "revnet" => "",
                "layerwise" => "0.2",
                other => panic!("{file}: unexpected arch {other}"),
            };
            assert_eq!(&rec[slope], want, "{file}: {rec:?}");
            seen.push(rec[arch].to_string());
        }
        for a in ["revnet", "layerwise"] {
            assert!(seen.iter().any(|s| s == a), "{file}: no {a} row");
        }
    }
}
