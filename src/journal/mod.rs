//! The connector's own log: `journalctl -u zpa-connector` output, read as
//! observations. A source: it parses and classifies lines, it judges
//! nothing (the rules in `analysis::rules::journal` do).
//!
//! Formats: `short` (`Apr 02 08:03:22 host ident[pid]: msg`), `short-precise`
//! (`Apr 02 08:03:22.123456 ...`), `short-iso` (`2026-04-02T08:03:22+0200
//! ...`), `short-iso-precise`, and `-o json` (one object per line). The
//! host may be missing (`Nov 08 02:29:53 ident[pid]: msg`, as some dumps
//! quote it). ANSI colour escapes are stripped, also when a copy lost the
//! ESC byte (`[1;39m...[0m`).
//!
//! Year-less timestamps (`short`, `short-precise`) get the year given
//! (`year`), else the year of the file's own ISO or JSON timestamps, else
//! the current year; and one year more each time the month goes backwards
//! from one line to the next (Dec 31 → Jan 01). They carry no zone: they
//! are local time at `utc_offset_secs` east of UTC, or UTC when none is
//! given ([`Journal::utc_offset_assumed`] says so).
//!
//! Memory is bounded: lines longer than [`MAX_LINE`] are cut, messages are
//! kept up to [`MAX_TEXT`] bytes, and at most [`MAX_EVENTS`] events are kept
//! (the rest counted).

mod classify;
pub mod timeline;

pub use classify::classify;

use serde::Serialize;
use std::io::BufRead;
use std::net::SocketAddr;

/// Bytes of a line kept; the rest of a longer line is skipped.
pub const MAX_LINE: usize = 64 * 1024;
/// Bytes of a message kept in [`JournalEvent::text`].
pub const MAX_TEXT: usize = 1024;
/// Events kept; later ones are counted in [`JournalCounts::events_dropped`].
pub const MAX_EVENTS: usize = 200_000;

/// One recognised line of the connector's log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JournalEvent {
    /// Line number in the input (1-based), for `sed -n Np` / `grep -n`.
    pub line: u64,
    /// UTC nanoseconds since the epoch, when the line has a timestamp.
    pub ts_ns: Option<i64>,
    pub pid: Option<u32>,
    pub kind: JournalEventKind,
    /// The broker's name, when the line names one.
    pub broker: Option<String>,
    /// The broker's address and port, when the line names them.
    pub address: Option<SocketAddr>,
    /// The message (ANSI escapes stripped), at most [`MAX_TEXT`] bytes.
    pub text: String,
}

/// Why an enrollment failed, as the connector says it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum EnrollmentReason {
    /// "This provisioning key has already been enrolled" (it then tries to re-enroll).
    KeyAlreadyEnrolled,
    /// "provisioning key invalid/expired", "enrollment rejected".
    KeyInvalid,
    /// "Send CSR ... Expected HTTP 2xx, got HTTP N".
    CsrRejected { status: u16 },
    /// "Login request failed - http status(N)".
    LoginRejected { status: u16 },
    /// "Certificate enrollment failed." (no reason on the line).
    Failed,
}

