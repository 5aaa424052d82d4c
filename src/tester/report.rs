//! What `dialtone test` reports: each call's turns and their expectations, the summary
//! table, the JSON and JUnit files.

use serde::Serialize;
use std::fmt::Write as _;

/// One expectation of one turn.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The script's key (`expect_answer_within_ms`, …).
    pub expectation: &'static str,
    /// What it asked for.
    pub expected: String,
    /// What was measured (or why nothing was).
    pub measured: String,
    /// Whether it held.
    pub passed: bool,
}

impl Check {
    /// A result.
    pub fn new(expectation: &'static str, expected: String, measured: String, passed: bool) -> Check {
        Check { expectation, expected, measured, passed }
    }
}

/// One turn of one call. Times are ms from the start of the call's audio.
#[derive(Debug, Clone, Serialize)]
pub struct TurnReport {
    /// 1-based.
    pub index: usize,
    /// Its name, text, file or digits.
    pub label: String,
    /// Whether the call got to it.
    pub reached: bool,
    /// The caller started its audio (or digits).
    pub caller_start_ms: Option<u64>,
    /// The caller's last sample.
    pub caller_end_ms: Option<u64>,
    /// The bot's reply started (its speech detected, from its first voiced frame).
    pub reply_start_ms: Option<u64>,
    /// And ended.
    pub reply_end_ms: Option<u64>,
    /// Reply start − caller end.
    pub latency_ms: Option<i64>,
    /// A barge-in turn: when the caller started speaking into the bot's speech.
    pub barge_in_at_ms: Option<u64>,
    /// The bot's speech ended this long after the barge-in.
    pub stop_ms: Option<u64>,
    /// The expected tone arrived then.
    pub tone_at_ms: Option<u64>,
    /// DTMF digits the bot sent in its reply.
    pub dtmf: String,
    /// Its expectations.
    pub checks: Vec<Check>,
}

/// One call.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    /// 1-based.
    pub call: usize,
    /// Why the call failed (not placed, not answered, the bot unreachable), if it did.
    pub error: Option<String>,
    /// How long its audio ran.
    pub duration_ms: u64,
    /// Its turns.
    pub turns: Vec<TurnReport>,
    /// Whether the call went through and every expectation held.
    pub passed: bool,
    /// Where its recording is, when kept.
    pub recording: Option<String>,
}

impl CallReport {
    /// Builds it; `passed` from the error and the checks.
    pub fn new(call: usize, error: Option<String>, duration_ms: u64, turns: Vec<TurnReport>) -> CallReport {
        let passed = error.is_none() && turns.iter().all(|t| t.checks.iter().all(|c| c.passed));
        CallReport { call, error, duration_ms, turns, passed, recording: None }
    }
}

/// Per turn over every call.
#[derive(Debug, Clone, Serialize)]
pub struct TurnSummary {
    /// 1-based.
    pub index: usize,
    /// Its label.
    pub label: String,
    /// Calls where the bot replied.
    pub replies: usize,
    /// Response latency percentiles over those calls.
    pub latency_p50_ms: Option<i64>,
    /// 95th.
    pub latency_p95_ms: Option<i64>,
    /// Largest.
    pub latency_max_ms: Option<i64>,
    /// Expectations that held.
    pub passed: usize,
    /// And that did not.
    pub failed: usize,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The script's name.
    pub script: String,
    /// Who was called.
    pub target: String,
    /// Calls placed.
    pub calls: usize,
    /// Calls that failed (not through).
    pub calls_failed: usize,
    /// Calls where every expectation held.
    pub calls_passed: usize,
    /// Per turn.
    pub turns: Vec<TurnSummary>,
    /// Every call passed.
    pub passed: bool,
}

/// The `p`-th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// Sums the calls up.
pub fn summarize(script: &str, target: &str, calls: &[CallReport]) -> Summary {
    let n_turns = calls.iter().map(|c| c.turns.len()).max().unwrap_or(0);
    let turns = (0..n_turns)
        .map(|i| {
            let of: Vec<&TurnReport> = calls.iter().filter_map(|c| c.turns.get(i)).collect();
            let mut lat: Vec<i64> = of.iter().filter_map(|t| t.latency_ms).collect();
            lat.sort_unstable();
            let checks = of.iter().flat_map(|t| t.checks.iter());
            let passed = checks.clone().filter(|c| c.passed).count();
            TurnSummary {
                index: i + 1,
                label: of.first().map(|t| t.label.clone()).unwrap_or_default(),
                replies: lat.len(),
                latency_p50_ms: percentile(&lat, 50.0),
                latency_p95_ms: percentile(&lat, 95.0),
                latency_max_ms: lat.last().copied(),
                passed,
                failed: checks.count() - passed,
            }
        })
        .collect();
    Summary {
        script: script.to_string(),
        target: target.to_string(),
        calls: calls.len(),
        calls_failed: calls.iter().filter(|c| c.error.is_some()).count(),
        calls_passed: calls.iter().filter(|c| c.passed).count(),
        turns,
        passed: calls.iter().all(|c| c.passed),
    }
}

