//! One error enum for the library, grouped by kind. Every variant says what was expected and
//! what was got, so a user can act on it without reading the source.

use thiserror::Error;

/// Errors returned by the revstab library.
#[derive(Debug, Error)]
pub enum Error {
    // ---- layer and network configuration ----
    /// A leaky-ReLU slope that is not strictly positive (not invertible).
    #[error(
        "invalid leaky-ReLU slope {slope}: expected a finite slope > 0 (n <= 0 is not invertible)"
    )]
    InvalidSlope { slope: f64 },

    /// A channel count that the layer cannot split or pool.
    #[error("{layer}: expected {expected} channels, got {got}")]
    BadChannels {
        layer: String,
        expected: String,
        got: usize,
    },

    /// A spatial size that a 2x2 pooling cannot halve.
    #[error("{layer}: expected even height and width, got {height}x{width}")]
    OddSpatial {
        layer: String,
        height: usize,
        width: usize,
    },

    /// `|gamma + eps_i| == 0` in a batch norm: the inverse would divide by zero.
    #[error("{layer}: |gamma + eps_i| is 0 in channel {channel} (gamma = {gamma}, eps_i = {eps_i}); the inverse would divide by zero")]
    ZeroScale {
        layer: String,
        channel: usize,
        gamma: f64,
        eps_i: f64,
    },

    /// A tensor of the wrong shape.
    #[error("{context}: expected shape {expected}, got {got:?}")]
    ShapeMismatch {
        context: String,
        expected: String,
        got: Vec<usize>,
    },

    /// NaN or infinite values where they would poison a result.
    #[error("{context}: {count} non-finite value(s) in the input (NaN or inf)")]
    NonFinite { context: String, count: usize },

    /// A configuration value that is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The build lacks the requested device, or the device failed to start.
    #[error("device `{requested}` is not available: {reason}")]
    Device { requested: String, reason: String },

    /// An unknown name (architecture, dtype, device...).
    #[error("unknown {kind} `{got}`: expected one of {expected}")]
    Unknown {
        kind: &'static str,
        got: String,
        expected: String,
    },

    // ---- data and files ----
    /// A data file that does not follow its format.
    #[error("{path}: corrupt data at byte offset {offset}: {reason}")]
    CorruptData {
        path: String,
        offset: u64,
        reason: String,
    },

    /// Input/output failure, with the path involved.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    // ---- numerics ----
    /// Training produced a non-finite loss or gradient; says where reconstruction collapsed.
    /// `layer`: the highest layer whose reconstruction SNR collapsed (NaN, -inf or below
    /// 0 dB against the stored activation) on the offending batch, when one did.
    #[error("non-finite loss at step {step}: {diagnosis}")]
    Diverged {
        step: usize,
        diagnosis: String,
        layer: Option<String>,
    },

    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    /// `Io` error for `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Result alias of the library.
pub type Result<T> = std::result::Result<T, Error>;
