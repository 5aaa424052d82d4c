//! The RTP port pool (`DIALTONE_RTP_PORTS`): even ports for RTP, the odd one above for
//! RTCP (RFC 3550 §11), handed out round-robin so a port is not reused at once.

use std::collections::VecDeque;

/// Free RTP ports.
#[derive(Debug)]
pub struct PortPool {
    free: VecDeque<u16>,
}

impl PortPool {
    /// A pool over the inclusive range `lo..=hi`.
    pub fn new(lo: u16, hi: u16) -> PortPool {
        let first = lo + (lo % 2);
        let free = (first..hi).step_by(2).collect();
        PortPool { free }
    }

    /// An even RTP port, if any is free.
    pub fn take(&mut self) -> Option<u16> {
        self.free.pop_front()
    }

    /// Returns a port to the pool.
    pub fn give_back(&mut self, port: u16) {
        self.free.push_back(port);
    }

    /// How many ports are free.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_round_robin() {
        let mut p = PortPool::new(20001, 20007);
        assert_eq!(p.available(), 3);
        let a = p.take().unwrap();
        assert_eq!(a, 20002);
        p.give_back(a);
        assert_eq!(p.take(), Some(20004));
        assert_eq!(p.take(), Some(20006));
        assert_eq!(p.take(), Some(20002));
        assert_eq!(p.take(), None);
    }
}
