//! media-bench: N bidirectional G.711 calls through the PBX media relay.
//!
//! Today it drives the relay-only harness (`cargo build --release -p pbx --example
//! relay_harness`), which runs the PBX's `MediaService` in its own process; once calls go
//! through the PBX, the same streams will run behind SIP calls.
//!
//! ```text
//! media-bench --relay target/release/examples/relay_harness --calls 100,500,1000,2000
//! ```
//!
//! With `--rtpengine HOST:PORT --rtpengine-pid PID` the same streams go through a running
//! rtpengine instead: each call is set up over rtpengine's ng control protocol (`offer` with
//! the caller phone's SDP, `answer` with the callee phone's, `delete` at the end), so the two
//! relays are measured by the same generator with the same figures.
//!
//! ```text
//! media-bench --rtpengine 127.0.0.1:2223 --rtpengine-pid $(cat rtpengine.pid) --calls 100
//! ```
//!
//! `--relay-cpu N` runs the relay harness under `taskset -c N` (pin the generator itself with
//! `taskset -c M media-bench ...`).
//!
//! For each N: 2N phone sockets, each sending 160-byte PCMU every 20 ms with its send time
//! in the payload, through the relay to its peer. Reported over the measurement window:
//! loss, RFC 3550 jitter, added one-way latency (relay + loopback + scheduling) p50/p99,
//! and the relay process's CPU and resident memory.

mod measure;
mod ng;
mod streams;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use measure::{cpu_micros, percentile, rss_kb};
use streams::{COOLDOWN, MEASURE, Phone, Shared};

type Error = Box<dyn std::error::Error>;

struct Options {
    relay: String,
    calls: Vec<u16>,
    seconds: u64,
    warmup: u64,
    gen_base: u16,
    port_min: u16,
    port_max: u16,
    rtpengine: Option<std::net::SocketAddr>,
    rtpengine_pid: Option<u32>,
    relay_cpu: Option<String>,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        relay: "target/release/examples/relay_harness".into(),
        calls: vec![100, 500, 1000, 2000],
        seconds: 10,
        warmup: 3,
        gen_base: 40000,
        port_min: 20000,
        port_max: 29999,
        rtpengine: None,
        rtpengine_pid: None,
        relay_cpu: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--relay" => o.relay = value,
            "--calls" => o.calls = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--seconds" => o.seconds = value.parse()?,
            "--warmup" => o.warmup = value.parse()?,
            "--gen-base" => o.gen_base = value.parse()?,
            "--port-min" => o.port_min = value.parse()?,
            "--port-max" => o.port_max = value.parse()?,
            "--rtpengine" => o.rtpengine = Some(value.parse()?),
            "--rtpengine-pid" => o.rtpengine_pid = Some(value.parse()?),
            "--relay-cpu" => o.relay_cpu = Some(value),
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    if o.rtpengine.is_some() != o.rtpengine_pid.is_some() {
        return Err("--rtpengine needs --rtpengine-pid (and the other way round)".into());
    }
    Ok(o)
}

struct Row {
    calls: u16,
    pps: f64,
    loss_pct: f64,
    jitter_us: f64,
    p50_us: u32,
    p99_us: u32,
    cpu_core_pct: f64,
    cpu_us_per_pkt: f64,
    rss_mb_per_1000: f64,
    send_errors: u64,
}

