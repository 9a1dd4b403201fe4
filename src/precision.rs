//! The storage precision of a network: [`Precision`], the typed form of every config's `dtype`.
//!
//! Conventions: a precision is written as its lowercase name (`f16`, `bf16`, `f32`, `f64`) in
//! configs, result files, point keys and flags; parsing trims and ignores case (`F32` reads as
//! [`Precision::F32`]) and writes back the lowercase name. An unknown name is
//! [`Error::Unknown`] with `kind` `"dtype"`.

use crate::error::{Error, Result};
use candle_core::DType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A storage dtype a network can be built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// IEEE half precision (`f16`).
    F16,
    /// bfloat16 (`bf16`).
    BF16,
    /// Single precision (`f32`), the default.
    #[default]
    F32,
    /// Double precision (`f64`).
    F64,
}

impl Precision {
    /// Every precision, narrowest first.
    pub const ALL: [Precision; 4] = [
        Precision::F16,
        Precision::BF16,
        Precision::F32,
        Precision::F64,
    ];

    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F16 => DType::F16,
            Precision::BF16 => DType::BF16,
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        }
    }

    /// The precision of a candle float dtype; any other dtype (integers, f8) is
    /// [`Error::Unknown`] naming it.
    pub fn from_dtype(dtype: DType) -> Result<Precision> {
        match dtype {
            DType::F16 => Ok(Precision::F16),
            DType::BF16 => Ok(Precision::BF16),
            DType::F32 => Ok(Precision::F32),
            DType::F64 => Ok(Precision::F64),
            other => Err(Error::Unknown {
                kind: "dtype",
                got: other.as_str().into(),
                expected: "f16, bf16, f32, f64".into(),
            }),
        }
    }

    /// The lowercase name (`f16`, `bf16`, `f32`, `f64`): what configs and result files hold.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F16 => "f16",
            Precision::BF16 => "bf16",
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    /// Bytes per value.
    pub fn size_in_bytes(self) -> usize {
        self.dtype().size_in_bytes()
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    /// Parse a name, trimmed and case-insensitive; anything else is [`Error::Unknown`].
    fn from_str(name: &str) -> Result<Precision> {
        let lower = name.trim().to_ascii_lowercase();
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == lower)
            .ok_or_else(|| Error::Unknown {
                kind: "dtype",
                got: name.into(),
                expected: "f16, bf16, f32, f64".into(),
            })
    }
}

impl From<Precision> for DType {
    fn from(p: Precision) -> DType {
        p.dtype()
    }
}

impl Serialize for Precision {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Precision {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Precision, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
