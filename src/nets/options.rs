//! The network options: one struct, [`NetOptions`], that is at once the `[net]` table of every
//! tool's TOML config, the network flags of every command line (`--stem`, `--pools`, ...) and
//! the part of [`crate::nets::NetConfig`] that reaches the layers.
//!
//! A new option is a field here (with its serde default, its flag and its doc comment), its
//! use where the network is built (`nets/build.rs`), and a line in the docs: the configs, the
//! flags, the result files and the overrides follow from this one struct.
//!
//! Flags override the config file's `[net]` table key by key ([`NetOverrides`]); a tool that
//! cannot use an option refuses it at parse time with its reason ([`NetOptions::refuse`]).

use crate::error::{Error, Result};
use crate::layers::GammaInit;
use crate::nets::{Arch, LayerKind, PoolKind};
use serde::{Deserialize, Serialize};

/// An optional list of poolings (`None`: the architecture's). A type alias so that the flag
/// parser produces the whole value (`default` gives `None`).
pub type PoolsOpt = Option<Vec<PoolKind>>;
/// An optional F/G chain (`None`: the architecture's), as [`PoolsOpt`].
pub type FgOpt = Option<Vec<LayerKind>>;

/// The first layer of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// A 3x3 convolution (no bias) from `in_channels` to `width` channels, weights
    /// `N(0, (init_scale sqrt(2 / fan_in))^2)`; its input, the image, is already in memory.
    #[default]
    Conv,
    /// No stem: the input already has `width` channels (`in_channels == width`), and the
    /// lowest reconstructed activation is the network input itself.
    Identity,
}

impl Stem {
    /// Whether this is the default ([`Stem::Conv`]): left out of serialised configs.
    pub fn is_default(&self) -> bool {
        *self == Stem::Conv
    }
}

/// The default convolution init scale of every tool: Kaiming normal (`N(0, 2 / fan_in)`).
pub const DEFAULT_INIT_SCALE: f64 = 1.0;

fn is_default_in_channels(v: &usize) -> bool {
    *v == 3
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// The default momentum of the batch-norm running statistics (PyTorch's).
pub const DEFAULT_BN_MOMENTUM: f64 = 0.1;

fn is_default_bn_momentum(v: &f64) -> bool {
    *v == DEFAULT_BN_MOMENTUM
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// The network options every tool shares beside architecture, depth, width, slope and `eps_i`
/// (which sweeps take as lists): the `[net]` table of every tool's config and the same flags on
/// every command line. Every field has a default that builds the networks the tools built
/// before the option existed, and is left out of serialised configs when default (except
/// `init_scale`, which changes every coupling's alpha and is always recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct NetOptions {
    /// Input channels [training takes its data's]
    #[arg(long = "in-channels", value_name = "C", default_value_t = 3)]
    #[serde(skip_serializing_if = "is_default_in_channels")]
    pub in_channels: usize,
    /// First layer: conv (3x3 convolution to --width channels) or identity (the input already
    /// has --width channels)
    #[arg(long, value_enum, default_value_t = Stem::Conv)]
    #[serde(skip_serializing_if = "Stem::is_default")]
    pub stem: Stem,
    /// Downsampling between stages: c (channel), b (batch), max; `none` for no pooling,
    /// `default` for the architecture's (c,c,b for layer-wise and hybrid)
    #[arg(long, value_name = "LIST", value_parser = parse_pools, default_value = "default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pools: PoolsOpt,
    /// F (= G) chain of every block: conv, bn, lrelu, relu; `default` for the architecture's
    /// (conv,bn,lrelu,conv,bn for hybrid, conv,bn,relu,conv,bn for revnet/irevnet/resnet)
    #[arg(long, value_name = "LIST", value_parser = parse_fg, default_value = "default")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fg: FgOpt,
    /// Convolution init scale relative to Kaiming normal N(0, 2/fan_in)
    #[arg(long = "init-scale", value_name = "X", default_value_t = DEFAULT_INIT_SCALE)]
    pub init_scale: f64,
    /// Batch-norm gamma init: ones, lognormal:SPREAD, absnormal:STD[:OFFSET] (|N(1, STD)| +
    /// OFFSET) [default: ones]
    #[arg(long = "gamma-init", value_name = "DIST", value_parser = parse_gamma)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gamma_init: Option<GammaInit>,
    /// Spread of a log-normal gamma init, gamma = exp(SPREAD N(0,1)) (same as
    /// --gamma-init lognormal:SPREAD; used when gamma_init is unset)
    #[arg(long = "gamma-spread", value_name = "SPREAD", default_value_t = 0.0)]
    #[serde(skip_serializing_if = "is_zero")]
    pub gamma_spread: f64,
    /// Momentum m of the batch-norm running statistics (used in eval mode):
    /// running = (1 - m) running + m batch, PyTorch's convention; in (0, 1]
    #[arg(long = "bn-momentum", value_name = "M", default_value_t = DEFAULT_BN_MOMENTUM)]
    #[serde(skip_serializing_if = "is_default_bn_momentum")]
    pub bn_momentum: f64,
    /// Nested depths: every depth is a prefix of the deepest network of the run, with the
    /// same weights (tools that sweep depths)
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    pub nested: bool,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            in_channels: 3,
            stem: Stem::Conv,
            pools: None,
            fg: None,
            init_scale: DEFAULT_INIT_SCALE,
            gamma_init: None,
            gamma_spread: 0.0,
            bn_momentum: DEFAULT_BN_MOMENTUM,
            nested: false,
        }
    }
}

