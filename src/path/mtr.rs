//! Parser for mtr output: report text (`mtr -r`, `-rw`, `-rwbzc N`, `-e`) and
//! `mtr --json`. Input is untrusted text from customers.
//!
//! [`parse`] picks the format by the first non-blank character: `{` means
//! JSON, anything else the report text. It never panics, and every error says
//! which line (or which JSON hub) is wrong and what was expected there.
//!
//! # What mtr prints (from mtr's `ui/report.c`, `ui/mtr.c`, `ui/asn.c`)
//!
//! * `Start: <time>`, then the header `HOST: <local name>` followed by the
//!   column titles of `-o` (default `LS NABWV`: `Loss% Snt Last Avg Best
//!   Wrst StDev`). Columns are mapped by title, so any `-o` order works.
//! * Hop rows ` %2d.|-- <host>` plus the columns; with `-z`/`-y N` the row
//!   is ` %2d. <ipinfo><host>` instead (`AS16509  ` padded to 9 characters,
//!   `AS???` when unknown) and there is no `|--`.
//! * `<host>` is the reverse name (default), the address (`-n`, or no
//!   reverse name), `name (address)` (`-b`), or `???` when nothing answered.
//! * Every field is written at a fixed offset, so a value wider than its
//!   field has its last character overwritten by the next field: `1405.0`
//!   prints as `1405.` and a loss of `100.0%` prints as `100.0`.
//! * Without `-w` the host field ends at column 33: names are cut to 25
//!   characters (19 with `-z`), which can cut an IPv6 address into another
//!   valid-looking address. Such a possibly-cut address is kept as a name,
//!   never as an address, unless the report is provably wide.
//! * Extra (ECMP) addresses of a hop follow its row as `    |  `|-- <ip>`
//!   and `    |   |-- <ip>`, or, with `-z`, as `     AS16509  <host>`.
//! * `-e` adds `[MPLS: Lbl .. TC .. S .. TTL ..]` lines (older mtr: `Exp`);
//!   with `-z` their `S` is printed with `%c` and comes out as a control byte.
//!
//! # JSON
//!
//! `{"report": {"mtr": {"src", "dst", ...}, "hubs": [{"count", "host",
//! "ASN"?, "Loss%", "Snt", "Last", "Avg", "Best", "Wrst", "StDev"}]}}`. Builds
//! without jansson print `count` (and `tests`, `tos`) as strings; both forms
//! are read, and numbers given as strings are accepted.
//!
//! # Target
//!
//! mtr stops its rows at the hop where the destination answered; when the
//! destination never answered it prints one `???` row after the last router
//! that did. So: in JSON, `target` is `dst` when it is an address, and
//! `target_hop` the last row showing that address. In text (or JSON whose
//! `dst` is a name), `target` is the first address of the last row and
//! `target_hop` its number; both are `None` when the last row is `???`. A
//! last row that answered with a name only gives `target_hop` without
//! `target`.

use super::{Hop, HopStats, Path, PathSource};
use serde_json::Value;
use std::net::IpAddr;

/// Why an mtr report could not be read; says which line and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum MtrParseError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("mtr JSON: {0}")]
    Json(String),
    #[error("no hops found: this does not look like an mtr report")]
    NoHops,
}

/// mtr numbers hops from 1 to 255 (its `MaxHost` is 256).
const MAX_HOP: u32 = 255;

/// More distinct addresses than this at one hop is not mtr output.
const MAX_ADDRESSES_PER_HOP: usize = 128;

/// The header mtr prints when `-o` is not given: `LS NABWV`.
const DEFAULT_COLUMNS: [Column; 7] = [
    Column::Loss,
    Column::Sent,
    Column::Last,
    Column::Avg,
    Column::Best,
    Column::Worst,
    Column::StDev,
];

/// Without `-w`, the statistics start at this column and cut the host field.
const NARROW_HOST_END: usize = 33;

/// Without `-w`, the local host name in the header is cut to this many characters.
const NARROW_HEADER_HOST: usize = NARROW_HOST_END - "HOST: ".len();

/// Parses mtr output, text or JSON (detected by the first non-blank character).
pub fn parse(input: &str) -> Result<Path, MtrParseError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    if input.trim_start().starts_with('{') {
        return parse_json(input, 0);
    }
    parse_text(input)
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

fn line_error(line: usize, reason: impl Into<String>) -> MtrParseError {
    MtrParseError::Line {
        line,
        reason: reason.into(),
    }
}

/// Quotes a piece of untrusted input for an error message, cut to a sane length.
fn quote(s: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = s
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    format!("`{out}`")
}

/// A decimal as mtr prints it: `1.8`, `1405.` (cut by the next field), or
/// `1,8` (a locale with decimal commas). No exponents, infinities or NaN.
fn parse_decimal(token: &str) -> Option<f64> {
    let token = token.trim();
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'-' | b'+'))
    {
        return None;
    }
    let value: f64 = token.replace(',', ".").parse().ok()?;
    value.is_finite().then_some(value)
}

/// A loss percentage: `0.0%`, or `100.0` whose `%` the next field overwrote.
fn parse_loss(token: &str) -> Option<f64> {
    parse_decimal(token.strip_suffix('%').unwrap_or(token))
}

