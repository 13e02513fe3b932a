//! What the benchmark harnesses share with their generators (`bench/media-bench`,
//! `pbx-media`'s `webrtc_load`): the PBX's `MediaService` on loopback, and the protocol on
//! stdin/stdout. `STARTED`, then wait for `GO` (the generator reads the baseline RSS in
//! between); `PORTS i caller callee` per session and `READY`; run until stdin closes.

// Each harness includes this file and uses only part of it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use pbx::media::{MediaService, MediaSession};
use pbx_media::{MediaPlan, Side};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

pub type Error = Box<dyn std::error::Error>;

/// Prints `STARTED` and returns once the generator says `GO`.
pub async fn started() -> Result<Lines<BufReader<Stdin>>, Error> {
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    println!("STARTED");
    while stdin.next_line().await?.as_deref() != Some("GO") {}
    Ok(stdin)
}

/// The media service on 127.0.0.1, its ports from `port_min` to `port_max`.
pub fn media(port_min: u16, port_max: u16) -> Result<Arc<MediaService>, Error> {
    Ok(MediaService::new(
        port_min,
        port_max,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        Duration::from_secs(3600),
    )?)
}

/// Relays `calls` calls, call i planned by `plan(i, GEN_BASE + 4i)`, until stdin closes; then
/// says how many packets were relayed.
pub async fn relay_calls(
    name: &str,
    calls: u16,
    gen_base: u16,
    port_min: u16,
    port_max: u16,
    plan: impl Fn(u16, u16) -> MediaPlan,
) -> Result<(), Error> {
    let mut stdin = started().await?;
    let media = media(port_min, port_max)?;
    let mut sessions: Vec<MediaSession> = Vec::with_capacity(usize::from(calls));
    for i in 0..calls {
        let session = media.allocate(format!("bench-{i}"), Box::new(|_| {}))?;
        session.apply(plan(i, gen_base + 4 * i));
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
    eprintln!("{name}: {relayed} packets relayed");
    Ok(())
}
