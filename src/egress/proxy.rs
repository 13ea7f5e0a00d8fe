//! The explicit proxy: its file (`/opt/zscaler/var/proxy`, one `host:port`
//! line, as the connector reads it) and the CONNECT exchange that opens a
//! tunnel through it. The answer is read by the one HTTP CONNECT decoder
//! ([`crate::packet::http_connect`]).

use crate::packet::http_connect::{self, HeadEnd, StatusLine};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where the connector looks for its proxy.
pub const DEFAULT_PROXY_FILE: &str = "/opt/zscaler/var/proxy";

/// The proxy as configured: a name or an address, and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySpec {
    pub host: String,
    pub port: u16,
    /// `--proxy`, or the file it came from.
    pub from: String,
}

impl std::fmt::Display for ProxySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A proxy file or `--proxy` value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot read the proxy file {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{from} line {line}: {reason}: `{text}`")]
    Malformed {
        from: String,
        line: usize,
        text: String,
        reason: String,
    },
}

/// Parses `host:port` (an `http://` prefix and a trailing `/` are
/// tolerated: some installations write a URL).
pub fn parse_spec(text: &str, from: &str, line: usize) -> Result<ProxySpec, ProxyError> {
    let malformed = |reason: String| ProxyError::Malformed {
        from: from.to_string(),
        line,
        text: text.chars().take(120).collect(),
        reason,
    };
    let t = text.trim();
    let t = t.strip_prefix("http://").unwrap_or(t);
    let t = t.strip_suffix('/').unwrap_or(t);
    if t.contains("://") {
        return Err(malformed(
            "only host:port (or http://host:port) is understood".into(),
        ));
    }
    if t.contains('@') {
        return Err(malformed(
            "credentials in the proxy address are not supported".into(),
        ));
    }
    // A port is required: the connector has no default.
    let has_port = if t.starts_with('[') {
        t.contains("]:")
    } else {
        t.parse::<std::net::Ipv6Addr>().is_err() && t.contains(':')
    };
    if !has_port {
        return Err(malformed("the proxy needs a port (host:port)".into()));
    }
    let (host, port) = super::destinations::split_host_port(t, 0).map_err(malformed)?;
    Ok(ProxySpec {
        host,
        port,
        from: from.to_string(),
    })
}

/// Reads a proxy file: its first line that is not empty or a comment.
/// `Ok(None)` when the file says nothing.
pub fn read_file(path: &Path) -> Result<Option<ProxySpec>, ProxyError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ProxyError::Read {
        path: shown.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        return parse_spec(l, &shown, i + 1).map(Some);
    }
    Ok(None)
}

/// How a CONNECT went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectResult {
    /// 2xx: the tunnel is open (the stream is returned beside it).
    Open(StatusLine),
    /// Any other status: the proxy would not or could not connect.
    Refused(StatusLine),
    /// The proxy itself could not be reached.
    ProxyUnreachable(String),
    /// The proxy answered something that is not an HTTP status, or closed.
    BadAnswer(String),
    /// No (complete) answer in time.
    Timeout,
}