async fn run(o: &Options, calls: u16) -> Result<Row, Error> {
    let mut sockets = Vec::with_capacity(2 * usize::from(calls));
    for i in 0..calls {
        let base = o.gen_base + 4 * i;
        sockets.push(streams::bind(base).await?);
        sockets.push(streams::bind(base + 2).await?);
    }
    let mut relay = match o.rtpengine {
        None => Relay::harness(o, calls).await?,
        Some(addr) => Relay::rtpengine(o, addr, calls).await?,
    };
    let pid = relay.pid;
    let rss0 = relay.rss0;
    let pbx_ports = relay.ports.clone();
    let phones: Arc<Vec<Phone>> = Arc::new(
        sockets
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let (a, b) = pbx_ports[k / 2];
                let port = if k % 2 == 0 { a } else { b };
                Phone {
                    socket: Arc::clone(s),
                    pbx: ([127, 0, 0, 1], port).into(),
                }
            })
            .collect(),
    );
    let shared = Arc::new(Shared {
        base: Instant::now(),
        phase: AtomicU8::new(streams::WARMUP),
        stop: AtomicBool::new(false),
        sent_in_window: AtomicU64::new(0),
        send_errors: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let receivers: Vec<_> = sockets
        .iter()
        .map(|s| {
            tokio::spawn(streams::receive(
                Arc::clone(s),
                Arc::clone(&shared),
                stop_rx.clone(),
            ))
        })
        .collect();
    let pacer = tokio::spawn(streams::pace(Arc::clone(&phones), Arc::clone(&shared)));

    tokio::time::sleep(Duration::from_secs(o.warmup)).await;
    shared.phase.store(MEASURE, Ordering::Relaxed);
    let (cpu0, t0) = (cpu_micros(pid).ok_or("no /proc")?, Instant::now());
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let (cpu1, t1) = (cpu_micros(pid).ok_or("no /proc")?, Instant::now());
    let rss1 = rss_kb(pid).ok_or("no /proc")?;
    shared.phase.store(COOLDOWN, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    shared.stop.store(true, Ordering::Relaxed);
    stop_tx.send_replace(true);
    pacer.await?;
    let mut received = 0u64;
    let mut latencies = Vec::new();
    let mut jitter_sum = 0.0;
    for r in receivers {
        let r = r.await?;
        received += r.packets;
        latencies.extend(r.latency_us);
        jitter_sum += r.jitter_us;
    }
    relay.finish(calls).await?;

    latencies.sort_unstable();
    let sent = shared.sent_in_window.load(Ordering::Relaxed);
    let window = (t1 - t0).as_secs_f64();
    let cpu = (cpu1 - cpu0) as f64;
    Ok(Row {
        calls,
        pps: received as f64 / window,
        loss_pct: if sent == 0 {
            0.0
        } else {
            100.0 * (sent.saturating_sub(received)) as f64 / sent as f64
        },
        jitter_us: jitter_sum / sockets.len() as f64,
        p50_us: percentile(&latencies, 50.0),
        p99_us: percentile(&latencies, 99.0),
        cpu_core_pct: 100.0 * cpu / (window * 1e6),
        cpu_us_per_pkt: if received == 0 {
            0.0
        } else {
            cpu / received as f64
        },
        rss_mb_per_1000: (rss1.saturating_sub(rss0)) as f64 / 1024.0 / f64::from(calls) * 1000.0,
        send_errors: shared.send_errors.load(Ordering::Relaxed),
    })
}

/// The relay under test: the PBX's relay harness (a child process), or a running rtpengine
/// driven over ng.
struct Relay {
    pid: u32,
    rss0: u64,
    /// Per call: (port the caller phone sends to, port the callee phone sends to).
    ports: Vec<(u16, u16)>,
    harness: Option<(tokio::process::Child, tokio::process::ChildStdin)>,
    ng: Option<ng::Client>,
}

impl Relay {
    async fn harness(o: &Options, calls: u16) -> Result<Relay, Error> {
        let args = [calls, o.gen_base, o.port_min, o.port_max].map(|v| v.to_string());
        let mut command = match &o.relay_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpu, &o.relay]);
                c
            }
            None => Command::new(&o.relay),
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or("relay exited")?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        while lines.next_line().await?.as_deref() != Some("STARTED") {}
        let rss0 = rss_kb(pid).ok_or("no /proc")?;
        stdin.write_all(b"GO\n").await?;
        let mut ports = vec![(0u16, 0u16); usize::from(calls)];
        loop {
            let line = lines.next_line().await?.ok_or("relay exited early")?;
            if line == "READY" {
                break;
            }
            let f: Vec<u16> = line
                .split_whitespace()
                .skip(1)
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            if let [i, a, b] = f[..] {
                ports[usize::from(i)] = (a, b);
            }
        }
        Ok(Relay {
            pid,
            rss0,
            ports,
            harness: Some((child, stdin)),
            ng: None,
        })
    }

    async fn rtpengine(
        o: &Options,
        addr: std::net::SocketAddr,
        calls: u16,
    ) -> Result<Relay, Error> {
        let pid = o.rtpengine_pid.ok_or("no --rtpengine-pid")?;
        let rss0 = rss_kb(pid).ok_or("rtpengine: no such process")?;
        let mut client = ng::Client::new(addr).await?;
        client
            .request(ng::Value::dict(&[("command", ng::Value::str("ping"))]))
            .await?;
        let lo = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut ports = Vec::with_capacity(usize::from(calls));
        for i in 0..calls {
            let base = o.gen_base + 4 * i;
            ports.push(
                client
                    .setup(
                        &format!("media-bench-{i}"),
                        (lo, base).into(),
                        (lo, base + 2).into(),
                    )
                    .await?,
            );
        }
        Ok(Relay {
            pid,
            rss0,
            ports,
            harness: None,
            ng: Some(client),
        })
    }

    async fn finish(&mut self, calls: u16) -> Result<(), Error> {
        if let Some((mut child, stdin)) = self.harness.take() {
            drop(stdin);
            let _ = child.wait().await;
        }
        if let Some(mut client) = self.ng.take() {
            for i in 0..calls {
                client.delete(&format!("media-bench-{i}")).await?;
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let o = options()?;
    match o.rtpengine {
        Some(addr) => println!(
            "relay: rtpengine at {addr} (pid {})",
            o.rtpengine_pid.unwrap_or(0)
        ),
        None => println!("relay: {} (PBX MediaService)", o.relay),
    }
    println!(
        "| calls | relayed pkt/s | loss % | jitter µs | latency p50 µs | p99 µs | relay CPU % core | CPU µs/pkt | CPU %core/call | RSS MB/1000 calls | gen send errors |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &calls in &o.calls {
        let r = run(&o, calls).await?;
        println!(
            "| {} | {:.0} | {:.3} | {:.0} | {} | {} | {:.1} | {:.2} | {:.4} | {:.1} | {} |",
            r.calls,
            r.pps,
            r.loss_pct,
            r.jitter_us,
            r.p50_us,
            r.p99_us,
            r.cpu_core_pct,
            r.cpu_us_per_pkt,
            r.cpu_core_pct / f64::from(r.calls),
            r.rss_mb_per_1000,
            r.send_errors
        );
        // Let the kernel release the ports before the next run binds them again.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}
