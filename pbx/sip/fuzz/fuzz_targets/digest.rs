//! Any Authorization value: parsing the credentials and verifying them must never panic,
//! and must never accept (no HA1 can match a response the fuzzer made up for an unknown
//! user, and the nonce was not issued by this authenticator).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbx_sip::auth::{Algorithm, Credentials, DigestAuthenticator};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(credentials) = Credentials::parse(text) else {
        return;
    };
    let mut authenticator = DigestAuthenticator::new(
        "pbx.test".into(),
        [7; 32],
        Duration::from_secs(300),
        vec![Algorithm::Sha256, Algorithm::Md5],
    );
    assert!(authenticator.verify(1_000, "REGISTER", &credentials, None).is_err());
    let ha1 = pbx_sip::auth::ha1_hex(credentials.algorithm, &credentials.username, "pbx.test", "pw");
    assert!(authenticator.verify(1_000, "REGISTER", &credentials, Some(&ha1)).is_err());
});
