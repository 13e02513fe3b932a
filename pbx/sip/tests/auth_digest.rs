//! Digest authentication against the RFC examples and the attacks it must resist.

use pbx_sip::auth::{
    Algorithm, AuthFailure, ChallengeKind, Credentials, DigestAuthenticator, ha1_hex,
};
use pbx_sip::status::StatusCode;
use std::time::Duration;

/// A client's answer to a challenge, computed independently of the verifier's code path.
struct Answer<'a> {
    alg: Algorithm,
    user: &'a str,
    realm: &'a str,
    password: &'a str,
    method: &'a str,
    uri: &'a str,
    nonce: &'a str,
    nc: u32,
    cnonce: &'a str,
}

impl Answer<'_> {
    fn header(&self) -> String {
        let alg = self.alg;
        let ha1 = ha1_hex(alg, self.user, self.realm, self.password);
        let ha2 = alg.hash_hex(format!("{}:{}", self.method, self.uri).as_bytes());
        let nc = format!("{:08x}", self.nc);
        let (nonce, cnonce) = (self.nonce, self.cnonce);
        let response = alg.hash_hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}").as_bytes());
        format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{}\", \
             response=\"{response}\", algorithm={}, cnonce=\"{cnonce}\", qop=auth, nc={nc}",
            self.user,
            self.realm,
            self.uri,
            alg.name()
        )
    }
}

/// Extension 1001 registering with the right password and SHA-256.
fn phone(nonce: &str) -> Answer<'_> {
    Answer {
        alg: Algorithm::Sha256,
        user: "1001",
        realm: REALM,
        password: "s3cret",
        method: "REGISTER",
        uri: "sip:pbx.test",
        nonce,
        nc: 1,
        cnonce: "c",
    }
}

fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
    let start = challenge.find(&format!("{name}=")).expect("param present") + name.len() + 1;
    let rest = &challenge[start..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ',']).unwrap_or(rest.len());
    &rest[..end]
}

const REALM: &str = "pbx.test";
const NOW: u64 = 1_700_000_000;

fn authenticator(algs: Vec<Algorithm>) -> DigestAuthenticator {
    DigestAuthenticator::new(REALM.into(), [42u8; 32], Duration::from_secs(300), algs)
}

/// Verifies like the shell would: look the user up in a one-user store.
fn verify(
    auth: &mut DigestAuthenticator,
    now: u64,
    method: &str,
    header: &str,
) -> Result<(), AuthFailure> {
    let creds = Credentials::parse(header)?;
    let stored = ha1_hex(creds.algorithm, "1001", REALM, "s3cret");
    let ha1 = (creds.username == "1001").then_some(stored.as_str());
    auth.verify(now, method, &creds, ha1)
}

fn fresh_nonce(auth: &DigestAuthenticator, now: u64) -> String {
    param(&auth.challenge_values(now, false)[0], "nonce").to_owned()
}

