//! HTTP CONNECT (RFC 9110 §9.3.6): how a client behind an explicit proxy
//! opens a tunnel. The client sends `CONNECT host:port HTTP/1.1`, headers
//! and an empty line; the proxy answers with a status line, headers and an
//! empty line; from then on the bytes are the tunnel's (TLS to the broker).
//!
//! Only what the analysis needs is read: the request's target and where
//! each head ends, and the answer's status. Written by hand: an HTTP crate
//! would parse far more (and allocate) for two lines. Every function takes
//! hostile bytes without panicking and reads at most [`MAX_HEAD`] bytes.

/// A request or response head longer than this is not waited for.
pub const MAX_HEAD: usize = 8 * 1024;
/// Target and status line are cut beyond this (for the report).
const MAX_TEXT: usize = 256;

/// The method as it starts a CONNECT request.
pub const CONNECT_PREFIX: &[u8] = b"CONNECT ";

/// Whether a client's first payload bytes start a CONNECT request: the
/// cheap test every first client segment of other flows gets.
pub fn starts_connect(payload: &[u8]) -> bool {
    payload.starts_with(CONNECT_PREFIX)
}

/// The target of a CONNECT request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTarget {
    /// As written (`broker.example:443`, `[2001:db8::1]:443`), bounded.
    pub authority: String,
    /// Host without brackets.
    pub host: String,
    pub port: u16,
}

/// Reads the request line `CONNECT authority HTTP/1.x` at the start of
/// `bytes` (it must be complete: ended by a line feed within
/// [`MAX_HEAD`]). `None` when it is not one.
pub fn request_line(bytes: &[u8]) -> Option<ConnectTarget> {
    let line = first_line(bytes)?;
    let rest = line.strip_prefix(CONNECT_PREFIX)?;
    let mut parts = rest.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let authority = parts.next()?;
    let version = parts.next()?;
    if !version.starts_with(b"HTTP/1.") || parts.next().is_some() {
        return None;
    }
    let authority = std::str::from_utf8(authority).ok()?;
    if authority.len() > MAX_TEXT || !authority.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, port) = v6.split_once("]:")?;
            (host, port)
        }
        None => authority.rsplit_once(':')?,
    };
    if host.is_empty() || host.contains(['[', ']']) {
        return None;
    }
    Some(ConnectTarget {
        authority: authority.to_string(),
        host: host.to_string(),
        port: port.parse().ok()?,
    })
}

/// The first line of `bytes` without its line end, when a line feed ends
/// it within [`MAX_HEAD`].
fn first_line(bytes: &[u8]) -> Option<&[u8]> {
    let window = &bytes[..bytes.len().min(MAX_HEAD)];
    let end = window.iter().position(|&b| b == b'\n')?;
    let line = &window[..end];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// Where a head (request or response) ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadEnd {
    /// The head and its empty line take the first `len` bytes.
    At(usize),
    /// Not yet: more bytes may complete it.
    Incomplete,
    /// No empty line within [`MAX_HEAD`] bytes: not waited for.
    TooLong,
}

/// Finds the empty line that ends an HTTP head (`\r\n\r\n`, or a bare
/// `\n\n` as lenient parsers accept).
pub fn head_end(bytes: &[u8]) -> HeadEnd {
    let window = &bytes[..bytes.len().min(MAX_HEAD)];
    for (i, &b) in window.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let rest = &window[i + 1..];
        if rest.starts_with(b"\r\n") {
            return HeadEnd::At(i + 3);
        }
        if rest.starts_with(b"\n") {
            return HeadEnd::At(i + 2);
        }
    }
    if bytes.len() >= MAX_HEAD {
        HeadEnd::TooLong
    } else {
        HeadEnd::Incomplete
    }
}

/// A proxy's status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    pub status: u16,
    /// The line as sent (printable ASCII, bounded), e.g. `HTTP/1.1 403 Forbidden`.
    pub line: String,
}

impl StatusLine {
    /// 2xx: the tunnel is open.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Reads the status line `HTTP/1.x SSS reason` at the start of `bytes`.
pub fn status_line(bytes: &[u8]) -> Option<StatusLine> {
    let line = first_line(bytes)?;
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    if !minor.is_ascii_digit() {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(|&b| b != b' ') {
        return None;
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let mut text: String = line
        .iter()
        .take(MAX_TEXT)
        .map(|&b| {
            if b == b' ' || b.is_ascii_graphic() {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    if line.len() > MAX_TEXT {
        text.push_str("...");
    }
    Some(StatusLine { status, line: text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let t = request_line(b"CONNECT co2br.prod.zpath.net:443 HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("a CONNECT");
        assert_eq!(t.authority, "co2br.prod.zpath.net:443");
        assert_eq!(t.host, "co2br.prod.zpath.net");
        assert_eq!(t.port, 443);
        let t = request_line(b"CONNECT [2001:db8::1]:8443 HTTP/1.0\n").expect("IPv6");
        assert_eq!((t.host.as_str(), t.port), ("2001:db8::1", 8443));
        for bad in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"CONNECT host:443 HTTP/1.1", // no line end yet
            b"CONNECT host HTTP/1.1\r\n", // no port
            b"CONNECT host:99999 HTTP/1.1\r\n",
            b"CONNECT :443 HTTP/1.1\r\n",
            b"CONNECT host:443 SPDY/3\r\n",
            b"CONNECT host:443 HTTP/1.1 extra\r\n",
            b"CONNECT [::1 HTTP/1.1\r\n",
            b"CONNECT h\xffst:443 HTTP/1.1\r\n",
            b"",
        ] {
            assert_eq!(
                request_line(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn head_ends() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nTLS"), HeadEnd::At(19));
        assert_eq!(head_end(b"HTTP/1.0 200 OK\n\n"), HeadEnd::At(17));
        assert_eq!(
            head_end(b"HTTP/1.1 200 OK\r\nVia: p\r\n"),
            HeadEnd::Incomplete
        );
        assert_eq!(head_end(&vec![b'a'; MAX_HEAD]), HeadEnd::TooLong);
        assert_eq!(head_end(b""), HeadEnd::Incomplete);
    }

    #[test]
    fn status_lines() {
        let s = status_line(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
        assert!(s.is_success());
        assert_eq!(s.line, "HTTP/1.1 200 Connection established");
        let s = status_line(b"HTTP/1.0 407 Proxy Authentication Required\r\n").unwrap();
        assert_eq!(s.status, 407);
        assert!(!s.is_success());
        assert_eq!(status_line(b"HTTP/1.1 403\r\n").unwrap().status, 403);
        for bad in [
            &b"HTTP/2 200\r\n"[..],
            b"HTTP/1.1 2x0 OK\r\n",
            b"HTTP/1.1 2000 OK\r\n",
            b"\x16\x03\x01\x00\x05hello\n",
            b"HTTP/1.1 200 OK",
        ] {
            assert_eq!(status_line(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut x: u32 = 0x1234_5678;
        for n in 0..2000 {
            let mut b = Vec::new();
            for _ in 0..(n % 300) {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b.push(match x % 7 {
                    0 => b'\n',
                    1 => b'\r',
                    2 => b' ',
                    3 => b':',
                    _ => x as u8,
                });
            }
            let mut prefixed = b"CONNECT ".to_vec();
            prefixed.extend_from_slice(&b);
            let _ = request_line(&prefixed);
            let _ = head_end(&b);
            let mut st = b"HTTP/1.1 ".to_vec();
            st.extend_from_slice(&b);
            let _ = status_line(&st);
        }
    }
}
