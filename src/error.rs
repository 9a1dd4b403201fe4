//! One error enum for the library, grouped by kind ([`ErrorKind`]). Every variant says what was
//! expected and what was got, so a user can act on it without reading the source.
//!
//! Conventions: a variant belongs to exactly one kind ([`Error::kind`]); the kind decides
//! whether the error is the user's input or a failure of the run ([`Error::is_bad_input`]),
//! and so the exit code of every binary ([`exit_code_of`]). Construction sites use the small
//! constructors ([`Error::config`], [`Error::data`], [`Error::internal`], [`Error::numeric`],
//! [`Error::config_file`], [`Error::io`]) so that each stays one readable line.

use thiserror::Error;

/// What an [`Error`] is about; decides the exit code through [`ErrorKind::is_bad_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A value, a name or a file of the user's configuration (a flag, a config file, a device
    /// the build lacks): bad input.
    Configuration,
    /// A tensor or layer of the wrong shape (channels, spatial size, dimensions): bad input.
    Shape,
    /// The contents of a data or result file (a corrupt file, a label out of range, results of
    /// another configuration): bad input.
    Data,
    /// A file or directory that cannot be read or written, or that another run holds: bad
    /// input (a binary that fails to *write* its results marks that as a failure with
    /// [`failed`]).
    Io,
    /// Numerical failure while running (NaN or infinite values, a zero scale, divergence, an
    /// iteration that broke down): a failure of the run.
    Numeric,
    /// A broken invariant or a failure of the machinery (a bug, an API called out of order, a
    /// thread pool that cannot start, a candle error): a failure of the run.
    Internal,
}

impl ErrorKind {
    /// Whether errors of this kind are the user's input ([`EXIT_BAD_INPUT`]): Configuration,
    /// Shape, Data and Io are; Numeric and Internal are failures of the run ([`EXIT_FAILURE`]).
    pub fn is_bad_input(self) -> bool {
        match self {
            ErrorKind::Configuration | ErrorKind::Shape | ErrorKind::Data | ErrorKind::Io => true,
            ErrorKind::Numeric | ErrorKind::Internal => false,
        }
    }

