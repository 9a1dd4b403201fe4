//! Typed errors by kind. Every variant of [`Error`] belongs to exactly one
//! [`ErrorKind`]; the kind decides bad input (exit 2) against a failure of the run (exit 1);
//! every kind is reached through the public API with a real bad input or broken invariant, and
//! its message says what was expected and what was got.

use crate::common::exe;
use candle_core::{DType, Device, Tensor};
use revstab::data::Dataset;
use revstab::error::{exit_code_of, one_line, EXIT_BAD_INPUT, EXIT_FAILURE};
use revstab::layers::Tape;
use revstab::measure::lipschitz::{spectral_norm, PowerOptions};
use revstab::nets::{Arch, NetConfig};
use revstab::{Error, ErrorKind};
use std::process::Command;

/// The name of a variant. No wildcard arm: a new variant does not compile until it is named
/// here, in [`one_of_each`] and in the table of [`every_variant_has_one_kind`].
fn variant(e: &Error) -> &'static str {
    match e {
        Error::InvalidSlope { .. } => "InvalidSlope",
        Error::BadChannels { .. } => "BadChannels",
        Error::OddSpatial { .. } => "OddSpatial",
        Error::ZeroScale { .. } => "ZeroScale",
        Error::ShapeMismatch { .. } => "ShapeMismatch",
        Error::NonFinite { .. } => "NonFinite",
        Error::Config { .. } => "Config",
        Error::ConfigFile { .. } => "ConfigFile",
        Error::Device { .. } => "Device",
        Error::Unknown { .. } => "Unknown",
        Error::Data { .. } => "Data",
        Error::CorruptData { .. } => "CorruptData",
        Error::Io { .. } => "Io",
        Error::Numeric { .. } => "Numeric",
        Error::Diverged { .. } => "Diverged",
        Error::Locked { .. } => "Locked",
        Error::ForeignOut { .. } => "ForeignOut",
        Error::Internal { .. } => "Internal",
        Error::Candle(_) => "Candle",
    }
}

/// One error of every variant.
fn one_of_each() -> Vec<Error> {
    vec![
        Error::InvalidSlope { slope: -1.0 },
        Error::BadChannels {
            layer: "coupling".into(),
            expected: "an even count".into(),
            got: 3,
        },
        Error::OddSpatial {
            layer: "pool".into(),
            height: 3,
            width: 4,
        },
        Error::ZeroScale {
            layer: "bn".into(),
            channel: 0,
            gamma: -1.0,
            eps_i: 1.0,
        },
        Error::ShapeMismatch {
            context: "x".into(),
            expected: "(N, C, H, W)".into(),
            got: vec![2, 3],
        },
        Error::NonFinite {
            context: "x".into(),
            count: 1,
        },
        Error::config("depth", ">= 1", 0),
        Error::config_file("c.toml", "line 1, column 1: unknown field `x`"),
        Error::Device {
            requested: "cuda".into(),
            reason: "not built".into(),
        },
        Error::Unknown {
            kind: "architecture",
            got: "lenet".into(),
            expected: "revnet, hybrid".into(),
        },
        Error::data("labels", "labels in 0..2", "label 5"),
        Error::CorruptData {
            path: "f.bin".into(),
            offset: 3,
            reason: "truncated".into(),
        },
        Error::io("f.csv", std::io::Error::from(std::io::ErrorKind::NotFound)),
        Error::numeric("power iteration", "a finite norm", f64::NAN),
        Error::Diverged {
            step: 3,
            diagnosis: "loss nan".into(),
            layer: None,
        },
        Error::Locked { path: "out".into() },
        Error::ForeignOut {
            path: "out".into(),
            owner: "snr-sweep".into(),
            tool: "train single".into(),
        },
        Error::internal("tape", "empty"),
        Error::Candle(candle_core::Error::Msg("candle".into())),
    ]
}

/// The convention of every binary: Configuration, Shape, Data and Io are the user's input.
fn bad_input_kind(k: ErrorKind) -> bool {
    matches!(
        k,
        ErrorKind::Configuration | ErrorKind::Shape | ErrorKind::Data | ErrorKind::Io
    )
}

