//! How the gammas of a batch norm are initialised ([`GammaInit`], an option of
//! [`super::BatchNormConfig`]): the distributions, their text form in configs and on the command
//! line, and its checks. [`InvBatchNorm::new`](super::InvBatchNorm::new) draws them.

use crate::error::{Error, Result};

/// How batch-norm gammas are initialised (betas are always 0). Every draw is in f64 from the
/// parameter's own stream (`rng_for(seed, name)`), then cast to the storage dtype.
///
/// Written in configs and on the command line as `ones`, `lognormal:S` or `absnormal:S[:OFFSET]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GammaInit {
    /// `gamma = 1`.
    Ones,
    /// `gamma = exp(spread N(0,1))` (log-normal around 1; `spread = 0` gives ones).
    LogNormal {
        /// The std of `log gamma`.
        spread: f64,
    },
    /// `gamma = |N(1, std^2)| + offset` (a folded normal, shifted away from 0 by `offset`).
    AbsNormal {
        /// The std of the normal before folding.
        std: f64,
        /// Added after folding (`>= 0`).
        offset: f64,
    },
}

impl GammaInit {
    /// The distribution a config gives: `init` when set, else log-normal with `spread` (ones
    /// for `spread = 0`).
    pub fn resolve(init: Option<GammaInit>, spread: f64) -> GammaInit {
        match init {
            Some(g) => g,
            None if spread == 0.0 => GammaInit::Ones,
            None => GammaInit::LogNormal { spread },
        }
    }

    /// Check the parameters: spreads and stds finite and `>= 0`, offset finite and `>= 0`.
    pub fn validate(&self) -> Result<()> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        let good = match *self {
            GammaInit::Ones => true,
            GammaInit::LogNormal { spread } => ok(spread),
            GammaInit::AbsNormal { std, offset } => ok(std) && ok(offset),
        };
        if good {
            Ok(())
        } else {
            Err(Error::config(
                "gamma_init",
                "a spread, std and offset that are finite and >= 0",
                format!("`{self}`"),
            ))
        }
    }
}

impl std::fmt::Display for GammaInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GammaInit::Ones => write!(f, "ones"),
            GammaInit::LogNormal { spread } => write!(f, "lognormal:{spread}"),
            GammaInit::AbsNormal { std, offset } => write!(f, "absnormal:{std}:{offset}"),
        }
    }
}

impl std::str::FromStr for GammaInit {
    type Err = Error;
    fn from_str(text: &str) -> Result<GammaInit> {
        let bad = || Error::Unknown {
            kind: "gamma init",
            got: text.into(),
            expected: "ones, lognormal:SPREAD, absnormal:STD[:OFFSET]".into(),
        };
        let parts: Vec<&str> = text.trim().split(':').map(str::trim).collect();
        let num = |s: &str| s.parse::<f64>().map_err(|_| bad());
        let g = match (parts[0].to_ascii_lowercase().as_str(), parts.len()) {
            ("ones", 1) => GammaInit::Ones,
            ("lognormal" | "log-normal", 2) => GammaInit::LogNormal {
                spread: num(parts[1])?,
            },
            ("absnormal" | "abs-normal", 2 | 3) => GammaInit::AbsNormal {
                std: num(parts[1])?,
                offset: if parts.len() == 3 {
                    num(parts[2])?
                } else {
                    0.0
                },
            },
            _ => return Err(bad()),
        };
        g.validate()?;
        Ok(g)
    }
}

impl TryFrom<String> for GammaInit {
    type Error = Error;
    fn try_from(text: String) -> Result<GammaInit> {
        text.parse()
    }
}

impl From<GammaInit> for String {
    fn from(g: GammaInit) -> String {
        g.to_string()
    }
}

impl serde::Serialize for GammaInit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for GammaInit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