    /// The kind's name in lower case (`configuration`, `shape`, `data`, `io`, `numeric`,
    /// `internal`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Configuration => "configuration",
            ErrorKind::Shape => "shape",
            ErrorKind::Data => "data",
            ErrorKind::Io => "io",
            ErrorKind::Numeric => "numeric",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors returned by the revstab library; the comment on each variant names its
/// [`ErrorKind`].
#[derive(Debug, Error)]
pub enum Error {
    // ---- layer and network configuration ----
    /// A leaky-ReLU slope that is not strictly positive (not invertible) (Configuration).
    #[error(
        "invalid leaky-ReLU slope {slope}: expected a finite slope > 0 (n <= 0 is not invertible)"
    )]
    InvalidSlope { slope: f64 },

    /// A channel count that the layer cannot split or pool (Shape).
    #[error("{layer}: expected {expected} channels, got {got}")]
    BadChannels {
        layer: String,
        expected: String,
        got: usize,
    },

    /// A spatial size that a 2x2 pooling cannot halve (Shape).
    #[error(
        "{layer}: expected a height and width that 2x2 poolings can halve, got {height}x{width}"
    )]
    OddSpatial {
        layer: String,
        height: usize,
        width: usize,
    },

    /// `|gamma + eps_i| == 0` in a batch norm: the inverse would divide by zero
    /// (Numeric).
    #[error("{layer}: |gamma + eps_i| is 0 in channel {channel} (gamma = {gamma}, eps_i = {eps_i}); the inverse would divide by zero")]
    ZeroScale {
        layer: String,
        channel: usize,
        gamma: f64,
        eps_i: f64,
    },

    /// A tensor of the wrong shape (Shape).
    #[error("{context}: expected shape {expected}, got {got:?}")]
    ShapeMismatch {
        context: String,
        expected: String,
        got: Vec<usize>,
    },

    /// NaN or infinite values where they would poison a result (Numeric).
    #[error("{context}: {count} non-finite value(s) in the input (NaN or inf)")]
    NonFinite { context: String, count: usize },

    /// A configuration value that is out of range or inconsistent with another (Configuration).
    /// `context`: the value or field (`depth`, a data spec); `expected`: what it
    /// must be; `got`: what it is.
    #[error("invalid configuration: {context}: expected {expected}, got {got}")]
    Config {
        context: String,
        expected: String,
        got: String,
    },

    /// A configuration file that does not parse or does not fit its schema (Configuration).
    /// `detail`: the parser's message (what it expected, what it found, where).
    #[error("invalid configuration: {path}: {detail}")]
    ConfigFile { path: String, detail: String },

    /// The build lacks the requested device, or the device failed to start (Configuration).
    #[error("device `{requested}` is not available: {reason}")]
    Device { requested: String, reason: String },

    /// An unknown name (architecture, dtype, device...) (Configuration).
    #[error("unknown {kind} `{got}`: expected one of {expected}")]
    Unknown {
        kind: &'static str,
        got: String,
        expected: String,
    },

    // ---- data and files ----
    /// Data whose contents are not what they must be (Data): a label out of range, a result
    /// file of another configuration, a checkpoint or manifest that does not parse.
    #[error("{context}: expected {expected}, got {got}")]
    Data {
        context: String,
        expected: String,
        got: String,
    },

    /// A data file that does not follow its format (Data).
    #[error("{path}: corrupt data at byte offset {offset}: {reason}")]
    CorruptData {
        path: String,
        offset: u64,
        reason: String,
    },

    /// Input/output failure, with the path involved (Io).
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    // ---- numerics ----
    /// A numerical computation that broke down (Numeric): `expected` what it needed, `got`
    /// what it met.
    #[error("{context}: expected {expected}, got {got}")]
    Numeric {
        context: String,
        expected: String,
        got: String,
    },

    /// Training produced a non-finite loss or gradient; says where reconstruction collapsed
    /// (Numeric).
    /// `layer`: the highest layer whose reconstruction SNR collapsed (NaN, -inf or below
    /// 0 dB against the stored activation) on the offending batch, when one did.
    #[error("non-finite loss at step {step}: {diagnosis}")]
    Diverged {
        step: usize,
        diagnosis: String,
        layer: Option<String>,
    },

    /// Another run holds the lock of the output directory (Io) ([`crate::lock::lock_out`]).
    #[error("output directory {path} is in use: another revstab run holds its lock (wait for it to finish, or choose another --out)")]
    Locked { path: String },

    /// The output directory holds the results of another tool (Io) ([`crate::lock::lock_out`]):
    /// writing into it would replace its `run.json` and mix two tools' files.
    #[error("output directory {path} holds the results of `{owner}`; `{tool}` does not write into another tool's directory (choose another --out)")]
    ForeignOut {
        path: String,
        owner: String,
        tool: String,
    },

    // ---- internal ----
    /// An invariant that only a bug (in revstab or in a caller of its API) can break, or a
    /// failure of the machinery (Internal): `context` where, `detail` what went wrong.
    #[error("internal error: {context}: {detail}")]
    Internal { context: String, detail: String },

    /// An error from candle (Internal).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    /// The kind of the error (each variant belongs to exactly one).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidSlope { .. }
            | Error::Config { .. }
            | Error::ConfigFile { .. }
            | Error::Device { .. }
            | Error::Unknown { .. } => ErrorKind::Configuration,
            Error::BadChannels { .. } | Error::OddSpatial { .. } | Error::ShapeMismatch { .. } => {
                ErrorKind::Shape
            }
            Error::Data { .. } | Error::CorruptData { .. } => ErrorKind::Data,
            Error::Io { .. } | Error::Locked { .. } | Error::ForeignOut { .. } => ErrorKind::Io,
            Error::ZeroScale { .. }
            | Error::NonFinite { .. }
            | Error::Numeric { .. }
            | Error::Diverged { .. } => ErrorKind::Numeric,
            Error::Internal { .. } | Error::Candle(_) => ErrorKind::Internal,
        }
    }

    /// Whether the error is the user's input (a value, a name, a file, a busy or unwritable
    /// directory, a device the build lacks) rather than a failure while running (non-finite
    /// values, divergence, a broken invariant, a candle error): follows from [`Error::kind`]
    /// ([`ErrorKind::is_bad_input`]) and decides the exit code ([`exit_code_of`]).
    pub fn is_bad_input(&self) -> bool {
        self.kind().is_bad_input()
    }

    /// [`Error::Config`]: `context` (the value or field) was expected to be `expected`, is
    /// `got`.
    pub fn config(
        context: impl std::fmt::Display,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::Config {
            context: context.to_string(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// [`Error::ConfigFile`] for the configuration file `path` with the parser's `detail`.
    pub fn config_file(path: impl AsRef<std::path::Path>, detail: impl std::fmt::Display) -> Self {
        Error::ConfigFile {
            path: path.as_ref().display().to_string(),
            detail: detail.to_string(),
        }
    }

    /// [`Error::Data`]: the data `context` (a file, a label) was expected to be `expected`, is
    /// `got`.
    pub fn data(
        context: impl std::fmt::Display,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::Data {
            context: context.to_string(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// [`Error::Numeric`]: the computation `context` needed `expected`, met `got`.
    pub fn numeric(
        context: impl std::fmt::Display,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::Numeric {
            context: context.to_string(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    /// This error, met while checking the configuration file `path`, naming the file: an
    /// [`Error::Config`] gets `path` before its context; another bad-input error becomes an
    /// [`Error::ConfigFile`] with its message as the detail (kind Configuration); an
    /// [`Error::ConfigFile`] and a failure of the run stay as they are.
    pub fn in_config_file(self, path: impl AsRef<std::path::Path>) -> Self {
        let path = path.as_ref().display().to_string();
        match self {
            Error::Config {
                context,
                expected,
                got,
            } => Error::Config {
                context: format!("{path}: {context}"),
                expected,
                got,
            },
            Error::ConfigFile { .. } => self,
            e if e.is_bad_input() => Error::ConfigFile {
                path,
                detail: e.to_string(),
            },
            e => e,
        }
    }

    /// [`Error::Internal`]: the invariant or machinery `context` failed with `detail`.
    pub fn internal(context: impl std::fmt::Display, detail: impl std::fmt::Display) -> Self {
        Error::Internal {
            context: context.to_string(),
            detail: detail.to_string(),
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
