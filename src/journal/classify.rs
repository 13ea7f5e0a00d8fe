//! What one message of the connector says. The patterns are the lines the
//! connector writes (quoted in the field guides); a message that matches
//! none is unknown, not an error.

use super::{EnrollmentReason, JournalEventKind};
use std::net::{IpAddr, SocketAddr};

type Classified = (JournalEventKind, Option<String>, Option<SocketAddr>);

/// The event a message is, with the broker name and address it names.
pub fn classify(msg: &str) -> Option<Classified> {
    use JournalEventKind as K;
    let msg = msg.trim().trim_matches('*');
    let spec = conn_spec(msg);
    let (broker, address) = match &spec {
        Some((b, a)) => (Some(b.clone()), Some(*a)),
        None => (None, None),
    };
    let with = |k: K| Some((k, broker.clone(), address));
    let lower = msg.to_ascii_lowercase();

    if let Some(rest) = after(msg, "Adding name resolution for ") {
        let mut it = rest.split_whitespace();
        let name = it.next()?.to_string();
        let addresses: Vec<IpAddr> = match (it.next(), it.next()) {
            (Some("of"), Some(a)) => a.trim_end_matches(',').parse().ok().into_iter().collect(),
            _ => Vec::new(),
        };
        return Some((K::NameResolved { name, addresses }, None, None));
    }
    if let Some(rest) = after(msg, "DNS resolution failed for ") {
        let name = rest
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches(['.', ',', ':'])
            .to_string();
        return Some((K::DnsFailed { name }, None, None));
    }
    if lower.contains("certificate is not yet valid") {
        return with(K::CertNotYetValid);
    }
    if lower.contains("certificate has expired") {
        return with(K::CertExpired);
    }
    const UNTRUSTED: [&str; 7] = [
        "self signed certificate",
        "self-signed certificate",
        "unable to get local issuer certificate",
        "unable to get issuer certificate",
        "unable to verify the first certificate",
        "certificate verify failed",
        "certificates retrieved do not successfully verify",
    ];
    if UNTRUSTED.iter().any(|p| lower.contains(p)) {
        return with(K::CertUntrusted {
            issuer: issuer_cn(msg),
        });
    }
    if lower.contains("cannot decrypt data from instance_id.crypt")
        || lower.contains("cannot get instance id")
        || lower.contains("fingerprint mismatch")
    {
        return with(K::IdentityChanged);
    }
    if lower.contains("provisioning key has already been enrolled") {
        return with(K::EnrollmentFailed {
            reason: EnrollmentReason::KeyAlreadyEnrolled,
        });
    }
    if lower.contains("provisioning key invalid")
        || lower.contains("provisioning key expired")
        || lower.contains("enrollment rejected")
    {
        return with(K::EnrollmentFailed {
            reason: EnrollmentReason::KeyInvalid,
        });
    }
    if lower.contains("send csr")
        && let Some(status) = after(&lower, "got http ").and_then(leading_u16)
        && status >= 300
    {
        return with(K::EnrollmentFailed {
            reason: EnrollmentReason::CsrRejected { status },
        });
    }
    if lower.contains("login request failed")
        && let Some(status) = after(&lower, "http status(").and_then(leading_u16)
    {
        return with(K::EnrollmentFailed {
            reason: EnrollmentReason::LoginRejected { status },
        });
    }
    if lower.contains("certificate enrollment failed") {
        return with(K::EnrollmentFailed {
            reason: EnrollmentReason::Failed,
        });
    }
    if msg.contains("BEV_EVENT_CONNECTED")
        || lower.contains("broker control connection successfully connected")
    {
        return with(K::ControlConnected);
    }
    if msg.contains("BEV_EVENT_ERROR") || msg.contains("BEV_EVENT_EOF") {
        return with(K::ConnectionError);
    }
    if lower.contains("broker control connection to zscaler cloud closed") {
        let reason = msg
            .split_whitespace()
            .find(|t| t.starts_with("FOHH_CLOSE_REASON_"))
            .map(|t| t.trim_end_matches([',', '.']).to_string());
        return with(K::ControlClosed { reason });
    }
    if let Some(state) = after(msg, "Control connection state: ")
        .or_else(|| after(msg, "Broker control connection, state "))
    {
        let state = state.split([',', ' ']).next().unwrap_or("").to_string();
        let connected = state == "fohh_connection_connected";
        return with(K::ControlState { state, connected });
    }
    if msg.contains("fohh_connection_backoff") {
        return with(K::Backoff);
    }
    if msg.contains("Received broker_redirect") {
        return with(K::Redirect);
    }
    if lower.contains("not yet connected to cloud") {
        return with(K::NotConnected);
    }
    if msg.contains("Connector Status") {
        let field = |key: &str| {
            after(msg, key).map(|r| r.split([':', ' ']).next().unwrap_or("").to_string())
        };
        return Some((
            K::Status {
                name: field("Name="),
                version: field("Ver="),
            },
            None,
            None,
        ));
    }
    if let Some(rest) = after(msg, "Time skew:") {
        return parse_skew(rest).map(|secs| (K::TimeSkew { secs }, None, None));
    }
    if let Some(rest) = after(msg, "Certificate will expire in ") {
        return parse_dhms(rest).map(|secs| (K::CertExpiresIn { secs }, None, None));
    }
    if let Some(rest) = after(msg, "Broker data connection count") {
        let nums: Vec<u64> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .take(2)
            .collect();
        if let [count, backed_off] = nums[..] {
            return Some((K::DataConnections { count, backed_off }, None, None));
        }
    }
    None
}

