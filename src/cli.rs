//! Command-line pieces every binary shares: the network flags ([`NetOverrides`], the fields of
//! [`crate::nets::NetOptions`] flattened into each tool's arguments so that they are spelled
//! the same everywhere; [`parse_with_net`] records which were given) and the shared parsers.
//!
//! Conventions of every binary: `-q/--quiet` silences per-point lines and progress bars,
//! `--threads 0` means all cores, `--width`/`--widths` (sweeps) is the number of channels after
//! the stem, `--input-size` the input height = width, `--device cpu|cuda[:N]|metal[:N]`, and
//! `--config FILE` reads TOML.

use crate::error::{Error, Result};
use crate::measure::anchors::Anchoring;
use crate::nets::NetOverrides;

/// The anchored mode's flags (the `[anchors]` table of a config), shared by the tools that
/// take the mode: the planner's target, an explicit list, and how often training plans again.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AnchorArgs {
    /// Anchored mode: the planner places the fewest anchors that keep every rebuilt input at
    /// least this SNR (dB) against the stored one, on a probe batch [default: 60]
    #[arg(long = "min-snr-db", value_name = "DB", allow_negative_numbers = true, value_parser = parse_finite_db)]
    pub min_snr_db: Option<f64>,
    /// Anchored mode: these anchors instead of a plan (layer names, or positions among the
    /// inputs the backward rebuilds in forward order, 0 = nearest the input; `snr-sweep plan`
    /// lists them)
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        conflicts_with = "min_snr_db"
    )]
    pub anchors: Option<Vec<String>>,
    /// Anchored training with a target: plan again every K steps on the current weights (0:
    /// once, before the first step) [default: 25]
    #[arg(long = "replan-every", value_name = "K")]
    pub replan_every: Option<usize>,
}

impl AnchorArgs {
    /// Whether any anchored flag was given.
    pub fn given(&self) -> bool {
        self.min_snr_db.is_some() || self.anchors.is_some() || self.replan_every.is_some()
    }

    /// `base` with the flags given laid over it (a target replaces a list and the other way
    /// round).
    pub fn apply(&self, base: &Anchoring) -> Anchoring {
        let mut a = base.clone();
        if let Some(t) = self.min_snr_db {
            a.min_snr_db = Some(t);
            a.list = None;
        }
        if let Some(l) = &self.anchors {
            a.list = Some(l.clone());
            a.min_snr_db = None;
        }
        if let Some(k) = self.replan_every {
            a.replan_every = k;
        }
        a
    }
}

/// A finite number of dB (`--min-snr-db`): NaN and infinities are usage errors (exit 2).
pub fn parse_finite_db(text: &str) -> std::result::Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("expected a finite number of dB, got `{text}`")),
    }
}

/// Parse a binary's command line `argv`, recording which network flags it gave: `net_of` finds
/// the flattened [`NetOverrides`] (the `[net]` flags) in the parsed arguments, which then lays
/// the flags the user gave over a config's `[net]` table. A usage error exits as clap does
/// (exit 2).
pub fn parse_with_net<A: clap::Parser>(
    argv: Vec<std::ffi::OsString>,
    net_of: impl Fn(&mut A) -> &mut NetOverrides,
) -> A {
    let matches = A::command().get_matches_from(argv);
    let mut args = A::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    net_of(&mut args).record_given(&matches);
    args
}

/// The `--threads` flag of every tool: `0` (all cores) or `1..=`[`crate::limits::max_threads`];
/// anything else is a usage error (exit 2) before the tool starts.
pub fn parse_threads(text: &str) -> std::result::Result<usize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a thread count (0 = all cores), got `{text}`"))?;
    crate::limits::check_threads(n).map_err(|e| e.to_string())?;
    Ok(n)
}

/// The exit codes every tool shares, for the end of each `--help`.
pub const EXIT_CODES_HELP: &str =
    "Exit codes: 0 success; 1 the run failed or a check regressed (a \
divergence, a regressed bound, an internal error); 2 bad input (a bad flag, config, data file or \
output directory), reported before anything is written.";