/// Connects to `proxy` and asks `CONNECT host:port`; on 2xx returns the
/// stream, positioned at the tunnel's first byte.
pub fn connect(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    timeout: Duration,
) -> (ConnectResult, Option<TcpStream>) {
    let deadline = Instant::now() + timeout;
    let mut tcp = match TcpStream::connect_timeout(&proxy, timeout) {
        Ok(t) => t,
        Err(e) => return (ConnectResult::ProxyUnreachable(e.to_string()), None),
    };
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    let _ = tcp.set_write_timeout(Some(timeout));
    if let Err(e) = tcp.write_all(request.as_bytes()) {
        return (ConnectResult::ProxyUnreachable(e.to_string()), None);
    }
    // Read byte-wise up to the head's end, so no tunnel byte is consumed
    // (the server speaks second in TLS, but a proxy may pipeline).
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (ConnectResult::Timeout, None);
        }
        let _ = tcp.set_read_timeout(Some(left));
        match tcp.read(&mut byte) {
            Ok(0) => {
                let what = if head.is_empty() {
                    "the proxy closed the connection without an answer".to_string()
                } else {
                    format!(
                        "the proxy closed the connection after {:?}",
                        String::from_utf8_lossy(&head[..head.len().min(80)])
                    )
                };
                return (ConnectResult::BadAnswer(what), None);
            }
            Ok(_) => head.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return (ConnectResult::Timeout, None);
            }
            Err(e) => return (ConnectResult::BadAnswer(e.to_string()), None),
        }
        match http_connect::head_end(&head) {
            HeadEnd::Incomplete => continue,
            HeadEnd::TooLong => {
                return (
                    ConnectResult::BadAnswer("an answer head longer than 8 KiB".into()),
                    None,
                );
            }
            HeadEnd::At(_) => break,
        }
    }
    match http_connect::status_line(&head) {
        Some(s) if s.is_success() => {
            let _ = tcp.set_read_timeout(None);
            (ConnectResult::Open(s), Some(tcp))
        }
        Some(s) => (ConnectResult::Refused(s), None),
        None => (
            ConnectResult::BadAnswer(format!(
                "not an HTTP status line: {:?}",
                String::from_utf8_lossy(&head[..head.len().min(80)])
            )),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn proxy_specs() {
        let ok = |t: &str| parse_spec(t, "f", 1).map(|p| (p.host, p.port));
        assert_eq!(ok("10.0.0.1:3128").unwrap(), ("10.0.0.1".into(), 3128));
        assert_eq!(
            ok(" proxy.corp:8080 ").unwrap(),
            ("proxy.corp".into(), 8080)
        );
        assert_eq!(
            ok("http://proxy.corp:8080/").unwrap(),
            ("proxy.corp".into(), 8080)
        );
        assert_eq!(
            ok("[2001:db8::1]:3128").unwrap(),
            ("2001:db8::1".into(), 3128)
        );
        for bad in [
            "proxy.corp",
            "2001:db8::1",
            "https://p:1",
            "u:p@p:1",
            "p:0",
            "p:x",
            "",
        ] {
            let e = ok(bad).unwrap_err().to_string();
            assert!(e.starts_with("f line 1:"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_proxy_file_is_read_and_its_errors_name_the_line() {
        let dir = std::env::temp_dir().join(format!("pp-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("proxy");
        std::fs::write(&f, "\n# site proxy\n192.0.2.8:3128\n").unwrap();
        assert_eq!(read_file(&f).unwrap().unwrap().port, 3128);
        std::fs::write(&f, "\n\nproxy only\n").unwrap();
        let e = read_file(&f).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        std::fs::write(&f, "# nothing\n").unwrap();
        assert!(read_file(&f).unwrap().is_none());
        assert!(matches!(
            read_file(&dir.join("absent")),
            Err(ProxyError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A loopback "proxy" that answers with `answer` and then echoes `tail`.
    fn fake_proxy(answer: &'static [u8]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 512];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                assert!(got.starts_with(b"CONNECT broker.lab:443 HTTP/1.1\r\n"));
                let _ = s.write_all(answer);
            }
        });
        addr
    }

    #[test]
    fn connect_reads_the_status_and_keeps_the_tunnel_bytes() {
        let t = Duration::from_secs(2);
        let p = fake_proxy(b"HTTP/1.1 200 Connection established\r\n\r\nTLS");
        let (r, s) = connect(p, "broker.lab", 443, t);
        assert!(
            matches!(r, ConnectResult::Open(ref s) if s.status == 200),
            "{r:?}"
        );
        let mut rest = [0u8; 3];
        s.unwrap().read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"TLS");
        let p = fake_proxy(b"HTTP/1.0 403 Forbidden\r\nX: y\r\n\r\n");
        assert!(
            matches!(connect(p, "broker.lab", 443, t).0, ConnectResult::Refused(s) if s.status == 403)
        );
        let p = fake_proxy(b"SSH-2.0-OpenSSH\r\n\r\n");
        assert!(matches!(
            connect(p, "broker.lab", 443, t).0,
            ConnectResult::BadAnswer(_)
        ));
        let p = fake_proxy(b"");
        assert!(matches!(
            connect(p, "broker.lab", 443, t).0,
            ConnectResult::BadAnswer(_)
        ));
    }
}