/// The `expected` of the error for an `fg` given to the layer-wise network.
pub(crate) const LAYERWISE_NO_FG: &str =
    "no fg (the layer-wise network has no F/G blocks; its units are [InvConv, InvBN, InvLeakyReLU])";

/// `[a, b, c]` for error messages.
pub(crate) fn kinds_text(kinds: &[LayerKind]) -> String {
    let v: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    format!("[{}]", v.join(", "))
}

impl NetOptions {
    /// The gamma init these options draw ([`GammaInit::resolve`]).
    pub fn gamma(&self) -> GammaInit {
        GammaInit::resolve(self.gamma_init, self.gamma_spread)
    }

    /// Check the values that need no architecture (the rest is checked with the network,
    /// [`crate::nets::NetConfig::validate`]).
    pub fn validate(&self) -> Result<()> {
        if !(self.init_scale.is_finite() && self.init_scale > 0.0)
            || !(self.gamma_spread.is_finite() && self.gamma_spread >= 0.0)
        {
            let got = format!("{} and {}", self.init_scale, self.gamma_spread);
            return Err(Error::config(
                "init_scale and gamma_spread",
                "> 0 and >= 0 (finite)",
                got,
            ));
        }
        if !(self.bn_momentum > 0.0 && self.bn_momentum <= 1.0) {
            let got = self.bn_momentum;
            return Err(Error::config("bn_momentum", "a value in (0, 1]", got));
        }
        self.gamma().validate()
    }

    /// The gamma distribution in words: `1`, `exp(S N(0,1))`, `|N(1, S^2)| + O`.
    pub fn gamma_text(&self) -> String {
        match self.gamma() {
            GammaInit::Ones => "1".to_string(),
            GammaInit::LogNormal { spread } => format!("exp({spread} N(0,1))"),
            GammaInit::AbsNormal { std, offset } => format!("|N(1, {std}^2)| + {offset}"),
        }
    }

    /// One line describing the initialisation, for result files: conv init scale, gamma
    /// distribution, beta, head.
    pub fn init_description(&self) -> String {
        format!(
            "conv weights N(0, ({} * sqrt(2/fan_in))^2), BN gamma {}, beta 0, head N(0, 1/c)",
            self.init_scale,
            self.gamma_text()
        )
    }

    /// The F/G chain of `arch`'s blocks: [`NetOptions::fg`] or the architecture's default.
    pub fn fg_for(&self, arch: Arch) -> Vec<LayerKind> {
        self.fg.clone().unwrap_or_else(|| arch.default_fg())
    }

    /// The poolings of `arch`: [`NetOptions::pools`] or the architecture's default.
    pub fn pools_for(&self, arch: Arch) -> Vec<PoolKind> {
        self.pools.clone().unwrap_or_else(|| arch.default_pools())
    }

    /// These options as a network of `arch` takes them: the layer-wise network has no F/G
    /// blocks, so a tool measuring several architectures gives the chain to the others only.
    pub fn for_arch(&self, arch: Arch) -> NetOptions {
        let mut o = self.clone();
        if !arch.has_blocks() {
            o.fg = None;
        }
        o
    }

    /// Reject an F/G chain when no architecture of `archs` has blocks (all layer-wise).
    pub fn check_fg_for(&self, archs: &[Arch]) -> Result<()> {
        match &self.fg {
            Some(fg) if !archs.is_empty() && archs.iter().all(|a| !a.has_blocks()) => Err(
                Error::config("fg", LAYERWISE_NO_FG, format!("fg = {}", kinds_text(fg))),
            ),
            _ => Ok(()),
        }
    }