/// The data spec of a training run brought to `size` x `size` images (`train --input-size`):
/// the synthetic set's `size=` key, or for the IDX sets (Fashion-MNIST, MNIST: 28x28) the
/// `fit=` that gives that size (32 `pad32`, 28 `none`, 16 `pool2-pad16`, 14 `pool2`); CIFAR-10
/// is 32x32 only. Any other size is a configuration error naming the sizes each source takes.
pub fn data_with_input_size(spec: &str, size: usize) -> Result<String> {
    let source = spec
        .split([':', ','])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match source.as_str() {
        "synthetic" => Ok(format!("{spec},size={size}")),
        "fashion-mnist" | "fashion_mnist" | "fashionmnist" | "mnist" => {
            let fit = match size {
                32 => "pad32",
                28 => "none",
                16 => "pool2-pad16",
                14 => "pool2",
                _ => {
                    return Err(Error::config(
                        "--input-size",
                        format!(
                        "32, 28, 16 or 14 for {source} (its 28x28 images padded, kept or pooled)"
                    ),
                        size,
                    ))
                }
            };
            Ok(format!("{spec},fit={fit}"))
        }
        _ if size == 32 => Ok(spec.to_string()),
        _ => Err(Error::config(
            "--input-size",
            format!("32 for `{spec}` (its images are 32x32)"),
            size,
        )),
    }
}

/// The arguments of a tool with the settings of its `--config FILE` (TOML) put in front of the
/// command line's own: each key is a long flag's name (`_` or `-`; aliases too), a list is
/// joined with commas, `true` gives the bare flag and `false` nothing. A flag given on the
/// command line wins over the file's key. An unknown key, or a file that does not read or
/// parse, is a configuration error (exit 2).
pub fn args_with_config(
    cmd: &clap::Command,
    argv: Vec<std::ffi::OsString>,
) -> Result<Vec<std::ffi::OsString>> {
    let text_args: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let Some(path) = text_args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| text_args.get(i + 1).cloned())
        .or_else(|| {
            text_args
                .iter()
                .find_map(|a| a.strip_prefix("--config=").map(str::to_string))
        })
    else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| Error::config_file(&path, e))?;
    let given = |names: &[&str]| {
        text_args.iter().any(|a| {
            names
                .iter()
                .any(|n| a == &format!("--{n}") || a.starts_with(&format!("--{n}=")))
        })
    };
    let mut front: Vec<std::ffi::OsString> = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let arg = cmd.get_arguments().find(|a| {
            a.get_long() == Some(name.as_str())
                || a.get_all_aliases()
                    .is_some_and(|al| al.contains(&name.as_str()))
        });
        let Some(arg) = arg.filter(|a| a.get_long() != Some("config")) else {
            return Err(Error::config_file(
                &path,
                format!("unknown key `{key}`: the keys are the tool's long flags (see --help)"),
            ));
        };
        let long = arg.get_long().unwrap_or_default().to_string();
        let mut names: Vec<&str> = vec![long.as_str()];
        names.extend(arg.get_all_aliases().unwrap_or_default());
        let short_given = arg.get_short().is_some_and(|c| {
            text_args.iter().any(|a| {
                a.len() > 1 && a.starts_with('-') && !a.starts_with("--") && a[1..].starts_with(c)
            })
        });
        if given(&names) || short_given {
            continue;
        }
        let scalar = |v: &toml::Value| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match value {
            toml::Value::Boolean(true) => front.push(format!("--{long}").into()),
            toml::Value::Boolean(false) => {}
            // `--long=value`: a value that starts with `-` stays a value.
            toml::Value::Array(items) => {
                let joined = items.iter().map(scalar).collect::<Vec<_>>().join(",");
                front.push(format!("--{long}={joined}").into());
            }
            other => front.push(format!("--{long}={}", scalar(other)).into()),
        }
    }
    let mut out: Vec<std::ffi::OsString> = argv.into_iter().take(1).collect();
    out.extend(front);
    out.extend(text_args.into_iter().skip(1).map(Into::into));
    Ok(out)
}
