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
