//! Parse any bytes as SDP and run them through both halves of the B2BUA's offer/answer, under
//! every policy: nothing panics, and whatever the PBX writes parses back and, echoed as the
//! answer to its own offer, negotiates.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use pbx_media::Side;
use pbx_media::sdp::{Encryption, LegPolicy, LocalEndpoint, Negotiator, parse};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn policy(bits: u8) -> LegPolicy {
    LegPolicy {
        encryption: match bits % 3 {
            0 => Encryption::Required,
            1 => Encryption::Optional,
            _ => Encryption::Off,
        },
        secure_signaling: bits & 4 != 0,
        allow_keys_in_clear: bits & 8 != 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // The first byte picks the policies; the rest is an offer, optionally "\0"-split from
    // an answer.
    let (offer, answer) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let _ = parse(offer).map(|s| format!("{s:?}"));
    let caller = LocalEndpoint {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        rtp_port: 20000,
    };
    let callee = LocalEndpoint {
        ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
        rtp_port: 30000,
    };
    let mut rng = StdRng::seed_from_u64(1);
    let mut n = Negotiator::new(
        caller,
        policy(selector & 0xf),
        callee,
        policy(selector >> 4),
        1,
    );
    match n.offer(Side::Caller, offer, &mut rng) {
        Ok(out) => {
            parse(&out).expect("the PBX's offer parses");
            // Echoed back, the PBX's own offer is an acceptable answer.
            let (reply, plan) = n
                .answer(Side::Callee, &out, &mut rng)
                .expect("the PBX's own offer answers itself");
            parse(&reply).expect("the PBX's answer parses");
            let _ = format!("{plan:?}");
            // A re-offer from the callee with the fuzz answer, answered by the fuzz offer.
            if n.offer(Side::Callee, answer, &mut rng).is_ok() {
                let _ = n.answer(Side::Caller, offer, &mut rng);
            }
        }
        Err(e) => {
            let _ = (e.status(), e.reason(), e.to_string());
            let _ = n.answer(Side::Callee, answer, &mut rng);
        }
    }
});
