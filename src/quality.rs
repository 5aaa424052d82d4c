//! A call's quality over time (issue 17's call detail): each second, per direction, the
//! packets, the loss, the jitter, the round trip and an estimated MOS.
//!
//! Inbound figures are the RTP receiver's own (RFC 3550 A.3 loss, A.8 jitter); outbound
//! ones are what the peer's RTCP receiver reports say of our stream (none without them).
//! The MOS is the ITU-T G.107 E-model's, with its default values for everything not
//! measured: R = 93.2 − Id − Ie,eff, where
//! - Id (delay) is the simplification of G.107's delay terms at their defaults by Cole and
//!   Rosenbluth ("Voice over IP performance monitoring", ACM SIGCOMM CCR 31(2), 2001):
//!   Id = 0.024·Ta + 0.11·(Ta − 177.3)·H(Ta − 177.3), Ta the one-way delay in ms (half the
//!   round trip, the packet time and the receiver's jitter buffer);
//! - Ie,eff = Ie + (95 − Ie)·Ppl / (Ppl/BurstR + Bpl) (G.107 §7.4), random loss
//!   (BurstR = 1), and G.113 Appendix I's values for G.711 with packet loss concealment:
//!   Ie = 0, Bpl = 25.1. G.722 and Opus are scored as G.711 (G.113 gives no narrowband
//!   values for them): the MOS says what the network did to the call, not the codec;
//! - MOS = 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶ (G.107 Annex B), 1 below R = 0 and
//!   4.5 above R = 100.
//!
//! Sans-IO: fed the session's figures, it returns JSON.

use dialtone_media::session::MediaStats;
use serde_json::{json, Value};

/// G.107's R for one-way delay `ta_ms` and packet loss `loss_pct` (G.711 with PLC).
pub fn r_factor(ta_ms: f64, loss_pct: f64) -> f64 {
    let (ie, bpl, burst_r) = (0.0, 25.1, 1.0);
    let id = 0.024 * ta_ms + if ta_ms > 177.3 { 0.11 * (ta_ms - 177.3) } else { 0.0 };
    let ppl = loss_pct.clamp(0.0, 100.0);
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl);
    93.2 - id - ie_eff
}

/// G.107 Annex B: the MOS (conversational quality, estimated) for `r`.
pub fn mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

/// One direction's figures over one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Side {
    packets: u64,
    /// What the loss is a share of: packets expected (inbound), sent (outbound).
    weight: u64,
    loss_pct: Option<f64>,
    jitter_ms: Option<f64>,
    rtt_ms: Option<f64>,
    mos: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    t_ms: u64,
    inbound: Side,
    outbound: Side,
}

/// Samples a call's figures, keeping at most [`Meter::MAX_SAMPLES`]: when full, neighbours
/// are merged and the interval doubles, so a long call keeps its whole length.
#[derive(Debug)]
pub struct Meter {
    codec: String,
    interval_ms: u64,
    packet_ms: f64,
    samples: Vec<Sample>,
    /// The last sample's counters: received, expected, lost, sent.
    last: (u64, u32, i64, u64),
    last_t: u64,
}

impl Meter {
    /// Samples kept at most.
    pub const MAX_SAMPLES: usize = 600;

    /// A meter for a call sending `codec` in `packet_ms` packets, sampled every second.
    pub fn new(codec: &str, packet_ms: f64) -> Meter {
        Meter {
            codec: codec.to_string(),
            interval_ms: 1000,
            packet_ms,
            samples: Vec::new(),
            last: (0, 0, 0, 0),
            last_t: 0,
        }
    }

