//! The PBX's own endpoints under load, for `bench/media-bench`'s `app_bench`: SESSIONS media
//! sessions in one process, each playing a prompt to (IVR playback) or recording from
//! (voicemail, written by the durable WAV writer) a leg at 127.0.0.1:GEN_BASE+2i.
//!
//! `app_harness play|record SESSIONS GEN_BASE PORT_MIN PORT_MAX`
//!
//! Protocol on stdin/stdout, as `relay_harness`: `STARTED`, wait for `GO`, `PORTS i port` per
//! session, `READY`, then run until stdin closes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use pbx::media::MediaSession;
use pbx::voicemail::recordings::Recordings;
use pbx_media::endpoint::player::{PcmSource, PlayerSpec};
use pbx_media::endpoint::recorder::RecorderSpec;
use pbx_media::g711::Law;
use pbx_media::session::{Command, Event};
use pbx_media::voice::Voice;
use pbx_media::{LegPlan, MediaPlan, Side};

#[path = "common/harness.rs"]
mod harness;

const PTIME: Duration = Duration::from_millis(20);

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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, sessions, gen_base, port_min, port_max] = &args[..] else {
        return Err("usage: app_harness play|record SESSIONS GEN_BASE PORT_MIN PORT_MAX".into());
    };
    let record = match mode.as_str() {
        "play" => false,
        "record" => true,
        other => return Err(format!("mode {other}: play or record").into()),
    };
    let (sessions, gen_base): (u16, u16) = (sessions.parse()?, gen_base.parse()?);
    let (port_min, port_max): (u16, u16) = (port_min.parse()?, port_max.parse()?);
    let mut stdin = harness::started().await?;
    let media = harness::media(port_min, port_max)?;
    // As `pbx serve` does by default (`[rtp] realtime`); HARNESS_NORMAL=1 to compare.
    if std::env::var_os("HARNESS_NORMAL").is_none() {
        media.use_realtime_priority();
    }
    // Two minutes of speech, shared by every player (as the prompt library shares prompts).
    let prompt = pbx::media::prompts::Prompts::new(None).get("demo-menu")?;
    let long: Arc<[i16]> = prompt
        .iter()
        .copied()
        .cycle()
        .take(8000 * 120)
        .collect::<Vec<_>>()
        .into();
    let dir = std::env::temp_dir().join(format!("app-harness-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let recordings = Recordings::start()?;
    let mut all: Vec<MediaSession> = Vec::with_capacity(usize::from(sessions));
    for i in 0..sessions {
        let key = (0, u64::from(i));
        let rec = recordings.clone();
        let on_endpoint = Box::new(move |event: Event| match event {
            Event::RecorderAudio { pcm, .. } => rec.audio(key, pcm),
            Event::RecorderFinished { pcm, .. } => {
                rec.finish(key, pbx_voicemail::RecordEnd::Stopped, pcm)
            }
            _ => {}
        });
        let session =
            media.allocate_with_endpoints(format!("app-{i}"), Box::new(|_| {}), on_endpoint)?;
        session.apply(MediaPlan {
            caller: leg(gen_base + 2 * i),
            callee: LegPlan::default(),
            codec: "PCMU/8000".into(),
        });
        session.command(Command::DisconnectRelay);
        let side = Side::Caller;
        if record {
            let path = dir.join(format!("{i}.wav"));
            recordings.begin(key, path, None, Box::new(|_| {}));
            session.command(Command::Record {
                side,
                spec: RecorderSpec {
                    max_length: Duration::from_secs(3600),
                    silence: None,
                    silence_level: 300,
                    opus_payload_type: None,
                },
            });
        } else {
            session.command(Command::Play {
                side,
                spec: PlayerSpec {
                    source: Box::new(PcmSource::new(long.clone(), Voice::G711(Law::Mu), PTIME)),
                    payload_type: 0,
                    ssrc: 0x5000_0000 + u32::from(i),
                    first_sequence: 0,
                    first_timestamp: 0,
                    ptime: PTIME,
                },
            });
        }
        println!("PORTS {i} {}", session.port(Side::Caller));
        all.push(session);
    }
    println!("READY");
    while stdin.next_line().await?.is_some() {}
    // The workers' own share of the timing error (flushed at their last tick).
    let late = media.timer_lateness();
    let buckets: Vec<String> = pbx::media::lateness::BOUNDS_US
        .iter()
        .map(|us| format!("<={us}us"))
        .chain(std::iter::once("more".to_string()))
        .zip(&late.counts)
        .map(|(b, n)| format!("{b}:{n}"))
        .collect();
    eprintln!(
        "worker lateness: {} deadlines, over 1 ms {:.4}%, over 2 ms {:.4}%, max {:?}; {}",
        late.total(),
        100.0 * late.share_over(1_000),
        100.0 * late.share_over(2_000),
        late.max,
        buckets.join(" ")
    );
    drop(all);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
