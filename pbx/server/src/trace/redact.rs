//! Takes the secrets out of a SIP message before it is written to a log or a file:
//!
//! - the `response` of `Authorization` / `Proxy-Authorization` (RFC 3261 §22.4, RFC 7616
//!   §3.4): with the nonce, cnonce and nc beside it, a response lets anyone test password
//!   guesses offline. The other parameters stay, because they are what an interop problem
//!   is usually about (realm, uri, algorithm, qop, nc). The `rspauth` of
//!   `Authentication-Info` (RFC 7616 §3.5) is the same kind of oracle and goes too;
//! - the key material of SDES `a=crypto` lines (RFC 4568 §6.1 `inline:` key-params; the
//!   suite, tag, lifetime, MKI and session parameters stay);
//! - SDP `k=` lines (RFC 4566 §5.12) and MIKEY `a=key-mgmt` data (RFC 4567), which carry
//!   keys too.
//!
//! Pure text in, text out; line structure and line endings are kept, so the result reads
//! like the message on the wire.

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// The message with its secrets replaced by [`REDACTED`]. Bytes that are not UTF-8 are shown
/// as U+FFFD (a trace is for reading).
pub fn redact(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    let mut out = String::with_capacity(text.len());
    let mut in_headers = true;
    // The secret parameter of the header being read (including its folded continuation
    // lines), when it carries digest credentials.
    let mut secret: Option<&str> = None;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']);
        let ending = &line[content.len()..];
        if in_headers {
            if content.is_empty() {
                in_headers = false;
                out.push_str(line);
                continue;
            }
            let folded = content.starts_with([' ', '\t']);
            if !folded {
                secret = secret_param(content);
            }
            if let Some(param) = secret {
                // The header name, if any, holds no `=`: the whole line can be scanned.
                out.push_str(&redact_digest_params(content, param));
            } else {
                out.push_str(content);
            }
            out.push_str(ending);
        } else {
            out.push_str(&redact_sdp_line(content));
            out.push_str(ending);
        }
    }
    out
}

/// The parameter to redact when `line` starts a header with digest credentials (none of
/// these headers has a compact form, RFC 3261 §7.3.3).
fn secret_param(line: &str) -> Option<&'static str> {
    let (name, _) = line.split_once(':')?;
    let name = name.trim_end_matches([' ', '\t']);
    let is = |header: &str| name.eq_ignore_ascii_case(header);
    if is("authorization") || is("proxy-authorization") {
        Some("response")
    } else if is("authentication-info") || is("proxy-authentication-info") {
        Some("rspauth")
    } else {
        None
    }
}

