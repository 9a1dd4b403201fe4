//! `report DIR`: the summary table of any results directory, read from its files without
//! recomputing anything.
//!
//! `cargo run --release --bin report -- results/snr-sweep`
//!
//! An `snr-sweep` directory prints the table the sweep printed and a `bench` directory the
//! tables the bench printed, both from their typed results (the sweep's point files, the
//! bench's `run.json`); any other prints its summary CSV (`accuracy.csv`, `summary.csv`,
//! `history.csv`, `bench.csv`, `conv_shapes.csv`) as an aligned table. Above the table: the tool, revision, start time and
//! command line of `run.json`. Exit codes as every binary: 2 when DIR is not a results
//! directory.

use anyhow::Context;
use clap::Parser;
use revstab::error::bad_input;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Print the summary table of a results directory (snr-sweep, train, memory, bench) from its
/// files, without recomputing.
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
    if tool == "snr-sweep" {
        let results = revstab::experiments::snr_sweep::SweepResults::read(dir)?;
        println!("{}", results.summary_table());
        return Ok(());
    }
    if experiment == revstab::experiments::bench::EXPERIMENT {
        // A bench run of an older version (its rows lack fields `BenchResults` holds) is
        // still shown, from its bench.csv below.
        match revstab::experiments::bench::BenchResults::read(dir) {
            Ok(results) => {
                println!("{}:", run_json.display());
                print!("{}", results.table()?);
                return Ok(());
            }
            Err(e) if dir.join("bench.csv").exists() => {
                eprintln!("note: {e}; showing bench.csv as it is");
            }
            Err(e) => return Err(e.into()),
        }
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
