//! Relay-only harness for `bench/media-bench`: the PBX's `MediaService` in a process of its
//! own, so the generator can measure this process's CPU and memory apart from its own.
//!
//! `relay_harness CALLS GEN_BASE PORT_MIN PORT_MAX`
//!
//! Protocol on stdin/stdout: prints `STARTED`, waits for `GO` (the generator reads the
//! baseline RSS in between), allocates CALLS sessions whose caller leg points at
//! 127.0.0.1:GEN_BASE+4i and callee leg at GEN_BASE+4i+2, prints `PORTS i caller callee`
//! for each and `READY`, then relays until stdin closes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use pbx::media::{MediaService, MediaSession};
use pbx_media::{LegPlan, MediaPlan, Side};
use tokio::io::{AsyncBufReadExt, BufReader};

fn leg(port: u16) -> LegPlan {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    LegPlan {
        remote_rtp: Some(SocketAddr::new(lo, port)),
        remote_rtcp: Some(SocketAddr::new(lo, port + 1)),
        ..LegPlan::default()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u16> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let [calls, gen_base, port_min, port_max] = args[..] else {
        return Err("usage: relay_harness CALLS GEN_BASE PORT_MIN PORT_MAX".into());
    };
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    println!("STARTED");
    while stdin.next_line().await?.as_deref() != Some("GO") {}

    let media = MediaService::new(
        port_min,
        port_max,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        Duration::from_secs(3600),
    )?;
    let mut sessions: Vec<MediaSession> = Vec::with_capacity(usize::from(calls));
    for i in 0..calls {
        let session = media.allocate(format!("bench-{i}"), Box::new(|_| {}))?;
        let base = gen_base + 4 * i;
        session.apply(MediaPlan {
            caller: leg(base),
            callee: leg(base + 2),
            codec: "PCMU/8000".into(),
        });
        println!(
            "PORTS {i} {} {}",
            session.port(Side::Caller),
            session.port(Side::Callee)
        );
        sessions.push(session);
    }
    println!("READY");
    while stdin.next_line().await?.is_some() {}
    let relayed: u64 = sessions
        .iter()
        .map(|s| s.stats().relayed_total().packets)
        .sum();
    eprintln!("relay harness: {relayed} packets relayed");
    Ok(())
}
