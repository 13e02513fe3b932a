//! The phones: two UDP sockets per call, paced G.711 senders and timestamping receivers.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use crate::measure::Jitter;

/// G.711 at 8 kHz: 160 bytes per 20 ms.
pub const PAYLOAD: usize = 160;
/// One slot per millisecond of the 20 ms packet time (RFC 3551 §4.5.14 G.711 framing).
const SLOTS: u64 = 20;

/// Phase carried in each packet so only packets sent inside the measurement window count.
pub const WARMUP: u8 = 0;
pub const MEASURE: u8 = 1;
pub const COOLDOWN: u8 = 2;

pub struct Phone {
    pub socket: Arc<UdpSocket>,
    /// The PBX port this phone sends to.
    pub pbx: SocketAddr,
}

pub struct Shared {
    pub base: Instant,
    pub phase: AtomicU8,
    pub stop: AtomicBool,
    pub sent_in_window: AtomicU64,
    pub send_errors: AtomicU64,
}

/// What one receiving phone saw of packets sent during the window.
pub struct Received {
    pub packets: u64,
    pub latency_us: Vec<u32>,
    pub jitter_us: f64,
}

pub async fn bind(port: u16) -> std::io::Result<Arc<UdpSocket>> {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).await?;
    Ok(Arc::new(s))
}

/// Sends one packet per phone every 20 ms, phones spread over 20 one-millisecond slots so
/// the load is smooth, as it is from real phones that are not synchronised.
pub async fn pace(phones: Arc<Vec<Phone>>, shared: Arc<Shared>) {
    let mut pkt = [0u8; 12 + PAYLOAD];
    pkt[0] = 0x80; // V=2, PT 0 (PCMU)
    let mut tick: u64 = 0;
    let start = tokio::time::Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep_until(start + Duration::from_millis(tick)).await;
        let slot = tick % SLOTS;
        let round = tick / SLOTS;
        let phase = shared.phase.load(Ordering::Relaxed);
        for (i, phone) in phones
            .iter()
            .enumerate()
            .skip(slot as usize)
            .step_by(SLOTS as usize)
        {
            let seq = round as u16;
            pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            pkt[4..8].copy_from_slice(&((round as u32).wrapping_mul(160)).to_be_bytes());
            pkt[8..12].copy_from_slice(&(i as u32).to_be_bytes());
            let sent_ns = shared.base.elapsed().as_nanos() as u64;
            pkt[12..20].copy_from_slice(&sent_ns.to_be_bytes());
            pkt[20] = phase;
            match phone.socket.try_send_to(&pkt, phone.pbx) {
                Ok(_) if phase == MEASURE => {
                    shared.sent_in_window.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => {
                    shared.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tick += 1;
    }
}

/// Receives on one phone until stopped; keeps the latency of window packets.
pub async fn receive(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Received {
    let mut buf = [0u8; 2048];
    let mut out = Received {
        packets: 0,
        latency_us: Vec::new(),
        jitter_us: 0.0,
    };
    let mut jitter = Jitter::default();
    loop {
        // No per-packet timer: at 200k packets/s the generator's own timers would cost more
        // than the relay under test.
        let n = tokio::select! {
            r = socket.recv(&mut buf) => match r {
                Ok(n) => n,
                Err(_) => continue,
            },
            _ = stop.changed() => break,
        };
        if n < 21 || buf[20] != MEASURE {
            continue;
        }
        let now_ns = shared.base.elapsed().as_nanos() as i64;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&buf[12..20]);
        let transit = now_ns - u64::from_be_bytes(ts) as i64;
        out.packets += 1;
        out.latency_us
            .push((transit / 1000).clamp(0, i64::from(u32::MAX)) as u32);
        jitter.update(transit);
    }
    out.jitter_us = jitter.micros();
    out
}
