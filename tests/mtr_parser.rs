//! mtr parser against fixtures laid out as mtr's `ui/report.c` prints them
//! (see `tests/data/mtr/gen_fixtures.py`), two reports as pasted in a support
//! runbook, damaged pastes, bad input, and a no-panic sweep.

use pathproof::path::mtr::{MtrParseError, parse};
use pathproof::path::{Hop, HopStats, Path, PathSource};
use std::net::IpAddr;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/mtr/",
            $name
        ))
    };
}

const REPORT_DEFAULT: &str = fixture!("report_default.txt");
const REPORT_WIDE: &str = fixture!("report_wide.txt");
const REPORT_WIDE_NUMERIC: &str = fixture!("report_wide_numeric.txt");
const REPORT_WIDE_NUMERIC_MPLS: &str = fixture!("report_wide_numeric_mpls.txt");
const REPORT_ASN_BOTH: &str = fixture!("report_asn_both.txt");
const REPORT_ASN_NARROW: &str = fixture!("report_asn_narrow.txt");
const REPORT_IPV6_WIDE: &str = fixture!("report_ipv6_wide.txt");
const REPORT_IPV6_NARROW: &str = fixture!("report_ipv6_narrow.txt");
const REPORT_ORDER: &str = fixture!("report_order.txt");
const JSON_JANSSON: &str = fixture!("json_jansson.json");
const JSON_PRINTF_ASN: &str = fixture!("json_printf_asn.json");
const RUNBOOK_PASTED: &str = fixture!("runbook_pasted.txt");
const RUNBOOK_UNREACHED: &str = fixture!("runbook_unreached.txt");
const PASTED_DAMAGED: &str = fixture!("pasted_damaged.txt");

const ALL_FIXTURES: [&str; 14] = [
    REPORT_DEFAULT,
    REPORT_WIDE,
    REPORT_WIDE_NUMERIC,
    REPORT_WIDE_NUMERIC_MPLS,
    REPORT_ASN_BOTH,
    REPORT_ASN_NARROW,
    REPORT_IPV6_WIDE,
    REPORT_IPV6_NARROW,
    REPORT_ORDER,
    JSON_JANSSON,
    JSON_PRINTF_ASN,
    RUNBOOK_PASTED,
    RUNBOOK_UNREACHED,
    PASTED_DAMAGED,
];

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn ok(input: &str) -> Path {
    match parse(input) {
        Ok(path) => path,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn hop(path: &Path, n: u8) -> &Hop {
    path.hops
        .iter()
        .find(|h| h.hop == n)
        .unwrap_or_else(|| panic!("no hop {n} in {:?}", path.hops))
}

fn stats(h: &Hop) -> &HopStats {
    h.stats
        .as_ref()
        .unwrap_or_else(|| panic!("hop {} has no stats", h.hop))
}

fn hop_numbers(path: &Path) -> Vec<u8> {
    path.hops.iter().map(|h| h.hop).collect()
}

fn line_error(input: &str) -> (usize, String) {
    match parse(input) {
        Err(MtrParseError::Line { line, reason }) => (line, reason),
        other => panic!("expected a line error, got {other:?}"),
    }
}

fn json_error(input: &str) -> String {
    match parse(input) {
        Err(MtrParseError::Json(reason)) => reason,
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

/// Asserts loss, sent, and `[last, avg, best, worst, stdev]` in ms.
#[track_caller]
fn assert_stats(h: &Hop, loss: f64, sent: u32, ms: [f64; 5]) {
    let s = stats(h);
    assert_eq!(
        (s.loss_pct, s.sent),
        (loss, sent),
        "loss and sent of hop {}",
        h.hop
    );
    assert_eq!(
        [s.last_ms, s.avg_ms, s.best_ms, s.worst_ms, s.stdev_ms],
        ms,
        "last, avg, best, worst, stdev of hop {}",
        h.hop
    );
}

// ---------------------------------------------------------------------------
// Report text
// ---------------------------------------------------------------------------

#[test]
fn default_report_names_only_and_cut_to_25_characters() {
    let p = ok(REPORT_DEFAULT);
    assert_eq!(p.source, PathSource::MtrReport);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4, 5, 6]);

    let h1 = hop(&p, 1);
    assert!(h1.addresses.is_empty(), "a name alone gives no address");
    assert_eq!(h1.names, strings(&["_gateway"]));
    assert_eq!(h1.asn, None);
    assert_stats(h1, 0.0, 10, [0.4, 0.4, 0.3, 0.6, 0.1]);

    assert_eq!(hop(&p, 2).addresses, ips(&["10.20.255.1"]));
    assert!(hop(&p, 2).names.is_empty());

    let h3 = hop(&p, 3);
    assert!(h3.addresses.is_empty() && h3.names.is_empty());
    assert_stats(h3, 100.0, 10, [0.0, 0.0, 0.0, 0.0, 0.0]);

    // Narrow report: mtr cuts names at column 33.
    assert_eq!(hop(&p, 4).names, strings(&["ae-1-3502.ear2.Frankfurt1"]));
    assert_eq!(stats(hop(&p, 4)).loss_pct, 10.0);
    assert_eq!(hop(&p, 5).names, strings(&["ZSCALER-INC.ear2.Frankfur"]));

    assert_eq!(hop(&p, 6).addresses, ips(&["165.225.72.38"]));
    assert_eq!(p.target, Some(ip("165.225.72.38")));
    assert_eq!(p.target_hop, Some(6));
}

#[test]
fn wide_report_with_named_destination_has_target_hop_but_no_target() {
    let p = ok(REPORT_WIDE);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        hop(&p, 4).names,
        strings(&["ae-1-3502.ear2.Frankfurt1.Level3.net"])
    );
    assert_eq!(
        hop(&p, 5).names,
        strings(&["ZSCALER-INC.ear2.Frankfurt1.Level3.net"])
    );
    assert_eq!(hop(&p, 6).names, strings(&["fra4-2.sme.zscaler.net"]));
    assert!(hop(&p, 6).addresses.is_empty());
    assert_eq!(p.target, None, "the destination printed only its name");
    assert_eq!(p.target_hop, Some(6));
}

#[test]
fn wide_numeric_report_with_ecmp_continuation_lines() {
    let p = ok(REPORT_WIDE_NUMERIC);
    assert_eq!(p.source, PathSource::MtrReport);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4, 5, 6]);
    assert_eq!(hop(&p, 1).addresses, ips(&["52.93.8.175"]));
    assert_eq!(
        hop(&p, 3).addresses,
        ips(&["242.4.76.131", "242.4.76.133", "242.4.77.7"])
    );
    assert_eq!(hop(&p, 4).addresses, ips(&["52.93.11.121"]));
    assert!(p.hops.iter().all(|h| h.names.is_empty() && h.asn.is_none()));
    assert_stats(hop(&p, 5), 0.0, 10, [3.4, 3.3, 3.0, 3.9, 0.3]);
    assert_eq!(p.target, Some(ip("165.225.112.252")));
    assert_eq!(p.target_hop, Some(6));
    assert_eq!(p.hop_of(ip("242.4.77.7")), Some(3));
}

