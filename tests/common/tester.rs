//! Running `dialtone test` (issue 21's scripted callers) from the tests, and reading its
//! `--json` report.
#![allow(dead_code)]

use super::{dialtone_bin, root, run_bounded};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Runs `dialtone test` with `args`, killed if it outlives `limit`.
pub fn dialtone_test(args: &[&str], limit: Duration) -> Output {
    let mut cmd = Command::new(dialtone_bin());
    cmd.arg("test").args(args).env_remove("DIALTONE_RTP_PORTS").env_remove("DIALTONE_TRUNK");
    run_bounded(cmd, limit)
}

/// `dialtone test <url> --script fixtures/scripts/<script> --calls <calls> --rate <rate>
/// --json <json>`, bounded by `limit`: its output and its `--json` report.
pub fn run_calls(url: &str, script_name: &str, calls: u32, rate: u32, json: &Path, limit: Duration) -> (Output, Value) {
    let (calls, rate) = (calls.to_string(), rate.to_string());
    let args =
        [url, "--script", &script(script_name), "--calls", &calls, "--rate", &rate, "--json", &json.to_string_lossy()];
    let o = dialtone_test(&args, limit);
    let report = read_json(json);
    (o, report)
}

/// Its exit status and output, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A `--json` report (`null` when missing or unreadable).
pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_default()).unwrap_or(Value::Null)
}

/// Every turn's response latency of every call in a `--json` report.
pub fn latencies(report: &Value) -> Vec<i64> {
    report["calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .flat_map(|c| c["turns"].as_array().cloned().unwrap_or_default())
                .filter_map(|t| t["latency_ms"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

/// `fixtures/scripts/<name>`.
pub fn script(name: &str) -> String {
    root().join("fixtures/scripts").join(name).to_string_lossy().to_string()
}