/// What a line says.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum JournalEventKind {
    /// "Adding name resolution for NAME of ADDR".
    NameResolved {
        name: String,
        addresses: Vec<std::net::IpAddr>,
    },
    /// "DNS resolution failed for NAME".
    DnsFailed {
        name: String,
    },
    /// "certificate is not yet valid".
    CertNotYetValid,
    /// "certificate has expired".
    CertExpired,
    /// Any other certificate verification failure (self-signed in chain,
    /// unable to get local issuer...): the issuer's CN when the line names it.
    CertUntrusted {
        issuer: Option<String>,
    },
    /// "Cannot decrypt data from instance_id.crypt", "Cannot get instance
    /// id", "fingerprint mismatch".
    IdentityChanged,
    EnrollmentFailed {
        reason: EnrollmentReason,
    },
    /// "BEV_EVENT_CONNECTED", "Broker control connection successfully connected".
    ControlConnected,
    /// "BEV_EVENT_ERROR"/"BEV_EVENT_EOF" without a certificate error.
    ConnectionError,
    /// "Broker control connection to Zscaler Cloud closed" with the
    /// `FOHH_CLOSE_REASON_*` when given.
    ControlClosed {
        reason: Option<String>,
    },
    /// A `fohh_connection_backoff` line.
    Backoff,
    /// "Received broker_redirect".
    Redirect,
    /// "Connector not yet connected to cloud".
    NotConnected,
    /// The status block's header ("Connector Status:ID=..:Name=..:Ver=..").
    Status {
        name: Option<String>,
        version: Option<String>,
    },
    /// "Control connection state: S" / "Broker control connection, state S".
    ControlState {
        state: String,
        connected: bool,
    },
    /// "Time skew: - 0.012783s": the connector's clock against the cloud's.
    TimeSkew {
        secs: f64,
    },
    /// "Certificate will expire in D days, H hours, M minutes, S seconds".
    CertExpiresIn {
        secs: u64,
    },
    /// "Broker data connection count = N, backed_off connections = M".
    DataConnections {
        count: u64,
        backed_off: u64,
    },
}

/// The format of a journal line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalFormat {
    Short,
    ShortPrecise,
    ShortIso,
    ShortIsoPrecise,
    Json,
}

/// What the lines were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JournalCounts {
    /// Lines read.
    pub lines: u64,
    /// Lines with a journal timestamp (or JSON entries).
    pub journal_lines: u64,
    /// Journal lines classified as an event.
    pub recognised: u64,
    /// Journal lines whose message no rule knows.
    pub unknown: u64,
    /// `-- Boot ... --`, `-- No entries --`, `-- Logs begin at ... --`.
    pub markers: u64,
    /// Lines that are not journal lines (continuations of a multi-line
    /// message, text around a pasted excerpt).
    pub other: u64,
    /// Lines longer than [`MAX_LINE`] (cut).
    pub long_lines: u64,
    /// Events beyond [`MAX_EVENTS`], not kept.
    pub events_dropped: u64,
}

/// How year-less timestamps got their year.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "rule", content = "year")]
pub enum YearRule {
    /// No year-less timestamp in the input.
    NotNeeded,
    /// `--year`.
    Given(i32),
    /// The year of the file's own ISO or JSON timestamps.
    FromContext(i32),
    /// The current year (nothing else said).
    CurrentYear(i32),
}

/// A parsed journal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Journal {
    pub events: Vec<JournalEvent>,
    pub counts: JournalCounts,
    /// The formats seen, in order of first appearance.
    pub formats: Vec<JournalFormat>,
    pub year_rule: YearRule,
    /// Times the month went backwards (a new year began) in year-less lines.
    pub year_rollovers: u32,
    /// Offset east of UTC applied to zone-less timestamps.
    pub utc_offset_secs: i32,
    /// Zone-less timestamps were read as UTC because no offset was given.
    pub utc_offset_assumed: bool,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
}

/// How to read a journal.
#[derive(Clone, Copy, Debug, Default)]
pub struct JournalOptions {
    /// The year of the first year-less timestamp (`--year`).
    pub year: Option<i32>,
    /// Local time's offset east of UTC for zone-less timestamps (`--utc-offset`).
    pub utc_offset_secs: Option<i32>,
    /// The current year (default: from the system clock); for tests.
    pub current_year: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the journal: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "not a journal: none of its {lines} lines is journalctl output (short, short-precise, short-iso, short-iso-precise or -o json){hint}"
    )]
    NotAJournal { lines: u64, hint: &'static str },
}

