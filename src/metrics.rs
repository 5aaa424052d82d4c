//! The engine's figures for `/metrics` (Prometheus text), published by the SIP loop as
//! atomics and rendered by the HTTP API.

use crate::engine::Counters;
use crate::media_io::Totals;
use dialtone_sip::perimeter::PerimeterStats;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The engine's figures for `/metrics`, published by the SIP loop.
#[derive(Default, Debug)]
pub struct EngineMetrics {
    offered: AtomicU64,
    answered: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    active: AtomicU64,
    sip_dropped: AtomicU64,
    perimeter_refused: AtomicU64,
    perimeter_blocked: AtomicU64,
    sources_blocked: AtomicU64,
    /// Every trunk's status (the API's `GET /api/trunks` reads it too).
    pub trunks: std::sync::Arc<std::sync::Mutex<Vec<dialtone_api::http::TrunkStatus>>>,
}

impl EngineMetrics {
    /// Per trunk: up, calls on it, the last OPTIONS round trip.
    fn render_trunks(&self, out: &mut String) {
        use std::fmt::Write;
        let Ok(trunks) = self.trunks.lock() else { return };
        if trunks.is_empty() {
            return;
        }
        let label = |s: &dialtone_api::http::TrunkStatus| s.name.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str("# HELP dialtone_trunk_up Whether the trunk answers (its OPTIONS, when probed).\n# TYPE dialtone_trunk_up gauge\n");
        for s in trunks.iter() {
            let _ = writeln!(out, "dialtone_trunk_up{{trunk=\"{}\"}} {}", label(s), u8::from(s.up));
        }
        out.push_str("# HELP dialtone_trunk_calls Calls on the trunk now.\n# TYPE dialtone_trunk_calls gauge\n");
        for s in trunks.iter() {
            let _ = writeln!(out, "dialtone_trunk_calls{{trunk=\"{}\"}} {}", label(s), s.calls);
        }
        out.push_str("# HELP dialtone_trunk_options_rtt_seconds The last OPTIONS round trip.\n# TYPE dialtone_trunk_options_rtt_seconds gauge\n");
        for s in trunks.iter().filter(|s| s.options_rtt_ms.is_some()) {
            let rtt = s.options_rtt_ms.unwrap_or(0) as f64 / 1000.0;
            let _ = writeln!(out, "dialtone_trunk_options_rtt_seconds{{trunk=\"{}\"}} {rtt}", label(s));
        }
    }

    /// Calls up now (as last published).
    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }

    /// Publishes the engine's counters, the calls up, the SIP messages dropped and the
    /// perimeter's counters.
    pub fn publish(&self, c: &Counters, active: usize, dropped: u64, perimeter: PerimeterStats) {
        let set = |a: &AtomicU64, v: u64| a.store(v, Relaxed);
        set(&self.offered, c.offered);
        set(&self.answered, c.answered);
        set(&self.completed, c.completed);
        set(&self.cancelled, c.cancelled);
        set(&self.refused, c.refused);
        set(&self.failed, c.failed);
        set(&self.active, active as u64);
        set(&self.sip_dropped, dropped);
        set(&self.perimeter_refused, perimeter.refused);
        set(&self.perimeter_blocked, perimeter.blocked);
        set(&self.sources_blocked, perimeter.sources_blocked);
    }

    /// Appends the Prometheus lines for these figures and the media `totals`.
    pub fn render(&self, t: &Totals, out: &mut String) {
        use std::fmt::Write;
        self.render_trunks(out);
        let g = |a: &AtomicU64| a.load(Relaxed);
        let _ = write!(
            out,
            "# HELP dialtone_active_calls SIP calls (dialogs) in progress.\n\
             # TYPE dialtone_active_calls gauge\n\
             dialtone_active_calls {}\n\
             # HELP dialtone_sip_calls_total Calls handled, by outcome.\n\
             # TYPE dialtone_sip_calls_total counter\n",
            g(&self.active)
        );
        for (outcome, a) in [
            ("offered", &self.offered),
            ("answered", &self.answered),
            ("completed", &self.completed),
            ("cancelled", &self.cancelled),
            ("refused", &self.refused),
            ("failed", &self.failed),
        ] {
            let _ = writeln!(out, "dialtone_sip_calls_total{{outcome=\"{outcome}\"}} {}", g(a));
        }
        let _ = write!(
            out,
            "# HELP dialtone_sip_dropped_total SIP messages dropped (malformed, unmatched).\n\
             # TYPE dialtone_sip_dropped_total counter\n\
             dialtone_sip_dropped_total {}\n\
             # HELP dialtone_sip_perimeter_total SIP requests the perimeter did not let in: refused (403 or dropped) for their source, or ignored from a blocked source.\n\
             # TYPE dialtone_sip_perimeter_total counter\n\
             dialtone_sip_perimeter_total{{result=\"refused\"}} {}\n\
             dialtone_sip_perimeter_total{{result=\"blocked\"}} {}\n\
             # HELP dialtone_sip_sources_blocked_total Source addresses blocked for too many refused requests.\n\
             # TYPE dialtone_sip_sources_blocked_total counter\n\
             dialtone_sip_sources_blocked_total {}\n\
             # HELP dialtone_media_streams Media streams running.\n\
             # TYPE dialtone_media_streams gauge\n\
             dialtone_media_streams {}\n\
             # HELP dialtone_rtp_packets_total RTP packets, by direction.\n\
             # TYPE dialtone_rtp_packets_total counter\n\
             dialtone_rtp_packets_total{{direction=\"rx\"}} {}\n\
             dialtone_rtp_packets_total{{direction=\"tx\"}} {}\n\
             # HELP dialtone_rtp_lost_total RTP packets lost (RFC 3550 A.3).\n\
             # TYPE dialtone_rtp_lost_total counter\n\
             dialtone_rtp_lost_total {}\n\
             # HELP dialtone_rtp_late_total RTP packets that came after their playout time.\n\
             # TYPE dialtone_rtp_late_total counter\n\
             dialtone_rtp_late_total {}\n\
             # HELP dialtone_rtp_concealed_total Audio frames concealed.\n\
             # TYPE dialtone_rtp_concealed_total counter\n\
             dialtone_rtp_concealed_total {}\n\
             # HELP dialtone_ring_drops_total Frames dropped by a full ring or refused by the kernel.\n\
             # TYPE dialtone_ring_drops_total counter\n\
             dialtone_ring_drops_total {}\n",
            g(&self.sip_dropped),
            g(&self.perimeter_refused),
            g(&self.perimeter_blocked),
            g(&self.sources_blocked),
            g(&t.running),
            g(&t.rx_packets),
            g(&t.tx_packets),
            g(&t.rx_lost),
            g(&t.rx_late),
            g(&t.concealed),
            g(&t.ring_drops),
        );
        crate::agent::render_metrics(out);
    }
}
