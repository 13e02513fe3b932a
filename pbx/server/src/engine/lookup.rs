//! The HTTP request of a dialplan `http_lookup` step: one GET or POST over HTTP/1.1 with a
//! deadline, its status and body handed back to the plan (which reads the JSON). hyper's
//! client is already in the build through axum; only plain `http://` is spoken for now.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use pbx_dialplan::{HttpMethod, HttpOutcome, HttpRequest};

/// The largest answer read; a bigger one is a failed lookup (it is meant for a few variables).
const MAX_BODY: usize = 64 * 1024;

pub async fn fetch(request: &HttpRequest) -> HttpOutcome {
    match tokio::time::timeout(request.timeout, exchange(request)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => HttpOutcome::Failed(error),
        Err(_) => HttpOutcome::Failed(format!("no answer within {:?}", request.timeout)),
    }
}

async fn exchange(request: &HttpRequest) -> Result<HttpOutcome, String> {
    let uri: hyper::Uri = request
        .url
        .parse()
        .map_err(|e| format!("bad URL `{}`: {e}", request.url))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "only http:// URLs are supported, not `{}`",
            request.url
        ));
    }
    let authority = uri
        .authority()
        .ok_or("the URL has no host")?
        .as_str()
        .to_string();
    // `[::1]` in a URL is the address ::1.
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let (method, body) = match request.method {
        HttpMethod::Get => (hyper::Method::GET, Bytes::new()),
        HttpMethod::Post => (
            hyper::Method::POST,
            Bytes::from(request.body.clone().unwrap_or_default()),
        ),
    };
    let is_json = body.first() == Some(&b'{');
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        // RFC 9112 §3.2: Host is the authority, port included.
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/json");
    if !body.is_empty() {
        let kind = if is_json {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        builder = builder.header(hyper::header::CONTENT_TYPE, kind);
    }
    let outgoing = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(outgoing)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let limited = http_body_util::Limited::new(response.into_body(), MAX_BODY);
    let collected = limited
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    let body = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
    Ok(HttpOutcome::Response { status, body })
}