/// A packet count, `%d`.
fn parse_count(token: &str) -> Option<u32> {
    let token = token.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

/// `AS16509` → `Some(16509)`; `AS???` or anything else → `None`.
fn parse_asn(token: &str) -> Option<u32> {
    let digits = token.trim().strip_prefix("AS")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A hop number as printed, 1 to 255.
fn hop_number(n: u64) -> Option<u8> {
    if (1..=u64::from(MAX_HOP)).contains(&n) {
        u8::try_from(n).ok()
    } else {
        None
    }
}

/// `(192.0.2.1)` → the address. A `(` without its `)` was cut by mtr's
/// 80-character name buffer or the narrow report: not trusted.
fn paren_address(token: &str) -> Option<IpAddr> {
    token.strip_prefix('(')?.strip_suffix(')')?.parse().ok()
}

/// Splits a printed host (`???`, `name`, `address`, `name (address)`) into
/// addresses and names. `trust_bare` is false when a bare address may have
/// been cut short by the narrow report; it is then kept as a name only.
fn resolve_host(tokens: &[&str], trust_bare: bool) -> (Vec<IpAddr>, Vec<String>) {
    match tokens {
        [] | ["???"] => (Vec::new(), Vec::new()),
        [one] => {
            if let Some(ip) = paren_address(one) {
                (vec![ip], Vec::new())
            } else if let (Ok(ip), true) = (one.parse::<IpAddr>(), trust_bare) {
                (vec![ip], Vec::new())
            } else {
                (Vec::new(), vec![(*one).to_string()])
            }
        }
        [name, paren] if paren.starts_with('(') => {
            let addresses = paren_address(paren).into_iter().collect();
            let names = if *name == "???" {
                Vec::new()
            } else {
                vec![(*name).to_string()]
            };
            (addresses, names)
        }
        more => (Vec::new(), vec![more.join(" ")]),
    }
}

/// Pushes `item` unless present; errors past [`MAX_ADDRESSES_PER_HOP`].
fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) -> Result<(), String> {
    if list.contains(&item) {
        return Ok(());
    }
    if list.len() >= MAX_ADDRESSES_PER_HOP {
        return Err(format!(
            "more than {MAX_ADDRESSES_PER_HOP} addresses or names for one hop; \
             this does not look like mtr output"
        ));
    }
    list.push(item);
    Ok(())
}

/// Picks the target and its hop; see the module documentation.
fn choose_target(hops: &[Hop], dst: Option<IpAddr>) -> (Option<IpAddr>, Option<u8>) {
    let Some(last) = hops.last() else {
        return (dst, None);
    };
    let last_answered = !last.addresses.is_empty() || !last.names.is_empty();
    match dst {
        Some(dst) => {
            let hop = hops
                .iter()
                .rev()
                .find(|h| h.addresses.contains(&dst))
                .map(|h| h.hop)
                // The last row answered but only its name is known (JSON
                // without -n/-b): mtr ends its rows at the destination.
                .or_else(|| (last_answered && last.addresses.is_empty()).then_some(last.hop));
            (Some(dst), hop)
        }
        None if last_answered => (last.addresses.first().copied(), Some(last.hop)),
        None => (None, None),
    }
}

// ---------------------------------------------------------------------------
// Report text
// ---------------------------------------------------------------------------

/// A statistics column, by its header title.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Loss,
    Sent,
    Last,
    Avg,
    Best,
    Worst,
    StDev,
    /// A column pathproof does not use (`Drop`, `Rcv`, `Gmean`, jitter, unknown).
    Other,
}

impl Column {
    fn from_title(title: &str) -> Option<Column> {
        Some(match title {
            "Loss%" => Column::Loss,
            "Snt" => Column::Sent,
            "Last" => Column::Last,
            "Avg" => Column::Avg,
            "Best" => Column::Best,
            "Wrst" => Column::Worst,
            "StDev" => Column::StDev,
            "Drop" | "Rcv" | "Gmean" | "Jttr" | "Javg" | "Jmax" | "Jint" => Column::Other,
            _ => return None,
        })
    }

    fn title(self) -> &'static str {
        match self {
            Column::Loss => "Loss%",
            Column::Sent => "Snt",
            Column::Last => "Last",
            Column::Avg => "Avg",
            Column::Best => "Best",
            Column::Worst => "Wrst",
            Column::StDev => "StDev",
            Column::Other => "other",
        }
    }
}

/// The statistics columns of a report, from its `HOST:` header.
#[derive(Debug)]
struct Columns {
    kinds: Vec<Column>,
    titles: Vec<String>,
    header_line: Option<usize>,
}

impl Columns {
    fn mtr_default() -> Columns {
        Columns {
            kinds: DEFAULT_COLUMNS.to_vec(),
            titles: DEFAULT_COLUMNS
                .iter()
                .map(|c| c.title().to_string())
                .collect(),
            header_line: None,
        }
    }

    fn from_header(line: usize, titles: &[&str]) -> Columns {
        // An unknown title is still a column: its values are skipped.
        Columns {
            kinds: titles
                .iter()
                .map(|t| Column::from_title(t).unwrap_or(Column::Other))
                .collect(),
            titles: titles.iter().map(|t| (*t).to_string()).collect(),
            header_line: Some(line),
        }
    }

    fn len(&self) -> usize {
        self.kinds.len()
    }

    /// `7 statistics (Loss% Snt ...) as in the header on line 2`.
    fn describe(&self) -> String {
        let from = match self.header_line {
            Some(line) => format!("as in the header on line {line}"),
            None => "as mtr prints by default (no `HOST:` header seen)".to_string(),
        };
        format!(
            "{} statistics ({}) {from}",
            self.len(),
            self.titles.join(" ")
        )
    }
}