    /// Refuse every option of `refused` that is set to other than its default: `refused`
    /// holds `(key, reason)` pairs, the one place where a tool says which options it cannot
    /// use and why. The error names the `[net]` key and the flag.
    pub fn refuse(&self, tool: &str, refused: &[(&str, &str)]) -> Result<()> {
        let set = to_map(self);
        let default = to_map(&NetOptions::default());
        for (key, reason) in refused {
            if set.get(*key) != default.get(*key) {
                return Err(Error::config(
                    format!("[net] {key} (--{}) in {tool}", key.replace('_', "-")),
                    format!("the default: {reason}"),
                    set.get(*key)
                        .map_or_else(|| "unset".to_string(), |v| v.to_string()),
                ));
            }
        }
        Ok(())
    }
}

fn to_map(o: &NetOptions) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(o) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// The network flags of a command line, flattened into every tool's arguments: the options
/// they parsed to and the keys the user set ([`NetOverrides::record_given`], which
/// [`crate::cli::parse_with_net`] calls). [`NetOverrides::apply`] lays them over a config's
/// `[net]` table, key by key.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct NetOverrides {
    /// The options as parsed (defaults where a flag was not given).
    #[command(flatten)]
    pub parsed: NetOptions,
    /// The keys given on the command line.
    #[arg(skip)]
    pub given: Vec<String>,
}

impl NetOverrides {
    /// Record which flags `matches` (the command line these were parsed from) gave.
    pub fn record_given(&mut self, matches: &clap::ArgMatches) {
        self.given = net_flag_ids()
            .into_iter()
            .filter(|id| {
                matches!(
                    matches.value_source(id),
                    Some(clap::parser::ValueSource::CommandLine)
                )
            })
            .collect();
    }

    /// `base` with every given flag's value in place of the table's.
    pub fn apply(&self, base: &NetOptions) -> Result<NetOptions> {
        let mut merged = to_map(base);
        let parsed = to_map(&self.parsed);
        for key in &self.given {
            match parsed.get(key) {
                Some(v) => merged.insert(key.clone(), v.clone()),
                // Left out when default: the default again.
                None => merged.remove(key),
            };
        }
        serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| Error::internal("network flags", e.to_string()))
    }
}

/// A command holding the network flags alone (their ids).
#[derive(clap::Parser)]
struct NetOptionsCommand {
    #[command(flatten)]
    net: NetOptions,
}

/// The ids of the network flags (the [`NetOptions`] field names).
fn net_flag_ids() -> Vec<String> {
    use clap::CommandFactory;
    NetOptionsCommand::command()
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| id != "help")
        .collect()
}

/// The network keys of a config written before the `[net]` table (at the top level of the
/// config) moved into `net`: what reads a config back from an older result file calls first.
pub fn lift_legacy_net_keys(value: &mut serde_json::Value) {
    let Some(map) = value.as_object_mut() else {
        return;
    };
    let mut lifted = serde_json::Map::new();
    for k in net_flag_ids() {
        if let Some(v) = map.remove(&k) {
            lifted.insert(k, v);
        }
    }
    if lifted.is_empty() {
        return;
    }
    let net = map
        .entry("net")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if let Some(net) = net.as_object_mut() {
        for (k, v) in lifted {
            net.entry(k).or_insert(v);
        }
    }
}

/// Parse JSON written by an earlier version (a manifest, a `run.json`), moving the network
/// keys of the config objects at `paths` (each a list of keys from the root; `&[]` is the root)
/// into their `net` table first ([`lift_legacy_net_keys`]): a run started before the `[net]`
/// table resumes, and its results are read back.
pub fn from_json_lifting<T: serde::de::DeserializeOwned>(
    text: &str,
    paths: &[&[&str]],
) -> serde_json::Result<T> {
    let mut v: serde_json::Value = serde_json::from_str(text)?;
    for path in paths {
        let mut at = Some(&mut v);
        for key in *path {
            at = at.and_then(|x| x.get_mut(*key));
        }
        if let Some(x) = at {
            lift_legacy_net_keys(x);
        }
    }
    serde_json::from_value(v)
}

