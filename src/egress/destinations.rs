//! What a connector must reach, and the small file format that changes it.
//!
//! The default list for a cloud: the broker locator `co2br.<cloud>` (every
//! address it returns), the enrollment host and the two update hosts, and
//! the NTP servers. A destinations file replaces it, or extends it with a
//! `defaults` line:
//!
//! ```text
//! # role    host[:port]                  options
//! broker    co2br.prod.zpath.net         # TCP+TLS 443 and DTLS on UDP 443, every address
//! enroll    api.private.zscaler.com      # TCP+TLS 443
//! update    dist.private.zscaler.com     # TCP+TLS 443
//! tls       repo.example.net:8443  issuer=Example Org   # any other TLS destination
//! ntp       192.0.2.123                  # SNTP on UDP 123
//! defaults                               # the default list for --cloud, here
//! ```
//!
//! `issuer=ORG` (the rest of the line) replaces `--expect-issuer` for that
//! destination. Names are resolved with the resolvers being checked;
//! addresses are used as they are.

use std::fmt;
use std::net::IpAddr;

/// The enrollment host (certificate signing at enrollment).
pub const ENROLLMENT_HOST: &str = "api.private.zscaler.com";
/// The software update hosts.
pub const UPDATE_HOSTS: [&str; 2] = ["dist.private.zscaler.com", "yum.private.zscaler.com"];

/// What a destination is to the connector; decides its checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A broker (locator): TCP and TLS 443, DTLS on UDP 443.
    Broker,
    Enrollment,
    Update,
    /// Any other TLS destination of a destinations file.
    Tls,
    Ntp,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Broker => "broker",
            Role::Enrollment => "enroll",
            Role::Update => "update",
            Role::Tls => "tls",
            Role::Ntp => "ntp",
        }
    }

    fn parse(word: &str) -> Option<Role> {
        Some(match word {
            "broker" => Role::Broker,
            "enroll" | "enrollment" => Role::Enrollment,
            "update" => Role::Update,
            "tls" => Role::Tls,
            "ntp" => Role::Ntp,
            _ => return None,
        })
    }

    /// The port used when the line gives none.
    pub fn default_port(self) -> u16 {
        match self {
            Role::Ntp => 123,
            _ => 443,
        }
    }

    /// Whether the destination gets TCP and TLS checks.
    pub fn is_tls(self) -> bool {
        !matches!(self, Role::Ntp)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One destination: a name (resolved) or an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub role: Role,
    /// As given (a name or an address, without the port).
    pub host: String,
    pub port: u16,
    /// The issuer organisation its chain must name; `None`: `--expect-issuer`.
    pub issuer: Option<String>,
}

impl Destination {
    pub fn new(role: Role, host: &str) -> Destination {
        Destination {
            role,
            host: host.trim_end_matches('.').to_string(),
            port: role.default_port(),
            issuer: None,
        }
    }

    /// The address, when the host is one.
    pub fn address(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// The default destinations for `cloud`, with these NTP servers
/// (`host[:port]`).
pub fn defaults(cloud: &str, ntp: &[String]) -> Result<Vec<Destination>, DestinationError> {
    let cloud = cloud.trim().trim_matches('.');
    let mut out = vec![Destination::new(Role::Broker, &format!("co2br.{cloud}"))];
    out.push(Destination::new(Role::Enrollment, ENROLLMENT_HOST));
    out.extend(
        UPDATE_HOSTS
            .iter()
            .map(|h| Destination::new(Role::Update, h)),
    );
    for (i, server) in ntp.iter().enumerate() {
        let (host, port) = split_host_port(server, 123).map_err(|reason| DestinationError {
            source_name: "--ntp".into(),
            line: i + 1,
            text: server.clone(),
            reason,
        })?;
        out.push(Destination {
            port,
            ..Destination::new(Role::Ntp, &host)
        });
    }
    Ok(out)
}

/// A line of a destinations (or proxy) file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{source_name} line {line}: {reason}: `{text}`")]
pub struct DestinationError {
    /// The file (or option) it came from.
    pub source_name: String,
    pub line: usize,
    pub text: String,
    pub reason: String,
}

/// What a destinations file says: its destinations, and whether the
/// default list is wanted too (a `defaults` line), in the file's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DestinationsFile {
    pub entries: Vec<FileEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileEntry {
    Destination(Destination),
    Defaults,
}

/// Longest line considered; longer is an error (not a host name).
const MAX_LINE: usize = 1024;

/// Parses a destinations file (`name` names it in errors).
pub fn parse_file(name: &str, text: &str) -> Result<DestinationsFile, DestinationError> {
    let mut out = DestinationsFile::default();
    for (i, raw) in text.lines().enumerate() {
        let err = |reason: &str| DestinationError {
            source_name: name.to_string(),
            line: i + 1,
            text: raw.chars().take(120).collect(),
            reason: reason.to_string(),
        };
        if raw.len() > MAX_LINE {
            return Err(err("line too long"));
        }
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.splitn(3, char::is_whitespace);
        let first = words.next().unwrap_or("");
        if first == "defaults" {
            if words.next().is_some() {
                return Err(err("`defaults` takes nothing after it"));
            }
            out.entries.push(FileEntry::Defaults);
            continue;
        }
        let role = Role::parse(first).ok_or_else(|| {
            err("the first word must be broker, enroll, update, tls, ntp or defaults")
        })?;
        let target = words
            .next()
            .ok_or_else(|| err("a host (name or address) must follow the role"))?;
        let (host, port) = split_host_port(target, role.default_port()).map_err(|r| err(&r))?;
        let mut d = Destination {
            port,
            ..Destination::new(role, &host)
        };
        if let Some(rest) = words.next().map(str::trim).filter(|r| !r.is_empty()) {
            let org = rest
                .strip_prefix("issuer=")
                .ok_or_else(|| err("the only option is issuer=ORG"))?
                .trim();
            if org.is_empty() {
                return Err(err("issuer= needs an organisation"));
            }
            if !role.is_tls() {
                return Err(err("issuer= applies to TLS destinations, not ntp"));
            }
            d.issuer = Some(org.to_string());
        }
        out.entries.push(FileEntry::Destination(d));
    }
    if out.entries.is_empty() {
        return Err(DestinationError {
            source_name: name.to_string(),
            line: 0,
            text: String::new(),
            reason: "no destination in the file".into(),
        });
    }
    Ok(out)
}

/// The destinations of a file, with the defaults where it says `defaults`.
pub fn resolve_file(file: &DestinationsFile, defaults: &[Destination]) -> Vec<Destination> {
    let mut out: Vec<Destination> = Vec::new();
    let mut push = |d: &Destination| {
        if !out
            .iter()
            .any(|o| o.host == d.host && o.port == d.port && o.role.is_tls() == d.role.is_tls())
        {
            out.push(d.clone());
        }
    };
    for e in &file.entries {
        match e {
            FileEntry::Destination(d) => push(d),
            FileEntry::Defaults => defaults.iter().for_each(&mut push),
        }
    }
    out
}

/// `host`, `host:port`, `a.b.c.d:port`, `[v6]:port` or a bare IPv6 address.
pub fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty host".into());
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok((s.to_string(), default_port));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address in brackets needs its `]`".to_string())?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{h}` is not an IPv6 address"));
        }
        match p.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if p.is_empty() => (h, None),
            None => return Err("junk after `]`".into()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("`{p}` is not a port (1-65535)")),
        },
        None => default_port,
    };
    if host.parse::<IpAddr>().is_err() && !is_host_name(host) {
        return Err(format!("`{host}` is not a host name or address"));
    }
    Ok((host.to_string(), port))
}