/// `kind()` of every variant, and bad input (and with it the exit code) following the kind.
#[test]
fn every_variant_has_one_kind() {
    use ErrorKind::*;
    let table = [
        ("InvalidSlope", Configuration),
        ("BadChannels", Shape),
        ("OddSpatial", Shape),
        ("ZeroScale", Numeric),
        ("ShapeMismatch", Shape),
        ("NonFinite", Numeric),
        ("Config", Configuration),
        ("ConfigFile", Configuration),
        ("Device", Configuration),
        ("Unknown", Configuration),
        ("Data", Data),
        ("CorruptData", Data),
        ("Io", Io),
        ("Numeric", Numeric),
        ("Diverged", Numeric),
        ("Locked", Io),
        ("ForeignOut", Io),
        ("Internal", Internal),
        ("Candle", Internal),
    ];
    let errors = one_of_each();
    assert_eq!(errors.len(), table.len());
    for (e, (name, kind)) in errors.into_iter().zip(table) {
        assert_eq!(variant(&e), name);
        assert_eq!(e.kind(), kind, "{name}");
        assert_eq!(e.is_bad_input(), bad_input_kind(kind), "{name}");
        assert_eq!(e.is_bad_input(), kind.is_bad_input(), "{name}");
        let code = exit_code_of(&anyhow::Error::from(e));
        let want = if bad_input_kind(kind) {
            EXIT_BAD_INPUT
        } else {
            EXIT_FAILURE
        };
        assert_eq!(code, want, "{name}");
    }
    let names: Vec<&str> = [Configuration, Shape, Data, Io, Numeric, Internal]
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "configuration",
            "shape",
            "data",
            "io",
            "numeric",
            "internal"
        ]
    );
}

/// Messages of the structured variants say what was expected and what was got.
#[test]
fn structured_variants_say_expected_and_got() {
    assert_eq!(
        Error::config("depth", ">= 1", 0).to_string(),
        "invalid configuration: depth: expected >= 1, got 0"
    );
    assert_eq!(
        Error::data("labels", "labels in 0..2", "label 5").to_string(),
        "labels: expected labels in 0..2, got label 5"
    );
    assert_eq!(
        Error::numeric("power iteration", "a finite norm", "NaN").to_string(),
        "power iteration: expected a finite norm, got NaN"
    );
    assert_eq!(
        Error::internal("tape", "empty").to_string(),
        "internal error: tape: empty"
    );
}

