//! The media load script (`benches/media_load.sh`) at a small size, so that it keeps
//! working: 20 SIPp calls with RTP both ways (SIPp's rtp_stream) against `dialtone serve`
//! echoing and recording them. The figures it reports are checked for sense, not speed.

mod common;

use common::*;
use std::process::Command;
use std::time::Instant;

#[test]
fn media_load_script_runs_20_recorded_calls_without_loss() {
    sipp();
    // Ports below the kernel's ephemeral range and apart from the other tests': SIP 25000
    // (SIPp 25001, the HTTP API 28030), SIPp's media 25100 (and 25102), RTP 47000-47199.
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["120", "benches/media_load.sh", "--calls", "20", "--hold", "17", "--record"])
        .args(["--sip-port", "25000", "--media-port", "25100", "--rtp-ports", "47000-47199"])
        .env("DIALTONE_BIN", dialtone_bin())
        .current_dir(root())
        .output()
        .expect("run benches/media_load.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(out.status.success(), "media_load.sh failed ({:?}):\n{all}", out.status);
    eprintln!("{stdout}\n(took {:.1} s)", started.elapsed().as_secs_f64());
    assert!(stdout.contains("media load: 20 calls, pcmu, record=on"), "{all}");
    assert!(stdout.contains("calls up in the window:  20 at start, 20 at end"), "{all}");
    assert!(stdout.contains("successful 20, failed 0"), "{all}");
    // dialtone's own totals: every call's media ended, packets arrived, none lost.
    let line = stdout.lines().find(|l| l.contains("dialtone media line:")).unwrap_or_else(|| panic!("{all}"));
    let field = |k: &str| -> u64 {
        let at = line.find(&format!(" {k}=")).unwrap_or_else(|| panic!("no {k} in {line}"));
        line[at + k.len() + 2..].split_whitespace().next().unwrap().trim_matches('"').parse().unwrap()
    };
    assert_eq!(field("calls"), 20, "{line}");
    // 20 calls × 17 s × 50 packets/s = 17,000, less what was in flight at the ends.
    assert!(field("rx_packets") > 15_000, "{line}");
    assert_eq!(field("rx_lost"), 0, "{line}");
    assert!(stdout.contains("loss (dialtone):         0.000 %"), "{all}");
    // The echo came back at the rate SIPp sent.
    let echo = stdout.lines().find(|l| l.trim_start().starts_with("echo:")).unwrap_or_else(|| panic!("{all}"));
    let pct: f64 = echo
        .split("came back to SIPp (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no echo rate in {echo}"));
    assert!(pct >= 95.0, "{echo}");
}
