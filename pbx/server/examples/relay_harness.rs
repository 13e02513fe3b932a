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

use pbx_media::{LegPlan, MediaPlan};

#[path = "common/harness.rs"]
mod harness;

fn leg(port: u16) -> LegPlan {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    LegPlan {
        remote_rtp: Some(SocketAddr::new(lo, port)),
        remote_rtcp: Some(SocketAddr::new(lo, port + 1)),
        ..LegPlan::default()
    }
}

#[tokio::main]
async fn main() -> Result<(), harness::Error> {
    let args: Vec<u16> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let [calls, gen_base, port_min, port_max] = args[..] else {
        return Err("usage: relay_harness CALLS GEN_BASE PORT_MIN PORT_MAX".into());
    };
    harness::relay_calls(
        "relay harness",
        calls,
        gen_base,
        port_min,
        port_max,
        |_, base| MediaPlan {
            caller: leg(base),
            callee: leg(base + 2),
            codec: "PCMU/8000".into(),
        },
    )
    .await
}
