//! The `Authorization` / `Proxy-Authorization` header value (RFC 3261 §22.4, §25.1
//! `credentials`; RFC 7616 §3.4).

use super::algorithm::Algorithm;
use super::params::{Param, ParamSyntax, parse_params, split_scheme};

/// Quality of protection the client chose (RFC 7616 §3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qop {
    Auth,
    /// Parsed so it can be refused by name; the PBX never offers it.
    AuthInt,
}

/// Digest credentials as sent by the client. Unescaped; nothing verified yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// The `uri` parameter (digest-uri), as sent.
    pub uri: String,
    /// The request-digest as sent (hex; case kept).
    pub response: String,
    /// `MD5` when the parameter is absent (RFC 7616 §3.4).
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    /// `None` for the RFC 2069 form.
    pub qop: Option<Qop>,
    /// The nonce-count exactly as sent (its text enters the digest); checked to be hex.
    pub nc: Option<String>,
    pub opaque: Option<String>,
}

/// Why a credentials header value could not be read. The caller answers 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("authorization scheme {0:?} is not Digest")]
    NotDigest(String),
    #[error("bad credentials syntax: {0}")]
    Syntax(&'static str),
    #[error("missing digest parameter {0}")]
    Missing(&'static str),
    #[error("digest parameter {0} given twice")]
    Duplicate(String),
    #[error("unsupported digest algorithm {0:?}")]
    UnknownAlgorithm(String),
    #[error("unsupported qop {0:?}")]
    UnknownQop(String),
    #[error("bad nonce-count {0:?}")]
    BadNonceCount(String),
    #[error("qop given without {0}")]
    QopWithout(&'static str),
    #[error("userhash is not supported")]
    UserHash,
}

impl From<ParamSyntax> for CredentialsError {
    fn from(e: ParamSyntax) -> CredentialsError {
        CredentialsError::Syntax(e.describe())
    }
}

#[derive(Default)]
struct Fields {
    username: Option<String>,
    realm: Option<String>,
    nonce: Option<String>,
    uri: Option<String>,
    response: Option<String>,
    algorithm: Option<String>,
    cnonce: Option<String>,
    qop: Option<String>,
    nc: Option<String>,
    opaque: Option<String>,
    userhash: Option<String>,
}

impl Fields {
    fn slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        // Parameter names are case-insensitive (RFC 3261 §7.3.1, RFC 7616 §3.4).
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "username" => &mut self.username,
            "realm" => &mut self.realm,
            "nonce" => &mut self.nonce,
            "uri" => &mut self.uri,
            "response" => &mut self.response,
            "algorithm" => &mut self.algorithm,
            "cnonce" => &mut self.cnonce,
            "qop" => &mut self.qop,
            "nc" => &mut self.nc,
            "opaque" => &mut self.opaque,
            "userhash" => &mut self.userhash,
            _ => return None,
        })
    }

    fn take(&mut self, param: Param<'_>) -> Result<(), CredentialsError> {
        let Some(slot) = self.slot(param.name) else {
            return Ok(()); // RFC 7616 §3.4: unknown parameters are ignored.
        };
        if slot.is_some() {
            return Err(CredentialsError::Duplicate(param.name.to_ascii_lowercase()));
        }
        *slot = Some(param.value);
        Ok(())
    }
}

