//! `report DIR`: the summary of any results directory, read from its files without
//! recomputing anything.
//!
//! `cargo run --release --bin report -- results/snr-sweep`
//!
//! Each tool's directory prints what the tool printed, from its typed results: an `snr-sweep`
//! the sweep's table (its point files), a `bench` the bench's tables (its `run.json`), a
//! `memory` run the Markdown table `memory` printed (its `run.json`), the accuracy and angle
//! experiments of `train` their tables (their point files), and a single `train` run its test
//! accuracy and `history.csv`. Any other directory prints its summary CSV (`accuracy.csv`,
//! `summary.csv`, `history.csv`, `bench.csv`, `conv_shapes.csv`) as an aligned table. Above:
//! the tool, revision, start time and command line of `run.json`. Exit codes as every binary:
//! 2 when DIR is not a results directory, or lacks the result files its tool writes (they are
//! named).

use anyhow::Context;
use clap::Parser;
use revstab::error::bad_input;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Print the summary of a results directory (snr-sweep, train, memory, bench) from its files,
/// without recomputing.
#[derive(Parser, Debug)]
#[command(name = "report", version, after_help = revstab::cli::EXIT_CODES_HELP)]
struct Args {
    /// Results directory (the --out of a run)
    dir: PathBuf,
}

fn main() -> ExitCode {
    revstab::provenance::started();
    let args = Args::parse();
    match run(&args.dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => revstab::error::report("report", &e),
    }
}

/// The CSVs a summary is read from, in order of preference.
const SUMMARY_CSVS: [&str; 5] = [
    "accuracy.csv",
    "summary.csv",
    "history.csv",
    "bench.csv",
    "conv_shapes.csv",
];

fn run(dir: &Path) -> anyhow::Result<()> {
    let run_json = dir.join("run.json");
    let text = std::fs::read_to_string(&run_json)
        .with_context(|| {
            format!(
                "{}: not a results directory (no readable run.json)",
                dir.display()
            )
        })
        .map_err(bad_input)?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", run_json.display()))
        .map_err(bad_input)?;
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let tool = s(&v["tool"])
        .or_else(|| s(&v["experiment"]))
        .unwrap_or_else(|| "unknown".into());
    let experiment = s(&v["experiment"]).unwrap_or_default();
    let kind = Kind::of(&tool, &experiment);
    check_expected(dir, kind)?;
    let p = &v["provenance"];
    println!(
        "{}: {tool}{}; revision {}; started {}",
        dir.display(),
        if experiment.is_empty() || experiment == tool {
            String::new()
        } else {
            format!(" {experiment}")
        },
        s(&v["git_revision"]).unwrap_or_else(|| "unknown".into()),
        s(&p["started_utc"]).unwrap_or_else(|| "unknown".into()),
    );
    if let Some(cmd) = p["command_line"].as_array() {
        let words: Vec<String> = cmd.iter().filter_map(s).collect();
        println!("command: {}", words.join(" "));
    }
    match kind {
        Kind::SnrSweep => {
            let results = revstab::experiments::snr_sweep::SweepResults::read(dir)?;
            println!("{}", results.summary_table());
            return Ok(());
        }
        Kind::Bench => {
            // A bench run of an older version (its rows lack fields `BenchResults` holds) is
            // still shown, from its bench.csv below.
            match revstab::experiments::bench::BenchResults::read(dir) {
                Ok(results) => {
                    println!("{}:", run_json.display());
                    print!("{}", results.table()?);
                    return Ok(());
                }
                Err(e) => eprintln!("note: {e}; showing bench.csv as it is"),
            }
        }
        Kind::Memory => {
            // A memory run of an older version (its summary rows lack fields the table needs)
            // is still shown, from its summary.csv below.
            match revstab::experiments::memory::MemorySummary::read(dir) {
                Ok(summary) => {
                    println!("{}:", run_json.display());
                    print!("{}", summary.markdown());
                    return Ok(());
                }
                Err(e) => eprintln!("note: {e}; showing summary.csv as it is"),
            }
        }
        Kind::TrainRun => return train_run(dir, &v),
        Kind::Accuracy => {
            use revstab::experiments::training::{accuracy_table, AccuracyConfig, AccuracyResult};
            let cfg: AccuracyConfig = experiment_config(dir, &v)?;
            let grid = cfg.grid();
            let mut results: Vec<AccuracyResult> = point_files(dir)?;
            results.retain(|r| grid.contains(&r.point));
            results.sort_by_key(|r| r.point.index);
            finished(results.len(), grid.len());
            print!("{}", accuracy_table(&cfg, &results));
            return Ok(());
        }
        Kind::Angles => {
            use revstab::experiments::training::{angles_table, AngleResult, AnglesConfig};
            let cfg: AnglesConfig = experiment_config(dir, &v)?;
            let runs = cfg.runs();
            let mut results: Vec<AngleResult> = point_files(dir)?;
            results.retain(|r| runs.get(r.index) == Some(&r.config));
            results.sort_by_key(|r| r.index);
            finished(results.len(), runs.len());
            print!("{}", angles_table(&results));
            return Ok(());
        }
        Kind::Other => {}
    }
    let csv = SUMMARY_CSVS
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "{}: no summary CSV (expected one of {})",
                dir.display(),
                SUMMARY_CSVS.join(", ")
            ))
        })?;
    println!("{}:", csv.display());
    print!("{}", aligned(&csv)?);
    Ok(())
}

