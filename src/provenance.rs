//! What produced a result: the source revision fixed at build time (see `build.rs`), the
//! compiler and candle versions, the command line, the start time, the host CPU (model, vendor,
//! the instruction-set extensions detected, the L1 data cache) and the code paths the CPU
//! kernels take on it. Every `run.json` records [`record`] under `provenance` (and
//! [`git_revision`] as `git_revision`); every figure's caption names the CPU and the kernel
//! paths of the run that computed its results ([`cpu_summary`],
//! [`crate::backend::cpu::kernel_paths`]).

use std::sync::OnceLock;
use std::time::SystemTime;

/// `git rev-parse --short HEAD` of the source tree the binary was built from, `unknown` when it
/// was not a git checkout. Fixed at build time: running from inside another repository does not
/// change it.
pub const GIT_REVISION: &str = env!("REVSTAB_GIT_REVISION");
/// `true` when tracked files outside `figures/` had uncommitted changes at build time, `false`
/// when clean, `unknown` without git.
pub const GIT_DIRTY: &str = env!("REVSTAB_GIT_DIRTY");
/// `rustc --version` of the compiler that built the binary.
pub const RUSTC_VERSION: &str = env!("REVSTAB_RUSTC_VERSION");
/// The version of `candle-core` the binary was built with (from `Cargo.lock`).
pub const CANDLE_VERSION: &str = env!("REVSTAB_CANDLE_VERSION");

/// The revision as recorded in result files: [`GIT_REVISION`], with `-dirty` appended when
/// [`GIT_DIRTY`] is `true`; `unknown` without git.
pub fn git_revision() -> String {
    if GIT_DIRTY == "true" {
        format!("{GIT_REVISION}-dirty")
    } else {
        GIT_REVISION.to_string()
    }
}

static STARTED: OnceLock<SystemTime> = OnceLock::new();

/// The start time of this run: fixed by the first call (every binary calls it first thing in
/// `main`), the same for every file the run writes.
pub fn started() -> SystemTime {
    *STARTED.get_or_init(SystemTime::now)
}

/// [`started`] in UTC, RFC 3339 to the second (`2026-12-03T15:26:14Z`).
pub fn started_utc() -> String {
    humantime::format_rfc3339_seconds(started()).to_string()
}

/// The command line of this process, one string per argument.
pub fn command_line() -> Vec<String> {
    std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

/// The host CPU's model name (`model name` of `/proc/cpuinfo` on Linux), else the architecture.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The host CPU's vendor (`vendor_id` of `/proc/cpuinfo` on Linux: `GenuineIntel`,
/// `AuthenticAMD`), `unknown` where it is not found.
pub fn cpu_vendor() -> String {
    cpuinfo_field("vendor_id").unwrap_or_else(|| "unknown".into())
}

/// The first `key : value` line of `/proc/cpuinfo` with this key, its value.
fn cpuinfo_field(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The instruction-set extensions of the host CPU that decide which code the kernels, `gemm`
/// and candle run, as detected at run time (the names of `is_x86_feature_detected!`; the AMX
/// tiles from the `flags` of `/proc/cpuinfo`, `amx-tile`, `amx-bf16`, `amx-int8`, `amx-fp16`).
/// Empty off x86-64.
pub fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut v: Vec<&'static str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! detect {
            ($($f:tt),*) => { $( if is_x86_feature_detected!($f) { v.push($f); } )* };
        }
        detect!(
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512dq",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "avx512bf16",
            "avx512fp16"
        );
        let flags = cpuinfo_field("flags").unwrap_or_default();
        let flags: Vec<&str> = flags.split_whitespace().collect();
        for (flag, name) in [
            ("amx_tile", "amx-tile"),
            ("amx_bf16", "amx-bf16"),
            ("amx_int8", "amx-int8"),
            ("amx_fp16", "amx-fp16"),
        ] {
            if flags.contains(&flag) {
                v.push(name);
            }
        }
    }
    v
}

/// The L1 data cache of the first CPU as `gemm` reads it on Linux (the `cache` directory of
/// `/sys/devices/system/cpu/cpu0`): size and ways, e.g. `32K 8-way`; `unknown` where it is not
/// found. candle's matrix
/// products (`gemm`) cut long reductions into blocks whose length follows from it
/// ([`crate::backend::cpu::im2col::gemm_splits_by_cache`]), so their rounding depends on it.
pub fn l1d_cache() -> String {
    let dir = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let read = |p: std::path::PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let found = std::fs::read_dir(dir).ok().and_then(|entries| {
        entries.flatten().find_map(|e| {
            let p = e.path();
            let level = read(p.join("level"))?;
            let kind = read(p.join("type"))?;
            if level != "1" || kind != "Data" {
                return None;
            }
            Some(format!(
                "{} {}-way",
                read(p.join("size"))?,
                read(p.join("ways_of_associativity"))?
            ))
        })
    });
    found.unwrap_or_else(|| "unknown".into())
}

/// The host CPU on one line: model, then vendor, the extensions of [`cpu_features`] and the L1
/// data cache ([`l1d_cache`]), e.g. `AMD EPYC (AuthenticAMD; avx2 fma f16c; L1d 32K 8-way)`.
pub fn cpu_summary() -> String {
    cpu_line(&cpu_model(), &cpu_vendor(), &cpu_features(), &l1d_cache())
}

/// `model (vendor; features; L1d l1d)`, the features `no extensions detected` when there are
/// none.
fn cpu_line(model: &str, vendor: &str, features: &[&str], l1d: &str) -> String {
    let features = if features.is_empty() {
        "no extensions detected".to_string()
    } else {
        features.join(" ")
    };
    format!("{model} ({vendor}; {features}; L1d {l1d})")
}

/// The CPU and kernel paths recorded in the provenance object of a `run.json` ([`record`]) on
/// one line, as a figure's caption gives them (the format of [`cpu_summary`], then `; kernels`
/// and [`crate::backend::cpu::kernel_paths`]); `None` for a `run.json` written before they were
/// recorded.
pub fn cpu_line_of(provenance: &serde_json::Value) -> Option<String> {
    let text = |k: &str| provenance.get(k).and_then(|v| v.as_str());
    let features: Vec<&str> = provenance
        .get("cpu_features")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let cpu = cpu_line(
        text("host_cpu")?,
        text("cpu_vendor")?,
        &features,
        text("cpu_l1d")?,
    );
    Some(format!("{cpu}; kernels {}", text("kernel_paths")?))
}

/// The provenance object of a `run.json`.
pub fn record() -> serde_json::Value {
    serde_json::json!({
        "git_revision": git_revision(),
        "git_commit": GIT_REVISION,
        "git_dirty": GIT_DIRTY,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "rustc_version": RUSTC_VERSION,
        "candle_version": CANDLE_VERSION,
        "command_line": command_line(),
        "started_utc": started_utc(),
        "host_cpu": cpu_model(),
        "cpu_vendor": cpu_vendor(),
        "cpu_features": cpu_features(),
        "cpu_l1d": l1d_cache(),
        "kernel_paths": crate::backend::cpu::kernel_paths(),
        "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "os": std::env::consts::OS,
    })
}

/// Add `provenance` ([`record`]) and `git_revision` to a `run.json` object (anything else is
/// left as it is).
pub fn attach(v: &mut serde_json::Value) {
    if let Some(obj) = v.as_object_mut() {
        obj.insert("git_revision".into(), git_revision().into());
        obj.insert("provenance".into(), record());
    }
}