#[test]
fn mpls_lines_are_skipped() {
    let plain = ok(REPORT_WIDE_NUMERIC);
    let mpls = ok(REPORT_WIDE_NUMERIC_MPLS);
    assert_eq!(mpls, plain);
}

#[test]
fn asn_names_and_addresses_ecmp_mpls_and_cut_values() {
    let p = ok(REPORT_ASN_BOTH);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4, 5, 6, 7]);

    let h1 = hop(&p, 1);
    assert_eq!(h1.asn, Some(16509));
    assert_eq!(h1.addresses, ips(&["52.93.8.175"]));
    assert!(h1.names.is_empty());
    assert_stats(h1, 0.0, 100, [1.6, 1.7, 1.5, 2.4, 0.2]);

    // 1405.3 prints as "1405." (its last digit overwritten by the next column).
    let h2 = hop(&p, 2);
    assert_eq!(h2.asn, None, "AS??? is no AS number");
    assert_stats(h2, 0.0, 100, [1405.0, 1405.0, 1403.0, 1406.0, 0.4]);

    let h3 = hop(&p, 3);
    assert_eq!(
        h3.addresses,
        ips(&["242.4.76.131", "242.4.76.133", "242.4.77.7"])
    );
    assert_eq!(stats(h3).loss_pct, 1.0);

    // `???` row: no address, "100.0" loss without its '%'.
    let h4 = hop(&p, 4);
    assert!(h4.addresses.is_empty() && h4.names.is_empty());
    assert_eq!(h4.asn, None);
    assert_stats(h4, 100.0, 100, [0.0, 0.0, 0.0, 0.0, 0.0]);

    let h5 = hop(&p, 5);
    assert_eq!(h5.asn, Some(16509));
    assert_eq!(h5.addresses, ips(&["52.93.11.121", "52.93.11.123"]));
    assert_eq!(
        h5.names,
        strings(&[
            "ec2-52-93-11-121.ap-southeast-1.compute.amazonaws.com",
            "ec2-52-93-11-123.ap-southeast-1.compute.amazonaws.com",
        ])
    );
    assert_eq!(stats(h5).loss_pct, 12.0);

    let h6 = hop(&p, 6);
    assert_eq!(h6.addresses, ips(&["27.111.228.245"]));
    assert_eq!(h6.names, strings(&["53813.sgw.equinix.com"]));
    assert_stats(h6, 0.0, 100, [3399.0, 3398.0, 3397.0, 3401.0, 1.0]);

    assert_eq!(hop(&p, 7).asn, Some(53813));
    assert_eq!(p.target, Some(ip("165.225.112.252")));
    assert_eq!(p.target_hop, Some(7));
}

