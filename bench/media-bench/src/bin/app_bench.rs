//! app_bench: the PBX's own endpoints under load (issue 12's benchmark): N concurrent IVR
//! playbacks or voicemail recordings in `pbx/server/examples/app_harness`, and per session
//! the harness's CPU and resident memory; for playback, the timing error of the player's
//! packets as they arrive.
//!
//! ```sh
//! cargo build --release -p pbx --example app_harness
//! (cd bench/media-bench && cargo build --release)
//! bench/media-bench/target/release/app_bench --harness target/release/examples/app_harness \
//!     --mode play --sessions 100,500,1000 --seconds 10
//! ```
//!
//! Timing error: each packet's arrival against its due time on the stream's own 20 ms grid
//! (sequence number × 20 ms from the stream's earliest packet in the window), so a constant
//! delay does not count and a late or bunched packet does. The arrival is the kernel's
//! receive timestamp (`SO_TIMESTAMPNS`), taken when the packet reached the socket, so the
//! generator's own scheduling is not in the figure; loopback adds next to nothing.

// The generator's own measures (the relay bench's jitter is not used here).
#[allow(dead_code)]
#[path = "../measure.rs"]
mod measure;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use measure::{cpu_micros, percentile, rss_kb};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UdpSocket;
use tokio::process::Command;

type Error = Box<dyn std::error::Error>;

struct Options {
    harness: String,
    mode: String,
    sessions: Vec<u16>,
    seconds: u64,
    warmup: u64,
    gen_base: u16,
    port_min: u16,
    port_max: u16,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        harness: "target/release/examples/app_harness".into(),
        mode: "play".into(),
        sessions: vec![100, 500, 1000],
        seconds: 10,
        warmup: 3,
        gen_base: 40000,
        port_min: 20000,
        port_max: 29999,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--harness" => o.harness = value,
            "--mode" => o.mode = value,
            "--sessions" => {
                o.sessions = value.split(',').map(str::parse).collect::<Result<_, _>>()?
            }
            "--seconds" => o.seconds = value.parse()?,
            "--warmup" => o.warmup = value.parse()?,
            "--gen-base" => o.gen_base = value.parse()?,
            "--port-min" => o.port_min = value.parse()?,
            "--port-max" => o.port_max = value.parse()?,
            _ => return Err(format!("unknown option {flag}").into()),
        }
    }
    Ok(o)
}