/// What `-y N` printed before the host (`-z` is `-y 0`), from `ui/asn.c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InfoKind {
    /// `AS16509`, `AS???`: field `AS%-7s`.
    Asn,
    /// A further origin AS of a multi-origin prefix (`AS16509 14618`).
    MoreAsn,
    /// `52.93.0.0/16`: field `%-19s`.
    Route,
    /// `US`: field `%-4s`.
    Country,
    /// `arin`: field `%-8s`.
    Registry,
    /// `2011-05-13`: field `%-11s`.
    Allocated,
    /// `???` for a lookup that failed in a non-AS mode.
    Unknown,
}

impl InfoKind {
    fn of(token: &str) -> Option<InfoKind> {
        if let Some(rest) = token.strip_prefix("AS") {
            let ok =
                rest == "???" || (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()));
            return ok.then_some(InfoKind::Asn);
        }
        let b = token.as_bytes();
        Some(if token == "???" {
            InfoKind::Unknown
        } else if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
            InfoKind::MoreAsn
        } else if token.contains('/')
            && token
                .chars()
                .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '/'))
        {
            InfoKind::Route
        } else if b.len() == 2 && b.iter().all(u8::is_ascii_uppercase) {
            InfoKind::Country
        } else if matches!(token, "arin" | "ripencc" | "apnic" | "lacnic" | "afrinic") {
            InfoKind::Registry
        } else if b.len() == 10
            && b.iter().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    *c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            })
        {
            InfoKind::Allocated
        } else {
            return None;
        })
    }

    /// Width of the printed field, `AS` included.
    fn width(self) -> usize {
        match self {
            InfoKind::Asn | InfoKind::MoreAsn => 9,
            InfoKind::Route | InfoKind::Unknown => 19,
            InfoKind::Country => 4,
            InfoKind::Registry => 8,
            InfoKind::Allocated => 11,
        }
    }

    fn compatible(self, other: InfoKind) -> bool {
        self == other || self == InfoKind::Unknown || other == InfoKind::Unknown
    }
}

/// Kind of a whole ipinfo prefix; `None` unless every token is ipinfo-like.
fn prefix_kind(prefix: &[&str]) -> Option<InfoKind> {
    let (first, rest) = prefix.split_first()?;
    let kind = InfoKind::of(first)?;
    if kind == InfoKind::MoreAsn {
        return None;
    }
    rest.iter()
        .all(|t| InfoKind::of(t).is_some())
        .then_some(kind)
}

/// Could this token be a host as mtr prints it?
fn is_hostish(token: &str) -> bool {
    token == "???"
        || (!token.is_empty()
            && token.len() <= 255
            && token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')))
}

/// Splits the words between the hop number and the statistics into the
/// ipinfo prefix and the host (`name` or `name (address)`).
fn split_host<'a>(middle: &'a [&'a str]) -> (&'a [&'a str], &'a [&'a str]) {
    let host_words = match middle {
        [.., name, paren] if paren.starts_with('(') && !name.starts_with('(') => 2,
        [] => 0,
        _ => 1,
    };
    middle.split_at(middle.len().saturating_sub(host_words))
}

/// One hop row of a text report, before addresses are decided.
#[derive(Debug)]
struct Row {
    hop: u8,
    host: Vec<String>,
    /// Length of the host field when the report is narrow (no `-w`).
    narrow_limit: usize,
    kind: Option<InfoKind>,
    asn: Option<u32>,
    stats: Option<HopStats>,
    extra_addresses: Vec<IpAddr>,
    extra_names: Vec<String>,
}

impl Row {
    fn host_len(&self) -> usize {
        let words: usize = self.host.iter().map(|w| w.chars().count()).sum();
        words + self.host.len().saturating_sub(1)
    }
}

/// Strips copy-paste damage around a line: CR, blanks, backticks, NULs,
/// e-mail quoting (`> `).
fn clean_line(raw: &str) -> &str {
    raw.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '`' | '\0' | '>'))
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '`' | '\0'))
}

