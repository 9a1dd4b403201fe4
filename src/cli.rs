//! Command-line pieces every binary shares: the network flags ([`NetArgs`], flattened into each
//! tool's arguments so that they are spelled the same everywhere) and their parsers.
//!
//! Conventions of every binary: `-q/--quiet` silences per-point lines and progress bars,
//! `--threads 0` means all cores, `--width`/`--widths` (sweeps) is the number of channels after
//! the stem, `--input-size` the input height = width, `--device cpu|cuda[:N]|metal[:N]`, and
//! `--config FILE` reads TOML.

use crate::error::{Error, Result};
use crate::nets::{GammaInit, LayerKind, NetOptions, PoolKind, Stem};

/// A pool list on the command line: `c,c,b`, `max,max`, `none` (or empty) for no pooling, or
/// `default` (`None`: the architecture's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolList(pub Option<Vec<PoolKind>>);

/// An F/G chain on the command line: `conv,bn,lrelu,conv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FgList(pub Vec<LayerKind>);

/// Parse a pool list (`c`/`channel`, `b`/`batch`, `max`; `none` or empty: no pooling;
/// `default`: the architecture's).
pub fn parse_pools(text: &str) -> Result<PoolList> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") {
        return Ok(PoolList(Some(Vec::new())));
    }
    if t.eq_ignore_ascii_case("default") {
        return Ok(PoolList(None));
    }
    t.split(',')
        .map(|p| match p.trim().to_ascii_lowercase().as_str() {
            "c" | "channel" => Ok(PoolKind::Channel),
            "b" | "batch" => Ok(PoolKind::Batch),
            "max" | "m" => Ok(PoolKind::Max),
            other => Err(Error::Unknown {
                kind: "pooling",
                got: other.into(),
                expected: "c (channel), b (batch), max, `none` for no pooling, `default`".into(),
            }),
        })
        .collect::<Result<Vec<_>>>()
        .map(|v| PoolList(Some(v)))
}

/// Parse an F/G chain (`conv`, `bn`, `lrelu`, `relu`, comma-separated, at least one).
pub fn parse_fg(text: &str) -> Result<FgList> {
    let kinds = text
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| match k.to_ascii_lowercase().as_str() {
            "conv" => Ok(LayerKind::Conv),
            "bn" => Ok(LayerKind::Bn),
            "lrelu" | "leaky-relu" | "leakyrelu" => Ok(LayerKind::Lrelu),
            "relu" => Ok(LayerKind::Relu),
            _ => Err(Error::Unknown {
                kind: "F/G layer kind",
                got: k.into(),
                expected: "conv, bn, lrelu, relu".into(),
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    if kinds.is_empty() {
        return Err(Error::config(
            "the F/G chain",
            "at least one layer (e.g. conv,bn,lrelu,conv)",
            "none",
        ));
    }
    Ok(FgList(kinds))
}

/// The network flags shared by `snr-sweep`, `train`, `figures`, `memory` and `bench` (each
/// overrides the same key of the tool's TOML config, [`NetOptions`]).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NetArgs {
    /// Input channels [default: 3; training uses its data's]
    #[arg(long = "in-channels", value_name = "C")]
    pub in_channels: Option<usize>,
    /// First layer: conv (3x3 convolution to --width channels) or identity (the input already
    /// has --width channels) [default: conv]
    #[arg(long, value_enum)]
    pub stem: Option<Stem>,
    /// Downsampling between stages: c (channel), b (batch), max; `none` for no pooling,
    /// `default` for the architecture's (c,c,b for layer-wise and hybrid)
    #[arg(long, value_name = "LIST", value_parser = parse_pools)]
    pub pools: Option<PoolList>,
    /// F (= G) chain of every block: conv, bn, lrelu, relu [default: conv,bn,lrelu,conv,bn for
    /// hybrid, conv,bn,relu,conv,bn for revnet/irevnet/resnet]
    #[arg(long, value_name = "LIST", value_parser = parse_fg)]
    pub fg: Option<FgList>,
    /// Convolution init scale relative to Kaiming normal N(0, 2/fan_in) [default: 1]
    #[arg(long = "init-scale", value_name = "X")]
    pub init_scale: Option<f64>,
    /// Batch-norm gamma init: ones, lognormal:SPREAD, absnormal:STD[:OFFSET] (|N(1, STD)| +
    /// OFFSET) [default: ones]
    #[arg(long = "gamma-init", value_name = "DIST", value_parser = parse_gamma)]
    pub gamma_init: Option<GammaInit>,
    /// Spread of a log-normal gamma init, gamma = exp(SPREAD N(0,1)) (same as
    /// --gamma-init lognormal:SPREAD) [default: 0]
    #[arg(long = "gamma-spread", value_name = "SPREAD")]
    pub gamma_spread: Option<f64>,
    /// Nested depths: every depth is a prefix of the deepest network, with the same weights
    #[arg(long)]
    pub nested: bool,
}

fn parse_gamma(text: &str) -> Result<GammaInit> {
    text.parse()
}

impl NetArgs {
    /// Override the options the flags set.
    pub fn apply(&self, opts: &mut NetOptions) {
        if let Some(v) = self.in_channels {
            opts.in_channels = v;
        }
        if let Some(v) = self.stem {
            opts.stem = v;
        }
        if let Some(v) = &self.pools {
            opts.pools = v.0.clone();
        }
        if let Some(v) = &self.fg {
            opts.fg = Some(v.0.clone());
        }
        if let Some(v) = self.init_scale {
            opts.init_scale = v;
        }
        if let Some(v) = self.gamma_init {
            opts.gamma_init = Some(v);
        }
        if let Some(v) = self.gamma_spread {
            opts.gamma_spread = v;
        }
        if self.nested {
            opts.nested = true;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_lists_parse_and_none_is_empty() {
        use PoolKind::{Batch, Channel, Max};
        assert_eq!(
            parse_pools("c,c,b").unwrap().0,
            Some(vec![Channel, Channel, Batch])
        );
        assert_eq!(parse_pools("max").unwrap().0, Some(vec![Max]));
        assert_eq!(parse_pools("none").unwrap().0, Some(vec![]));
        assert_eq!(parse_pools("").unwrap().0, Some(vec![]));
        assert_eq!(parse_pools("default").unwrap().0, None);
        let e = parse_pools("c,x").unwrap_err().to_string();
        assert!(e.contains("unknown pooling `x`"), "{e}");
    }

    #[test]
    fn fg_lists_parse_and_reject_unknown_or_empty() {
        use LayerKind::{Bn, Conv, Lrelu};
        assert_eq!(
            parse_fg("conv,bn,lrelu,conv").unwrap().0,
            vec![Conv, Bn, Lrelu, Conv]
        );
        assert!(parse_fg("conv,pool").is_err());
        assert!(parse_fg("").is_err());
    }
}