#[test]
fn narrow_asn_report_cuts_names_to_19_characters() {
    let p = ok(REPORT_ASN_NARROW);
    assert_eq!(hop_numbers(&p), [1, 2, 3]);
    assert_eq!(hop(&p, 1).names, strings(&["_gateway"]));
    assert_eq!(hop(&p, 1).asn, None);
    assert_eq!(hop(&p, 2).names, strings(&["ae-1-3502.ear2.Fran"]));
    assert_eq!(hop(&p, 2).asn, Some(3356));
    assert_eq!(hop(&p, 3).addresses, ips(&["165.225.72.38"]));
    assert_eq!(hop(&p, 3).asn, Some(53813));
    assert_eq!(p.target_hop, Some(3));
}

#[test]
fn ipv6_wide_report() {
    let p = ok(REPORT_IPV6_WIDE);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4, 5]);
    assert_eq!(hop(&p, 1).addresses, ips(&["2001:db8:10::1"]));
    assert_eq!(
        hop(&p, 2).addresses,
        ips(&["2001:db8:ffff:100::2", "2001:db8:ffff:100::6"])
    );
    assert!(hop(&p, 3).addresses.is_empty());
    assert_eq!(hop(&p, 4).addresses, ips(&["2400:cb00:2049:1::a29f:1804"]));
    assert_stats(hop(&p, 4), 0.0, 10, [7.7, 7.8, 7.5, 8.3, 0.2]);
    assert_eq!(p.target, Some(ip("2a03:eec0:1411::1")));
    assert_eq!(p.target_hop, Some(5));
}

#[test]
fn ipv6_narrow_report_does_not_trust_an_address_that_may_be_cut() {
    let p = ok(REPORT_IPV6_NARROW);
    // mtr printed "2400:cb00:2049:1::a29f:18": the first 25 characters of
    // 2400:cb00:2049:1::a29f:1804, itself a valid (wrong) address.
    let h4 = hop(&p, 4);
    assert!(h4.addresses.is_empty(), "{:?}", h4.addresses);
    assert_eq!(h4.names, strings(&["2400:cb00:2049:1::a29f:18"]));
    // Shorter addresses, and the ECMP lines (never cut), are trusted.
    assert_eq!(
        hop(&p, 2).addresses,
        ips(&["2001:db8:ffff:100::2", "2001:db8:ffff:100::6"])
    );
    assert_eq!(p.target, Some(ip("2a03:eec0:1411::1")));
    assert_eq!(p.target_hop, Some(5));
}

#[test]
fn columns_are_mapped_by_header_title() {
    let p = ok(REPORT_ORDER);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4]);
    assert_stats(hop(&p, 1), 0.0, 10, [0.4, 0.4, 0.3, 0.6, 0.1]);
    assert_stats(hop(&p, 3), 100.0, 10, [0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_stats(hop(&p, 4), 10.0, 10, [4.8, 5.0, 4.6, 6.1, 0.5]);
}

#[test]
fn missing_columns_give_no_stats_but_keep_the_hops() {
    let input = "HOST: host                        Loss%   Snt\n\
                 \x20 1.|-- 10.0.0.1                   0.0%    10\n\
                 \x20 2.|-- 10.0.0.2                  50.0%    10\n";
    let p = ok(input);
    assert_eq!(hop_numbers(&p), [1, 2]);
    assert!(p.hops.iter().all(|h| h.stats.is_none()));
    assert_eq!(p.target, Some(ip("10.0.0.2")));
}

#[test]
fn runbook_sample_as_pasted() {
    let p = ok(RUNBOOK_PASTED);
    assert_eq!(p.source, PathSource::MtrReport);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4, 5, 6]);
    assert_eq!(hop(&p, 1).asn, Some(16509));
    assert_eq!(hop(&p, 1).addresses, ips(&["52.93.8.175"]));
    assert_stats(hop(&p, 1), 0.0, 1, [1.6, 1.6, 1.6, 1.6, 0.0]);
    assert_eq!(hop(&p, 2).asn, None);
    assert_stats(hop(&p, 2), 0.0, 1, [1405.0, 1405.0, 1405.0, 1405.0, 0.0]);
    assert_eq!(hop(&p, 4).asn, Some(16509));
    let h5 = hop(&p, 5);
    assert_eq!(h5.names, strings(&["53813.sgw.equinix.com"]));
    assert_eq!(h5.addresses, ips(&["27.111.228.245"]));
    assert_stats(h5, 0.0, 1, [3399.0, 3399.0, 3399.0, 3399.0, 0.0]);
    assert_eq!(hop(&p, 6).asn, Some(53813));
    assert_eq!(p.target, Some(ip("165.225.112.252")));
    assert_eq!(p.target_hop, Some(6));
}