fn after<'a>(s: &'a str, pat: &str) -> Option<&'a str> {
    s.find(pat).map(|i| &s[i + pat.len()..])
}

fn leading_u16(s: &str) -> Option<u16> {
    let d: String = s.chars().take_while(char::is_ascii_digit).take(5).collect();
    d.parse().ok()
}

/// `-42 sec`, `- 0.012783s`, `0.123 s`, `+1.5 seconds`, `12 ms`.
fn parse_skew(rest: &str) -> Option<f64> {
    let s = rest.trim();
    let (sign, s) = match s.chars().next()? {
        '-' => (-1.0, s[1..].trim_start()),
        '+' => (1.0, s[1..].trim_start()),
        _ => (1.0, s),
    };
    let num: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .take(32)
        .collect();
    let v: f64 = num.parse().ok()?;
    let unit = s[num.len()..].trim_start().to_ascii_lowercase();
    let scale = if unit.starts_with("ms") {
        1e-3
    } else if unit.starts_with("us") || unit.starts_with("µs") {
        1e-6
    } else {
        1.0
    };
    let secs = sign * v * scale;
    secs.is_finite().then_some(secs)
}

/// `227 days, 21 hours, 26 minutes, 13 seconds` → seconds.
fn parse_dhms(rest: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut any = false;
    let mut it = rest.split([',', ' ']).filter(|t| !t.is_empty()).peekable();
    while let Some(t) = it.next() {
        let Ok(n) = t.parse::<u64>() else { continue };
        let unit = it
            .peek()
            .map(|u| u.to_ascii_lowercase())
            .unwrap_or_default();
        let mult = match unit.as_str() {
            u if u.starts_with("day") => 86_400,
            u if u.starts_with("hour") => 3600,
            u if u.starts_with("min") => 60,
            u if u.starts_with("sec") => 1,
            _ => continue,
        };
        total = total.saturating_add(n.saturating_mul(mult));
        any = true;
    }
    any.then_some(total)
}

/// The CN of the first distinguished name on the line (`/C=US/.../CN=Safemarch Inc CA/...`).
fn issuer_cn(msg: &str) -> Option<String> {
    let i = msg.find("/CN=")?;
    let v: String = msg[i + 4..]
        .chars()
        .take_while(|c| *c != '/' && *c != ',')
        .take(200)
        .collect();
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// `...;NAME:[IP]:PORT` → (NAME, IP:PORT): the broker end of a connection.
fn conn_spec(msg: &str) -> Option<(String, SocketAddr)> {
    let mut from = 0;
    while let Some(i) = msg[from..].find(":[").map(|i| i + from) {
        from = i + 2;
        let name_start = msg[..i].rfind([';', ' ', '(']).map_or(0, |p| p + 1);
        let name = &msg[name_start..i];
        if name.is_empty()
            || !name.contains('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        {
            continue;
        }
        let Some(close) = msg[from..].find(']').map(|c| c + from) else {
            continue;
        };
        let Ok(ip) = msg[from..close].parse::<IpAddr>() else {
            continue;
        };
        let Some(port) = msg[close + 1..].strip_prefix(':').and_then(leading_u16) else {
            continue;
        };
        return Some((name.to_string(), SocketAddr::new(ip, port)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skews() {
        assert_eq!(parse_skew(" - 0.012783s"), Some(-0.012783));
        assert_eq!(parse_skew(" -42 sec"), Some(-42.0));
        assert_eq!(parse_skew(" 0.123 s"), Some(0.123));
        assert_eq!(parse_skew(" 250 ms"), Some(0.25));
        assert_eq!(parse_skew(" n/a"), None);
    }

    #[test]
    fn spec_and_expiry() {
        let (b, a) = conn_spec("Received event from [13.170.52.111]:38864;broker2.sha1.prod.zpath.net:[56.109.210.189]:2010: BEV_EVENT_CONNECTED").unwrap();
        assert_eq!(b, "broker2.sha1.prod.zpath.net");
        assert_eq!(a.to_string(), "56.109.210.189:2010");
        assert_eq!(
            parse_dhms("227 days, 21 hours, 26 minutes, 13 seconds"),
            Some(227 * 86_400 + 21 * 3600 + 26 * 60 + 13)
        );
    }
}