/// Configuration: a bad value through the library and through a binary (exit 2, before any
/// file is written).
#[test]
fn a_bad_config_value_is_a_configuration_error() {
    let cfg = NetConfig {
        depth: 0,
        ..NetConfig::new(Arch::Hybrid)
    };
    let e = cfg.validate().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Configuration, "{e}");
    assert!(e.is_bad_input());
    let text = e.to_string();
    assert!(text.contains("depth: expected >= 1, got 0"), "{text}");

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(exe("train"))
        .args(["--lr", "-0.1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(i32::from(EXIT_BAD_INPUT)), "{err}");
    assert!(
        err.contains("invalid configuration: lr: expected a finite value > 0, got -0.1"),
        "{err}"
    );
    assert_eq!(err.matches("invalid configuration").count(), 1, "{err}");
    assert!(!out.exists());
}

/// Shape: images that are not `(N, C, H, W)`.
#[test]
fn a_wrong_tensor_shape_is_a_shape_error() {
    let images = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
    let labels = Tensor::zeros(2, DType::U32, &Device::Cpu).unwrap();
    let e = Dataset::new(images, labels, 2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Shape, "{e}");
    assert!(e.is_bad_input());
    let text = e.to_string();
    assert!(
        text.contains("expected shape (N, C, H, W), got [2, 3]"),
        "{text}"
    );
}

/// Data: a label out of range, and a snr-sweep output whose manifest is corrupt.
#[test]
fn corrupt_data_is_a_data_error() {
    let images = Tensor::zeros((2, 1, 2, 2), DType::F32, &Device::Cpu).unwrap();
    let labels = Tensor::new(&[0u32, 7], &Device::Cpu).unwrap();
    let e = Dataset::new(images, labels, 2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("expected labels in 0..2") && text.contains("got label 7"),
        "{text}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let points = tmp.path().join("points");
    std::fs::create_dir(&points).unwrap();
    std::fs::write(points.join("manifest.json"), "{ not json").unwrap();
    let e = revstab::experiments::snr_sweep::read_points(tmp.path()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data, "{e}");
    assert!(e.is_bad_input());
    let text = e.to_string();
    assert!(
        text.contains("manifest.json: expected a snr-sweep manifest, got "),
        "{text}"
    );
}

/// Io: a file that cannot be written (its directory is a regular file), with the path; bad
/// input for a binary's --out (exit 2, nothing written).
#[test]
fn an_unwritable_path_is_an_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let path = blocker.join("result.csv");
    let e = revstab::util::write_atomic(&path, b"a,b\n").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("file"), "{e}");

    let out = blocker.join("out");
    let o = Command::new(exe("snr-sweep"))
        .args(["--depths", "1", "--slopes", "0.2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(i32::from(EXIT_BAD_INPUT)), "{err}");
    assert_eq!(std::fs::read(&blocker).unwrap(), b"x");
}

/// Numeric: a NaN input, and a power iteration that breaks down; failures of the run (exit 1).
#[test]
fn a_nan_input_is_a_numeric_error() {
    let mut x = vec![0f32; 8];
    x[3] = f32::NAN;
    let images = Tensor::from_vec(x, (2, 1, 2, 2), &Device::Cpu).unwrap();
    let labels = Tensor::zeros(2, DType::U32, &Device::Cpu).unwrap();
    let e = Dataset::new(images, labels, 2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Numeric, "{e}");
    assert!(!e.is_bad_input());
    assert!(e.to_string().contains("1 non-finite value(s)"), "{e}");
    assert_eq!(exit_code_of(&anyhow::Error::from(e)), EXIT_FAILURE);

    // A map that autograd cannot differentiate (its output is detached from the input): the
    // power iteration gets no J^T J v.
    let x = Tensor::ones((1, 4), DType::F64, &Device::Cpu).unwrap();
    let detached = |t: &Tensor| -> revstab::Result<Tensor> { Ok((t.detach() * 2.0)?) };
    let e = spectral_norm(detached, &x, PowerOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Numeric, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("spectral norm") && text.contains("expected") && text.contains("got"),
        "{text}"
    );
}

/// Internal: a broken invariant (a backward that finds its tape empty) is a failure, and says
/// where and what.
#[test]
fn a_broken_invariant_is_an_internal_error() {
    let e = Tape::new(false).pop("unit3").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
    assert!(!e.is_bad_input());
    assert_eq!(
        e.to_string(),
        "internal error: unit3: backward found no stored input (tape empty)"
    );
    assert_eq!(exit_code_of(&anyhow::Error::from(e)), EXIT_FAILURE);
}

/// Naming the config file keeps one `invalid configuration` prefix, whatever wraps it.
#[test]
fn the_configuration_prefix_is_never_doubled() {
    let e = Error::config("depth", ">= 1", 0).in_config_file("exp/fig05.toml");
    assert_eq!(
        e.to_string(),
        "invalid configuration: exp/fig05.toml: depth: expected >= 1, got 0"
    );
    let e = Error::Unknown {
        kind: "architecture",
        got: "lenet".into(),
        expected: "revnet, hybrid".into(),
    }
    .in_config_file("exp/fig05.toml");
    assert_eq!(e.kind(), ErrorKind::Configuration);
    let text = e.to_string();
    assert_eq!(text.matches("invalid configuration").count(), 1, "{text}");
    assert!(
        text.contains("exp/fig05.toml") && text.contains("lenet"),
        "{text}"
    );
    // A failure of the run is not the file's: it stays as it is.
    let e = Error::internal("tape", "empty").in_config_file("exp/fig05.toml");
    assert_eq!(e.kind(), ErrorKind::Internal);
    let wrapped =
        anyhow::Error::from(Error::config("depth", ">= 1", 0)).context("invalid configuration");
    let line = one_line(&wrapped);
    assert_eq!(line.matches("invalid configuration").count(), 1, "{line}");
}
