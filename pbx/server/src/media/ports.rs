//! The RTP port pool: even ports for RTP, the next odd one for RTCP (RFC 3550 §11), handed
//! out in rotation.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};

use super::MediaError;

/// Pairs `(port, port + 1)` with `port` even in `[port_min, port_max]`.
pub(crate) struct PortPool {
    first: u16,
    pairs: usize,
    state: Mutex<PoolState>,
}

struct PoolState {
    used: Vec<bool>,
    /// Where the next search starts. Moving past each allocation means a port just freed is
    /// reused only after the whole range went round, so late packets of an ended call do not
    /// land in a new one (and the OS has long closed the old socket).
    cursor: usize,
    in_use: usize,
}

/// A bound pair of sockets; the pair returns to the pool when this is dropped (after the
/// sockets, which are declared first and so dropped first).
pub(crate) struct BoundPair {
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: UdpSocket,
    pub(crate) lease: PortLease,
}

/// One pair taken from the pool; given back on drop, whatever path drops it (task end,
/// abort, panic unwinding, failed allocation).
pub(crate) struct PortLease {
    pool: Arc<PortPool>,
    index: usize,
}

impl PortLease {
    pub(crate) fn port(&self) -> u16 {
        self.pool.port_of(self.index)
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.release(self.index);
    }
}

impl PortPool {
    pub(crate) fn new(port_min: u16, port_max: u16) -> PortPool {
        // Round the start up to even; RTCP needs port + 1 <= port_max.
        let first = port_min.saturating_add(port_min & 1);
        let pairs = if port_max > first {
            usize::from(port_max - first).div_ceil(2)
        } else {
            0
        };
        PortPool {
            first,
            pairs,
            state: Mutex::new(PoolState {
                used: vec![false; pairs],
                cursor: 0,
                in_use: 0,
            }),
        }
    }

    /// Ports (RTP and RTCP) currently held.
    pub(crate) fn ports_in_use(&self) -> usize {
        self.lock().in_use * 2
    }

    /// Binds the next free pair on `ip`, skipping ports the OS refuses (another program
    /// holds them).
    pub(crate) fn bind_pair(self: &Arc<Self>, ip: IpAddr) -> Result<BoundPair, MediaError> {
        for _ in 0..self.pairs {
            let Some(lease) = self.reserve() else { break };
            let port = lease.port();
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port));
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1));
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => return Ok(BoundPair { rtp, rtcp, lease }),
                (rtp, rtcp) => {
                    let err = rtp.err().or(rtcp.err());
                    tracing::debug!(port, error = ?err, "RTP port pair refused by the OS, skipped");
                }
            }
        }
        Err(MediaError::PortsExhausted {
            in_use: self.ports_in_use(),
        })
    }

    fn reserve(self: &Arc<Self>) -> Option<PortLease> {
        let mut st = self.lock();
        let n = self.pairs;
        let index = (0..n).map(|i| (st.cursor + i) % n).find(|&i| !st.used[i])?;
        st.used[index] = true;
        st.in_use += 1;
        st.cursor = (index + 1) % n;
        let ports = st.in_use * 2;
        drop(st);
        metrics::gauge!("pbx_media_ports_allocated").set(ports as f64);
        Some(PortLease {
            pool: Arc::clone(self),
            index,
        })
    }

    fn release(&self, index: usize) {
        let mut st = self.lock();
        if let Some(slot) = st.used.get_mut(index).filter(|u| **u) {
            *slot = false;
            st.in_use -= 1;
        }
        let ports = st.in_use * 2;
        drop(st);
        metrics::gauge!("pbx_media_ports_allocated").set(ports as f64);
    }

    fn port_of(&self, index: usize) -> u16 {
        // index < pairs, so this stays within [first, port_max - 1].
        self.first + 2 * index as u16
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state stays consistent even if a holder panicked: every update is one step.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn range_is_even_pairs() {
        assert_eq!(PortPool::new(10001, 10006).pairs, 2); // 10002/3, 10004/5
        assert_eq!(PortPool::new(10000, 10001).pairs, 1);
        assert_eq!(PortPool::new(10000, 10000).pairs, 0);
        assert_eq!(PortPool::new(20000, 10000).pairs, 0);
    }

    #[test]
    fn rotates_skips_refused_and_runs_out() {
        // Find a free range by binding a probe.
        let probe = UdpSocket::bind((LO, 0)).expect("probe");
        let base = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        let pool = Arc::new(PortPool::new(
            base.wrapping_add(100),
            base.wrapping_add(107),
        ));
        let first = pool.bind_pair(LO).expect("first");
        let p1 = first.lease.port();
        drop(first);
        let second = pool.bind_pair(LO).expect("second");
        assert_ne!(
            second.lease.port(),
            p1,
            "a just-freed pair is not reused at once"
        );
        // Someone else holds the next pair: it is skipped.
        let squatter = UdpSocket::bind((LO, second.lease.port() + 2)).ok();
        let third = pool.bind_pair(LO).expect("third");
        if squatter.is_some() {
            assert_ne!(third.lease.port(), second.lease.port() + 2);
        }
        assert_eq!(pool.ports_in_use(), 4);
        let mut held = vec![second, third];
        while let Ok(p) = pool.bind_pair(LO) {
            held.push(p);
        }
        assert!(held.len() <= 4);
        assert!(matches!(
            pool.bind_pair(LO),
            Err(MediaError::PortsExhausted { .. })
        ));
        held.clear();
        assert_eq!(pool.ports_in_use(), 0);
    }
}