#[test]
fn rfc_7616_example_md5_and_sha256() {
    let (user, realm, pw) = ("Mufasa", "http-auth@example.org", "Circle of Life");
    let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    // RFC 7616 §3.9.1 expected responses.
    for (alg, expected) in [
        (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
        (
            Algorithm::Sha256,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let header = Answer {
            alg,
            user,
            realm,
            password: pw,
            method: "GET",
            uri: "/dir/index.html",
            nonce,
            nc: 1,
            cnonce,
        }
        .header();
        let creds = Credentials::parse(&header).unwrap();
        assert_eq!(creds.response, expected, "{alg}");
    }
}

#[test]
fn rfc_7616_example_verifies_except_for_the_foreign_nonce() {
    // The RFC's nonce was not issued by us: a correct digest on it is BadNonce (re-challenge,
    // no failure counted) and a wrong one is Rejected.
    let mut auth = DigestAuthenticator::new(
        "http-auth@example.org".into(),
        [1u8; 32],
        Duration::from_secs(300),
        vec![Algorithm::Sha256, Algorithm::Md5],
    );
    let header = "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
        uri=\"/dir/index.html\", algorithm=SHA-256, \
        nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
        cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
        response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\"";
    let creds = Credentials::parse(header).unwrap();
    let ha1 = ha1_hex(
        Algorithm::Sha256,
        "Mufasa",
        "http-auth@example.org",
        "Circle of Life",
    );
    assert_eq!(
        auth.verify(NOW, "GET", &creds, Some(&ha1)),
        Err(AuthFailure::BadNonce)
    );
    let wrong = ha1_hex(
        Algorithm::Sha256,
        "Mufasa",
        "http-auth@example.org",
        "circle of life",
    );
    assert_eq!(
        auth.verify(NOW, "GET", &creds, Some(&wrong)),
        Err(AuthFailure::Rejected)
    );
}

#[test]
fn rfc_2617_example_md5() {
    // RFC 2617 §3.5.
    let header = Answer {
        alg: Algorithm::Md5,
        user: "Mufasa",
        realm: "testrealm@host.com",
        password: "Circle Of Life",
        method: "GET",
        uri: "/dir/index.html",
        nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        nc: 1,
        cnonce: "0a4f113b",
    }
    .header();
    let creds = Credentials::parse(&header).unwrap();
    assert_eq!(creds.response, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn sip_register_round_trip_with_both_algorithms_offered() {
    let mut auth = authenticator(vec![Algorithm::Sha256, Algorithm::Md5]);
    let challenges = auth.challenge_values(NOW, false);
    // RFC 8760 §2.4: one value per algorithm, most preferred first.
    assert_eq!(challenges.len(), 2);
    assert!(challenges[0].starts_with("Digest realm=\"pbx.test\", nonce=\""));
    assert!(challenges[0].contains("algorithm=SHA-256"));
    assert!(challenges[1].contains("algorithm=MD5"));
    for c in &challenges {
        assert!(c.contains("qop=\"auth\""));
        assert!(!c.contains("stale"));
    }
    assert_eq!(
        param(&challenges[0], "nonce"),
        param(&challenges[1], "nonce")
    );
    let nonce = param(&challenges[0], "nonce").to_owned();
    let opaque = param(&challenges[0], "opaque").to_owned();

    // The phone picks either algorithm; each is accepted.
    for (nc, alg) in [(1, Algorithm::Sha256), (2, Algorithm::Md5)] {
        let header = Answer {
            alg,
            nc,
            cnonce: "0a4f113b",
            ..phone(&nonce)
        }
        .header();
        let header = format!("{header}, opaque=\"{opaque}\"");
        assert_eq!(
            verify(&mut auth, NOW + 1, "REGISTER", &header),
            Ok(()),
            "{alg}"
        );
    }
    assert_eq!(auth.tracked_nonces(), 1);
}

#[test]
fn only_offered_algorithms_are_accepted() {
    let mut auth = authenticator(vec![Algorithm::Sha256]);
    assert_eq!(auth.challenge_values(NOW, false).len(), 1);
    let nonce = fresh_nonce(&auth, NOW);
    let header = Answer {
        alg: Algorithm::Md5,
        ..phone(&nonce)
    }
    .header();
    let result = verify(&mut auth, NOW, "REGISTER", &header);
    assert!(
        matches!(result, Err(AuthFailure::Malformed(_))),
        "{result:?}"
    );
}

#[test]
fn stale_nonce_with_right_password_is_stale_and_rechallenged() {
    let mut auth = authenticator(vec![]);
    assert_eq!(auth.algorithms(), &[Algorithm::Sha256, Algorithm::Md5]);
    let nonce = fresh_nonce(&auth, NOW);
    let later = NOW + 301;
    let good = phone(&nonce).header();
    let failure = verify(&mut auth, later, "REGISTER", &good).unwrap_err();
    assert_eq!(failure, AuthFailure::Stale);
    assert!(!failure.counts_as_failure());
    assert_eq!(failure.challenge_stale(), Some(true));
    assert_eq!(failure.status(ChallengeKind::Www), StatusCode::UNAUTHORIZED);
    assert!(
        auth.challenge_values(later, true)
            .iter()
            .all(|c| c.ends_with(", stale=true"))
    );
    // A wrong password on a stale nonce is still a failed guess.
    let bad = Answer {
        password: "guess",
        ..phone(&nonce)
    }
    .header();
    assert_eq!(
        verify(&mut auth, later, "REGISTER", &bad),
        Err(AuthFailure::Rejected)
    );
    // Still fresh at exactly the lifetime.
    let nonce = fresh_nonce(&auth, NOW);
    let ok = Answer {
        alg: Algorithm::Md5,
        ..phone(&nonce)
    }
    .header();
    assert_eq!(verify(&mut auth, NOW + 300, "REGISTER", &ok), Ok(()));
}

#[test]
fn forged_nonces_never_authenticate() {
    let mut auth = authenticator(vec![]);
    let real = fresh_nonce(&auth, NOW);
    let mut forged: Vec<String> = vec![
        "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
        String::new(),
        format!("{real}x"),
    ];
    // Flip one character of a real nonce (keeping base64url).
    let mut chars: Vec<char> = real.chars().collect();
    chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
    forged.push(chars.into_iter().collect());
    // A nonce from another server's secret.
    let other =
        DigestAuthenticator::new(REALM.into(), [43u8; 32], Duration::from_secs(300), vec![]);
    forged.push(fresh_nonce(&other, NOW));
    for nonce in forged {
        let good = Answer {
            method: "INVITE",
            uri: "sip:100@pbx.test",
            ..phone(&nonce)
        }
        .header();
        let failure = verify(&mut auth, NOW, "INVITE", &good).unwrap_err();
        assert_eq!(failure, AuthFailure::BadNonce, "{nonce}");
        assert_eq!(
            failure.status(ChallengeKind::Proxy),
            StatusCode::PROXY_AUTHENTICATION_REQUIRED
        );
        assert!(!failure.counts_as_failure());
        let bad = Answer {
            password: "nope",
            method: "INVITE",
            uri: "sip:100@pbx.test",
            ..phone(&nonce)
        }
        .header();
        assert_eq!(
            verify(&mut auth, NOW, "INVITE", &bad),
            Err(AuthFailure::Rejected)
        );
    }
    assert_eq!(auth.tracked_nonces(), 0);
}

#[test]
fn wrong_opaque_is_a_foreign_challenge() {
    let mut auth = authenticator(vec![]);
    let nonce = fresh_nonce(&auth, NOW);
    let good = Answer {
        alg: Algorithm::Md5,
        ..phone(&nonce)
    }
    .header();
    let header = format!("{good}, opaque=\"not-ours\"");
    assert_eq!(
        verify(&mut auth, NOW, "REGISTER", &header),
        Err(AuthFailure::BadNonce)
    );
}

#[test]
fn replayed_nonce_count_is_refused() {
    let mut auth = authenticator(vec![]);
    let nonce = fresh_nonce(&auth, NOW);
    let first = phone(&nonce).header();
    assert_eq!(verify(&mut auth, NOW, "REGISTER", &first), Ok(()));
    let failure = verify(&mut auth, NOW + 1, "REGISTER", &first).unwrap_err();
    assert_eq!(failure, AuthFailure::Replay);
    assert!(!failure.counts_as_failure());
    // A higher count on the same nonce, even with a new cnonce, is fine; going back is not.
    let third = Answer {
        nc: 3,
        cnonce: "d",
        ..phone(&nonce)
    }
    .header();
    assert_eq!(verify(&mut auth, NOW + 2, "REGISTER", &third), Ok(()));
    let second = Answer {
        nc: 2,
        cnonce: "e",
        ..phone(&nonce)
    }
    .header();
    assert_eq!(
        verify(&mut auth, NOW + 3, "REGISTER", &second),
        Err(AuthFailure::Replay)
    );
}

#[test]
fn a_forger_cannot_burn_a_real_clients_nonce_count() {
    let mut auth = authenticator(vec![]);
    let nonce = fresh_nonce(&auth, NOW);
    let attack = Answer {
        password: "guess",
        nc: 0xffff_ffff,
        ..phone(&nonce)
    }
    .header();
    assert_eq!(
        verify(&mut auth, NOW, "REGISTER", &attack),
        Err(AuthFailure::Rejected)
    );
    let real = phone(&nonce).header();
    assert_eq!(verify(&mut auth, NOW, "REGISTER", &real), Ok(()));
}

#[test]
fn each_challenge_has_its_own_nonce() {
    // Two phones challenged in the same second must not share nonce-count state.
    let mut auth = authenticator(vec![]);
    let a = fresh_nonce(&auth, NOW);
    let b = fresh_nonce(&auth, NOW);
    assert_ne!(a, b);
    for nonce in [a, b] {
        let h = phone(&nonce).header();
        assert_eq!(verify(&mut auth, NOW, "REGISTER", &h), Ok(()));
    }
}

#[test]
fn unknown_user_is_indistinguishable_from_wrong_password() {
    let mut auth = authenticator(vec![]);
    let nonce = fresh_nonce(&auth, NOW);
    let unknown = Answer {
        user: "9999",
        ..phone(&nonce)
    }
    .header();
    let wrong = Answer {
        password: "s3cre7",
        ..phone(&nonce)
    }
    .header();
    let a = verify(&mut auth, NOW, "REGISTER", &unknown).unwrap_err();
    let b = verify(&mut auth, NOW, "REGISTER", &wrong).unwrap_err();
    assert_eq!(a, b);
    assert_eq!(a, AuthFailure::Rejected);
    assert!(a.counts_as_failure());
    assert_eq!(a.challenge_stale(), Some(false));
    assert_eq!(a.status(ChallengeKind::Www), b.status(ChallengeKind::Www));
    // Same on stale nonces, where a known user with the right password would get Stale.
    let late = NOW + 10_000;
    assert_eq!(
        verify(&mut auth, late, "REGISTER", &unknown),
        Err(AuthFailure::Rejected)
    );
    assert_eq!(
        verify(&mut auth, late, "REGISTER", &wrong),
        Err(AuthFailure::Rejected)
    );
    // A stored HA1 that is not a digest of the right length behaves like no user.
    let creds = Credentials::parse(&unknown).unwrap();
    assert_eq!(
        auth.verify(NOW, "REGISTER", &creds, Some("zz")),
        Err(AuthFailure::Rejected)
    );
    // Guessing the dummy's input (an empty password) gets nowhere either.
    let empty = Answer {
        user: "9999",
        password: "",
        ..phone(&nonce)
    }
    .header();
    assert_eq!(
        verify(&mut auth, NOW, "REGISTER", &empty),
        Err(AuthFailure::Rejected)
    );
}

#[test]
fn wrong_realm_and_malformed_answers() {
    let mut auth = authenticator(vec![]);
    let nonce = fresh_nonce(&auth, NOW);
    let other = Answer {
        realm: "other.test",
        ..phone(&nonce)
    }
    .header();
    let failure = verify(&mut auth, NOW, "REGISTER", &other).unwrap_err();
    assert_eq!(failure, AuthFailure::WrongRealm);
    assert!(!failure.counts_as_failure());

    let ok = phone(&nonce).header();
    for bad in [
        ok.replace("qop=auth", "qop=auth-int"),
        ok.replace("nc=00000001", "nc=00000000"),
        ok.replace("response=\"", "response=\"00"),
        "Basic Zm9vOmJhcg==".to_owned(),
        "Digest username=\"1001\"".to_owned(),
    ] {
        let failure = verify(&mut auth, NOW, "REGISTER", &bad).unwrap_err();
        assert!(
            matches!(failure, AuthFailure::Malformed(_)),
            "{bad}: {failure:?}"
        );
        assert_eq!(failure.status(ChallengeKind::Www), StatusCode::BAD_REQUEST);
        assert_eq!(failure.challenge_stale(), None);
        assert!(!failure.counts_as_failure());
    }
    // Upper-case hex from a client is the same digest.
    let upper = {
        let creds = Credentials::parse(&ok).unwrap();
        ok.replace(&creds.response, &creds.response.to_uppercase())
    };
    assert_eq!(verify(&mut auth, NOW, "REGISTER", &upper), Ok(()));
}

#[test]
fn the_method_is_bound_into_the_digest() {
    let mut auth = authenticator(vec![]);
    let nonce = fresh_nonce(&auth, NOW);
    let h = phone(&nonce).header();
    assert_eq!(
        verify(&mut auth, NOW, "INVITE", &h),
        Err(AuthFailure::Rejected)
    );
}

#[test]
fn rfc_2069_form_is_single_use() {
    let mut auth = authenticator(vec![]);
    let nonce = fresh_nonce(&auth, NOW);
    let alg = Algorithm::Md5;
    let ha1 = ha1_hex(alg, "1001", REALM, "s3cret");
    let ha2 = alg.hash_hex(b"REGISTER:sip:pbx.test");
    let response = alg.hash_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes());
    let header = format!(
        "Digest username=\"1001\", realm=\"pbx.test\", nonce=\"{nonce}\", uri=\"sip:pbx.test\", \
         response=\"{response}\""
    );
    assert_eq!(verify(&mut auth, NOW, "REGISTER", &header), Ok(()));
    assert_eq!(
        verify(&mut auth, NOW, "REGISTER", &header),
        Err(AuthFailure::Replay)
    );
}

#[test]
fn a_full_replay_map_evicts_into_stale_not_into_replayable() {
    let mut auth = authenticator(vec![]).with_replay_capacity(2);
    let nonces: Vec<String> = (0..3).map(|_| fresh_nonce(&auth, NOW)).collect();
    let headers: Vec<String> = nonces
        .iter()
        .map(|n| {
            Answer {
                alg: Algorithm::Md5,
                ..phone(n)
            }
            .header()
        })
        .collect();
    for h in &headers {
        assert_eq!(verify(&mut auth, NOW, "REGISTER", h), Ok(()));
    }
    assert_eq!(auth.tracked_nonces(), 2);
    // The evicted (oldest) nonce is renewed with stale=true rather than accepted again.
    assert_eq!(
        verify(&mut auth, NOW, "REGISTER", &headers[0]),
        Err(AuthFailure::Stale)
    );
    assert_eq!(
        verify(&mut auth, NOW, "REGISTER", &headers[2]),
        Err(AuthFailure::Replay)
    );
}

#[test]
fn realm_with_quotes_is_escaped_in_the_challenge() {
    let auth = DigestAuthenticator::new("a\"b".into(), [0; 32], Duration::from_secs(60), vec![]);
    assert!(auth.challenge_values(NOW, false)[0].starts_with("Digest realm=\"a\\\"b\""));
}