    /// How often [`Meter::sample`] wants to be called, ms (it doubles as the call grows).
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// The figures at `t_ms` since the media started: a sample of what changed since the
    /// last one.
    pub fn sample(&mut self, t_ms: u64, s: &MediaStats, jitter_buffer_ms: f64) {
        let (rx, expected, lost, tx) = (s.rx.packets, s.rx.expected, s.rx.lost, s.tx_packets);
        let (d_rx, d_expected, d_lost) =
            (rx.saturating_sub(self.last.0), i64::from(expected) - i64::from(self.last.1), lost - self.last.2);
        let d_tx = tx.saturating_sub(self.last.3);
        self.last = (rx, expected, lost, tx);
        if t_ms <= self.last_t && !self.samples.is_empty() {
            return;
        }
        self.last_t = t_ms;
        let rtt_ms = s.remote.and_then(|r| r.round_trip).map(|d| d.as_secs_f64() * 1000.0);
        let half_rtt = rtt_ms.unwrap_or(0.0) / 2.0;
        let inbound = if d_expected > 0 || d_rx > 0 {
            let loss = if d_expected > 0 { (d_lost.max(0) as f64 / d_expected as f64 * 100.0).min(100.0) } else { 0.0 };
            let ta = half_rtt + self.packet_ms + jitter_buffer_ms;
            Side {
                packets: d_rx,
                weight: d_expected.max(0) as u64,
                loss_pct: Some(round(loss, 2)),
                jitter_ms: Some(round(s.rx.jitter_ms, 2)),
                rtt_ms: rtt_ms.map(|r| round(r, 1)),
                mos: Some(round(mos(r_factor(ta, loss)), 2)),
            }
        } else {
            Side::default()
        };
        let outbound = match s.remote {
            Some(r) => {
                let loss = r.fraction_lost * 100.0;
                // The peer's buffer is unknown: twice the jitter it reports.
                let ta = half_rtt + self.packet_ms + 2.0 * r.jitter_ms;
                Side {
                    packets: d_tx,
                    weight: d_tx,
                    loss_pct: Some(round(loss, 2)),
                    jitter_ms: Some(round(r.jitter_ms, 2)),
                    rtt_ms: rtt_ms.map(|r| round(r, 1)),
                    mos: Some(round(mos(r_factor(ta, loss)), 2)),
                }
            }
            None => Side { packets: d_tx, weight: d_tx, ..Side::default() },
        };
        self.samples.push(Sample { t_ms, inbound, outbound });
        if self.samples.len() > Self::MAX_SAMPLES {
            self.halve();
        }
    }

    /// Merges neighbouring samples (sums of packets, loss weighted by packets expected,
    /// worst jitter, round trip and MOS) and doubles the interval.
    fn halve(&mut self) {
        let merged = self
            .samples
            .chunks(2)
            .map(|p| match p {
                [a, b] => Sample {
                    t_ms: b.t_ms,
                    inbound: merge(a.inbound, b.inbound),
                    outbound: merge(a.outbound, b.outbound),
                },
                [a] => *a,
                _ => unreachable!("chunks of two"),
            })
            .collect();
        self.samples = merged;
        self.interval_ms *= 2;
    }

    /// `{codec, interval_ms, samples, summary}` as the API shows them.
    pub fn json(&self) -> Value {
        let side = |s: &Side| {
            json!({"packets": s.packets, "loss_pct": s.loss_pct, "jitter_ms": s.jitter_ms,
                   "rtt_ms": s.rtt_ms, "mos": s.mos})
        };
        let samples: Vec<Value> = self
            .samples
            .iter()
            .map(|s| json!({"t_ms": s.t_ms, "inbound": side(&s.inbound), "outbound": side(&s.outbound)}))
            .collect();
        let summary = |pick: fn(&Sample) -> Side| {
            let sides: Vec<Side> = self.samples.iter().map(pick).filter(|s| s.mos.is_some()).collect();
            let packets: u64 = sides.iter().map(|s| s.weight).sum();
            let weighted: f64 = sides.iter().map(|s| s.loss_pct.unwrap_or(0.0) * s.weight as f64).sum();
            let max = |f: fn(&Side) -> Option<f64>| sides.iter().filter_map(f).reduce(f64::max).map(|v| round(v, 2));
            let mos: Vec<f64> = sides.iter().filter_map(|s| s.mos).collect();
            json!({
                "loss_pct": (!sides.is_empty()).then(|| round(if packets > 0 { weighted / packets as f64 } else { 0.0 }, 2)),
                "jitter_ms_max": max(|s| s.jitter_ms),
                "rtt_ms_max": max(|s| s.rtt_ms),
                "mos_min": mos.iter().copied().reduce(f64::min).map(|v| round(v, 2)),
                "mos_avg": (!mos.is_empty()).then(|| round(mos.iter().sum::<f64>() / mos.len() as f64, 2)),
            })
        };
        json!({
            "codec": self.codec,
            "interval_ms": self.interval_ms,
            "samples": samples,
            "summary": {"inbound": summary(|s| s.inbound), "outbound": summary(|s| s.outbound)},
        })
    }
}