#[test]
fn runbook_sample_ending_in_unknown_hop_has_no_target() {
    let p = ok(RUNBOOK_UNREACHED);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4, 5]);
    assert_stats(hop(&p, 2), 0.0, 1, [1490.0, 1490.0, 1490.0, 1490.0, 0.0]);
    let h5 = hop(&p, 5);
    assert!(h5.addresses.is_empty() && h5.names.is_empty());
    assert_eq!(h5.asn, None);
    assert_stats(h5, 100.0, 1, [0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(p.target, None);
    assert_eq!(p.target_hop, None);
}

#[test]
fn unknown_hop_in_the_middle_of_a_pasted_report() {
    let input = RUNBOOK_PASTED.replace(
        "4. AS16509 52.93.11.121 0.0% 1 2.6 2.6 2.6 2.6 0.0",
        "4. AS??? ??? 100.0 1 0.0 0.0 0.0 0.0 0.0",
    );
    let p = ok(&input);
    assert!(hop(&p, 4).addresses.is_empty());
    assert_eq!(stats(hop(&p, 4)).loss_pct, 100.0);
    assert_eq!(p.target_hop, Some(6));
}

#[test]
fn damaged_paste_reads_like_the_clean_report() {
    let clean = ok(REPORT_WIDE_NUMERIC);
    let damaged = ok(PASTED_DAMAGED);
    assert_eq!(damaged, clean);
}

#[test]
fn old_mac_line_ends_and_no_header() {
    let input = "  1.|-- 10.0.0.1   0.0%    10    1.0   1.0   1.0   1.0   0.0\r\
                 \x20 2.|-- 10.0.0.9   0.0%    10    2.0   2.0   2.0   2.0   0.0\r";
    let p = ok(input);
    assert_eq!(hop_numbers(&p), [1, 2]);
    assert_eq!(p.target, Some(ip("10.0.0.9")));
}

#[test]
fn prose_lines_that_look_numbered_are_ignored() {
    let input = format!(
        "Steps we took:\n1. Open a ticket with the customer and attach both files\n\
         2. Ran the command below\n{REPORT_WIDE_NUMERIC}\n3. Waited 10 minutes and ran it again 1 2 3 4\n\
         | hop | address |\n|-----|---------|\n"
    );
    assert_eq!(ok(&input), ok(REPORT_WIDE_NUMERIC));
}

#[test]
fn route_ipinfo_rows_and_their_continuation_lines() {
    // `mtr -rwb -y 1`: the routed prefix instead of the AS number; the
    // continuation line starts with a digit too.
    let input = "Start: 2025-03-05T09:30:00+0100
HOST: zpa-connector-fra-01                                                   Loss%   Snt   Last   Avg  Best  Wrst StDev
  1. ???                _gateway (10.20.0.1)                                  0.0%    10    0.4   0.4   0.3   0.6   0.1
  2. 4.69.0.0/16        ae-1-3502.ear2.Frankfurt1.Level3.net (4.69.163.254)   0.0%    10    4.8   5.0   4.6   6.1   0.5
     4.69.0.0/16        ae-2-3602.ear2.Frankfurt1.Level3.net (4.69.163.250)
  3. 165.225.72.0/22    165.225.72.38                                         0.0%    10    5.6   5.5   5.2   5.9   0.2
";
    let p = ok(input);
    assert_eq!(hop_numbers(&p), [1, 2, 3]);
    assert_eq!(hop(&p, 1).addresses, ips(&["10.20.0.1"]));
    assert_eq!(hop(&p, 1).names, strings(&["_gateway"]));
    let h2 = hop(&p, 2);
    assert_eq!(h2.addresses, ips(&["4.69.163.254", "4.69.163.250"]));
    assert_eq!(
        h2.names,
        strings(&[
            "ae-1-3502.ear2.Frankfurt1.Level3.net",
            "ae-2-3602.ear2.Frankfurt1.Level3.net"
        ])
    );
    assert!(
        p.hops.iter().all(|h| h.asn.is_none()),
        "a route is no AS number"
    );
    assert_eq!(p.target, Some(ip("165.225.72.38")));
}

#[test]
fn header_wrapped_by_a_mail_client() {
    let input = REPORT_WIDE_NUMERIC.replace(".internal Loss%", ".internal\nLoss%");
    assert_eq!(ok(&input), ok(REPORT_WIDE_NUMERIC));
}

#[test]
fn hop_numbers_can_start_later_with_first_ttl() {
    let input = "HOST: h Loss% Snt Last Avg Best Wrst StDev\n\
                 \x20 5.|-- 10.0.0.5  0.0%  3  1.0  1.0  1.0  1.0  0.0\n\
                 \x20 6.|-- 10.0.0.6  0.0%  3  1.0  1.0  1.0  1.0  0.0\n";
    let p = ok(input);
    assert_eq!(hop_numbers(&p), [5, 6]);
    assert_eq!(p.address_at(5), Some(ip("10.0.0.5")));
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

#[test]
fn json_from_a_jansson_build() {
    let p = ok(JSON_JANSSON);
    assert_eq!(p.source, PathSource::MtrJson);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4, 5, 6]);
    assert_eq!(hop(&p, 1).addresses, ips(&["52.93.8.175"]));
    assert_stats(hop(&p, 1), 0.0, 10, [1.62, 1.71, 1.52, 2.13, 0.18]);
    let h3 = hop(&p, 3);
    assert!(h3.addresses.is_empty() && h3.names.is_empty());
    assert_eq!(stats(h3).loss_pct, 100.0);
    let h4 = hop(&p, 4);
    assert_eq!(h4.addresses, ips(&["52.93.11.121"]));
    assert_eq!(
        h4.names,
        strings(&["ec2-52-93-11-121.ap-southeast-1.compute.amazonaws.com"])
    );
    assert_eq!(stats(h4).loss_pct, 10.0);
    assert_eq!(hop(&p, 5).names, strings(&["53813.sgw.equinix.com"]));
    assert!(p.hops.iter().all(|h| h.asn.is_none()));
    assert_eq!(p.target, Some(ip("165.225.112.252")));
    assert_eq!(p.target_hop, Some(6));
}