/// A zone offset as `+HH:MM`, `-HHMM`, `+HH` or `Z`, in seconds east of UTC.
pub fn parse_utc_offset(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    if rest.contains(':') && rest.len() != 5 {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// Reads a whole journal from bytes.
pub fn parse_journal_bytes(data: &[u8], opts: &JournalOptions) -> Result<Journal, JournalError> {
    read_journal(data, opts)
}

/// Reads a journal line by line in bounded memory.
pub fn read_journal<R: BufRead>(
    mut input: R,
    opts: &JournalOptions,
) -> Result<Journal, JournalError> {
    let mut st = State::default();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut binary = false;
    let mut first_bytes: Vec<u8> = Vec::new();
    loop {
        buf.clear();
        let (got, long) = read_bounded_line(&mut input, &mut buf)?;
        if !got {
            break;
        }
        if first_bytes.len() < 8 {
            first_bytes.extend(buf.iter().take(8 - first_bytes.len()));
        }
        st.counts.lines += 1;
        if long {
            st.counts.long_lines += 1;
        }
        if buf.contains(&0) {
            binary = true;
        }
        let text = String::from_utf8_lossy(&buf);
        st.line(&text);
    }
    if st.counts.journal_lines == 0 && st.counts.markers == 0 {
        let hint = if looks_like_capture(&first_bytes) {
            " (it looks like a capture: use `pathproof pcap`)"
        } else if binary {
            " (it is binary)"
        } else {
            ""
        };
        return Err(JournalError::NotAJournal {
            lines: st.counts.lines,
            hint,
        });
    }
    Ok(st.finish(opts))
}

fn looks_like_capture(b: &[u8]) -> bool {
    let magic = |m: [u8; 4]| b.len() >= 4 && b[..4] == m;
    magic([0xd4, 0xc3, 0xb2, 0xa1])
        || magic([0xa1, 0xb2, 0xc3, 0xd4])
        || magic([0x4d, 0x3c, 0xb2, 0xa1])
        || magic([0xa1, 0xb2, 0x3c, 0x4d])
        || magic([0x0a, 0x0d, 0x0d, 0x0a])
        || (b.len() >= 2 && b[..2] == [0x1f, 0x8b])
}

/// One line into `buf` (without its end of line), at most [`MAX_LINE`]
/// bytes kept: (a line was read, it was longer than kept).
fn read_bounded_line<R: BufRead>(
    input: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<(bool, bool)> {
    let mut any = false;
    let mut long = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (part, used, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        if part.len() > room {
            long = true;
        }
        buf.extend_from_slice(&part[..part.len().min(room)]);
        input.consume(used);
        if end {
            break;
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok((any, long))
}

/// A timestamp as the line gives it.
#[derive(Clone, Copy, Debug)]
enum Stamp {
    /// Month, day, seconds of the day, nanoseconds: local time, no year.
    YearLess {
        month: u32,
        day: u32,
        secs: i64,
        nanos: i64,
    },
    /// UTC, and the year of the local time written.
    Absolute { ns: i64, year: i32 },
}

#[derive(Default)]
struct State {
    events: Vec<JournalEvent>,
    /// Per kept event: its year-less stamp and the rollovers before it.
    pending: Vec<Option<(Stamp, u32)>>,
    counts: JournalCounts,
    formats: Vec<JournalFormat>,
    prev_month: Option<u32>,
    rollovers: u32,
    /// The first absolute timestamp's local year, and the rollovers seen by then.
    context_year: Option<(i32, u32)>,
    saw_year_less: bool,
}

impl State {
    fn line(&mut self, raw: &str) {
        let line_no = self.counts.lines;
        let clean = strip_ansi(raw);
        let trimmed = clean.trim();
        if trimmed.is_empty() {
            self.counts.other += 1;
            return;
        }
        if is_marker(trimmed) {
            self.counts.markers += 1;
            return;
        }
        let parsed = if trimmed.starts_with('{') {
            parse_json_line(trimmed)
        } else {
            parse_text_line(&clean)
        };
        let Some(p) = parsed else {
            self.counts.other += 1;
            return;
        };
        self.counts.journal_lines += 1;
        if !self.formats.contains(&p.format) {
            self.formats.push(p.format);
        }
        let stamp = p.stamp;
        match stamp {
            Some(Stamp::YearLess { month, .. }) => {
                self.saw_year_less = true;
                if let Some(prev) = self.prev_month
                    && month < prev
                {
                    self.rollovers += 1;
                }
                self.prev_month = Some(month);
            }
            Some(Stamp::Absolute { year, .. }) if self.context_year.is_none() => {
                self.context_year = Some((year, self.rollovers));
            }
            Some(Stamp::Absolute { .. }) => {}
            None => {}
        }
        let message = strip_ansi(&p.message);
        let Some((kind, broker, address)) = classify(&message) else {
            self.counts.unknown += 1;
            return;
        };
        self.counts.recognised += 1;
        if self.events.len() >= MAX_EVENTS {
            self.counts.events_dropped += 1;
            return;
        }
        let (ts_ns, pending) = match stamp {
            Some(Stamp::Absolute { ns, .. }) => (Some(ns), None),
            Some(s @ Stamp::YearLess { .. }) => (None, Some((s, self.rollovers))),
            None => (None, None),
        };
        self.events.push(JournalEvent {
            line: line_no,
            ts_ns,
            pid: p.pid,
            kind,
            broker,
            address,
            text: bounded(message.trim(), MAX_TEXT),
        });
        self.pending.push(pending);
    }

    fn finish(mut self, opts: &JournalOptions) -> Journal {
        let year_rule = if !self.saw_year_less {
            YearRule::NotNeeded
        } else if let Some(y) = opts.year {
            YearRule::Given(y)
        } else if let Some((y, k)) = self.context_year {
            YearRule::FromContext(y - k as i32)
        } else {
            YearRule::CurrentYear(opts.current_year.unwrap_or_else(current_year))
        };
        let base = match year_rule {
            YearRule::Given(y) | YearRule::FromContext(y) | YearRule::CurrentYear(y) => y,
            YearRule::NotNeeded => 1970,
        };
        let offset = opts.utc_offset_secs.unwrap_or(0);
        for (e, p) in self.events.iter_mut().zip(&self.pending) {
            if let Some((
                Stamp::YearLess {
                    month,
                    day,
                    secs,
                    nanos,
                },
                k,
            )) = p
            {
                let days = days_from_civil(i64::from(base) + i64::from(*k), *month, *day);
                let local = days * 86_400 + secs;
                e.ts_ns = (local - i64::from(offset))
                    .checked_mul(1_000_000_000)
                    .and_then(|n| n.checked_add(*nanos));
            }
        }
        let first_ts_ns = self.events.iter().filter_map(|e| e.ts_ns).min();
        let last_ts_ns = self.events.iter().filter_map(|e| e.ts_ns).max();
        Journal {
            events: self.events,
            counts: self.counts,
            formats: self.formats,
            year_rule,
            year_rollovers: self.rollovers,
            utc_offset_secs: offset,
            utc_offset_assumed: self.saw_year_less && opts.utc_offset_secs.is_none(),
            first_ts_ns,
            last_ts_ns,
        }
    }
}

fn current_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    civil_year(secs.div_euclid(86_400))
}

/// The year of a day count since 1970-01-01 (Hinnant's civil_from_days).
fn civil_year(days: i64) -> i32 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2)) as i32
}

/// Days since 1970-01-01 of a civil date (Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn is_marker(t: &str) -> bool {
    t.starts_with("-- ")
        && (t.ends_with(" --")
            || t.starts_with("-- Logs begin")
            || t.starts_with("-- Journal begins"))
}