/// The summary table and one line per failed expectation, for stdout.
pub fn table(s: &Summary, calls: &[CallReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} calls to {}: {} passed, {} failed{}",
        s.script,
        s.calls,
        s.target,
        s.calls_passed,
        s.calls - s.calls_passed,
        if s.calls_failed > 0 { format!(" ({} not through)", s.calls_failed) } else { String::new() }
    );
    let _ = writeln!(
        out,
        "{:>4}  {:<32} {:>7} {:>8} {:>8} {:>8} {:>6} {:>6}",
        "turn", "", "replies", "p50 ms", "p95 ms", "max ms", "pass", "fail"
    );
    let ms = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    for t in &s.turns {
        let label: String = t.label.chars().take(32).collect();
        let _ = writeln!(
            out,
            "{:>4}  {:<32} {:>7} {:>8} {:>8} {:>8} {:>6} {:>6}",
            t.index,
            label,
            t.replies,
            ms(t.latency_p50_ms),
            ms(t.latency_p95_ms),
            ms(t.latency_max_ms),
            t.passed,
            t.failed
        );
    }
    for c in calls {
        if let Some(e) = &c.error {
            // Its expectations all failed with it (the JSON and JUnit reports list them).
            let _ = writeln!(out, "FAIL call {}: {e}", c.call);
            continue;
        }
        for t in &c.turns {
            for k in t.checks.iter().filter(|k| !k.passed) {
                let _ = writeln!(
                    out,
                    "FAIL call {} turn {} ({:?}): {}: measured {}, expected {}",
                    c.call, t.index, t.label, k.expectation, k.measured, k.expected
                );
            }
        }
    }
    let _ = writeln!(out, "{}", if s.passed { "PASS" } else { "FAIL" });
    out
}

/// `--json`: every call and the summary.
pub fn json(s: &Summary, calls: &[CallReport]) -> serde_json::Value {
    serde_json::json!({ "summary": s, "calls": calls })
}

fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

/// `--junit`: one testcase per call × turn expectation (and one per failed call that
/// stated none), failures with what was measured.
pub fn junit(s: &Summary, calls: &[CallReport]) -> String {
    let mut cases = String::new();
    let (mut tests, mut failures) = (0, 0);
    for c in calls {
        let class = xml(&format!("{}.call-{}", s.script, c.call));
        let mut any = false;
        for t in &c.turns {
            for k in &t.checks {
                any = true;
                tests += 1;
                let name = xml(&format!("turn {} ({}): {}", t.index, t.label, k.expectation));
                if k.passed {
                    let _ = writeln!(cases, "    <testcase classname=\"{class}\" name=\"{name}\"/>");
                } else {
                    failures += 1;
                    let msg = xml(&format!("measured {}, expected {}", k.measured, k.expected));
                    let _ = writeln!(
                        cases,
                        "    <testcase classname=\"{class}\" name=\"{name}\">\n      <failure message=\"{msg}\"/>\n    </testcase>"
                    );
                }
            }
        }
        if !any {
            tests += 1;
            let name = "call";
            match &c.error {
                None => {
                    let _ = writeln!(cases, "    <testcase classname=\"{class}\" name=\"{name}\"/>");
                }
                Some(e) => {
                    failures += 1;
                    let _ = writeln!(
                        cases,
                        "    <testcase classname=\"{class}\" name=\"{name}\">\n      <failure message=\"{}\"/>\n    </testcase>",
                        xml(e)
                    );
                }
            }
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\">\n{cases}  </testsuite>\n</testsuites>\n",
        xml(&s.script)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(latency: i64, passed: bool) -> TurnReport {
        TurnReport {
            index: 1,
            label: "hi <there>".into(),
            reached: true,
            caller_start_ms: Some(0),
            caller_end_ms: Some(500),
            reply_start_ms: Some(500 + latency as u64),
            reply_end_ms: None,
            latency_ms: Some(latency),
            barge_in_at_ms: None,
            stop_ms: None,
            tone_at_ms: None,
            dtmf: String::new(),
            checks: vec![Check::new("expect_answer_within_ms", "<= 10 ms".into(), format!("{latency} ms"), passed)],
        }
    }

    #[test]
    fn summary_table_and_junit() {
        let calls: Vec<CallReport> =
            (1..=4).map(|i| CallReport::new(i, None, 1000, vec![turn(i as i64 * 100, i != 3)])).collect();
        let s = summarize("s", "ws://x", &calls);
        assert_eq!((s.calls, s.calls_passed, s.passed), (4, 3, false));
        assert_eq!((s.turns[0].latency_p50_ms, s.turns[0].latency_max_ms), (Some(200), Some(400)));
        let t = table(&s, &calls);
        assert!(t.contains("FAIL call 3 turn 1 (\"hi <there>\"): expect_answer_within_ms: measured 300 ms"), "{t}");
        let j = junit(&s, &calls);
        assert!(j.contains("tests=\"4\" failures=\"1\"") && j.contains("hi &lt;there&gt;"), "{j}");
    }
}