/// What produced a results directory, from its `run.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    SnrSweep,
    Bench,
    Memory,
    /// A single `train` run.
    TrainRun,
    /// `train`'s accuracy sweep.
    Accuracy,
    /// `train`'s angle experiment.
    Angles,
    /// Anything else: shown from its summary CSV.
    Other,
}

impl Kind {
    fn of(tool: &str, experiment: &str) -> Kind {
        match (tool, experiment) {
            ("snr-sweep", _) => Kind::SnrSweep,
            (_, e) if e == revstab::experiments::bench::EXPERIMENT => Kind::Bench,
            (_, "memory") => Kind::Memory,
            ("train", "single") => Kind::TrainRun,
            ("train", "accuracy") => Kind::Accuracy,
            ("train", "angles") => Kind::Angles,
            _ => Kind::Other,
        }
    }

    /// What wrote the directory, for messages.
    fn label(self) -> &'static str {
        match self {
            Kind::SnrSweep => "snr-sweep run",
            Kind::Bench => "bench run",
            Kind::Memory => "memory run",
            Kind::TrainRun => "single train run",
            Kind::Accuracy => "train accuracy sweep",
            Kind::Angles => "train angle experiment",
            Kind::Other => "run",
        }
    }

    /// The result files (a trailing `/`: a directory) the tool writes beside `run.json`, and
    /// what `report` reads.
    fn expected(self) -> Vec<&'static str> {
        match self {
            Kind::SnrSweep => vec!["points/", "snr_sweep.csv", "summary.csv"],
            Kind::Bench => vec!["bench.csv"],
            Kind::Memory => revstab::experiments::memory::OUTPUT_FILES
                .iter()
                .map(|(f, _)| *f)
                .filter(|f| *f != "run.json")
                .collect(),
            Kind::TrainRun => vec!["result.json", "history.csv"],
            Kind::Accuracy => vec!["points/", "accuracy.csv"],
            Kind::Angles => vec!["points/", "summary.csv", "angles.csv", "angles_layers.csv"],
            Kind::Other => Vec::new(),
        }
    }
}