struct TextReport {
    columns: Columns,
    header_host_len: usize,
    rows: Vec<Row>,
    first_line_of_last_row: usize,
    /// First line of output in another mtr format, for a better error.
    other_format: Option<(usize, &'static str)>,
    /// Where a JSON document starts, if one is pasted after a prompt.
    json_start: Option<(usize, usize)>,
    /// The `HOST:` line had no column titles: they may be on the next line.
    titles_may_follow: bool,
}

fn parse_text(input: &str) -> Result<Path, MtrParseError> {
    // Old Mac line ends: CR alone.
    let separator = if !input.contains('\n') && input.contains('\r') {
        '\r'
    } else {
        '\n'
    };
    let mut report = TextReport {
        columns: Columns::mtr_default(),
        header_host_len: 0,
        rows: Vec::new(),
        first_line_of_last_row: 0,
        other_format: None,
        json_start: None,
        titles_may_follow: false,
    };
    let mut offset = 0;
    for (index, raw) in input.split(separator).enumerate() {
        let line_start = offset;
        offset += raw.len() + separator.len_utf8();
        report.line(index + 1, raw, line_start)?;
    }
    report.finish(input)
}

impl TextReport {
    fn line(&mut self, n: usize, raw: &str, line_start: usize) -> Result<(), MtrParseError> {
        let line = clean_line(raw);
        if line.is_empty() || line.contains("[MPLS:") {
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("HOST:") {
            return self.header(n, rest);
        }
        if line.starts_with("Mtr_Version,") {
            self.other_format.get_or_insert((n, "mtr --csv"));
        } else if line.starts_with("<?xml") || line.starts_with("<MTR ") {
            self.other_format.get_or_insert((n, "mtr --xml"));
        }
        if line.starts_with('{') && self.json_start.is_none() {
            let at = raw.find('{').unwrap_or(0);
            self.json_start = Some((n - 1, line_start + at));
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if self.titles_may_follow {
            self.titles_may_follow = false;
            // A header wrapped by a narrow terminal or an e-mail client.
            if tokens.iter().all(|t| Column::from_title(t).is_some()) {
                self.columns = Columns::from_header(n, &tokens);
                return Ok(());
            }
        }
        if line.starts_with(|c: char| c.is_ascii_digit())
            && let Some(row) = parse_hop_row(n, &tokens, &self.columns)?
        {
            return self.push_row(n, row);
        }
        if line.starts_with('|') {
            return self.ecmp_line(n, line);
        }
        self.ipinfo_continuation(n, &tokens)
    }

    fn header(&mut self, n: usize, rest: &str) -> Result<(), MtrParseError> {
        if let Some(last) = self.rows.last() {
            return Err(line_error(
                n,
                format!(
                    "a second mtr report starts here (the first one has hops up to {} \
                     ending on line {}); give one report at a time",
                    last.hop, self.first_line_of_last_row
                ),
            ));
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        let titles = match words.split_first() {
            Some((first, titles)) if Column::from_title(first).is_none() => {
                self.header_host_len = first.chars().count();
                titles
            }
            _ => &words[..],
        };
        if titles.is_empty() {
            // Keep mtr's default columns unless the titles are on the next line.
            self.titles_may_follow = true;
            self.columns = Columns::mtr_default();
        } else {
            self.columns = Columns::from_header(n, titles);
        }
        Ok(())
    }

    fn push_row(&mut self, n: usize, row: Row) -> Result<(), MtrParseError> {
        if let Some(previous) = self.rows.last() {
            if row.hop == previous.hop {
                return Err(line_error(
                    n,
                    format!(
                        "hop {} appears twice (also on line {}); mtr prints each hop once",
                        row.hop, self.first_line_of_last_row
                    ),
                ));
            }
            if row.hop < previous.hop {
                return Err(line_error(
                    n,
                    format!(
                        "hop {} comes after hop {} (line {}); expected increasing hop \
                         numbers, are two reports pasted together?",
                        row.hop, previous.hop, self.first_line_of_last_row
                    ),
                ));
            }
        }
        self.first_line_of_last_row = n;
        self.rows.push(row);
        Ok(())
    }

    /// `    |  `|-- 10.1.1.2` / `    |   |-- 10.1.1.3`: another address of
    /// the hop above (ECMP). mtr prints only the address here.
    fn ecmp_line(&mut self, n: usize, line: &str) -> Result<(), MtrParseError> {
        let Some(at) = line.find("|--") else {
            return Ok(());
        };
        let after = line.get(at + 3..).unwrap_or("");
        // `|---|---|` is a Markdown table, not mtr.
        if !after.is_empty() && !after.starts_with(char::is_whitespace) {
            return Ok(());
        }
        let Some(row) = self.rows.last_mut() else {
            return Ok(());
        };
        let words: Vec<&str> = after.split_whitespace().collect();
        let [word] = words.as_slice() else {
            return Err(line_error(
                n,
                format!(
                    "expected one address after `|--` (another address of hop {}), found {} words",
                    row.hop,
                    words.len()
                ),
            ));
        };
        let ip: IpAddr = word.parse().map_err(|_| {
            line_error(
                n,
                format!(
                    "expected an IP address after `|--` (another address of hop {}), found {}",
                    row.hop,
                    quote(word)
                ),
            )
        })?;
        push_unique(&mut row.extra_addresses, ip).map_err(|e| line_error(n, e))
    }

    /// `     AS16509  name (address)`: another host of the hop above, as
    /// printed with `-z`/`-y`. Anything else is ignored.
    fn ipinfo_continuation(&mut self, n: usize, tokens: &[&str]) -> Result<(), MtrParseError> {
        let Some(row) = self.rows.last_mut() else {
            return Ok(());
        };
        let Some(row_kind) = row.kind else {
            return Ok(());
        };
        let (prefix, host) = split_host(tokens);
        let Some(kind) = prefix_kind(prefix) else {
            return Ok(());
        };
        let Some(name) = host.first() else {
            return Ok(());
        };
        if !kind.compatible(row_kind)
            || *name == "???"
            || !is_hostish(name)
            || !name.contains(['.', ':'])
        {
            return Ok(());
        }
        let (addresses, names) = resolve_host(host, true);
        for ip in addresses {
            push_unique(&mut row.extra_addresses, ip).map_err(|e| line_error(n, e))?;
        }
        for name in names {
            push_unique(&mut row.extra_names, name).map_err(|e| line_error(n, e))?;
        }
        Ok(())
    }

    fn finish(self, input: &str) -> Result<Path, MtrParseError> {
        if self.rows.is_empty() {
            if let Some((line, format)) = self.other_format {
                return Err(line_error(
                    line,
                    format!(
                        "this is {format} output, which pathproof does not read; \
                         give `mtr -rw` text or `mtr --json` output"
                    ),
                ));
            }
            if let Some(json) = self
                .json_start
                .and_then(|(lines_before, at)| input.get(at..).map(|json| (json, lines_before)))
            {
                return parse_json(json.0, json.1);
            }
            return Err(MtrParseError::NoHops);
        }
        // A host longer than a narrow report can print proves -w; so does a
        // local host name longer than a narrow header can hold.
        let wide = self.header_host_len > NARROW_HEADER_HOST
            || self.rows.iter().any(|r| r.host_len() > r.narrow_limit);
        let hops: Vec<Hop> = self
            .rows
            .into_iter()
            .map(|row| {
                let trust_bare = wide || row.host_len() < row.narrow_limit;
                let words: Vec<&str> = row.host.iter().map(String::as_str).collect();
                let (mut addresses, mut names) = resolve_host(&words, trust_bare);
                for ip in row.extra_addresses {
                    if !addresses.contains(&ip) {
                        addresses.push(ip);
                    }
                }
                for name in row.extra_names {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                Hop {
                    hop: row.hop,
                    addresses,
                    names,
                    asn: row.asn,
                    stats: row.stats,
                }
            })
            .collect();
        let (target, target_hop) = choose_target(&hops, None);
        Ok(Path {
            source: PathSource::MtrReport,
            target,
            target_hop,
            hops,
        })
    }
}

/// Reads a hop row, ` 1.|-- host  stats` or ` 1. AS16509  host  stats`.
/// `Ok(None)`: not a hop row (prose such as `1. Open a ticket`). A row with
/// `|--`, or whose shape is unmistakably a row, must parse or it is an error.
fn parse_hop_row(
    n: usize,
    tokens: &[&str],
    columns: &Columns,
) -> Result<Option<Row>, MtrParseError> {
    let Some((first, after_first)) = tokens.split_first() else {
        return Ok(None);
    };
    let Some((digits, tail)) = first.split_once('.') else {
        return Ok(None);
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let mut words: Vec<&str> = Vec::with_capacity(after_first.len() + 1);
    let marker = if tail.is_empty() {
        match after_first.split_first() {
            Some((&"|--", rest)) => {
                words.extend_from_slice(rest);
                true
            }
            _ => {
                words.extend_from_slice(after_first);
                false
            }
        }
    } else if let Some(glued) = tail.strip_prefix("|--") {
        if !glued.is_empty() {
            words.push(glued);
        }
        words.extend_from_slice(after_first);
        true
    } else {
        return Ok(None);
    };

    let expected = || {
        format!(
            "expected a hop row: number, host, then {}",
            columns.describe()
        )
    };
    // `|--`, or an `AS…` word right after the number, make it surely a row.
    let strong = marker || words.first().and_then(|w| InfoKind::of(w)) == Some(InfoKind::Asn);
    if words.len() <= columns.len() {
        return if strong {
            Err(line_error(
                n,
                format!(
                    "{}, found only {} fields after the hop number",
                    expected(),
                    words.len()
                ),
            ))
        } else {
            Ok(None)
        };
    }
    let (middle, values) = words.split_at(words.len() - columns.len());
    let (prefix, host) = split_host(middle);
    let shape_error = || {
        line_error(
            n,
            format!(
                "{}; found {} where the host should be",
                expected(),
                quote(&middle.join(" "))
            ),
        )
    };
    let kind = if marker {
        if !prefix.is_empty() {
            return Err(shape_error());
        }
        None
    } else {
        let kind = if prefix.is_empty() {
            None
        } else {
            prefix_kind(prefix)
        };
        let host_ok = host.first().is_some_and(|h| is_hostish(h));
        if !host_ok || (!prefix.is_empty() && kind.is_none()) {
            return if strong { Err(shape_error()) } else { Ok(None) };
        }
        kind
    };

    let hop = digits
        .parse::<u64>()
        .ok()
        .and_then(hop_number)
        .ok_or_else(|| {
            line_error(
                n,
                format!(
                    "hop number {} is out of range: mtr numbers hops 1 to {MAX_HOP}",
                    quote(digits)
                ),
            )
        })?;

    let stats = parse_stats(n, &columns.kinds, values)?;

    // Where mtr starts the host: " %2d.|-- " or " %2d. " plus the ipinfo field.
    let hop_width = digits.len().max(2);
    let host_start = match kind {
        None => 1 + hop_width + ".|-- ".len(),
        Some(kind) => {
            let printed: usize =
                prefix.iter().map(|w| w.len()).sum::<usize>() + prefix.len().saturating_sub(1);
            1 + hop_width + ". ".len() + kind.width().max(printed)
        }
    };
    Ok(Some(Row {
        hop,
        host: host.iter().map(|w| (*w).to_string()).collect(),
        narrow_limit: NARROW_HOST_END.saturating_sub(host_start),
        kind,
        asn: prefix
            .iter()
            .find(|w| w.starts_with("AS"))
            .and_then(|w| parse_asn(w)),
        stats,
        extra_addresses: Vec::new(),
        extra_names: Vec::new(),
    }))
}

/// Reads the statistics of a row by column title. `Some` when all seven
/// columns pathproof uses are present.
fn parse_stats(
    n: usize,
    columns: &[Column],
    values: &[&str],
) -> Result<Option<HopStats>, MtrParseError> {
    let mut loss = None;
    let mut sent = None;
    let mut ms: [Option<f64>; 5] = [None; 5];
    for (column, value) in columns.iter().zip(values) {
        let bad = |what: &str| {
            line_error(
                n,
                format!(
                    "expected {} as {what}, found {}",
                    column.title(),
                    quote(value)
                ),
            )
        };
        match column {
            Column::Loss => {
                let v = parse_loss(value).ok_or_else(|| bad("a number like `0.0%` or `100.0`"))?;
                loss.get_or_insert(v);
            }
            Column::Sent => {
                let v = parse_count(value).ok_or_else(|| bad("a whole number of packets"))?;
                sent.get_or_insert(v);
            }
            Column::Other => {}
            latency => {
                let slot = match latency {
                    Column::Last => 0,
                    Column::Avg => 1,
                    Column::Best => 2,
                    Column::Worst => 3,
                    _ => 4,
                };
                let v = parse_decimal(value)
                    .ok_or_else(|| bad("milliseconds like `1.8` or `1405.`"))?;
                if let Some(s) = ms.get_mut(slot) {
                    s.get_or_insert(v);
                }
            }
        }
    }
    Ok(match (loss, sent, ms) {
        (
            Some(loss_pct),
            Some(sent),
            [Some(last), Some(avg), Some(best), Some(worst), Some(stdev)],
        ) => Some(HopStats {
            loss_pct,
            sent,
            last_ms: last,
            avg_ms: avg,
            best_ms: best,
            worst_ms: worst,
            stdev_ms: stdev,
        }),
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// Parses `mtr --json`; `lines_before` is added to line numbers in errors
/// when the document starts further down a pasted file. Text after the JSON
/// document (a shell prompt) is ignored.
fn parse_json(text: &str, lines_before: usize) -> Result<Path, MtrParseError> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let root = match stream.next() {
        Some(Ok(value)) => value,
        Some(Err(e)) => return Err(json_syntax_error(&e, lines_before)),
        None => return Err(MtrParseError::Json("the input is empty".into())),
    };
    let report = root.get("report").ok_or_else(|| {
        MtrParseError::Json("expected an object with a \"report\" key at the top".into())
    })?;
    let hubs = report
        .get("hubs")
        .ok_or_else(|| MtrParseError::Json("expected \"report\" to have a \"hubs\" list".into()))?
        .as_array()
        .ok_or_else(|| MtrParseError::Json("expected \"report\".\"hubs\" to be a list".into()))?;
    let dst = report
        .get("mtr")
        .and_then(|m| m.get("dst"))
        .and_then(Value::as_str)
        .and_then(|d| d.trim().parse::<IpAddr>().ok());

    let mut hops: Vec<Hop> = Vec::with_capacity(hubs.len().min(usize::from(u8::MAX)));
    for (i, hub) in hubs.iter().enumerate() {
        let hop = json_hub(i, hub)?;
        if let Some(previous) = hops.last()
            && hop.hop <= previous.hop
        {
            return Err(MtrParseError::Json(format!(
                "hubs[{i}]: hop {} comes after hop {}; expected increasing \"count\" values",
                hop.hop, previous.hop
            )));
        }
        hops.push(hop);
    }
    if hops.is_empty() {
        return Err(MtrParseError::NoHops);
    }
    let (target, target_hop) = choose_target(&hops, dst);
    Ok(Path {
        source: PathSource::MtrJson,
        target,
        target_hop,
        hops,
    })
}

fn json_syntax_error(e: &serde_json::Error, lines_before: usize) -> MtrParseError {
    let message = e.to_string();
    let what = message.split(" at line ").next().unwrap_or(&message);
    let kind = if e.is_eof() {
        "the JSON is cut short"
    } else {
        "invalid JSON"
    };
    MtrParseError::Json(format!(
        "{kind} ({what}) at line {}, column {}",
        e.line() + lines_before,
        e.column()
    ))
}

/// A JSON number, or a number written as a string (mtr without jansson).
fn json_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
        Value::String(s) => parse_loss(s),
        _ => None,
    }
}

fn json_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= 1e15)
                .map(|v| v as u64)
        }),
        Value::String(s) => parse_count(s).map(u64::from),
        _ => None,
    }
}

fn json_hub(i: usize, hub: &Value) -> Result<Hop, MtrParseError> {
    let err = |reason: String| MtrParseError::Json(format!("hubs[{i}]: {reason}"));
    if !hub.is_object() {
        return Err(err("expected an object".into()));
    }
    let count = hub
        .get("count")
        .ok_or_else(|| err("missing \"count\" (the hop number)".into()))?;
    let hop = json_u64(count).and_then(hop_number).ok_or_else(|| {
        err(format!(
            "\"count\" should be a hop number 1 to {MAX_HOP}, found {}",
            quote(&count.to_string())
        ))
    })?;
    let host = hub
        .get("host")
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("hop {hop}: expected \"host\" to be a string")))?;
    let words: Vec<&str> = host.split_whitespace().collect();
    let (addresses, names) = resolve_host(&words, true);
    let asn = match hub.get("ASN") {
        Some(Value::String(s)) => parse_asn(s),
        Some(Value::Number(n)) => n.as_u64().and_then(|v| u32::try_from(v).ok()),
        _ => None,
    };

    let number = |key: &str| -> Result<Option<f64>, MtrParseError> {
        match hub.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => json_f64(v).map(Some).ok_or_else(|| {
                err(format!(
                    "hop {hop}: \"{key}\" should be a number, found {}",
                    quote(&v.to_string())
                ))
            }),
        }
    };
    let loss = number("Loss%")?;
    let last = number("Last")?;
    let avg = number("Avg")?;
    let best = number("Best")?;
    let worst = number("Wrst")?;
    let stdev = number("StDev")?;
    let sent = match hub.get("Snt") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            json_u64(v)
                .and_then(|s| u32::try_from(s).ok())
                .ok_or_else(|| {
                    err(format!(
                        "hop {hop}: \"Snt\" should be a whole number of packets, found {}",
                        quote(&v.to_string())
                    ))
                })?,
        ),
    };
    let stats = match (loss, sent, last, avg, best, worst, stdev) {
        (
            Some(loss_pct),
            Some(sent),
            Some(last_ms),
            Some(avg_ms),
            Some(best_ms),
            Some(worst_ms),
            Some(stdev_ms),
        ) => Some(HopStats {
            loss_pct,
            sent,
            last_ms,
            avg_ms,
            best_ms,
            worst_ms,
            stdev_ms,
        }),
        _ => None,
    };
    Ok(Hop {
        hop,
        addresses,
        names,
        asn,
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn hop(n: u8, addresses: &[&str], names: &[&str]) -> Hop {
        Hop {
            hop: n,
            addresses: addresses.iter().map(|a| ip(a)).collect(),
            names: names.iter().map(|s| (*s).to_string()).collect(),
            asn: None,
            stats: None,
        }
    }

    #[test]
    fn decimals_as_mtr_prints_them() {
        assert_eq!(parse_decimal("1.8"), Some(1.8));
        assert_eq!(parse_decimal("1405."), Some(1405.0));
        assert_eq!(parse_decimal("12345"), Some(12345.0));
        assert_eq!(parse_decimal("1,8"), Some(1.8));
        assert_eq!(parse_decimal("-0.0"), Some(-0.0));
        for bad in [
            "", ".", "-", "nan", "-nan", "inf", "1e5", "abc", "1.2.3", "0x10", "١",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn loss_with_or_without_percent() {
        assert_eq!(parse_loss("0.0%"), Some(0.0));
        assert_eq!(parse_loss("12.5%"), Some(12.5));
        assert_eq!(parse_loss("100.0"), Some(100.0));
        assert_eq!(parse_loss("%"), None);
        assert_eq!(parse_loss("abc%"), None);
        assert_eq!(parse_loss("1%%"), None);
    }

    #[test]
    fn counts_and_hop_numbers() {
        assert_eq!(parse_count("10"), Some(10));
        assert_eq!(parse_count("4294967295"), Some(u32::MAX));
        for bad in ["", "1.0", "-1", "+1", "4294967296", "1k0"] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
        assert_eq!(hop_number(0), None);
        assert_eq!(hop_number(1), Some(1));
        assert_eq!(hop_number(255), Some(255));
        assert_eq!(hop_number(256), None);
        assert_eq!(hop_number(u64::MAX), None);
    }

    #[test]
    fn as_numbers() {
        assert_eq!(parse_asn("AS16509"), Some(16509));
        assert_eq!(parse_asn("AS4200000000"), Some(4_200_000_000));
        for bad in [
            "AS???",
            "AS",
            "AS99999999999",
            "16509",
            "as16509",
            "AS16509x",
        ] {
            assert_eq!(parse_asn(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hosts_as_printed() {
        let none: (Vec<IpAddr>, Vec<String>) = (vec![], vec![]);
        assert_eq!(resolve_host(&["???"], true), none);
        assert_eq!(resolve_host(&[], true), none);
        assert_eq!(
            resolve_host(&["10.0.0.1"], true),
            (vec![ip("10.0.0.1")], vec![])
        );
        assert_eq!(
            resolve_host(&["2001:db8::1"], false),
            (vec![], vec!["2001:db8::1".to_string()]),
            "a bare address that may be cut is kept as a name"
        );
        assert_eq!(
            resolve_host(&["gw.example.net"], true),
            (vec![], vec!["gw.example.net".to_string()])
        );
        assert_eq!(
            resolve_host(&["gw.example.net", "(192.0.2.1)"], false),
            (vec![ip("192.0.2.1")], vec!["gw.example.net".to_string()]),
            "`name (address)` is whole when its `)` is there"
        );
        assert_eq!(
            resolve_host(&["gw.example.net", "(192.0.2.1"], true),
            (vec![], vec!["gw.example.net".to_string()]),
            "a cut `(192.0.2.1` could be any 192.0.2.1x address"
        );
        assert_eq!(
            resolve_host(&["gw.example.net", "(not-an-ip)"], true),
            (vec![], vec!["gw.example.net".to_string()])
        );
        assert_eq!(
            resolve_host(&["(192.0.2.1)"], true),
            (vec![ip("192.0.2.1")], vec![])
        );
        assert_eq!(
            resolve_host(&["a", "b", "c"], true),
            (vec![], vec!["a b c".to_string()])
        );
    }

    #[test]
    fn ipinfo_kinds() {
        assert_eq!(InfoKind::of("AS16509"), Some(InfoKind::Asn));
        assert_eq!(InfoKind::of("AS???"), Some(InfoKind::Asn));
        assert_eq!(InfoKind::of("ASx"), None);
        assert_eq!(InfoKind::of("AS"), None);
        assert_eq!(InfoKind::of("52.93.0.0/16"), Some(InfoKind::Route));
        assert_eq!(InfoKind::of("2600:1f18::/36"), Some(InfoKind::Route));
        assert_eq!(InfoKind::of("US"), Some(InfoKind::Country));
        assert_eq!(InfoKind::of("arin"), Some(InfoKind::Registry));
        assert_eq!(InfoKind::of("2011-05-13"), Some(InfoKind::Allocated));
        assert_eq!(InfoKind::of("???"), Some(InfoKind::Unknown));
        assert_eq!(InfoKind::of("14618"), Some(InfoKind::MoreAsn));
        assert_eq!(InfoKind::of("Open"), None);
        assert_eq!(prefix_kind(&["AS16509", "14618"]), Some(InfoKind::Asn));
        assert_eq!(prefix_kind(&["14618"]), None);
        assert_eq!(prefix_kind(&["AS16509", "Open"]), None);
        assert_eq!(prefix_kind(&[]), None);
    }

    #[test]
    fn splitting_prefix_and_host() {
        let words = ["AS16509", "gw.example.net", "(192.0.2.1)"];
        assert_eq!(
            split_host(&words),
            (&words[..1], &words[1..]),
            "`name (address)` is two words"
        );
        let words = ["AS16509", "192.0.2.1"];
        assert_eq!(split_host(&words), (&words[..1], &words[1..]));
        let words: [&str; 0] = [];
        assert_eq!(split_host(&words), (&words[..], &words[..]));
    }

    #[test]
    fn cleaning_pasted_lines() {
        assert_eq!(clean_line("> `  1.|-- x  0.0%`\r"), "1.|-- x  0.0%");
        assert_eq!(
            clean_line("\u{a0}\t  |  `|-- 10.0.0.2\r"),
            "|  `|-- 10.0.0.2"
        );
        assert_eq!(clean_line("```"), "");
        assert_eq!(clean_line("\0\0"), "");
    }

    fn row(line: &str) -> Option<Row> {
        let tokens: Vec<&str> = clean_line(line).split_whitespace().collect();
        parse_hop_row(1, &tokens, &Columns::mtr_default()).expect("row parses")
    }

    #[test]
    fn narrow_host_field_width_follows_the_row_layout() {
        let stats = "  0.0%    10    1.0   1.0   1.0   1.0   0.0";
        let limit = |prefix: &str| row(&format!("{prefix}{stats}")).map(|r| r.narrow_limit);
        assert_eq!(limit("  1.|-- 10.0.0.1                 "), Some(25));
        assert_eq!(limit("100.|-- 10.0.0.1                 "), Some(24));
        assert_eq!(limit("  1. AS16509  10.0.0.1           "), Some(19));
        assert_eq!(limit("  1. US  10.0.0.1                "), Some(24));
        assert_eq!(limit("  1. 52.93.0.0/16       10.0.0.1 "), Some(9));
    }

    #[test]
    fn numbered_prose_is_not_a_row() {
        assert!(row("1. Open a ticket with the customer and attach both files").is_none());
        assert!(row("2. Ran it again").is_none());
        assert!(row("10.0.0.1 is the gateway 1 2 3 4 5 6 7").is_none());
        assert!(row("2025-03-06 06:16:14 started").is_none());
    }

    #[test]
    fn rows_with_marker_or_as_word_must_parse() {
        let columns = Columns::mtr_default();
        for line in [
            "1.|-- 10.0.0.1 0.0%",
            "1. AS16509 10.0.0.1 0.0% 10",
            "1.|-- 10.0.0.1 x% 10 1 1 1 1 0",
            "1.|-- 10.0.0.1 0.0% 1.5 1 1 1 1 0",
            "1.|-- 10.0.0.1 0.0% 10 1 1 1 1 nan",
        ] {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            assert!(parse_hop_row(7, &tokens, &columns).is_err(), "{line}");
        }
    }

    #[test]
    fn target_choice() {
        // Text: the last row decides.
        let reached = [hop(1, &["10.0.0.1"], &[]), hop(2, &["10.0.0.2"], &[])];
        assert_eq!(
            choose_target(&reached, None),
            (Some(ip("10.0.0.2")), Some(2))
        );
        let unreached = [hop(1, &["10.0.0.1"], &[]), hop(2, &[], &[])];
        assert_eq!(choose_target(&unreached, None), (None, None));
        let named = [
            hop(1, &["10.0.0.1"], &[]),
            hop(2, &[], &["broker.example.net"]),
        ];
        assert_eq!(choose_target(&named, None), (None, Some(2)));
        // JSON: dst is the target; its hop is where it shows.
        let dst = Some(ip("10.0.0.2"));
        assert_eq!(choose_target(&reached, dst), (dst, Some(2)));
        assert_eq!(choose_target(&unreached, dst), (dst, None));
        assert_eq!(choose_target(&named, dst), (dst, Some(2)));
        let elsewhere = [hop(1, &["10.0.0.1"], &[]), hop(2, &["10.0.0.9"], &[])];
        assert_eq!(choose_target(&elsewhere, dst), (dst, None));
        assert_eq!(choose_target(&[], dst), (dst, None));
    }

    #[test]
    fn error_messages_quote_input_safely() {
        assert_eq!(quote("abc"), "`abc`");
        assert_eq!(quote("a\0b"), "`a\u{fffd}b`");
        let long = quote(&"x".repeat(100));
        assert!(long.ends_with("…`") && long.chars().count() < 50, "{long}");
    }

    #[test]
    fn wrapped_header_titles_on_the_next_line() {
        let input = "HOST: a-very-long-connector-name.example.internal\n\
                     Snt Loss% Last Avg Best Wrst StDev\n\
                     \x20 1.|-- 10.0.0.1  10  20.0%  1.0  2.0  0.5  3.0  0.4\n";
        let path = parse(input).expect("parses");
        let stats = path
            .hops
            .first()
            .and_then(|h| h.stats.clone())
            .expect("stats");
        assert_eq!((stats.sent, stats.loss_pct, stats.avg_ms), (10, 20.0, 2.0));
    }
}