/// Asks the kernel to stamp each datagram with its arrival time.
fn stamp_arrivals(socket: &UdpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option value of the right size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One datagram and its kernel receive time in nanoseconds (CLOCK_REALTIME).
fn recv_stamped(socket: &UdpSocket, buf: &mut [u8]) -> std::io::Result<(usize, i64)> {
    use std::os::fd::AsRawFd;
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: a valid socket and a msghdr whose buffers are alive and writable.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                return Ok((n as usize, ts.tv_sec * 1_000_000_000 + ts.tv_nsec));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Err(std::io::Error::other("no receive timestamp"))
}

/// What one receiving socket saw in the window: (kernel arrival in ns, sequence number).
async fn receive(
    socket: Arc<UdpSocket>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Vec<(i64, u16)> {
    let mut seen = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let ready = tokio::time::timeout(Duration::from_millis(100), socket.readable()).await;
        if !matches!(ready, Ok(Ok(()))) {
            continue;
        }
        while let Ok((n, at)) = socket.try_io(tokio::io::Interest::READABLE, || {
            recv_stamped(&socket, &mut buf)
        }) {
            if n >= 12 && measuring.load(Ordering::Relaxed) {
                seen.push((at, u16::from_be_bytes([buf[2], buf[3]])));
            }
        }
    }
    seen
}

/// Timing errors (µs) of one stream: arrival minus due time, less the smallest such offset.
fn errors(seen: &[(i64, u16)], out: &mut Vec<u32>) {
    let Some(&(t0, s0)) = seen.first() else {
        return;
    };
    let offsets: Vec<i64> = seen
        .iter()
        .map(|&(at, seq)| {
            let n = i64::from(seq.wrapping_sub(s0));
            let due_us = n * 20_000;
            (at - t0) / 1000 - due_us
        })
        .collect();
    let min = offsets.iter().copied().min().unwrap_or(0);
    out.extend(
        offsets
            .iter()
            .map(|o| u32::try_from(o - min).unwrap_or(u32::MAX)),
    );
}

struct Row {
    sessions: u16,
    cpu_core_pct: f64,
    rss_kb_per_session: f64,
    pps: f64,
    p50_us: u32,
    p99_us: u32,
    max_us: u32,
}

async fn run(o: &Options, sessions: u16) -> Result<Row, Error> {
    let mut sockets = Vec::new();
    for i in 0..sessions {
        let s = UdpSocket::bind(("127.0.0.1", o.gen_base + 2 * i)).await?;
        stamp_arrivals(&s)?;
        sockets.push(Arc::new(s));
    }
    let mut child = Command::new(&o.harness)
        .args([
            o.mode.clone(),
            sessions.to_string(),
            o.gen_base.to_string(),
            o.port_min.to_string(),
            o.port_max.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("harness exited")?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    while lines.next_line().await?.as_deref() != Some("STARTED") {}
    let rss0 = rss_kb(pid).ok_or("no /proc")?;
    stdin.write_all(b"GO\n").await?;
    let mut ports = vec![0u16; usize::from(sessions)];
    loop {
        let line = lines.next_line().await?.ok_or("harness exited early")?;
        if line == "READY" {
            break;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let ["PORTS", i, port] = parts[..] {
            ports[i.parse::<usize>()?] = port.parse()?;
        }
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let receivers: Vec<_> = sockets
        .iter()
        .map(|s| tokio::spawn(receive(s.clone(), measuring.clone(), stop.clone())))
        .collect();
    // Recording: every session gets a caller's voice, 20 ms of PCMU every 20 ms.
    let sender = (o.mode == "record").then(|| {
        let (sockets, ports, stop) = (sockets.clone(), ports.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let mut seq = 0u16;
            let mut pkt = [0x55u8; 172];
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                pkt[0] = 0x80;
                pkt[1] = 0;
                pkt[2..4].copy_from_slice(&seq.to_be_bytes());
                pkt[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                for (s, &port) in sockets.iter().zip(&ports) {
                    let _ = s.send_to(&pkt, ("127.0.0.1", port)).await;
                }
                seq = seq.wrapping_add(1);
            }
        })
    });
    tokio::time::sleep(Duration::from_secs(o.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let (cpu0, t0) = (cpu_micros(pid).ok_or("no /proc")?, Instant::now());
    tokio::time::sleep(Duration::from_secs(o.seconds)).await;
    let (cpu1, t1) = (cpu_micros(pid).ok_or("no /proc")?, Instant::now());
    measuring.store(false, Ordering::Relaxed);
    let rss1 = rss_kb(pid).ok_or("no /proc")?;
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = sender {
        s.await?;
    }
    let mut all = Vec::new();
    let mut packets = 0usize;
    for r in receivers {
        let seen = r.await?;
        packets += seen.len();
        errors(&seen, &mut all);
    }
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    all.sort_unstable();
    let window = (t1 - t0).as_secs_f64();
    Ok(Row {
        sessions,
        cpu_core_pct: 100.0 * (cpu1 - cpu0) as f64 / (window * 1e6),
        rss_kb_per_session: rss1.saturating_sub(rss0) as f64 / f64::from(sessions),
        pps: packets as f64 / window,
        p50_us: percentile(&all, 50.0),
        p99_us: percentile(&all, 99.0),
        max_us: all.last().copied().unwrap_or(0),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let o = options()?;
    println!(
        "| mode | sessions | CPU (% of a core) | CPU per session (% of a core) | RSS per session | packets/s received | timing error p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &o.sessions {
        let r = run(&o, n).await?;
        let timing = |us: u32| {
            if o.mode == "play" {
                format!("{:.2} ms", f64::from(us) / 1000.0)
            } else {
                "-".into()
            }
        };
        println!(
            "| {} | {} | {:.1} | {:.3} | {:.0} KB | {:.0} | {} | {} | {} |",
            o.mode,
            r.sessions,
            r.cpu_core_pct,
            r.cpu_core_pct / f64::from(r.sessions),
            r.rss_kb_per_session,
            r.pps,
            timing(r.p50_us),
            timing(r.p99_us),
            timing(r.max_us),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}
