//! A micro benchmark of the codec: `cargo bench -p pbx-sip --bench codec [WORD]`.

// A benchmark reads the clock: that is its job (the crate's rule is for the sans-IO code).
#![allow(clippy::disallowed_methods)]

use bytes::{Bytes, BytesMut};
use pbx_sip::message::Message;
use pbx_sip::parse::parse_message;
use std::hint::black_box;
use std::time::Instant;

const REGISTER: &[u8] = b"REGISTER sip:pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK.8dkKd92;rport\r\n\
From: \"Alice\" <sip:alice@pbx.example.com>;tag=ff2d-91a3\r\n\
To: <sip:alice@pbx.example.com>\r\n\
Call-ID: 3c27a0d1b9e1-5x1tq7k2@192.0.2.10\r\n\
CSeq: 42 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5060;transport=udp>;expires=3600;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n\
Max-Forwards: 70\r\n\
User-Agent: Example Phone 1.2.3\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Content-Length: 0\r\n\r\n";

fn time(label: &str, iterations: u32, mut f: impl FnMut()) {
    // `codec WORD` runs only the lines whose label contains WORD.
    if std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .is_some_and(|only| !label.contains(&only))
    {
        return;
    }
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per = start.elapsed() / iterations;
    println!("{label:<40} {per:>10.2?} per iteration");
}

fn main() {
    let input = Bytes::from_static(REGISTER);
    let n = std::env::var("CODEC_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    time("parse_message(REGISTER)", n, || {
        black_box(parse_message(black_box(input.clone())).ok());
    });
    let Ok(Message::Request(req)) = parse_message(input.clone()) else {
        panic!("the benchmark REGISTER must parse");
    };
    time("top_via + from + to + cseq + contacts", n, || {
        let h = black_box(&req.headers);
        black_box((
            h.top_via().ok(),
            h.from().ok(),
            h.to().ok(),
            h.cseq().ok(),
            h.contacts().ok(),
        ));
    });
    time("Uri::parse(contact uri)", n, || {
        black_box(
            pbx_sip::uri::Uri::parse(black_box("sip:alice@192.0.2.10:5060;transport=udp")).ok(),
        );
    });
    time("Via::parse", n, || {
        black_box(
            pbx_sip::header::Via::parse(black_box(
                "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK.8dkKd92;rport",
            ))
            .ok(),
        );
    });
    time("NameAddr::parse(From)", n, || {
        black_box(
            pbx_sip::header::NameAddr::parse(black_box(
                "\"Alice\" <sip:alice@pbx.example.com>;tag=ff2d-91a3",
            ))
            .ok(),
        );
    });
    let mut buf = BytesMut::with_capacity(1024);
    time("Request::write_to", n, || {
        buf.clear();
        black_box(&req).write_to(&mut buf);
        black_box(&buf);
    });
}