#[test]
fn json_from_a_printf_build_with_asn_and_string_counts() {
    let p = ok(JSON_PRINTF_ASN);
    assert_eq!(p.source, PathSource::MtrJson);
    assert_eq!(hop_numbers(&p), [1, 2, 3, 4, 5, 6]);
    assert_eq!(hop(&p, 1).asn, Some(16509));
    assert_eq!(hop(&p, 2).asn, None);
    assert_eq!(hop(&p, 3).asn, None);
    let h4 = hop(&p, 4);
    assert_eq!(h4.asn, Some(16509));
    assert!(h4.addresses.is_empty(), "no -b: a name only");
    assert_eq!(
        h4.names,
        strings(&["ec2-52-93-11-121.ap-southeast-1.compute.amazonaws.com"])
    );
    assert_stats(h4, 10.0, 10, [2.61, 2.64, 2.41, 3.02, 0.19]);
    assert_eq!(hop(&p, 6).asn, Some(53813));
    assert_eq!(p.target, Some(ip("165.225.112.252")));
    assert_eq!(p.target_hop, Some(6));
}

#[test]
fn json_dst_as_a_name_falls_back_to_the_last_row() {
    let input = JSON_JANSSON.replace(
        "\"dst\": \"165.225.112.252\"",
        "\"dst\": \"broker.example.net\"",
    );
    let p = ok(&input);
    assert_eq!(p.target, Some(ip("165.225.112.252")));
    assert_eq!(p.target_hop, Some(6));
}

#[test]
fn json_destination_answering_by_name_only_still_gives_its_hop() {
    let input = r#"{"report": {"mtr": {"dst": "192.0.2.10"}, "hubs": [
        {"count": 1, "host": "gw.example.net", "Loss%": 0.0, "Snt": 3, "Last": 1.0, "Avg": 1.0, "Best": 1.0, "Wrst": 1.0, "StDev": 0.0},
        {"count": 2, "host": "broker.example.net", "Loss%": 0.0, "Snt": 3, "Last": 2.0, "Avg": 2.0, "Best": 2.0, "Wrst": 2.0, "StDev": 0.0}
    ]}}"#;
    let p = ok(input);
    assert_eq!(p.target, Some(ip("192.0.2.10")));
    assert_eq!(p.target_hop, Some(2));
}

#[test]
fn json_unreached_destination_has_no_target_hop() {
    let input = r#"{"report": {"mtr": {"dst": "192.0.2.10"}, "hubs": [
        {"count": 1, "host": "198.51.100.1", "Loss%": 0.0, "Snt": 3, "Last": 1.0, "Avg": 1.0, "Best": 1.0, "Wrst": 1.0, "StDev": 0.0},
        {"count": 2, "host": "???", "Loss%": 100.0, "Snt": 3, "Last": 0.0, "Avg": 0.0, "Best": 0.0, "Wrst": 0.0, "StDev": 0.0}
    ]}}"#;
    let p = ok(input);
    assert_eq!(p.target, Some(ip("192.0.2.10")));
    assert_eq!(p.target_hop, None);
    assert_eq!(stats(hop(&p, 2)).loss_pct, 100.0);
}

#[test]
fn json_pasted_after_a_prompt_in_a_code_fence() {
    let input = format!(
        "[admin@host ~]$ mtr --json 165.225.112.252\n```json\n{JSON_JANSSON}```\n[admin@host ~]$ \n"
    );
    assert_eq!(ok(&input), ok(JSON_JANSSON));
}