/// Letters, digits, hyphens, underscores and dots, 253 bytes at most.
fn is_host_name(h: &str) -> bool {
    let h = h.trim_end_matches('.');
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_name_the_locator_the_enrollment_and_update_hosts_and_ntp() {
        let d = defaults(
            "prod.zpath.net.",
            &["192.0.2.1".into(), "ntp.lab:1123".into()],
        )
        .unwrap();
        let hosts: Vec<(&str, Role, u16)> = d
            .iter()
            .map(|d| (d.host.as_str(), d.role, d.port))
            .collect();
        assert_eq!(
            hosts,
            vec![
                ("co2br.prod.zpath.net", Role::Broker, 443),
                ("api.private.zscaler.com", Role::Enrollment, 443),
                ("dist.private.zscaler.com", Role::Update, 443),
                ("yum.private.zscaler.com", Role::Update, 443),
                ("192.0.2.1", Role::Ntp, 123),
                ("ntp.lab", Role::Ntp, 1123),
            ]
        );
        assert!(defaults("x", &["bad host!".into()]).is_err());
    }

    #[test]
    fn a_file_replaces_or_extends_the_defaults() {
        let text = "# mine\nbroker co2br.zpatwo.net\ntls repo.example:8443 issuer=Example Org  # pinned\n\nntp [2001:db8::1]:123\ndefaults\n";
        let f = parse_file("d.txt", text).unwrap();
        assert_eq!(f.entries.len(), 4);
        let defaults = defaults("lab1.test", &[]).unwrap();
        let all = resolve_file(&f, &defaults);
        assert_eq!(all.len(), 3 + 4);
        assert_eq!(all[1].issuer.as_deref(), Some("Example Org"));
        assert_eq!((all[1].host.as_str(), all[1].port), ("repo.example", 8443));
        assert_eq!((all[2].host.as_str(), all[2].port), ("2001:db8::1", 123));
        assert_eq!(all[3].host, "co2br.lab1.test");
        // Without `defaults`, only the file's.
        let f = parse_file("d.txt", "update dist.example\n").unwrap();
        assert_eq!(resolve_file(&f, &defaults).len(), 1);
    }

    #[test]
    fn bad_lines_name_the_line_and_why() {
        for (text, line, why) in [
            ("broker\n", 1, "a host"),
            ("\nweb example.com\n", 2, "first word"),
            ("tls a.example:0\n", 1, "not a port"),
            ("tls a.example:99999\n", 1, "not a port"),
            ("tls a.example issuer=\n", 1, "needs an organisation"),
            ("ntp 192.0.2.1 issuer=X\n", 1, "TLS destinations"),
            ("tls a.example weight=3\n", 1, "only option"),
            ("tls bad_host!\n", 1, "not a host"),
            ("defaults now\n", 1, "nothing after"),
            ("# nothing\n", 0, "no destination"),
            ("tls [2001:db8::1\n", 1, "`]`"),
        ] {
            let e = parse_file("d.txt", text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(why), "{text:?}: {e}");
            assert!(e.to_string().starts_with("d.txt line"), "{e}");
        }
        let long = format!("tls {}\n", "a".repeat(2000));
        assert!(parse_file("d.txt", &long).is_err());
    }
}
