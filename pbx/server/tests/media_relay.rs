//! The media shell with real sockets: two local UDP sockets play the phones.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pbx::media::{MediaError, MediaEvent, MediaService, MediaSession};
use pbx_media::{LegPlan, MediaPlan, Side};
use tokio::net::UdpSocket;
use tokio::time::{sleep, timeout};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Each test its own port range, so they can run in parallel.
fn service(first: u16, rtp_timeout: Duration) -> Arc<MediaService> {
    MediaService::new(first, first + 199, LO, rtp_timeout).expect("media service")
}

fn no_events() -> Box<dyn Fn(MediaEvent) + Send + Sync> {
    Box::new(|_| {})
}

fn leg(rtp: SocketAddr, pt_map: Vec<(u8, u8)>) -> LegPlan {
    let mut rtcp = rtp;
    rtcp.set_port(rtp.port() + 1);
    LegPlan {
        remote_rtp: Some(rtp),
        remote_rtcp: Some(rtcp),
        pt_map,
        ..LegPlan::default()
    }
}

fn rtp(pt: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 160, 0xca, 0xfe, 0xba, 0xbe]);
    p.extend_from_slice(payload);
    p
}

async fn phone() -> UdpSocket {
    UdpSocket::bind((LO, 0)).await.expect("phone socket")
}

/// Sends until something arrives (the plan reaches the task asynchronously); returns it.
async fn send_until_received(
    from: &UdpSocket,
    to: SocketAddr,
    pkt: &[u8],
    at: &UdpSocket,
) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    for _ in 0..50 {
        from.send_to(pkt, to).await.expect("send");
        if let Ok(Ok((n, src))) = timeout(Duration::from_millis(100), at.recv_from(&mut buf)).await
        {
            return (buf[..n].to_vec(), src);
        }
    }
    panic!("nothing relayed to {:?}", at.local_addr());
}

fn pbx(session: &MediaSession, side: Side) -> SocketAddr {
    SocketAddr::new(LO, session.port(side))
}

#[tokio::test]
async fn relays_both_ways_with_payload_type_rewrite() {
    let media = service(31000, Duration::from_secs(60));
    let session = media.allocate("t1".into(), no_events()).expect("allocate");
    assert_eq!(session.port(Side::Caller) % 2, 0);
    assert_ne!(session.port(Side::Caller), session.port(Side::Callee));
    assert_eq!(media.ports_in_use(), 4);

    let (alice, bob) = (phone().await, phone().await);
    session.apply(MediaPlan {
        caller: leg(alice.local_addr().expect("addr"), vec![(8, 0)]),
        callee: leg(bob.local_addr().expect("addr"), vec![(0, 8)]),
        codec: "PCMU/8000".into(),
    });

    let payload = [0x55u8; 160];
    let (got, src) = send_until_received(
        &alice,
        pbx(&session, Side::Caller),
        &rtp(0, 1, &payload),
        &bob,
    )
    .await;
    assert_eq!(got, rtp(8, 1, &payload), "PT 0 -> 8, rest untouched");
    assert_eq!(
        src,
        pbx(&session, Side::Callee),
        "symmetric: from the callee's port"
    );

    let (got, src) = send_until_received(
        &bob,
        pbx(&session, Side::Callee),
        &rtp(8, 7, &payload),
        &alice,
    )
    .await;
    assert_eq!(got, rtp(0, 7, &payload));
    assert_eq!(src, pbx(&session, Side::Caller));
}