#[test]
fn json_with_crlf_and_bom() {
    let input = format!("\u{feff}{}", JSON_PRINTF_ASN.replace('\n', "\r\n"));
    assert_eq!(ok(&input), ok(JSON_PRINTF_ASN));
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[test]
fn empty_and_blank_input_has_no_hops() {
    for input in ["", "   ", "\n\n\r\n", "\u{feff}"] {
        assert!(
            matches!(parse(input), Err(MtrParseError::NoHops)),
            "{input:?}"
        );
    }
}

#[test]
fn random_text_has_no_hops() {
    let input =
        "Hello,\nthe connector keeps dropping. Can you check?\n[admin@host ~]$ ls\nfoo bar\n";
    assert!(matches!(parse(input), Err(MtrParseError::NoHops)));
    let header_only =
        "Start: 2025-03-06T05:51:18+0000\nHOST: h Loss% Snt Last Avg Best Wrst StDev\n";
    assert!(matches!(parse(header_only), Err(MtrParseError::NoHops)));
}

#[test]
fn truncated_json_says_where() {
    let cut = JSON_JANSSON
        .get(..JSON_JANSSON.len() / 2)
        .expect("ASCII fixture");
    let reason = json_error(cut);
    assert!(reason.contains("cut short"), "{reason}");
    assert!(reason.contains("line"), "{reason}");
    let e = parse(cut).expect_err("truncated").to_string();
    assert!(e.starts_with("mtr JSON: "), "{e}");
}

#[test]
fn json_of_the_wrong_shape() {
    assert!(json_error(r#"{"foo": 1}"#).contains("\"report\""));
    assert!(json_error(r#"{"report": {}}"#).contains("\"hubs\""));
    assert!(json_error(r#"{"report": {"hubs": 3}}"#).contains("list"));
    assert!(json_error(r#"{"report": {"hubs": [3]}}"#).contains("hubs[0]"));
    assert!(json_error(r#"{"report": {"hubs": [{"host": "x"}]}}"#).contains("count"));
    assert!(json_error(r#"{"report": {"hubs": [{"count": 1}]}}"#).contains("host"));
    assert!(matches!(
        parse(r#"{"report": {"hubs": []}}"#),
        Err(MtrParseError::NoHops)
    ));
}

#[test]
fn json_bad_values() {
    let reason = json_error(r#"{"report": {"hubs": [{"count": 300, "host": "x"}]}}"#);
    assert!(
        reason.contains("hubs[0]") && reason.contains("1 to 255"),
        "{reason}"
    );
    let reason = json_error(r#"{"report": {"hubs": [{"count": "abc", "host": "x"}]}}"#);
    assert!(reason.contains("count"), "{reason}");
    let reason =
        json_error(r#"{"report": {"hubs": [{"count": 1, "host": "x", "Loss%": "lots"}]}}"#);
    assert!(
        reason.contains("Loss%") && reason.contains("lots"),
        "{reason}"
    );
    let reason = json_error(r#"{"report": {"hubs": [{"count": 1, "host": "x", "Snt": -4}]}}"#);
    assert!(reason.contains("Snt"), "{reason}");
    let reason = json_error(
        r#"{"report": {"hubs": [{"count": 1, "host": "x"}, {"count": "1", "host": "y"}]}}"#,
    );
    assert!(
        reason.contains("hubs[1]") && reason.contains("increasing"),
        "{reason}"
    );
}

#[test]
fn non_numeric_loss_names_the_line_and_column() {
    let input = "Start: x\nHOST: h  Loss%   Snt   Last   Avg  Best  Wrst StDev\n\
                 \x20 1.|-- 10.0.0.1   0.0%    10    1.0   1.0   1.0   1.0   0.0\n\
                 \x20 2.|-- 10.0.0.2   abc%    10    1.0   1.0   1.0   1.0   0.0\n";
    let (line, reason) = line_error(input);
    assert_eq!(line, 4);
    assert!(
        reason.contains("Loss%") && reason.contains("abc%"),
        "{reason}"
    );
    let e = parse(input).expect_err("bad loss").to_string();
    assert!(e.starts_with("line 4: "), "{e}");
}

#[test]
fn non_numeric_loss_in_a_pasted_asn_row() {
    let input = RUNBOOK_PASTED.replace("3. AS??? 242.4.76.131 0.0%", "3. AS??? 242.4.76.131 n/a");
    let (line, reason) = line_error(&input);
    assert_eq!(line, 6);
    assert!(reason.contains("Loss%"), "{reason}");
}

#[test]
fn absurd_hop_numbers_are_errors() {
    for number in ["300", "256", "0", "99999999999999999999999999"] {
        let input = format!(
            "  1.|-- 10.0.0.1  0.0%  1  1.0  1.0  1.0  1.0  0.0\n{number:>3}.|-- 10.0.0.2  0.0%  1  1.0  1.0  1.0  1.0  0.0\n"
        );
        let (line, reason) = line_error(&input);
        assert_eq!(line, 2, "{number}");
        assert!(reason.contains("out of range"), "{reason}");
    }
    let ok_255 = ok("255.|-- 10.0.0.2  0.0%  1  1.0  1.0  1.0  1.0  0.0\n");
    assert_eq!(hop_numbers(&ok_255), [255]);
}

#[test]
fn duplicated_and_decreasing_hop_numbers_are_errors() {
    let row =
        |n: u32, last: u8| format!("{n:>3}.|-- 10.0.0.{last}  0.0%  1  1.0  1.0  1.0  1.0  0.0\n");
    let dup = format!("{}{}{}", row(1, 1), row(2, 2), row(2, 3));
    let (line, reason) = line_error(&dup);
    assert_eq!(line, 3);
    assert!(reason.contains("twice"), "{reason}");

    let back = format!("{}{}{}", row(1, 1), row(3, 3), row(2, 2));
    let (line, reason) = line_error(&back);
    assert_eq!(line, 3);
    assert!(reason.contains("increasing"), "{reason}");
}

#[test]
fn two_reports_pasted_together_are_an_error() {
    let input = format!("{REPORT_WIDE_NUMERIC}\n{REPORT_WIDE_NUMERIC}");
    let (line, reason) = line_error(&input);
    assert_eq!(line, 13, "{reason}");
    assert!(reason.contains("second mtr report"), "{reason}");
}

#[test]
fn rows_with_missing_fields_are_errors() {
    let input = "HOST: h Loss% Snt Last Avg Best Wrst StDev\n  1.|-- 10.0.0.1  0.0%  10  1.0\n";
    let (line, reason) = line_error(input);
    assert_eq!(line, 2);
    assert!(reason.contains("7 statistics"), "{reason}");
    assert!(reason.contains("header on line 1"), "{reason}");

    let asn_row = "HOST: h Loss% Snt Last Avg Best Wrst StDev\n1. AS16509 52.93.8.175 0.0% 1 1.6\n";
    let (line, _) = line_error(asn_row);
    assert_eq!(line, 2);

    let extra_words = "  1.|-- some host name  0.0%  10  1.0  1.0  1.0  1.0  0.0\n";
    let (_, reason) = line_error(extra_words);
    assert!(reason.contains("where the host should be"), "{reason}");
}

#[test]
fn bad_ecmp_line_is_an_error() {
    let input = "  1.|-- 10.0.0.1  0.0%  10  1.0  1.0  1.0  1.0  0.0\n    |  `|-- not-an-address\n";
    let (line, reason) = line_error(input);
    assert_eq!(line, 2);
    assert!(reason.contains("hop 1"), "{reason}");
}

#[test]
fn other_mtr_formats_are_named() {
    let csv = "Mtr_Version,Start_Time,Status,Host,Hop,Ip,Loss%,Snt, ,Last,Avg,Best,Wrst,StDev,\n\
               MTR.0.95,1741240278,OK,165.225.112.252,1,52.93.8.175,0.00,10,0,1.62,1.71,1.52,2.13,0.18\n";
    let (line, reason) = line_error(csv);
    assert_eq!(line, 1);
    assert!(reason.contains("--csv"), "{reason}");
    let xml = "<?xml version=\"1.0\"?>\n<MTR SRC=\"h\" DST=\"x\" TOS=\"0x0\" PSIZE=\"64\" BITPATTERN=\"0x00\" TESTS=\"10\">\n</MTR>\n";
    let (_, reason) = line_error(xml);
    assert!(reason.contains("--xml"), "{reason}");
}

#[test]
fn hostile_sizes_do_not_blow_up() {
    // Many ECMP lines for one hop: capped, with an error naming the line.
    let mut input = String::from("  1.|-- 10.0.0.1  0.0%  10  1.0  1.0  1.0  1.0  0.0\n");
    for i in 0..1000u32 {
        input.push_str(&format!(
            "    |   |-- 10.{}.{}.{}\n",
            i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    let (line, reason) = line_error(&input);
    assert!(line > 100, "{line}");
    assert!(reason.contains("more than"), "{reason}");

    // Deeply nested JSON: serde_json's recursion limit, not a stack overflow.
    let deep = format!("{}{}", "{\"a\":[".repeat(10_000), "]}".repeat(10_000));
    assert!(matches!(parse(&deep), Err(MtrParseError::Json(_))));

    // A very long line.
    let long = format!(
        "  1.|-- {}  0.0%  10  1.0  1.0  1.0  1.0  0.0\n",
        "a".repeat(100_000)
    );
    let p = ok(&long);
    assert_eq!(p.hops.len(), 1);
}

// ---------------------------------------------------------------------------
// No panics on random and mutated input
// ---------------------------------------------------------------------------

/// SplitMix64: a tiny deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "1.|--",
    "2.",
    "255.",
    "256.",
    "0.",
    "|--",
    "`|--",
    "|",
    "+--",
    "AS16509",
    "AS???",
    "AS",
    "???",
    "(10.0.0.1)",
    "(2001:db8::1",
    "10.0.0.1",
    "2001:db8::1",
    "name.example.net",
    "0.0%",
    "100.0",
    "1405.",
    "-0.0",
    "1e999",
    "nan",
    "inf",
    "10",
    "4294967296",
    "HOST:",
    "Start:",
    "Loss%",
    "Snt",
    "Last",
    "Avg",
    "Best",
    "Wrst",
    "StDev",
    "Drop",
    "[MPLS:",
    "{",
    "}",
    "[",
    "]",
    "\"hubs\":",
    "\"count\":",
    "\"host\":",
    "\"report\":",
    ":",
    ",",
    "\"",
    "Mtr_Version,",
    "<?xml",
    "é",
    "\u{a0}",
    "\0",
    "\t",
    "\r",
    "\n",
    "\r\n",
    "  ",
    ">",
    "```",
];

const CHARS: &[char] = &[
    '0', '1', '9', '.', '%', '|', '-', '`', '?', '(', ')', 'A', 'S', ' ', '\t', '\n', '\r', '{',
    '}', '[', ']', '"', ':', ',', '\0', '\u{a0}', '\u{feff}', 'é', '€', '😀', 'x',
];

fn random_text(rng: &mut Rng) -> String {
    let len = rng.below(300);
    (0..len)
        .map(|_| match rng.below(3) {
            0 => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'),
            _ => rng.pick(CHARS),
        })
        .collect()
}

fn token_soup(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(80) {
        s.push_str(rng.pick(WORDS));
        if rng.below(3) > 0 {
            s.push(' ');
        }
    }
    s
}

fn mutate(rng: &mut Rng, base: &str) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for _ in 0..=rng.below(4) {
        let len = chars.len();
        let at = rng.below(len + 1);
        match rng.below(8) {
            0 => {
                let end = (at + rng.below(40)).min(len);
                chars.drain(at..end);
            }
            1 => chars.insert(at, rng.pick(CHARS)),
            2 => {
                for (i, c) in rng.pick(WORDS).chars().enumerate() {
                    chars.insert((at + i).min(chars.len()), c);
                }
            }
            3 => chars.truncate(at),
            4 => {
                // Duplicate a slice (lines, reports).
                let end = (at + rng.below(200)).min(len);
                let copy: Vec<char> = chars[at..end].to_vec();
                let to = rng.below(chars.len() + 1);
                for (i, c) in copy.into_iter().enumerate() {
                    chars.insert(to + i, c);
                }
            }
            5 => {
                if at < len {
                    chars[at] = rng.pick(CHARS);
                }
            }
            6 => {
                // Replace a digit run with another number.
                if at < len && chars[at].is_ascii_digit() {
                    let number =
                        rng.pick(&["300", "0", "256", "99999999999999999999", "1e5", "-1"][..]);
                    let mut end = at;
                    while end < chars.len() && chars[end].is_ascii_digit() {
                        end += 1;
                    }
                    chars.splice(at..end, number.chars());
                }
            }
            _ => {
                if len > 1 {
                    let other = rng.below(len);
                    chars.swap(at.min(len - 1), other);
                }
            }
        }
    }
    chars.into_iter().collect()
}

#[track_caller]
fn check_invariants(input: &str, path: &Path) {
    assert!(!path.hops.is_empty(), "Ok with no hops for {input:?}");
    for pair in path.hops.windows(2) {
        assert!(pair[0].hop < pair[1].hop, "hops out of order for {input:?}");
    }
    assert!(path.hops.iter().all(|h| h.hop >= 1));
    assert!(
        path.hops
            .iter()
            .all(|h| h.addresses.len() <= 129 && h.names.len() <= 129)
    );
    if let Some(t) = path.target_hop {
        assert!(
            path.hops.iter().any(|h| h.hop == t),
            "target_hop {t} not a hop"
        );
    }
    for h in &path.hops {
        if let Some(s) = &h.stats {
            for v in [
                s.loss_pct, s.last_ms, s.avg_ms, s.best_ms, s.worst_ms, s.stdev_ms,
            ] {
                assert!(v.is_finite(), "non-finite stat for {input:?}");
            }
        }
    }
}

#[test]
fn ten_thousand_random_and_mutated_inputs_never_panic() {
    let mut rng = Rng(0x5EED_0F7A_7B92_0001);
    let mut parsed = 0;
    for i in 0..10_000 {
        let input = match i % 4 {
            0 => random_text(&mut rng),
            1 => token_soup(&mut rng),
            _ => {
                let base = rng_fixture(&mut rng);
                mutate(&mut rng, base)
            }
        };
        if let Ok(path) = parse(&input) {
            check_invariants(&input, &path);
            parsed += 1;
        }
    }
    // The mutated fixtures keep enough shape that many still parse.
    assert!(parsed > 500, "only {parsed} inputs parsed");
}

fn rng_fixture(rng: &mut Rng) -> &'static str {
    rng.pick(&ALL_FIXTURES[..])
}

#[test]
fn every_fixture_parses() {
    for (i, f) in ALL_FIXTURES.iter().enumerate() {
        let p = parse(f).unwrap_or_else(|e| panic!("fixture {i}: {e}"));
        check_invariants(f, &p);
    }
}