/// Removes ANSI SGR/CSI escapes, and the bare `[1;39m` / `[0m` left when a
/// copy dropped the ESC byte.
fn strip_ansi(s: &str) -> String {
    if !s.contains('\x1b') && !s.contains('[') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        let esc = b[i] == 0x1b;
        if esc || b[i] == b'[' {
            let start = if esc && b.get(i + 1) == Some(&b'[') {
                i + 2
            } else {
                i + 1
            };
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b';') && j - start < 16 {
                j += 1;
            }
            let csi_end = if esc {
                // ESC [ params final (0x40..=0x7e), or a lone ESC.
                if b.get(i + 1) == Some(&b'[') {
                    (j < b.len() && (0x40..=0x7e).contains(&b[j])).then_some(j + 1)
                } else {
                    Some(i + 1)
                }
            } else {
                // Bare `[...m`: only SGR, with at least one digit.
                (j > start && j < b.len() && b[j] == b'm').then_some(j + 1)
            };
            if let Some(end) = csi_end {
                out.push_str(&s[copied..i]);
                i = end;
                copied = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

struct Parsed {
    format: JournalFormat,
    stamp: Option<Stamp>,
    pid: Option<u32>,
    message: String,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn digits(s: &[u8], n: usize) -> Option<i64> {
    if s.len() < n || !s[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        s[..n]
            .iter()
            .fold(0i64, |a, d| a * 10 + i64::from(d - b'0')),
    )
}

/// `HH:MM:SS[.frac]` at the start: (seconds of day, nanoseconds, bytes used, had a fraction).
fn clock(s: &[u8]) -> Option<(i64, i64, usize, bool)> {
    let h = digits(s, 2)?;
    if s.get(2) != Some(&b':') {
        return None;
    }
    let m = digits(&s[3..], 2)?;
    if s.get(5) != Some(&b':') {
        return None;
    }
    let sec = digits(&s[6..], 2)?;
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut used = 8;
    let mut nanos = 0i64;
    let mut frac = false;
    if s.get(8) == Some(&b'.') {
        let mut n = 0;
        while s.get(9 + n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
        if n == 0 {
            return None;
        }
        let kept = n.min(9);
        let v = digits(&s[9..], kept)?;
        nanos = v * 10i64.pow((9 - kept) as u32);
        used = 9 + n;
        frac = true;
    }
    Some((h * 3600 + m * 60 + sec, nanos, used, frac))
}

/// A text line: timestamp, then `[host] ident[pid]: message`.
fn parse_text_line(line: &str) -> Option<Parsed> {
    let b = line.as_bytes();
    let (format, stamp, used) = if b.len() >= 4 && b[..4].iter().all(u8::is_ascii_digit) {
        // YYYY-MM-DDTHH:MM:SS[.frac](+HHMM|+HH:MM|Z)
        let y = digits(b, 4)?;
        if b.get(4) != Some(&b'-')
            || b.get(7) != Some(&b'-')
            || !matches!(b.get(10), Some(b'T') | Some(b' '))
        {
            return None;
        }
        let mo = digits(&b[5..], 2)? as u32;
        let d = digits(&b[8..], 2)? as u32;
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
            return None;
        }
        let (secs, nanos, n, frac) = clock(&b[11..])?;
        let mut i = 11 + n;
        let zone_start = i;
        while i < b.len() && b[i] != b' ' {
            i += 1;
        }
        let offset = parse_utc_offset(line.get(zone_start..i)?)?;
        let local = days_from_civil(y, mo, d) * 86_400 + secs;
        let ns = (local - i64::from(offset))
            .checked_mul(1_000_000_000)?
            .checked_add(nanos)?;
        let f = if frac {
            JournalFormat::ShortIsoPrecise
        } else {
            JournalFormat::ShortIso
        };
        (f, Stamp::Absolute { ns, year: y as i32 }, i)
    } else {
        let mon = line.get(..3)?;
        let month = MONTHS.iter().position(|m| *m == mon)? as u32 + 1;
        let mut i = 3;
        if b.get(i) != Some(&b' ') {
            return None;
        }
        while b.get(i) == Some(&b' ') {
            i += 1;
        }
        let mut nd = 0;
        while nd < 2 && b.get(i + nd).is_some_and(u8::is_ascii_digit) {
            nd += 1;
        }
        let day = digits(&b[i..], nd.max(1))? as u32;
        if !(1..=31).contains(&day) {
            return None;
        }
        i += nd;
        if b.get(i) != Some(&b' ') {
            return None;
        }
        i += 1;
        let (secs, nanos, n, frac) = clock(&b[i..])?;
        let f = if frac {
            JournalFormat::ShortPrecise
        } else {
            JournalFormat::Short
        };
        (
            f,
            Stamp::YearLess {
                month,
                day,
                secs,
                nanos,
            },
            i + n,
        )
    };
    let rest = line.get(used..)?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let (pid, message) = split_header(rest.trim_start());
    Some(Parsed {
        format,
        stamp: Some(stamp),
        pid,
        message: message.to_string(),
    })
}

/// `host ident[pid]: msg`, `ident[pid]: msg` or `host msg` → (pid, msg).
fn split_header(rest: &str) -> (Option<u32>, &str) {
    let mut tokens = rest.splitn(3, ' ');
    let t1 = tokens.next().unwrap_or("");
    let ident = |t: &str| -> Option<Option<u32>> {
        let t = t.strip_suffix(':')?;
        Some(
            t.strip_suffix(']')
                .and_then(|x| x.rsplit_once('['))
                .and_then(|(_, p)| p.parse().ok()),
        )
    };
    if let Some(pid) = ident(t1) {
        return (pid, rest[t1.len()..].trim_start());
    }
    let after1 = rest[t1.len()..].trim_start();
    let t2 = after1.split(' ').next().unwrap_or("");
    if let Some(pid) = ident(t2) {
        return (pid, after1[t2.len()..].trim_start());
    }
    (None, after1)
}

/// One `journalctl -o json` entry.
fn parse_json_line(line: &str) -> Option<Parsed> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let ts = obj.get("__REALTIME_TIMESTAMP")?;
    let us: i64 = match ts {
        serde_json::Value::String(s) => s.parse().ok()?,
        serde_json::Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    let ns = us.checked_mul(1000)?;
    let message = match obj.get("MESSAGE") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(a)) => {
            let bytes: Vec<u8> = a
                .iter()
                .take(MAX_LINE)
                .filter_map(|x| x.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => String::new(),
    };
    let pid = match obj.get("_PID").or_else(|| obj.get("SYSLOG_PID")) {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|p| u32::try_from(p).ok()),
        _ => None,
    };
    Some(Parsed {
        format: JournalFormat::Json,
        stamp: Some(Stamp::Absolute {
            ns,
            year: civil_year(us.div_euclid(86_400_000_000)),
        }),
        pid,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_utc_offset("+02:00"), Some(7200));
        assert_eq!(parse_utc_offset("-0530"), Some(-19800));
        assert_eq!(parse_utc_offset("Z"), Some(0));
        assert_eq!(parse_utc_offset("+2"), None);
        assert_eq!(parse_utc_offset("+99:00"), None);
    }

    #[test]
    fn ansi_is_stripped_with_or_without_esc() {
        assert_eq!(strip_ansi("\x1b[1;39mhello\x1b[0m"), "hello");
        assert_eq!(
            strip_ansi("[1;39mhello [13.1.1.1]:4[0m"),
            "hello [13.1.1.1]:4"
        );
    }

    #[test]
    fn headers() {
        assert_eq!(
            split_header("host zpa-connector-child[12]: msg x"),
            (Some(12), "msg x")
        );
        assert_eq!(
            split_header("zpa-connector-child[12]: msg"),
            (Some(12), "msg")
        );
        assert_eq!(split_header("host zpa-connector: e:rr"), (None, "e:rr"));
    }

    #[test]
    fn dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_year(days_from_civil(2026, 12, 31)), 2026);
        assert_eq!(civil_year(days_from_civil(2027, 1, 1)), 2027);
    }
}