/// Replaces the value of every `param=` auth-param in `text` (one header line or folded part
/// of one), quoted or not. Quoted strings are skipped whole, so a `response=` inside another
/// parameter's value (a `uri`, say) is left alone.
fn redact_digest_params(text: &str, param: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Where the text copied so far ends.
    let mut copied = 0;
    while i < bytes.len() {
        match bytes.get(i) {
            Some(b'"') => i = skip_quoted(bytes, i),
            Some(b) if b.is_ascii_alphabetic() => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
                {
                    i += 1;
                }
                let name = &text[start..i];
                let mut j = i;
                while matches!(bytes.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                if bytes.get(j) != Some(&b'=') || !name.eq_ignore_ascii_case(param) {
                    continue;
                }
                j += 1;
                while matches!(bytes.get(j), Some(b' ' | b'\t')) {
                    j += 1;
                }
                let (value_end, quoted) = if bytes.get(j) == Some(&b'"') {
                    (skip_quoted(bytes, j), true)
                } else {
                    let mut k = j;
                    while bytes
                        .get(k)
                        .is_some_and(|b| !matches!(b, b',' | b' ' | b'\t'))
                    {
                        k += 1;
                    }
                    (k, false)
                };
                out.push_str(&text[copied..j]);
                if quoted {
                    out.push('"');
                    out.push_str(REDACTED);
                    out.push('"');
                } else {
                    out.push_str(REDACTED);
                }
                copied = value_end;
                i = value_end;
            }
            Some(_) => i += 1,
            None => break,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The index just past the quoted string that opens at `start` (RFC 3261 §25.1
/// `quoted-string`, with `\` escapes); the end of the text when it is not closed.
fn skip_quoted(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// One body line: `a=crypto` keys, `k=` and `a=key-mgmt` values replaced; anything else kept.
fn redact_sdp_line(line: &str) -> String {
    if let Some(rest) = strip_prefix_ignore_case(line, "a=crypto:") {
        return format!(
            "{}{}",
            &line[..line.len() - rest.len()],
            redact_crypto(rest)
        );
    }
    for prefix in ["k=", "a=key-mgmt:"] {
        if let Some(rest) = strip_prefix_ignore_case(line, prefix)
            && !rest.is_empty()
        {
            // `k=method:key` keeps its method (`clear`, `base64`, `uri`, `prompt`).
            let kept = match (prefix, rest.split_once(':')) {
                ("k=", Some((method, _))) => format!("{method}:"),
                _ => String::new(),
            };
            return format!("{}{kept}{REDACTED}", &line[..line.len() - rest.len()]);
        }
    }
    line.to_string()
}

/// `1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:4;inline:KEY2 KDR=1`: every key-param's
/// key-salt becomes [`REDACTED`]; its lifetime and MKI (after `|`) stay (RFC 4568 §9.1).
fn redact_crypto(rest: &str) -> String {
    let mut out = String::with_capacity(rest.len());
    let mut remaining = rest;
    while let Some(at) = find_ignore_case(remaining, "inline:") {
        let key_start = at + "inline:".len();
        out.push_str(&remaining[..key_start]);
        let after = &remaining[key_start..];
        let key_end = after.find(['|', ';', ' ', '\t']).unwrap_or(after.len());
        out.push_str(REDACTED);
        remaining = &after[key_end..];
    }
    out.push_str(remaining);
    out
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn find_ignore_case(text: &str, needle: &str) -> Option<usize> {
    text.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    #[test]
    fn digest_response_is_redacted_and_the_rest_kept() {
        let msg = "REGISTER sip:pbx.test SIP/2.0\r\n\
                   Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1\r\n\
                   Authorization: Digest username=\"1001\", realm=\"pbx.test\", nonce=\"abc\", \
                   uri=\"sip:pbx.test\", response=\"0123456789abcdef0123456789abcdef\", \
                   algorithm=MD5, cnonce=\"c1\", qop=auth, nc=00000001\r\n\
                   Content-Length: 0\r\n\r\n";
        let out = redact(msg.as_bytes());
        assert!(!out.contains("0123456789abcdef"), "{out}");
        assert!(
            out.contains("response=\"[redacted]\", algorithm=MD5"),
            "{out}"
        );
        assert!(
            out.contains("cnonce=\"c1\", qop=auth, nc=00000001\r\n"),
            "{out}"
        );
        assert!(
            out.contains("username=\"1001\", realm=\"pbx.test\""),
            "{out}"
        );
        assert!(out.starts_with("REGISTER sip:pbx.test SIP/2.0\r\nVia: "));
        assert!(out.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn proxy_authorization_unquoted_folded_and_odd_case() {
        let msg = "INVITE sip:1002@pbx.test SIP/2.0\r\n\
                   proxy-AUTHORIZATION : Digest username=\"1001\",\r\n\
                   \tRESPONSE = deadbeef,nc=00000002\r\n\
                   Subject: response=visible\r\n\r\n";
        let out = redact(msg.as_bytes());
        assert!(!out.contains("deadbeef"), "{out}");
        assert!(
            out.contains("\tRESPONSE = [redacted],nc=00000002\r\n"),
            "{out}"
        );
        // Only credentials headers are touched.
        assert!(out.contains("Subject: response=visible\r\n"), "{out}");
    }

    #[test]
    fn authentication_info_rspauth_is_redacted() {
        let msg = "SIP/2.0 200 OK\r\nAuthentication-Info: qop=auth, \
                   rspauth=\"6629fae49393a05397450978507c4ef1\", cnonce=\"c1\", nc=00000001\r\n\r\n";
        let out = redact(msg.as_bytes());
        assert!(!out.contains("6629fae4"), "{out}");
        assert!(
            out.contains("rspauth=\"[redacted]\", cnonce=\"c1\""),
            "{out}"
        );
    }

    #[test]
    fn response_inside_a_quoted_value_is_not_a_parameter() {
        let line = "Authorization: Digest uri=\"sip:x;response=keep\", response=\"gone\"";
        let out = redact_digest_params(line, "response");
        assert_eq!(
            out,
            "Authorization: Digest uri=\"sip:x;response=keep\", response=\"[redacted]\""
        );
        // An unterminated quote does not panic or loop.
        assert_eq!(
            redact_digest_params("Digest response=\"abc", "response"),
            "Digest response=\"[redacted]\""
        );
        assert_eq!(
            redact_digest_params("Digest response=", "response"),
            "Digest response=[redacted]"
        );
    }

    #[test]
    fn sdes_keys_are_redacted_suite_tag_lifetime_and_mki_kept() {
        let msg = format!(
            "INVITE sip:1002@pbx.test SIP/2.0\r\nContent-Type: application/sdp\r\n\r\n\
             v=0\r\nm=audio 4000 RTP/SAVP 0\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\n\
             a=CRYPTO:3 AEAD_AES_128_GCM inline:{KEY};inline:{KEY}|2^31 UNENCRYPTED_SRTCP\r\n\
             a=sendrecv\r\n"
        );
        let out = redact(msg.as_bytes());
        assert!(!out.contains(KEY), "{out}");
        assert!(
            out.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[redacted]|2^20|1:4\r\n"),
            "{out}"
        );
        assert!(
            out.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:[redacted]\r\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "a=CRYPTO:3 AEAD_AES_128_GCM inline:[redacted];inline:[redacted]|2^31 \
                 UNENCRYPTED_SRTCP\r\n"
            ),
            "{out}"
        );
        assert!(out.ends_with("a=sendrecv\r\n"));
    }

    #[test]
    fn other_sdp_keys_are_redacted() {
        let body = "v=0\nk=base64:c2VjcmV0\na=key-mgmt:mikey AQAFgM0XflABAAAAAAAAAAAAAAsA\n";
        let out = redact(format!("SIP/2.0 200 OK\n\n{body}").as_bytes());
        assert!(out.contains("\nk=base64:[redacted]\n"), "{out}");
        assert!(out.contains("\na=key-mgmt:[redacted]\n"), "{out}");
        assert!(
            !out.contains("c2VjcmV0") && !out.contains("AQAFgM0X"),
            "{out}"
        );
    }

    #[test]
    fn a_crypto_line_among_headers_is_not_a_body() {
        // Before the blank line everything is a header: only credentials are touched there.
        let msg = "OPTIONS sip:x SIP/2.0\r\nX-Note: a=crypto:1 S inline:abc\r\n\r\n";
        assert_eq!(redact(msg.as_bytes()), msg);
    }

    #[test]
    fn messages_without_secrets_come_back_unchanged() {
        let msg = "SIP/2.0 401 Unauthorized\r\n\
                   WWW-Authenticate: Digest realm=\"pbx.test\", nonce=\"n\", qop=\"auth\"\r\n\
                   Content-Length: 0\r\n\r\n";
        assert_eq!(redact(msg.as_bytes()), msg);
        assert_eq!(redact(b""), "");
        assert_eq!(redact(b"garbage without lines"), "garbage without lines");
        assert_eq!(redact(&[0xff, b'\n', b'a']), "\u{fffd}\na");
    }
}
