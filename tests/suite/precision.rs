//! `Precision` and `DeviceSpec`: the typed `dtype` and `device` of every config.
//! Their text (TOML, JSON, `Display`) is the text configs held as strings before, so cache keys
//! and result files do not change; bad names keep the old errors.

use candle_core::DType;
use clap::Parser;
use revstab::device::{DeviceSpec, Precision};
use revstab::error::Error;
use revstab::experiments::figures::ExperimentConfig;
use revstab::experiments::snr_sweep::SweepConfig;
use revstab::train::TrainConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A one-field document, to see a value as TOML and JSON write it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Doc<T> {
    v: T,
}

/// `value` written as TOML and JSON is `text`, and both read back to `value`; `Display` is
/// `text` and `FromStr` of it is `value`.
fn round_trip<T>(value: T, text: &str)
where
    T: Serialize
        + for<'de> Deserialize<'de>
        + std::fmt::Display
        + std::str::FromStr<Err = Error>
        + PartialEq
        + std::fmt::Debug
        + Copy,
{
    let toml_text = toml::to_string(&Doc { v: value }).unwrap();
    assert_eq!(toml_text.trim(), format!("v = \"{text}\""));
    assert_eq!(toml::from_str::<Doc<T>>(&toml_text).unwrap().v, value);
    let json = serde_json::to_string(&Doc { v: value }).unwrap();
    assert_eq!(json, format!("{{\"v\":\"{text}\"}}"));
    assert_eq!(serde_json::from_str::<Doc<T>>(&json).unwrap().v, value);
    assert_eq!(value.to_string(), text);
    assert_eq!(text.parse::<T>().unwrap(), value);
}

#[test]
fn every_precision_round_trips_through_toml_json_and_text() {
    let names = ["f16", "bf16", "f32", "f64"];
    let dtypes = [DType::F16, DType::BF16, DType::F32, DType::F64];
    for ((p, name), dtype) in Precision::ALL.into_iter().zip(names).zip(dtypes) {
        round_trip(p, name);
        assert_eq!(p.name(), name);
        assert_eq!(p.dtype(), dtype);
        assert_eq!(Precision::from_dtype(dtype).unwrap(), p);
        assert_eq!(p.size_in_bytes(), dtype.size_in_bytes());
        // Case and surrounding blanks are ignored; the lowercase name is written back.
        let shouted = format!(" {} ", name.to_uppercase());
        assert_eq!(shouted.parse::<Precision>().unwrap(), p);
        let doc: Doc<Precision> = toml::from_str(&format!("v = \"{shouted}\"")).unwrap();
        assert_eq!(
            toml::to_string(&doc).unwrap().trim(),
            format!("v = \"{name}\"")
        );
    }
    assert_eq!(Precision::default(), Precision::F32);
    assert_eq!(
        format!("{:>5}|{:<4}|", Precision::F16, Precision::F32),
        "  f16|f32 |"
    );
    assert!(matches!(
        Precision::from_dtype(DType::U8),
        Err(Error::Unknown { kind: "dtype", .. })
    ));
}

#[test]
fn every_device_spec_round_trips_as_written() {
    let cases = [
        (DeviceSpec::Cpu, "cpu"),
        (DeviceSpec::Cuda(None), "cuda"),
        (DeviceSpec::Cuda(Some(0)), "cuda:0"),
        (DeviceSpec::Cuda(Some(1)), "cuda:1"),
        (DeviceSpec::Metal(None), "metal"),
        (DeviceSpec::Metal(Some(2)), "metal:2"),
    ];
    for (spec, text) in cases {
        round_trip(spec, text);
    }
    // `cuda` stays `cuda` (not `cuda:0`): configs are hashed into cache keys as written.
    assert_ne!("cuda".parse::<DeviceSpec>().unwrap().to_string(), "cuda:0");
    assert_eq!(DeviceSpec::Cuda(None).ordinal(), 0);
    assert_eq!(DeviceSpec::Metal(Some(3)).ordinal(), 3);
    assert_eq!(
        " CUDA:1 ".parse::<DeviceSpec>().unwrap(),
        DeviceSpec::Cuda(Some(1))
    );
    assert_eq!(DeviceSpec::default(), DeviceSpec::Cpu);
    assert!(DeviceSpec::Cpu.is_cpu() && !DeviceSpec::Cuda(None).is_cpu());
    assert!(DeviceSpec::Cpu.open().unwrap().is_cpu());
}

