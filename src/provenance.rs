//! What produced a result: the source revision fixed at build time (see `build.rs`), the
//! compiler and candle versions, the command line, the start time and the host CPU. Every
//! `run.json` records [`record`] under `provenance` (and [`git_revision`] as `git_revision`).

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