fn merge(a: Side, b: Side) -> Side {
    let (packets, weight) = (a.packets + b.packets, a.weight + b.weight);
    let loss = match (a.loss_pct, b.loss_pct) {
        (Some(x), Some(y)) if weight > 0 => Some(round((x * a.weight as f64 + y * b.weight as f64) / weight as f64, 2)),
        (x, y) => x.or(y),
    };
    let worst = |x: Option<f64>, y: Option<f64>, f: fn(f64, f64) -> f64| match (x, y) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (x, y) => x.or(y),
    };
    Side {
        packets,
        weight,
        loss_pct: loss,
        jitter_ms: worst(a.jitter_ms, b.jitter_ms, f64::max),
        rtt_ms: worst(a.rtt_ms, b.rtt_ms, f64::max),
        mos: worst(a.mos, b.mos, f64::min),
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_e_model_gives_g107s_figures() {
        // No loss, little delay: R = 93.2 − 0.024·Ta, MOS ≈ 4.4 (G.107's default R is 93.2, MOS 4.41).
        assert!((mos(93.2) - 4.41).abs() < 0.01, "{}", mos(93.2));
        assert!((r_factor(0.0, 0.0) - 93.2).abs() < 1e-9);
        // Annex B's ends and its R = 50 (MOS 2.58) and R = 70 (3.60) points.
        assert_eq!((mos(-5.0), mos(120.0)), (1.0, 4.5));
        assert!((mos(50.0) - 2.575).abs() < 0.001, "{}", mos(50.0));
        assert!((mos(70.0) - 3.6).abs() < 0.01, "{}", mos(70.0));
        // 5 % random loss with G.711 PLC (Bpl 25.1): Ie,eff = 95·5/30.1 = 15.8.
        assert!((r_factor(0.0, 5.0) - (93.2 - 95.0 * 5.0 / 30.1)).abs() < 1e-9);
        // Delay past 177.3 ms costs more per ms.
        let (near, far) = (r_factor(150.0, 0.0) - r_factor(170.0, 0.0), r_factor(300.0, 0.0) - r_factor(320.0, 0.0));
        assert!(far > near * 4.0, "{near} {far}");
    }

    fn stats(rx: u64, expected: u32, lost: i64, tx: u64) -> MediaStats {
        let mut s = MediaStats::default();
        s.rx.packets = rx;
        s.rx.expected = expected;
        s.rx.lost = lost;
        s.rx.jitter_ms = 1.5;
        s.tx_packets = tx;
        s
    }

    #[test]
    fn samples_each_interval_and_halves_when_full() {
        let mut m = Meter::new("PCMU", 20.0);
        m.sample(1000, &stats(50, 50, 0, 50), 40.0);
        m.sample(2000, &stats(95, 100, 5, 100), 40.0);
        let v = m.json();
        assert_eq!(v["samples"][0]["inbound"]["loss_pct"], 0.0);
        assert_eq!(v["samples"][1]["inbound"]["loss_pct"], 10.0);
        assert_eq!(v["samples"][1]["inbound"]["packets"], 45);
        assert!(
            v["samples"][1]["inbound"]["mos"].as_f64().unwrap() < v["samples"][0]["inbound"]["mos"].as_f64().unwrap()
        );
        assert_eq!(v["samples"][0]["outbound"]["mos"], Value::Null, "no RTCP from the peer");
        assert_eq!(v["summary"]["inbound"]["loss_pct"], 5.0, "5 of the 100 expected");
        assert_eq!(v["summary"]["outbound"]["mos_min"], Value::Null);
        let mut long = Meter::new("PCMU", 20.0);
        for i in 1..=(Meter::MAX_SAMPLES as u64 + 1) {
            long.sample(i * 1000, &stats(i * 50, (i * 50) as u32, 0, i * 50), 40.0);
        }
        let v = long.json();
        assert_eq!(v["interval_ms"], 2000);
        assert_eq!(v["samples"].as_array().unwrap().len(), Meter::MAX_SAMPLES / 2 + 1);
        assert_eq!(v["samples"][0]["inbound"]["packets"], 100);
    }
}
