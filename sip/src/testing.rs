//! Test harnesses: two [`UserAgent`]s wired in memory, on a clock the test advances
//! (quinn-proto's `Pair` is the model). Nothing here touches a socket or sleeps, so a
//! 32-second Timer B runs in microseconds.

use crate::transport::{Destination, Transport};
use crate::ua::{UaConfig, UaEvent, UserAgent};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Two UAs, `a` and `b`, that hear each other over a perfect in-memory UDP link.
pub struct Pair {
    /// One side.
    pub a: UserAgent,
    /// The other.
    pub b: UserAgent,
    /// `a`'s address (its config's `udp_addr`).
    pub a_addr: Destination,
    /// `b`'s address.
    pub b_addr: Destination,
    /// The simulated clock.
    pub now: Instant,
    /// Events `a` reported, oldest first, until taken.
    pub a_events: Vec<UaEvent>,
    /// Events `b` reported.
    pub b_events: Vec<UaEvent>,
    /// Messages sent so far: (seconds since the start, from `a`, first line).
    pub wire: Vec<(f64, bool, String)>,
    /// Lose everything `b` sends (a peer gone silent).
    pub mute_b: bool,
    start: Instant,
}

fn udp(cfg: &UaConfig) -> Destination {
    let addr = cfg.udp_addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
    Destination { transport: Transport::Udp, addr }
}

impl Pair {
    /// A pair of UAs with these settings (each needs its own `udp_addr`).
    pub fn new(a: UaConfig, b: UaConfig) -> Pair {
        let (a_addr, b_addr) = (udp(&a), udp(&b));
        let now = Instant::now();
        Pair {
            a: UserAgent::new(a),
            b: UserAgent::new(b),
            a_addr,
            b_addr,
            now,
            a_events: Vec::new(),
            b_events: Vec::new(),
            wire: Vec::new(),
            mute_b: false,
            start: now,
        }
    }

    /// Delivers what each side sends to the other until both are quiet.
    pub fn exchange(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit() {
                moved = true;
                self.wire.push(((self.now - self.start).as_secs_f64(), true, first_line(&t.data)));
                self.b.on_datagram(t.data, self.a_addr, self.now);
            }
            while let Some(t) = self.b.poll_transmit() {
                moved = true;
                self.wire.push(((self.now - self.start).as_secs_f64(), false, first_line(&t.data)));
                if !self.mute_b {
                    self.a.on_datagram(t.data, self.b_addr, self.now);
                }
            }
            self.a_events.extend(std::iter::from_fn(|| self.a.poll_event()));
            self.b_events.extend(std::iter::from_fn(|| self.b.poll_event()));
            if !moved {
                return;
            }
        }
        panic!("the two UAs never go quiet");
    }

    /// Advances the clock by `d`, firing both sides' timers in order and delivering what
    /// they send.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..1_000_000 {
            self.exchange();
            match [self.a.poll_timeout(), self.b.poll_timeout()].into_iter().flatten().min() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    return self.exchange();
                }
            }
        }
        panic!("timers keep firing");
    }

    /// `a`'s events so far.
    pub fn take_a(&mut self) -> Vec<UaEvent> {
        std::mem::take(&mut self.a_events)
    }

    /// `b`'s events so far.
    pub fn take_b(&mut self) -> Vec<UaEvent> {
        std::mem::take(&mut self.b_events)
    }
}

fn first_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b).lines().next().unwrap_or("").to_string()
}
