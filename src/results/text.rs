//! Floats as text in result files.
//!
//! - [`fmt_f`] (4 decimals) and [`fmt_f_exact`] (every digit) write `inf`, `-inf`, `nan` for
//!   the non-finite values; [`parse_f`] reads both back;
//! - [`num_text`]: the number format of the figures' CSVs;
//! - serde: [`num`] writes finite floats as JSON numbers and the others as strings (the cached
//!   figure results), [`float_text`] writes every float as an exact string (sweep points,
//!   training records). Both read what they write.

use crate::error::{Error, Result};

/// Format a float for result files: `inf`, `-inf`, `nan`, else 4 decimals.
pub fn fmt_f(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else {
        format!("{v:.4}")
    }
}

/// Parse a float written by [`fmt_f`] or [`fmt_f_exact`].
pub fn parse_f(s: &str) -> Result<f64> {
    match s.trim() {
        "inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        "nan" => Ok(f64::NAN),
        t => t.parse::<f64>().map_err(|_| {
            Error::data(
                "a result field",
                "a number, inf, -inf or nan",
                format!("`{t}`"),
            )
        }),
    }
}

/// Like [`fmt_f`] but with every digit (round-trips exactly).
pub fn fmt_f_exact(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        fmt_f(v)
    }
}

/// Floats as exact text in JSON (`inf` and `nan` survive): `#[serde(with = "float_text")]`.
pub mod float_text {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_f_exact(*v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        super::parse_f(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Floats in result files: finite values as JSON numbers, `inf`, `-inf`, `nan` as strings.
pub mod num {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_str(&super::fmt_f(*v))
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum N {
            F(f64),
            S(String),
        }
        match N::deserialize(d)? {
            N::F(v) => Ok(v),
            N::S(s) => super::parse_f(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// Number for CSVs: shortest round-trip digits (scientific when tiny or huge), `inf`, `nan`.
pub fn num_text(v: f64) -> String {
    if !v.is_finite() {
        fmt_f(v)
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e9) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}
