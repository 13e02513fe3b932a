//! Where traced messages go besides the log: a file (written by a thread of its own, so a
//! slow disk never holds up SIP) and a HEP capture server (one non-blocking UDP send per
//! message). Both drop rather than wait, and count what they drop.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use super::hep;

/// Blocks waiting for the file writer beyond this are dropped.
const FILE_QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot open the trace file {}: {source}", .path.display())]
    File { path: PathBuf, source: io::Error },
    #[error("cannot open a socket for HEP export to {to}: {source}")]
    Hep { to: SocketAddr, source: io::Error },
}

fn dropped(reason: &'static str) {
    metrics::counter!("pbx_sip_trace_dropped_total", "reason" => reason).increment(1);
}

/// Appends trace blocks to a file, one blank line between them.
pub struct TraceFile {
    queue: SyncSender<String>,
}

impl TraceFile {
    /// Opens (creating, appending) `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<TraceFile, ExportError> {
        let error = |source| ExportError::File {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(error)?;
        let (queue, blocks) = sync_channel(FILE_QUEUE);
        std::thread::Builder::new()
            .name("sip-trace-file".into())
            .spawn(move || write_blocks(file, blocks))
            .map_err(error)?;
        Ok(TraceFile { queue })
    }

    pub fn write(&self, block: String) {
        match self.queue.try_send(block) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => dropped("file_queue_full"),
            Err(TrySendError::Disconnected(_)) => dropped("file_error"),
        }
    }
}

/// The writer thread: writes what is queued, flushes whenever the queue runs empty, stops
/// on the first write error (logged once) or when the PBX drops its end.
fn write_blocks(file: File, blocks: Receiver<String>) {
    let mut out = BufWriter::new(file);
    while let Ok(first) = blocks.recv() {
        let mut next = Some(first);
        while let Some(block) = next {
            if let Err(error) = out
                .write_all(block.as_bytes())
                .and_then(|()| out.write_all(b"\n\n"))
            {
                tracing::error!(%error, "SIP trace file: write failed, no more trace is written to it");
                return;
            }
            next = blocks.try_recv().ok();
        }
        if let Err(error) = out.flush() {
            tracing::error!(%error, "SIP trace file: write failed, no more trace is written to it");
            return;
        }
    }
}

/// Sends HEP3 packets to one capture server.
pub struct HepExport {
    socket: UdpSocket,
    pub capture_id: u32,
    pub password: Option<String>,
}

impl HepExport {
    /// A non-blocking UDP socket connected to `to` (so ICMP errors do not pile up unseen).
    pub fn open(
        to: SocketAddr,
        capture_id: u32,
        password: Option<String>,
    ) -> Result<HepExport, ExportError> {
        let error = |source| ExportError::Hep { to, source };
        let any: SocketAddr = if to.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(any).map_err(error)?;
        socket.set_nonblocking(true).map_err(error)?;
        socket.connect(to).map_err(error)?;
        Ok(HepExport {
            socket,
            capture_id,
            password,
        })
    }

    /// Encodes and sends one capture; never waits. A full socket buffer or an unreachable
    /// server loses the packet (counted), as any capture agent does.
    pub fn send(&self, capture: &hep::Capture<'_>) {
        let packet = match hep::encode(capture) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::debug!(%error, "message not exported to HEP");
                dropped("hep_encode");
                return;
            }
        };
        if let Err(error) = self.socket.send(&packet) {
            tracing::debug!(%error, "HEP send failed");
            dropped("hep_send");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn the_file_gets_every_block_in_order() {
        let dir = std::env::temp_dir().join(format!("pbx-trace-file-{}", std::process::id()));
        let path = dir.join("sub/trace.log");
        let file = TraceFile::open(&path).unwrap_or_else(|e| panic!("{e}"));
        file.write("first\nblock".into());
        file.write("second".into());
        let want = "first\nblock\n\nsecond\n\n";
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut text = String::new();
        while Instant::now() < deadline {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if text == want {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(text, want);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hep_packets_reach_the_server() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let to = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let export = HepExport::open(to, 7, None).unwrap_or_else(|e| panic!("{e}"));
        let payload = b"OPTIONS sip:x SIP/2.0\r\n\r\n";
        export.send(&hep::Capture {
            src: "127.0.0.1:5060".parse().unwrap_or_else(|_| panic!()),
            dst: "127.0.0.2:5062".parse().unwrap_or_else(|_| panic!()),
            protocol: hep::IpProtocol::Udp,
            seconds: 1,
            micros: 2,
            capture_id: export.capture_id,
            auth_key: None,
            payload,
        });
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 2048];
        let n = server.recv(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(buf.get(..4), Some(&b"HEP3"[..]));
        assert!(buf[..n].ends_with(payload));
    }
}
