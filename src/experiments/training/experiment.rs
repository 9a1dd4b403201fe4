//! A training experiment read from a config file ([`Experiment`], [`ConfigFile`]): dispatch on
//! its `experiment` key, its shared settings, resume state and run.

use super::{
    accuracy_table, angles_table, extended_results, read_points, run_accuracy, run_angles,
    AccuracyConfig, AccuracyResult, AngleResult, AnglesConfig, SweepOptions,
};
use crate::error::{Error, Result};
use crate::train::{read_toml, TrainConfig};
use std::path::Path;
use std::time::Instant;

/// A training experiment read from a config file.
#[derive(Debug, Clone)]
pub enum Experiment {
    /// The accuracy sweeps.
    Accuracy(AccuracyConfig),
    /// The gradient angle through training.
    Angles(AnglesConfig),
}

/// What `train --config FILE` holds: an experiment (`experiment = "accuracy"` or `"angles"`),
/// or, without an `experiment` key, one training run (the keys of [`TrainConfig`] at the top
/// level, e.g. `arch = "hybrid"`, `depth = 8`, `epochs = 3`).
#[derive(Debug, Clone)]
pub enum ConfigFile {
    /// An experiment config.
    Experiment(Box<Experiment>),
    /// A single training run.
    Run(Box<TrainConfig>),
}

impl ConfigFile {
    /// Read `path` and dispatch on its `experiment` key (absent: a single run).
    pub fn from_toml_file(path: &Path) -> Result<ConfigFile> {
        let value: toml::Table = read_toml(path)?;
        if value.contains_key("experiment") {
            Ok(ConfigFile::Experiment(Box::new(
                Experiment::from_toml_file(path)?,
            )))
        } else {
            Ok(ConfigFile::Run(Box::new(read_toml(path)?)))
        }
    }
}

impl Experiment {
    /// The settings every run of the experiment shares (the `[train]` table).
    pub fn train_mut(&mut self) -> &mut TrainConfig {
        match self {
            Experiment::Accuracy(c) => &mut c.train,
            Experiment::Angles(c) => &mut c.train,
        }
    }

    /// Drop the per-network or per-architecture learning rates and epochs of the file (a
    /// command-line `--lr` or `--epochs` applies to every run).
    pub fn clear_overrides(&mut self, lr: bool, epochs: bool) {
        match self {
            Experiment::Accuracy(c) => {
                if lr {
                    c.arch_lr.clear();
                }
            }
            Experiment::Angles(c) => {
                for n in &mut c.nets {
                    if lr {
                        n.lr = None;
                    }
                    if epochs {
                        n.epochs = None;
                    }
                }
            }
        }
    }

    /// Read a config and dispatch on its `experiment` key (`accuracy` or `angles`).
    pub fn from_toml_file(path: &Path) -> Result<Experiment> {
        let value: toml::Table = read_toml(path)?;
        match value.get("experiment").and_then(|v| v.as_str()) {
            Some("accuracy") => Ok(Experiment::Accuracy(AccuracyConfig::from_toml_file(path)?)),
            Some("angles") => Ok(Experiment::Angles(AnglesConfig::from_toml_file(path)?)),
            other => Err(Error::Unknown {
                kind: "experiment",
                got: format!(
                    "{} (in {})",
                    other.unwrap_or("<missing `experiment` key>"),
                    path.display()
                ),
                expected: "experiment = \"accuracy\" or \"angles\"".into(),
            }),
        }
    }

    /// Name (default output directory under `results/`).
    pub fn name(&self) -> &'static str {
        match self {
            Experiment::Accuracy(_) => "accuracy",
            Experiment::Angles(_) => "angles",
        }
    }

    /// Check the configuration.
    pub fn validate(&self) -> Result<()> {
        match self {
            Experiment::Accuracy(c) => c.validate(),
            Experiment::Angles(c) => c.validate(),
        }
    }

    /// The runs already finished in `out` that `--resume` would keep, by index (grid order for
    /// the accuracy sweep, [`AnglesConfig::runs`] order for the angle experiment), ascending.
    /// Read-only: nothing is written and no lock is taken. Errors as `--resume` does: a
    /// manifest of another config, or a point file that does not parse. No `out/points` (or no
    /// manifest in it): none.
    pub fn finished_runs(&self, out: &Path) -> Result<Vec<usize>> {
        match self {
            Experiment::Accuracy(c) => {
                let done: Vec<AccuracyResult> = match extended_results(out, c)? {
                    Some(kept) => kept,
                    None => read_points(out, c)?,
                };
                Ok(c.grid()
                    .iter()
                    .filter(|p| done.iter().any(|d| d.point == **p))
                    .map(|p| p.index)
                    .collect())
            }
            Experiment::Angles(c) => {
                let done: Vec<AngleResult> = read_points(out, c)?;
                Ok(c.runs()
                    .iter()
                    .enumerate()
                    .filter(|(i, r)| done.iter().any(|d| d.index == *i && d.config == **r))
                    .map(|(i, _)| i)
                    .collect())
            }
        }
    }

    /// Run it; returns the printed summary.
    pub fn run(&self, opts: &SweepOptions) -> Result<String> {
        let start = Instant::now();
        let (table, n) = match self {
            Experiment::Accuracy(c) => {
                let r = run_accuracy(c, opts)?;
                (accuracy_table(c, &r), r.len())
            }
            Experiment::Angles(c) => {
                let r = run_angles(c, opts)?;
                (angles_table(&r), r.len())
            }
        };
        Ok(format!(
            "{table}\n{n} runs in {:.1} s",
            start.elapsed().as_secs_f64()
        ))
    }
}