/// A config error's `message` with a hint appended when it names a network option outside
/// the `[net]` table (an unknown field that is one of [`NetOptions`]' keys).
pub fn with_net_table_hint(message: &str) -> String {
    let outside = net_flag_ids()
        .iter()
        .any(|k| message.contains(&format!("unknown field `{k}`")));
    if outside {
        format!("{message} (network options go in the [net] table)")
    } else {
        message.to_string()
    }
}

/// A TOML error as text, with the `[net]` hint ([`with_net_table_hint`]).
pub fn toml_error_text(e: &toml::de::Error) -> String {
    with_net_table_hint(e.to_string().trim())
}

/// Parse a pool list (`c`/`channel`, `b`/`batch`, `max`; `none` or empty: no pooling;
/// `default`: the architecture's, `None`).
pub fn parse_pools(text: &str) -> Result<PoolsOpt> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") {
        return Ok(Some(Vec::new()));
    }
    if t.eq_ignore_ascii_case("default") {
        return Ok(None);
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
        .map(Some)
}

/// Parse an F/G chain (`conv`, `bn`, `lrelu`, `relu`, comma-separated, at least one;
/// `default`: the architecture's, `None`).
pub fn parse_fg(text: &str) -> Result<FgOpt> {
    if text.trim().eq_ignore_ascii_case("default") {
        return Ok(None);
    }
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
    Ok(Some(kinds))
}

fn parse_gamma(text: &str) -> Result<GammaInit> {
    text.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_lists_parse_and_none_is_empty() {
        use PoolKind::{Batch, Channel, Max};
        assert_eq!(
            parse_pools("c,c,b").unwrap(),
            Some(vec![Channel, Channel, Batch])
        );
        assert_eq!(parse_pools("max").unwrap(), Some(vec![Max]));
        assert_eq!(parse_pools("none").unwrap(), Some(vec![]));
        assert_eq!(parse_pools("").unwrap(), Some(vec![]));
        assert_eq!(parse_pools("default").unwrap(), None);
        let e = parse_pools("c,x").unwrap_err().to_string();
        assert!(e.contains("unknown pooling `x`"), "{e}");
    }

    #[test]
    fn fg_lists_parse_and_reject_unknown_or_empty() {
        use LayerKind::{Bn, Conv, Lrelu};
        assert_eq!(
            parse_fg("conv,bn,lrelu,conv").unwrap(),
            Some(vec![Conv, Bn, Lrelu, Conv])
        );
        assert_eq!(parse_fg("default").unwrap(), None);
        assert!(parse_fg("conv,pool").is_err());
        assert!(parse_fg("").is_err());
    }

    /// A flag given on the command line replaces the table's value; one not given keeps it;
    /// a flag given at its default value restores the default.
    #[test]
    fn given_flags_override_the_table_key_by_key() {
        use clap::{CommandFactory, FromArgMatches};
        let table = NetOptions {
            init_scale: 0.5,
            pools: Some(vec![]),
            gamma_spread: 0.3,
            ..NetOptions::default()
        };
        let argv = [
            "x",
            "--stem",
            "identity",
            "--pools",
            "default",
            "--gamma-spread",
            "0",
        ];
        let m = NetOptionsCommand::command().get_matches_from(argv);
        let mut o = NetOverrides {
            parsed: NetOptionsCommand::from_arg_matches(&m).unwrap().net,
            given: Vec::new(),
        };
        o.record_given(&m);
        assert_eq!(o.given, ["stem", "pools", "gamma_spread"]);
        let merged = o.apply(&table).unwrap();
        assert_eq!(merged.stem, Stem::Identity);
        assert_eq!(merged.pools, None);
        assert_eq!(merged.gamma_spread, 0.0);
        assert_eq!(merged.init_scale, 0.5);
        let none = NetOverrides::default().apply(&table).unwrap();
        assert_eq!(none, table);
    }

    #[test]
    fn a_refused_option_is_an_error_only_when_set() {
        let refused = [("in_channels", "the data's channels")];
        assert!(NetOptions::default().refuse("train", &refused).is_ok());
        let set = NetOptions {
            in_channels: 1,
            ..NetOptions::default()
        };
        let e = set.refuse("train", &refused).unwrap_err().to_string();
        assert!(
            e.contains("in_channels") && e.contains("the data's channels"),
            "{e}"
        );
    }

    #[test]
    fn legacy_top_level_keys_move_into_the_table() {
        let mut v = serde_json::json!({"archs": ["hybrid"], "stem": "identity", "init_scale": 0.5});
        lift_legacy_net_keys(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"archs": ["hybrid"], "net": {"stem": "identity", "init_scale": 0.5}})
        );
    }
}