impl Credentials {
    /// Parses one `Authorization` or `Proxy-Authorization` header value.
    pub fn parse(header_value: &str) -> Result<Credentials, CredentialsError> {
        let (scheme, rest) = split_scheme(header_value);
        // Scheme names are case-insensitive (RFC 3261 §25.1 "Digest" is a literal token).
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(CredentialsError::NotDigest(scheme.to_owned()));
        }
        let mut f = Fields::default();
        for param in parse_params(rest)? {
            f.take(param)?;
        }
        if f.userhash
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(CredentialsError::UserHash);
        }
        let algorithm = match f.algorithm {
            None => Algorithm::Md5,
            Some(token) => {
                Algorithm::from_token(&token).ok_or(CredentialsError::UnknownAlgorithm(token))?
            }
        };
        let qop = match f.qop {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            Some(q) if q.eq_ignore_ascii_case("auth-int") => Some(Qop::AuthInt),
            Some(q) => return Err(CredentialsError::UnknownQop(q)),
        };
        if let Some(nc) = &f.nc
            && (nc.is_empty() || nc.len() > 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(CredentialsError::BadNonceCount(nc.clone()));
        }
        if qop.is_some() {
            // RFC 7616 §3.4: with qop, cnonce and nc MUST be present.
            if f.cnonce.is_none() {
                return Err(CredentialsError::QopWithout("cnonce"));
            }
            if f.nc.is_none() {
                return Err(CredentialsError::QopWithout("nc"));
            }
        }
        Ok(Credentials {
            username: f.username.ok_or(CredentialsError::Missing("username"))?,
            realm: f.realm.ok_or(CredentialsError::Missing("realm"))?,
            nonce: f.nonce.ok_or(CredentialsError::Missing("nonce"))?,
            uri: f.uri.ok_or(CredentialsError::Missing("uri"))?,
            response: f.response.ok_or(CredentialsError::Missing("response"))?,
            algorithm,
            cnonce: f.cnonce,
            qop,
            nc: f.nc,
            opaque: f.opaque,
        })
    }

    /// The nonce-count as a number (parse checked it is 1..=8 hex digits).
    pub fn nc_value(&self) -> Option<u32> {
        self.nc
            .as_deref()
            .and_then(|nc| u32::from_str_radix(nc, 16).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7616_SHA: &str = "Digest username=\"Mufasa\",\r\n realm=\"http-auth@example.org\",\
        uri=\"/dir/index.html\", algorithm=SHA-256,\
        nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001,\
        cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth,\
        response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",\
        opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

    #[test]
    fn parses_the_rfc_7616_example() {
        let c = Credentials::parse(RFC7616_SHA).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, "http-auth@example.org");
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.nonce, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v");
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.nc_value(), Some(1));
        assert_eq!(c.qop, Some(Qop::Auth));
        assert_eq!(
            c.opaque.as_deref(),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
    }

    #[test]
    fn names_are_case_insensitive_order_free_and_unknowns_ignored() {
        let c = Credentials::parse(
            "digest RESPONSE=\"ab\", Uri=\"sip:pbx.test\", foo=\"bar\", NONCE=n, \
             Realm=\"pbx.test\", qop=\"auth\", NC=0000000a, cnonce=\"c\", UserName=\"1\\\"00\"",
        )
        .unwrap();
        assert_eq!(c.username, "1\"00");
        assert_eq!(c.nonce, "n");
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.nc_value(), Some(10));
        assert_eq!(c.opaque, None);
    }

    #[test]
    fn rfc_2069_form_has_no_qop() {
        let c =
            Credentials::parse("Digest username=u, realm=r, nonce=n, uri=\"sip:x\", response=ab")
                .unwrap();
        assert_eq!((c.qop, c.cnonce, c.nc), (None, None, None));
    }

    #[test]
    fn rejects_what_cannot_be_verified() {
        let base = "username=u, realm=r, nonce=n, uri=\"sip:x\", response=ab";
        let cases = [
            (
                "Basic dXNlcjpwYXNz".to_owned(),
                CredentialsError::NotDigest("Basic".into()),
            ),
            (
                format!("Digest {base}, username=v"),
                CredentialsError::Duplicate("username".into()),
            ),
            (
                format!("Digest {base}, algorithm=SHA-512-256"),
                CredentialsError::UnknownAlgorithm("SHA-512-256".into()),
            ),
            (
                format!("Digest {base}, qop=auth-conf, nc=1, cnonce=c"),
                CredentialsError::UnknownQop("auth-conf".into()),
            ),
            (
                format!("Digest {base}, qop=auth, nc=1"),
                CredentialsError::QopWithout("cnonce"),
            ),
            (
                format!("Digest {base}, qop=auth, cnonce=c"),
                CredentialsError::QopWithout("nc"),
            ),
            (
                format!("Digest {base}, qop=auth, cnonce=c, nc=xyz"),
                CredentialsError::BadNonceCount("xyz".into()),
            ),
            (
                format!("Digest {base}, qop=auth, cnonce=c, nc=000000001"),
                CredentialsError::BadNonceCount("000000001".into()),
            ),
            (
                format!("Digest {base}, userhash=true"),
                CredentialsError::UserHash,
            ),
            (
                "Digest realm=r, nonce=n, uri=u, response=ab".to_owned(),
                CredentialsError::Missing("username"),
            ),
            (
                "Digest username=\"u".to_owned(),
                CredentialsError::Syntax("unterminated quoted string"),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(Credentials::parse(&value), Err(want), "{value}");
        }
    }
}
