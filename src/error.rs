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

    /// Another run holds the lock of the output directory ([`crate::lock::lock_out`]).
    #[error("output directory {path} is in use: another revstab run holds its lock (wait for it to finish, or choose another --out)")]
    Locked { path: String },

    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    /// Whether the error is the user's input (a value, a name, a file, a busy or unwritable
    /// directory, a device the build lacks) rather than a failure while running (non-finite
    /// values, divergence, a candle error): decides the exit code ([`exit_code_of`]).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::InvalidSlope { .. }
            | Error::BadChannels { .. }
            | Error::OddSpatial { .. }
            | Error::Config(_)
            | Error::Unknown { .. }
            | Error::CorruptData { .. }
            | Error::Io { .. }
            | Error::Device { .. }
            | Error::ShapeMismatch { .. }
            | Error::Locked { .. } => true,
            Error::ZeroScale { .. }
            | Error::NonFinite { .. }
            | Error::Diverged { .. }
            | Error::Candle(_) => false,
        }
    }

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

/// The exit codes of every binary: one convention, decided here.
///
/// - [`EXIT_OK`] (0): the run finished (a note, such as "no figure to draw", is not an error);
/// - [`EXIT_FAILURE`] (1): a check failed (a bound regressed, a figure could not be made) or the
///   run failed after it started (non-finite values, divergence, a disk that filled up);
/// - [`EXIT_BAD_INPUT`] (2): the input is wrong (a flag, a config file, a name, an output
///   directory that cannot be written or that another run holds); reported before any result
///   file is written.
pub const EXIT_OK: u8 = 0;
/// See [`EXIT_OK`].
pub const EXIT_FAILURE: u8 = 1;
/// See [`EXIT_OK`].
pub const EXIT_BAD_INPUT: u8 = 2;

/// Marks an error as the user's input (exit code [`EXIT_BAD_INPUT`]) where its type does not
/// say so (an `anyhow` message from a binary's own checks). Displays as the wrapped error's
/// chain on one line.
#[derive(Debug)]
pub struct BadInput(pub anyhow::Error);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&one_line(&self.0))
    }
}

impl std::error::Error for BadInput {}

/// Marks an error as a failure of the run (exit code [`EXIT_FAILURE`]) whatever its type (an
/// I/O error while writing results is a failure, not bad input). Displays like [`BadInput`].
#[derive(Debug)]
pub struct Failed(pub anyhow::Error);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&one_line(&self.0))
    }
}

impl std::error::Error for Failed {}

/// Wrap `e` as a failure of the run (see [`Failed`]).
pub fn failed(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Failed(e.into()))
}

/// Wrap `e` as bad input (see [`BadInput`]).
pub fn bad_input(e: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(BadInput(e.into()))
}

/// [`exit_code_of`] with `default` for an error that carries no marker and no library
/// [`Error`] (a binary whose own unmarked checks are all input checks passes
/// [`EXIT_BAD_INPUT`]).
pub fn exit_code_or(e: &anyhow::Error, default: u8) -> u8 {
    let marked = e.chain().any(|c| {
        c.downcast_ref::<BadInput>().is_some()
            || c.downcast_ref::<Failed>().is_some()
            || c.downcast_ref::<Error>().is_some()
    });
    if marked {
        exit_code_of(e)
    } else {
        default
    }
}

/// The exit code of an error: the outermost of a [`BadInput`] marker ([`EXIT_BAD_INPUT`]), a
/// [`Failed`] marker ([`EXIT_FAILURE`]) or a library [`Error`] ([`EXIT_BAD_INPUT`] when
/// [`Error::is_bad_input`]) in its chain decides; anything else is [`EXIT_FAILURE`].
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.downcast_ref::<BadInput>().is_some() {
            return EXIT_BAD_INPUT;
        }
        if cause.downcast_ref::<Failed>().is_some() {
            return EXIT_FAILURE;
        }
        if let Some(err) = cause.downcast_ref::<Error>() {
            return if err.is_bad_input() {
                EXIT_BAD_INPUT
            } else {
                EXIT_FAILURE
            };
        }
    }
    EXIT_FAILURE
}

/// The error chain on one line, like `{:#}`, without a cause whose text the message before it
/// already ends with (the library's I/O errors print their source themselves, so an OS error is
/// printed once).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.iter().any(|p| p.ends_with(&text)) {
            continue;
        }
        match parts.last_mut() {
            // A context that only repeats the start of its cause ("invalid configuration" over
            // "invalid configuration: depths ..."): keep the cause.
            Some(last) if text.starts_with(last.as_str()) => *last = text,
            _ => parts.push(text),
        }
    }
    parts.join(": ")
}

/// Print `tool: error: MESSAGE` (one line, see [`one_line`]) to stderr and return the exit code
/// of the error ([`exit_code_of`]); every binary's `main` ends in this.
pub fn report(tool: &str, e: &anyhow::Error) -> std::process::ExitCode {
    report_or(tool, e, EXIT_FAILURE)
}

/// [`report`] with the exit code of [`exit_code_or`].
pub fn report_or(tool: &str, e: &anyhow::Error, default: u8) -> std::process::ExitCode {
    eprintln!("{tool}: error: {}", one_line(e));
    std::process::ExitCode::from(exit_code_or(e, default))
}