/// Bad input (exit 2) naming every missing file when `dir` lacks any of the result files its
/// tool writes ([`Kind::expected`]): a directory with `run.json` and nothing else is reported,
/// not shown as an empty table.
fn check_expected(dir: &Path, kind: Kind) -> anyhow::Result<()> {
    let expected = kind.expected();
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|f| match f.strip_suffix('/') {
            Some(d) => !dir.join(d).is_dir(),
            None => !dir.join(f).is_file(),
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(bad_input(anyhow::anyhow!(
        "{}: the run.json of a {what}, but no {} (a {what} writes {} beside its run.json: was it interrupted, or were files moved?)",
        dir.display(),
        missing.join(", "),
        expected.join(", "),
        what = kind.label(),
    )))
}

/// A single `train` run: the network, its test accuracy (from `result.json`) and `history.csv`.
fn train_run(dir: &Path, run: &serde_json::Value) -> anyhow::Result<()> {
    let path = dir.join("result.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let r: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON", path.display()))
        .map_err(bad_input)?;
    let c = &run["config"];
    let field = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "?".into(),
        other => other.to_string(),
    };
    let arch = field(&c["arch"]);
    let slope = match revstab::nets::Arch::parse(&arch) {
        Ok(a) if !a.has_slope() => String::new(),
        _ => format!(" slope {}", field(&c["slope"])),
    };
    let net = format!(
        "{arch} depth {}{slope}, trained {}",
        field(&c["depth"]),
        field(&c["mode"])
    );
    let count = |v: &serde_json::Value, what: &str| match v.as_u64() {
        Some(1) => format!("1 {what}"),
        Some(n) => format!("{n} {what}s"),
        None => format!("? {what}s"),
    };
    let (epochs, steps) = (count(&r["epochs"], "epoch"), count(&r["steps"], "step"));
    match r["test_acc"].as_f64() {
        Some(acc) if r["stopped"] != serde_json::Value::Bool(true) => println!(
            "{}: {net}: test accuracy {:.2}% after {epochs} ({steps}); test loss {} (eval mode, whole test split)",
            path.display(),
            100.0 * acc,
            r["test_loss"]
                .as_f64()
                .map_or_else(|| "nan".to_string(), |l| format!("{l:.4}")),
        ),
        _ => println!(
            "{}: {net}: no test accuracy (the run stopped after {epochs}, {steps}, before its evaluation)",
            path.display()
        ),
    }
    let csv = dir.join("history.csv");
    println!("{}:", csv.display());
    print!("{}", aligned(&csv)?);
    Ok(())
}

/// The config of a `train` experiment: `points/manifest.json`, or `run.json`'s `config`.
fn experiment_config<C: serde::de::DeserializeOwned>(
    dir: &Path,
    run: &serde_json::Value,
) -> anyhow::Result<C> {
    let manifest = dir.join("points").join("manifest.json");
    let parsed = match std::fs::read_to_string(&manifest) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{}: not this experiment's config", manifest.display())),
        Err(_) => serde_json::from_value(run["config"].clone()).with_context(|| {
            format!(
                "{}: no config of this experiment",
                dir.join("run.json").display()
            )
        }),
    };
    parsed.map_err(bad_input)
}

/// Every run's result in `dir/points` (its JSON files but the manifest), in file-name order.
fn point_files<R: serde::de::DeserializeOwned>(dir: &Path) -> anyhow::Result<Vec<R>> {
    let points = dir.join("points");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&points)
        .with_context(|| format!("cannot read {}", points.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| {
                n != "manifest.json" && !n.starts_with('.') && n.ends_with(".json")
            })
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not a finished run of this experiment", p.display()))
                .map_err(bad_input)
        })
        .collect()
}

/// A line when only some of an experiment's runs are finished.
fn finished(done: usize, total: usize) {
    if done < total {
        println!("{done} of {total} runs finished (the table shows those)");
    }
}

/// A CSV as a table with aligned columns.
fn aligned(path: &Path) -> anyhow::Result<String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let rows: Vec<Vec<String>> = rdr
        .records()
        .map(|r| r.map(|r| r.iter().map(str::to_string).collect()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: malformed CSV", path.display()))?;
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|f| f.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, f)| format!("{f:<w$}", w = width[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    Ok(out)
}
