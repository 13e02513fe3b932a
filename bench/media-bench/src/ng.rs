//! Just enough of rtpengine's ng control protocol to set up and tear down the generator's
//! calls: a bencoded dictionary after a cookie, over UDP (`COOKIE d7:command5:offer...e`), the
//! answer the same way (`COOKIE d6:result2:ok3:sdp...e`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

type Error = Box<dyn std::error::Error>;

/// A bencode value: what ng messages are made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bytes(Vec<u8>),
    Int(i64),
    List(Vec<Value>),
    Dict(Vec<(Vec<u8>, Value)>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    pub fn dict(entries: &[(&str, Value)]) -> Value {
        Value::Dict(
            entries
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(d) => d.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Bytes(b) => {
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(b);
            }
            Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Value::List(l) => {
                out.push(b'l');
                l.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    Value::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the start of `input`; returns it and the bytes after it.
    pub fn decode(input: &[u8]) -> Option<(Value, &[u8])> {
        match *input.first()? {
            b'i' => {
                let end = input.iter().position(|&c| c == b'e')?;
                let n = std::str::from_utf8(&input[1..end]).ok()?.parse().ok()?;
                Some((Value::Int(n), &input[end + 1..]))
            }
            b'l' => {
                let mut rest = &input[1..];
                let mut items = Vec::new();
                while *rest.first()? != b'e' {
                    let (v, r) = Value::decode(rest)?;
                    items.push(v);
                    rest = r;
                }
                Some((Value::List(items), &rest[1..]))
            }
            b'd' => {
                let mut rest = &input[1..];
                let mut items = Vec::new();
                while *rest.first()? != b'e' {
                    let (Value::Bytes(k), r) = Value::decode(rest)? else {
                        return None;
                    };
                    let (v, r) = Value::decode(r)?;
                    items.push((k, v));
                    rest = r;
                }
                Some((Value::Dict(items), &rest[1..]))
            }
            b'0'..=b'9' => {
                let colon = input.iter().position(|&c| c == b':')?;
                let len: usize = std::str::from_utf8(&input[..colon]).ok()?.parse().ok()?;
                let body = input.get(colon + 1..colon + 1 + len)?;
                Some((Value::Bytes(body.to_vec()), &input[colon + 1 + len..]))
            }
            _ => None,
        }
    }
}

/// An ng client on one UDP socket; requests are sent one at a time and retried on timeout
/// (rtpengine answers a repeated cookie from its cache, so a retry is safe).
pub struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    next_cookie: u64,
}

impl Client {
    pub async fn new(server: SocketAddr) -> Result<Client, Error> {
        let socket = UdpSocket::bind((IpAddr::from([127, 0, 0, 1]), 0)).await?;
        Ok(Client {
            socket,
            server,
            // unique across clients too: rtpengine caches replies by cookie
            next_cookie: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        })
    }

    pub async fn request(&mut self, command: Value) -> Result<Value, Error> {
        self.next_cookie += 1;
        let cookie = format!("mb{:x}", self.next_cookie);
        let mut msg = format!("{cookie} ").into_bytes();
        command.encode(&mut msg);
        let mut buf = vec![0u8; 65536];
        for _ in 0..5 {
            self.socket.send_to(&msg, self.server).await?;
            let got = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    let n = self.socket.recv(&mut buf).await?;
                    let data = &buf[..n];
                    if let Some(rest) = data.strip_prefix(cookie.as_bytes()) {
                        return Ok::<_, std::io::Error>(rest.trim_ascii_start().to_vec());
                    }
                }
            })
            .await;
            if let Ok(reply) = got {
                let reply = reply?;
                let (value, _) = Value::decode(&reply).ok_or("ng: undecodable reply")?;
                let result = value.get("result").and_then(Value::as_str).unwrap_or("");
                if result != "ok" && result != "pong" {
                    let reason = value.get("error-reason").and_then(Value::as_str);
                    return Err(format!("ng: {result} {}", reason.unwrap_or("")).into());
                }
                return Ok(value);
            }
        }
        Err("ng: no answer from rtpengine".into())
    }

    /// offer + answer for one call whose caller phone is at `caller` and callee phone at
    /// `callee`; returns the rtpengine ports (caller sends to, callee sends to).
    pub async fn setup(
        &mut self,
        call_id: &str,
        caller: SocketAddr,
        callee: SocketAddr,
    ) -> Result<(u16, u16), Error> {
        let flags = || {
            Value::dict(&[
                ("call-id", Value::str(call_id)),
                ("from-tag", Value::str("caller")),
                (
                    "replace",
                    Value::List(vec![Value::str("origin"), Value::str("session-connection")]),
                ),
                ("ICE", Value::str("remove")),
            ])
        };
        let mut offer = flags();
        push(&mut offer, "command", Value::str("offer"));
        push(&mut offer, "sdp", Value::str(&sdp(caller)));
        let reply = self.request(offer).await?;
        let to_callee = media_port(reply.get("sdp").and_then(Value::as_str).unwrap_or(""))
            .ok_or("ng offer: no m=audio port in the reply")?;
        let mut answer = flags();
        push(&mut answer, "command", Value::str("answer"));
        push(&mut answer, "to-tag", Value::str("callee"));
        push(&mut answer, "sdp", Value::str(&sdp(callee)));
        let reply = self.request(answer).await?;
        let to_caller = media_port(reply.get("sdp").and_then(Value::as_str).unwrap_or(""))
            .ok_or("ng answer: no m=audio port in the reply")?;
        Ok((to_caller, to_callee))
    }

    pub async fn delete(&mut self, call_id: &str) -> Result<(), Error> {
        self.request(Value::dict(&[
            ("command", Value::str("delete")),
            ("call-id", Value::str(call_id)),
            ("from-tag", Value::str("caller")),
        ]))
        .await
        .map(|_| ())
    }
}

fn push(dict: &mut Value, key: &str, value: Value) {
    if let Value::Dict(d) = dict {
        d.push((key.as_bytes().to_vec(), value));
    }
}

/// The SDP a G.711 phone at `at` offers or answers with.
pub fn sdp(at: SocketAddr) -> String {
    let ip = at.ip();
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        at.port()
    )
}

/// The port of the first `m=audio` line.
pub fn media_port(sdp: &str) -> Option<u16> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencode_round_trip() {
        let v = Value::dict(&[
            ("command", Value::str("offer")),
            ("replace", Value::List(vec![Value::str("origin")])),
            ("n", Value::Int(-3)),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        assert_eq!(
            out,
            b"d7:command5:offer7:replacel6:origine1:ni-3ee".to_vec()
        );
        assert_eq!(Value::decode(&out).map(|(v, r)| (v, r.len())), Some((v, 0)));
    }

    #[test]
    fn finds_the_audio_port() {
        assert_eq!(
            media_port("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30012 RTP/AVP 0\r\n"),
            Some(30012)
        );
    }
}