/// The old messages: `unknown dtype `f8`: expected one of f16, bf16, f32, f64`, and the same for
/// devices and ordinals; in a config file the error names the file and the value.
#[test]
fn bad_names_are_the_old_errors() {
    let e = "f8".parse::<Precision>().unwrap_err();
    assert!(
        matches!(&e, Error::Unknown { kind: "dtype", got, .. } if got == "f8"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "unknown dtype `f8`: expected one of f16, bf16, f32, f64"
    );
    let e = "tpu".parse::<DeviceSpec>().unwrap_err();
    assert!(
        matches!(&e, Error::Unknown { kind: "device", got, .. } if got == "tpu"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "unknown device `tpu`: expected one of cpu, cuda[:N], metal[:N]"
    );
    let e = "cuda:x".parse::<DeviceSpec>().unwrap_err();
    assert!(
        matches!(&e, Error::Unknown { kind: "device ordinal", got, .. } if got == "x"),
        "{e:?}"
    );
    // In a config, the serde error carries the same text.
    let e = toml::from_str::<SweepConfig>("dtypes = [\"f8\"]").unwrap_err();
    assert!(e.to_string().contains("unknown dtype `f8`"), "{e}");
    let e = serde_json::from_str::<TrainConfig>(r#"{"device": "tpu"}"#).unwrap_err();
    assert!(e.to_string().contains("unknown device `tpu`"), "{e}");
    let e = ExperimentConfig::from_toml_str(
        "experiment = \"trace\"\ndtype = \"f12\"\n",
        Path::new("bad.toml"),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("bad.toml") && text.contains("unknown dtype `f12`"),
        "{text}"
    );
}

#[test]
fn a_gpu_the_build_lacks_is_a_device_error_naming_the_feature() {
    if !cfg!(feature = "cuda") {
        let e = DeviceSpec::Cuda(None).open().unwrap_err();
        assert!(
            matches!(&e, Error::Device { requested, .. } if requested == "cuda"),
            "{e:?}"
        );
        assert!(e.to_string().contains("--features cuda"), "{e}");
        // A config naming it loads (the name is fine) and fails validation the same way.
        let cfg: TrainConfig = toml::from_str("device = \"cuda\"").unwrap();
        assert_eq!(cfg.device, DeviceSpec::Cuda(None));
        let cfg = SweepConfig {
            device: cfg.device,
            ..SweepConfig::default()
        };
        let e = cfg.validate().unwrap_err();
        assert!(matches!(e, Error::Device { .. }), "{e:?}");
    }
    if !cfg!(feature = "metal") {
        let e = DeviceSpec::Metal(Some(1)).open().unwrap_err();
        assert!(
            matches!(&e, Error::Device { requested, .. } if requested == "metal:1"),
            "{e:?}"
        );
        assert!(e.to_string().contains("--features metal"), "{e}");
    }
}

#[test]
fn configs_load_their_dtype_and_device_typed() {
    let cfg: TrainConfig = toml::from_str("dtype = \"f32\"\ndevice = \"cpu\"").unwrap();
    assert_eq!(cfg.dtype, Precision::F32);
    assert_eq!(cfg.device, DeviceSpec::Cpu);
    let cfg: TrainConfig = toml::from_str("dtype = \"BF16\"").unwrap();
    assert_eq!(cfg.dtype, Precision::BF16);
    let sweep: SweepConfig =
        toml::from_str("dtypes = [\"f16\", \"f64\"]\ndevice = \"cuda:1\"").unwrap();
    assert_eq!(sweep.dtypes, vec![Precision::F16, Precision::F64]);
    assert_eq!(sweep.device, DeviceSpec::Cuda(Some(1)));
    // Written back, the config holds the same strings (what cache keys and run.json hash).
    let json = serde_json::to_value(&sweep).unwrap();
    assert_eq!(json["dtypes"], serde_json::json!(["f16", "f64"]));
    assert_eq!(json["device"], "cuda:1");
    let defaults = serde_json::to_value(SweepConfig::default()).unwrap();
    assert_eq!(defaults["dtypes"], serde_json::json!(["f32"]));
    assert_eq!(defaults["device"], "cpu");
}

/// Every shipped experiment config still loads: the figures' experiments through the figures'
/// loader, the training ones through `train`'s.
#[test]
fn the_shipped_experiment_configs_still_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    for id in ["fig05", "fig06", "fig10", "fig11", "bn-eps", "precision"] {
        let (cfg, _) = revstab::experiments::figures::load_config(id, &dir).unwrap();
        cfg.validate().unwrap();
    }
    let (fig05, _) = revstab::experiments::figures::load_config("fig05", &dir).unwrap();
    match fig05 {
        ExperimentConfig::Alpha(c) => {
            assert_eq!(c.dtypes, vec![Precision::F64, Precision::F32]);
            assert_eq!(c.device, DeviceSpec::Cpu);
        }
        other => panic!("fig05 is an alpha experiment, got {}", other.kind()),
    }
    let (fig10, _) = revstab::experiments::figures::load_config("fig10", &dir).unwrap();
    match fig10 {
        ExperimentConfig::Trace(c) => assert_eq!(c.dtype, Precision::F32),
        other => panic!("fig10 is a trace experiment, got {}", other.kind()),
    }
    let accuracy = revstab::experiments::training::Experiment::from_toml_file(
        &dir.join("accuracy-synthetic.toml"),
    )
    .unwrap();
    match accuracy {
        revstab::experiments::training::Experiment::Accuracy(c) => {
            assert_eq!(c.train.dtype, Precision::F32);
            assert_eq!(c.train.device, DeviceSpec::Cpu);
        }
        _ => panic!("accuracy-synthetic.toml is an accuracy experiment"),
    }
    let bounds = revstab::experiments::snr_sweep::read_bounds(&dir.join("bounds.toml")).unwrap();
    assert_eq!(bounds.defaults.device, DeviceSpec::Cpu);
    assert!(bounds.bounds.iter().any(|b| b.dtype == Precision::BF16));
}

/// The types parse as clap values: `--dtype f32` as before, a bad name a clap error (exit 2).
#[test]
fn clap_parses_both_types() {
    #[derive(Parser, Debug)]
    struct Flags {
        #[arg(long, default_value = "f32")]
        dtype: Precision,
        #[arg(long, value_delimiter = ',')]
        dtypes: Vec<Precision>,
        #[arg(long, default_value = "cpu")]
        device: DeviceSpec,
    }
    let f = Flags::try_parse_from(["t", "--dtypes", "f16,bf16"]).unwrap();
    assert_eq!(
        (f.dtype, f.dtypes, f.device),
        (
            Precision::F32,
            vec![Precision::F16, Precision::BF16],
            DeviceSpec::Cpu
        )
    );
    let f = Flags::try_parse_from(["t", "--dtype", "f64", "--device", "cuda:1"]).unwrap();
    assert_eq!(
        (f.dtype, f.device),
        (Precision::F64, DeviceSpec::Cuda(Some(1)))
    );
    let e = Flags::try_parse_from(["t", "--dtype", "f8"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("unknown dtype `f8`"), "{e}");
    let e = Flags::try_parse_from(["t", "--device", "tpu"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("unknown device `tpu`"), "{e}");
}