/// One worker carries several calls; a call that ends frees its slot for the next, and each
/// call's packets still reach only its own phones.
#[tokio::test]
async fn calls_on_one_worker_stay_apart_as_slots_are_reused() {
    let media = MediaService::with_workers(33000, 33199, LO, Duration::from_secs(60), 1)
        .expect("media service");
    // A call with two phones of its own, plain PCMU both ways.
    async fn call(media: &Arc<MediaService>, label: &str) -> (MediaSession, UdpSocket, UdpSocket) {
        let session = media.allocate(label.into(), no_events()).expect("allocate");
        let (a, b) = (phone().await, phone().await);
        session.apply(MediaPlan {
            caller: leg(a.local_addr().expect("addr"), vec![]),
            callee: leg(b.local_addr().expect("addr"), vec![]),
            codec: "PCMU/8000".into(),
        });
        (session, a, b)
    }
    let mut calls = Vec::new();
    for i in 0..3 {
        calls.push(call(&media, &format!("t5-{i}")).await);
    }
    // The middle call ends; a new one takes its slot.
    calls.remove(1);
    calls.push(call(&media, "t5-new").await);

    for (n, (session, a, b)) in calls.iter().enumerate() {
        let seq = n as u16;
        let out = rtp(0, seq, &[n as u8; 160]);
        let (got, _) = send_until_received(a, pbx(session, Side::Caller), &out, b).await;
        assert_eq!(got, out, "call {n}: caller to callee");
        let back = rtp(0, seq + 100, &[n as u8 + 10; 160]);
        let (got, _) = send_until_received(b, pbx(session, Side::Callee), &back, a).await;
        assert_eq!(got, back, "call {n}: callee to caller");
    }
    for _ in 0..100 {
        if calls
            .iter()
            .all(|(s, _, _)| s.stats().relayed_total().packets >= 2)
        {
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    for (n, (session, _, _)) in calls.iter().enumerate() {
        assert!(
            session.stats().relayed_total().packets >= 2,
            "call {n}: counters reach the session"
        );
    }
}

#[tokio::test]
async fn latches_to_where_the_phone_really_sends_from() {
    let media = service(31400, Duration::from_secs(60));
    let session = media.allocate("t2".into(), no_events()).expect("allocate");
    let (alice_behind_nat, bob) = (phone().await, phone().await);
    // Alice's SDP names an address where nobody listens.
    let sdp_addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    session.apply(MediaPlan {
        caller: leg(sdp_addr, vec![]),
        callee: leg(bob.local_addr().expect("addr"), vec![]),
        codec: String::new(),
    });
    // Strict RTP (the default): a source other than the SDP address latches only after
    // `LatchPolicy::DEFAULT_PROBATION` packets in sequence; the ones before are dropped.
    for seq in 1..4 {
        alice_behind_nat
            .send_to(&rtp(0, seq, &[1; 160]), pbx(&session, Side::Caller))
            .await
            .expect("send");
    }
    let pkt = rtp(0, 4, &[1; 160]);
    send_until_received(&alice_behind_nat, pbx(&session, Side::Caller), &pkt, &bob).await;
    // Bob's answer reaches Alice's real address, not the SDP one.
    let (got, _) = send_until_received(
        &bob,
        pbx(&session, Side::Callee),
        &rtp(0, 2, &[2; 160]),
        &alice_behind_nat,
    )
    .await;
    assert_eq!(got, rtp(0, 2, &[2; 160]));

    // A third party on Alice's port is not relayed.
    let intruder = phone().await;
    intruder
        .send_to(&rtp(0, 3, &[3; 160]), pbx(&session, Side::Caller))
        .await
        .expect("send");
    let mut buf = [0u8; 2048];
    assert!(
        timeout(Duration::from_millis(300), bob.recv_from(&mut buf))
            .await
            .is_err(),
        "intruder's packet must be dropped"
    );
}

#[tokio::test]
async fn ports_return_to_the_pool_when_sessions_drop() {
    let media = service(31800, Duration::from_secs(60));
    let sessions: Vec<MediaSession> = (0..5)
        .map(|i| {
            media
                .allocate(format!("t3-{i}"), no_events())
                .expect("allocate")
        })
        .collect();
    assert_eq!(media.ports_in_use(), 20);
    let first_port = sessions[0].port(Side::Caller);
    drop(sessions);
    for _ in 0..100 {
        if media.ports_in_use() == 0 {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(media.ports_in_use(), 0);
    // Rotation: the next call does not get the ports just freed.
    let next = media
        .allocate("t3-next".into(), no_events())
        .expect("allocate");
    assert_ne!(next.port(Side::Caller), first_port);
}

#[tokio::test]
async fn running_out_of_ports_is_an_error_not_a_leak() {
    // Two pairs: exactly one call.
    let media = MediaService::new(32200, 32203, LO, Duration::from_secs(60)).expect("service");
    let one = media.allocate("t4".into(), no_events());
    if let Ok(one) = one {
        let two = media.allocate("t4-2".into(), no_events());
        assert!(matches!(two, Err(MediaError::PortsExhausted { .. })));
        assert_eq!(media.ports_in_use(), 4);
        drop(one);
    }
    // (If the OS held one of those ports, the first allocation failed cleanly too.)
    for _ in 0..100 {
        if media.ports_in_use() == 0 {
            break;
        }
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(media.ports_in_use(), 0);
}

#[tokio::test]
async fn silence_fires_one_timeout() {
    let media = service(32400, Duration::from_millis(200));
    let fired = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&fired);
    let session = media
        .allocate(
            "t5".into(),
            Box::new(move |e| {
                assert_eq!(e, MediaEvent::Timeout);
                count.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .expect("allocate");
    let (alice, bob) = (phone().await, phone().await);
    session.apply(MediaPlan {
        caller: leg(alice.local_addr().expect("addr"), vec![]),
        callee: leg(bob.local_addr().expect("addr"), vec![]),
        codec: String::new(),
    });
    sleep(Duration::from_millis(1000)).await;
    assert_eq!(fired.load(Ordering::SeqCst), 1);
}

#[test]
fn an_address_this_host_does_not_have_fails_at_start() {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a host.
    let elsewhere = IpAddr::from([192, 0, 2, 1]);
    match MediaService::new(10000, 10099, elsewhere, Duration::from_secs(60)) {
        Err(MediaError::Bind { ip, .. }) => assert_eq!(ip, elsewhere),
        Err(other) => panic!("expected a bind error, got {other}"),
        Ok(_) => panic!("media bound to an address this host does not have"),
    }
}

#[tokio::test]
async fn the_worker_paces_a_player_and_reports_its_end() {
    use pbx_media::endpoint::player::{PcmSource, PlayerSpec};
    use pbx_media::g711::Law;
    use pbx_media::session::{Command, Event};

    let media = service(32800, Duration::from_secs(60));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let session = media
        .allocate_with_endpoints(
            "t6".into(),
            no_events(),
            Box::new(move |e| {
                let _ = tx.send(e);
            }),
        )
        .expect("allocate");
    let (alice, bob) = (phone().await, phone().await);
    session.apply(MediaPlan {
        caller: leg(alice.local_addr().expect("addr"), vec![]),
        callee: leg(bob.local_addr().expect("addr"), vec![]),
        codec: String::new(),
    });
    // 200 ms of audio: ten 20 ms frames.
    session.command(Command::Play {
        side: Side::Caller,
        spec: PlayerSpec {
            source: Box::new(PcmSource::new(
                vec![1000i16; 1600],
                pbx_media::voice::Voice::G711(Law::Mu),
                Duration::from_millis(20),
            )),
            payload_type: 0,
            ssrc: 42,
            first_sequence: 7,
            first_timestamp: 1000,
            ptime: Duration::from_millis(20),
        },
    });
    let mut buf = [0u8; 2048];
    let mut got = Vec::new();
    while got.len() < 10 {
        let (n, src) = timeout(Duration::from_secs(2), alice.recv_from(&mut buf))
            .await
            .expect("a frame within 2 s")
            .expect("recv");
        assert_eq!(
            src,
            pbx(&session, Side::Caller),
            "from the leg's RTP socket"
        );
        assert_eq!(n, 172);
        got.push((
            u16::from_be_bytes([buf[2], buf[3]]),
            u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            buf[1],
        ));
    }
    let expected: Vec<(u16, u32, u8)> = (0..10u16)
        .map(|i| {
            (
                7 + i,
                1000 + 160 * u32::from(i),
                if i == 0 { 0x80 } else { 0 },
            )
        })
        .collect();
    assert_eq!(got, expected);
    let end = timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("the end within 2 s");
    assert_eq!(end, Some(Event::PlayerFinished { side: Side::Caller }));
    // Nothing went to the other leg.
    assert!(
        timeout(Duration::from_millis(100), bob.recv_from(&mut buf))
            .await
            .is_err()
    );
}
