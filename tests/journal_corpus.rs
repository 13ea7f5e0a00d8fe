//! The journal reader and its rules on a corpus of excerpts built from the
//! lines the field guides quote (their facts: formats, identifiers,
//! addresses, reasons) and variations: one test per event class, flapping,
//! year-less timestamps around New Year, the JSON format, a file that is
//! not a journal, unknown lines counted.

use pathproof::analysis::{FindingKind, JournalJudgement, VerdictClass, judge_journal};
use pathproof::journal::{
    EnrollmentReason, Journal, JournalError, JournalEventKind, JournalFormat, JournalOptions,
    YearRule, parse_journal_bytes,
};

fn opts(year: i32) -> JournalOptions {
    JournalOptions {
        year: Some(year),
        utc_offset_secs: None,
        current_year: Some(2030),
    }
}

fn parse(text: &str) -> Journal {
    parse_journal_bytes(text.as_bytes(), &opts(2026)).expect("a journal")
}

fn judge(text: &str) -> (Journal, JournalJudgement) {
    let j = parse(text);
    let g = judge_journal(&j);
    (j, g)
}

fn kinds(g: &JournalJudgement) -> Vec<FindingKind> {
    g.findings.iter().map(|f| f.kind).collect()
}

/// `2026-04-02T08:03:21Z` as UTC nanoseconds.
fn ns(rfc: &str) -> i64 {
    let t = humantime::parse_rfc3339(rfc).unwrap();
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
}

#[test]
fn name_resolution_is_observed_and_a_connection_after_it_is_healthy() {
    let (j, g) = judge(
        "Jan 21 14:39:21 angel-app-connector zpa-connector-child[3276]: Waiting for connector to retrieve configuration\n\
Jan 21 14:39:21 angel-app-connector zpa-connector-child[3276]: Adding name resolution for co2br.prod.zpath.net of 52.66.116.178\n\
Jan 21 14:39:21 angel-app-connector zpa-connector-child[3276]: Adding name resolution for co2br.prod.zpath.net of 13.127.26.17\n\
Jan 21 14:39:22 angel-app-connector zpa-connector-child[3276]: Broker control connection successfully connected to Zscaler Cloud: [10.1.81.40]:53952;broker4a.bom5.prod.zpath.net:[13.127.26.17]:443;4\n",
    );
    assert_eq!(j.counts.lines, 4);
    assert_eq!(j.counts.recognised, 3);
    assert_eq!(j.counts.unknown, 1);
    match &j.events[0].kind {
        JournalEventKind::NameResolved { name, addresses } => {
            assert_eq!(name, "co2br.prod.zpath.net");
            assert_eq!(addresses[0].to_string(), "52.66.116.178");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(j.events[0].pid, Some(3276));
    assert_eq!(j.events[0].ts_ns, Some(ns("2026-01-21T14:39:21Z")));
    assert_eq!(g.verdict.class, VerdictClass::Healthy);
    assert!(kinds(&g).contains(&FindingKind::DnsLookup));
    assert!(kinds(&g).contains(&FindingKind::ControlUp));
}

#[test]
fn dns_failure_names_the_name() {
    let (j, g) = judge(
        "May 25 14:32:53 ussy-nwopapp03 zpa-connector-child[2040]: Checking Enrollment\n\
May 25 14:32:53 ussy-nwopapp03 zpa-connector-child[2040]: No valid certificate. Attempting to enroll\n\
May 25 14:32:53 ussy-nwopapp03 zpa-connector-child[2040]: Enroll: Connecting to api.private.zscaler.com via co2br.prod.zpath.net.\n\
May 25 14:32:53 ussy-nwopapp03 zpa-connector-child[2040]: DNS resolution failed for api.private.zscaler.com\n\
May 25 14:32:53 ussy-nwopapp03 zpa-connector-child[2040]: Could not create HTTP client\n\
May 25 14:32:53 ussy-nwopapp03 zpa-connector-child[2040]: Certificate enrollment failed.\n\
May 25 14:32:55 ussy-nwopapp03 zpa-connector[3971]: zscaler-update: zpa-connector-child exited too fast, was running for 2 seconds\n",
    );
    assert_eq!((j.counts.recognised, j.counts.unknown), (2, 5));
    assert_eq!(g.verdict.class, VerdictClass::DnsFailure);
    assert!(g.verdict.summary.contains("api.private.zscaler.com"));
    assert!(
        g.verdict
            .next_steps
            .iter()
            .any(|s| s.contains("resolv.conf"))
    );
    // The enrollment failure is its effect, not a verdict of its own.
    assert_eq!(g.candidates.len(), 1);
    let dns = g
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::DnsFailure)
        .unwrap();
    assert_eq!(dns.frames, vec![4]);
    assert!(dns.filter.is_empty());
}

#[test]
fn certificate_not_yet_valid_is_clock_skew_with_a_multiline_message() {
    let (j, g) = judge(
        "Mar 02 11:49:56 zpa-connector zpa-connector-child[10500]: This provisioning key has already been enrolled. Attempting to re-enroll\n\
Mar 02 11:49:56 zpa-connector zpa-connector-child[10500]: Send CSR from api.private.zscaler.com/shift/api/v1/admin/assistant/onboard/csr failed: Expected HTTP 204, got HTTP 400\n\
Mar 02 11:49:56 zpa-connector zpa-connector-child[10500]: Send CSR failed, but that may be because we posted it in the past, so it is ok.\n\
Mar 02 11:49:56 zpa-connector zpa-connector-child[10500]: Certificates retrieved do not successfully verify: depth 0:certificate is not yet valid, cert=\n\
                                                          -----BEGIN CERTIFICATE-----\n\
                                                          MIIDVTCCAj2gAwIBAgIRANb8NfIMTEiZ4WQxHGgSWSswDQYJKoZIhvcNAQELBQAw\n\
Mar 02 11:49:56 zpa-connector zpa-connector-child[10500]: Certificate enrollment failed.\n",
    );
    assert_eq!(j.counts.other, 2, "continuation lines");
    assert_eq!(j.counts.recognised, 4);
    assert!(
        j.events
            .iter()
            .any(|e| e.kind == JournalEventKind::CertNotYetValid)
    );
    assert!(j.events.iter().any(|e| e.kind
        == JournalEventKind::EnrollmentFailed {
            reason: EnrollmentReason::CsrRejected { status: 400 }
        }));
    assert_eq!(g.verdict.class, VerdictClass::ClockSkew);
    let enroll = g
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::EnrollmentFailed)
        .unwrap();
    assert!(enroll.summary.contains("explained"), "{}", enroll.summary);
}

#[test]
fn certificate_expired_is_clock_skew() {
    let (_, g) = judge(
        "Mar 02 11:49:56 zpa-connector zpa-connector-child[10500]: Certificates retrieved do not successfully verify: depth 0:certificate has expired, cert=\n",
    );
    assert_eq!(g.verdict.class, VerdictClass::ClockSkew);
    assert!(g.verdict.summary.contains("expired"));
}

#[test]
fn a_foreign_issuer_is_interception_named() {
    let (j, g) = judge(
        "Jul 10 13:58:18 zpa-connector zpa-connector-child[992]: Received event from [uninitialized]:0;co2br.prod.zpath.net:[52.28.10.14]:443: BEV_EVENT_READING BEV_EVENT_ERROR, sock=54 self signed certificate in certificate chain /C=US/ST=California/L=San Jose/O=Safemarch/OU=Certificate Authority/CN=Safemarch Inc CA/emailAddress=support@safemarch.com /C=US/ST=California/L=San Jose/O=Zscaler/CN=broker1a.sjc8.prod.zpath.net\n\
Jul 10 13:58:48 zpa-connector zpa-connector-child[992]: Received event from [uninitialized]:0;co2br.prod.zpath.net:[52.28.10.14]:443: BEV_EVENT_READING BEV_EVENT_ERROR, sock=54 unable to get local issuer certificate\n",
    );
    assert_eq!(
        j.events[0].kind,
        JournalEventKind::CertUntrusted {
            issuer: Some("Safemarch Inc CA".into())
        }
    );
    assert_eq!(j.events[0].broker.as_deref(), Some("co2br.prod.zpath.net"));
    assert_eq!(j.events[0].address.unwrap().to_string(), "52.28.10.14:443");
    assert_eq!(g.verdict.class, VerdictClass::TlsIntercepted);
    assert!(
        g.verdict.summary.contains("Safemarch Inc CA"),
        "{}",
        g.verdict.summary
    );
    // Not a connection error of its own.
    assert!(!kinds(&g).contains(&FindingKind::ControlDown));
}

#[test]
fn an_identity_that_no_longer_decrypts_is_identity_changed() {
    let (j, g) = judge(
        "Feb 2 05:08:21 vrph-moscow1 zpa-connector-child[15083]: memory_arena_count=14\n\
Feb 2 05:08:21 vrph-moscow1 zpa-connector-child[15083]: Checking Enrollment\n\
Feb 2 05:08:21 vrph-moscow1 zpa-connector-child[15083]: Cannot decrypt data from instance_id.crypt\n\
Feb 2 05:08:21 vrph-moscow1 zpa-connector-child[15083]: Cannot get instance id\n\
Feb 2 05:08:21 vrph-moscow1 zpa-connector: 139944367298368:error:06065064:digital envelope routines:EVP_DecryptFinal_ex:bad decrypt:evp_enc.c:590:\n\
Feb 2 05:08:21 vrph-moscow1 zpa-connector[1054]: zscaler-update: zpa-connector-child exited too fast, was running for 1 seconds\n",
    );
    assert_eq!((j.counts.recognised, j.counts.unknown), (2, 4));
    assert_eq!(g.verdict.class, VerdictClass::IdentityChanged);
    assert_eq!(g.verdict.exit_code(), 1);
    assert_eq!(VerdictClass::IdentityChanged.status(), "failure");
    assert!(g.verdict.next_steps[0].contains("instance_id.crypt"));
    assert!(g.verdict.next_steps[0].contains("3|api.private.zscaler.com|KEY"));
}

#[test]
fn a_refused_provisioning_key_is_enrollment_failed() {
    let (j, g) = judge(
        "Mar 03 10:00:01 zpa-connector zpa-connector[2102]: enrollment rejected: provisioning key invalid/expired\n\
Mar 03 10:00:01 zpa-connector zpa-connector[2102]: retrying enrollment in 30s\n\
Mar 03 10:00:31 zpa-connector zpa-connector-child[2103]: Login request failed - http status(401) nonce(<3|api-release.prod.zpath.net|0/Z6lDT...>) fingerprint(<oXaN4RRiMc...>)\n",
    );
    assert_eq!((j.counts.recognised, j.counts.unknown), (2, 1));
    assert_eq!(
        j.events[1].kind,
        JournalEventKind::EnrollmentFailed {
            reason: EnrollmentReason::LoginRejected { status: 401 }
        }
    );
    assert_eq!(g.verdict.class, VerdictClass::EnrollmentFailed);
    assert!(g.verdict.next_steps.iter().any(|s| s.contains("curly")));
    assert!(g.verdict.next_steps.iter().any(|s| s.contains("Maximum")));
}

#[test]
fn flapping_is_counted_with_its_period() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/journal/flapping-short.txt"
    ))
    .unwrap();
    let (j, g) = judge(&text);
    assert_eq!(j.counts.markers, 1);
    assert_eq!(j.counts.unknown, 0);
    assert_eq!(j.formats, vec![JournalFormat::Short]);
    let f = g.flapping.as_ref().expect("flapping");
    assert_eq!(f.cycles, 7);
    let p = f.period_secs.unwrap();
    assert!((25.0..27.0).contains(&p), "{p}");
    assert_eq!(g.verdict.class, VerdictClass::TcpBlocked);
    assert!(
        g.verdict.summary.contains("7 connect/close cycles"),
        "{}",
        g.verdict.summary
    );
    assert!(kinds(&g).contains(&FindingKind::ControlFlapping));
    // One timeline entry: up/error/not-connected repeated.
    assert_eq!(g.timeline.len(), 1);
    assert_eq!(g.timeline[0].count, 15);
    assert_eq!(g.timeline[0].states, vec!["up", "error", "not-connected"]);
}

#[test]
fn backoff_and_closes_without_a_connect_are_tcp_blocked() {
    let (j, g) = judge(
        "Jan 26 22:40:21 abgcitymumzpa01 zpa-connector-child[103412]: Broker control connection to Zscaler Cloud closed: [10.1.81.40]:51140;broker14-1.bom6.prod.zpath.net:[136.226.255.228]:443;4 FOHH_CLOSE_REASON_SOCKET_ERR\n\
Jan 26 22:40:36 abgcitymumzpa01 zpa-connector-child[103412]: * FC f_conn [10.204.5.5]:41236;broker1b.was2.prod.zpath.net:[52.4.154.137]:443:fohh_connection_backoff, rx = 0, peer_tx = 0, tx = 0, tx_drop = 0\n\
Jan 26 22:40:51 abgcitymumzpa01 zpa-connector-child[103412]: * FC f_conn [10.204.5.5]:41236;broker1b.was2.prod.zpath.net:[52.4.154.137]:443:fohh_connection_backoff, rx = 0, peer_tx = 0, tx = 0, tx_drop = 0\n",
    );
    assert_eq!(
        j.events[0].kind,
        JournalEventKind::ControlClosed {
            reason: Some("FOHH_CLOSE_REASON_SOCKET_ERR".into())
        }
    );
    assert_eq!(j.events[1].kind, JournalEventKind::Backoff);
    assert_eq!(j.events[1].address.unwrap().to_string(), "52.4.154.137:443");
    assert_eq!(g.verdict.class, VerdictClass::TcpBlocked);
    assert!(
        g.verdict.summary.contains("never came up"),
        "{}",
        g.verdict.summary
    );
    assert!(g.flapping.is_none());
}

#[test]
fn a_redirect_and_one_socket_error_then_up_is_healthy() {
    let (_, g) = judge(
        "Jan 27 05:27:37 abgcitymumzpa01 zpa-connector-child[103412]: Broker control connection, state fohh_connection_connected, [10.1.81.40]:45316;broker6-1.bom6.prod.zpath.net:[165.225.121.224]:443;4 uptime 35M:8S, RTT (tcp|app): 69961|19934 us, disconnect_duration_s 0\n\
Jan 27 05:28:22 abgcitymumzpa01 zpa-connector-child[103412]: Broker control connection to Zscaler Cloud closed: [10.1.81.40]:45316;broker6-1.bom6.prod.zpath.net:[165.225.121.224]:443;4 FOHH_CLOSE_REASON_SOCKET_ERR\n\
Jan 27 05:28:22 abgcitymumzpa01 zpa-connector-child[103412]: Broker control connection successfully connected to Zscaler Cloud: [10.1.81.40]:34572;broker6-1.bom6.prod.zpath.net:[165.225.121.224]:443;4\n\
Jan 27 05:28:23 abgcitymumzpa01 zpa-connector-child[103412]: Received broker_redirect for control connection: [10.1.81.40]:34572;broker6-1.bom6.prod.zpath.net:[165.225.121.224]:443;4\n\
Jan 27 05:28:23 abgcitymumzpa01 zpa-connector-child[103412]: Broker control connection to Zscaler Cloud closed: [10.1.81.40]:34572;broker6-1.bom6.prod.zpath.net:[165.225.121.224]:443;4 FOHH_CLOSE_REASON_REDIRECT\n\
Jan 27 05:28:24 abgcitymumzpa01 zpa-connector-child[103412]: Broker control connection successfully connected to Zscaler Cloud: [10.1.81.40]:53952;broker4a.bom5.prod.zpath.net:[13.127.26.17]:443;4\n\
Jan 27 05:28:37 abgcitymumzpa01 zpa-connector-child[103412]: Broker control connection, state fohh_connection_connected, [10.1.81.40]:53952;broker4a.bom5.prod.zpath.net:[13.127.26.17]:443;4 uptime 13S, RTT (tcp|app): 23018|15005 us, disconnect_duration_s 0\n",
    );
    assert_eq!(
        g.verdict.class,
        VerdictClass::Healthy,
        "{}",
        g.verdict.summary
    );
    assert!(g.verdict.summary.contains("broker4a.bom5.prod.zpath.net"));
    // Up since the connect after the redirect, not the last status line.
    assert!(
        g.verdict.summary.contains("(line 6)"),
        "{}",
        g.verdict.summary
    );
    assert!(g.flapping.is_none());
    let down = g
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ControlDown)
        .unwrap();
    assert_eq!(
        down.frames,
        vec![2],
        "only the socket error, not the redirect"
    );
}

#[test]
fn the_status_block_without_a_host_and_a_skew_above_the_threshold() {
    let block = |skew: &str| {
        format!(
            "Nov 08 02:29:53 zpa-connector-child[6123]: -------- Connector Status:ID=72060411536474191:Name=z-sjc6-corp-1:Ver=18.87.1 --------\n\
Nov 08 02:29:53 zpa-connector-child[6123]: Certificate will expire in 227 days, 21 hours, 26 minutes, 13 seconds\n\
Nov 08 02:29:53 zpa-connector-child[6123]: Control connection state: fohh_connection_connected, [10.32.112.100]:42098;broker1b.sjc8.prod.zpath.net:[40.86.176.165]:443\n\
Nov 08 02:29:53 zpa-connector-child[6123]: RPC Messages: BrkRq = 2447339, BrkRqAck = 954\n\
Nov 08 02:29:53 zpa-connector-child[6123]: Broker data connection count = 55, backed_off connections = 0\n\
Nov 08 02:29:53 zpa-connector-child[6123]: Time skew: {skew}\n"
        )
    };
    let (j, g) = judge(&block("- 0.012783s"));
    assert_eq!((j.counts.recognised, j.counts.unknown), (5, 1));
    use JournalEventKind as K;
    assert_eq!(
        j.events[0].kind,
        K::Status {
            name: Some("z-sjc6-corp-1".into()),
            version: Some("18.87.1".into())
        }
    );
    assert_eq!(
        j.events[1].kind,
        K::CertExpiresIn {
            secs: 227 * 86_400 + 21 * 3600 + 26 * 60 + 13
        }
    );
    assert_eq!(
        j.events[3].kind,
        K::DataConnections {
            count: 55,
            backed_off: 0
        }
    );
    assert_eq!(j.events[4].kind, K::TimeSkew { secs: -0.012783 });
    assert_eq!(j.events[2].pid, Some(6123));
    assert_eq!(g.verdict.class, VerdictClass::Healthy);
    assert!(kinds(&g).contains(&FindingKind::ConnectorTimeSkew));
    assert!(kinds(&g).contains(&FindingKind::ConnectorCertExpiry));

    let (j, g) = judge(&block("-42 sec"));
    assert_eq!(j.events[4].kind, K::TimeSkew { secs: -42.0 });
    assert_eq!(g.verdict.class, VerdictClass::ClockSkew);
    assert!(g.verdict.summary.contains("42 s"), "{}", g.verdict.summary);
}

#[test]
fn year_less_timestamps_keep_increasing_across_new_year() {
    let text = "Dec 31 23:59:59 zpa-connector zpa-connector-child[7]: Broker control connection successfully connected to Zscaler Cloud: [10.1.81.40]:1;broker4a.bom5.prod.zpath.net:[13.127.26.17]:443;4\n\
Jan  1 00:00:01 zpa-connector zpa-connector-child[7]: Control connection state: fohh_connection_connected, [10.1.81.40]:1;broker4a.bom5.prod.zpath.net:[13.127.26.17]:443\n\
Jan 01 00:01:01 zpa-connector zpa-connector-child[7]: Control connection state: fohh_connection_connected, [10.1.81.40]:1;broker4a.bom5.prod.zpath.net:[13.127.26.17]:443\n";
    let j = parse_journal_bytes(text.as_bytes(), &opts(2026)).unwrap();
    assert_eq!(j.year_rollovers, 1);
    assert_eq!(j.year_rule, YearRule::Given(2026));
    let ts: Vec<i64> = j.events.iter().map(|e| e.ts_ns.unwrap()).collect();
    assert_eq!(ts[0], ns("2026-12-31T23:59:59Z"));
    assert_eq!(ts[1], ns("2027-01-01T00:00:01Z"));
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    // Without --year: the current year, said so.
    let j = parse_journal_bytes(
        text.as_bytes(),
        &JournalOptions {
            current_year: Some(2030),
            ..JournalOptions::default()
        },
    )
    .unwrap();
    assert_eq!(j.year_rule, YearRule::CurrentYear(2030));
    assert!(j.utc_offset_assumed);
    assert_eq!(j.events[1].ts_ns, Some(ns("2031-01-01T00:00:01Z")));
}

#[test]
fn short_iso_precise_and_the_offset_rule() {
    let text = "2026-04-02T08:03:21.250000+0200 zpa-connector zpa-connector-child[1737]: Received event from [13.170.52.111]:38864;broker2.sha1.prod.zpath.net:[56.109.210.189]:2010: BEV_EVENT_CONNECTED, sock=63 using ECDHE-RSA-AES128-GCM-SHA256\n\
Apr 02 08:04:00.5 zpa-connector zpa-connector-child[1737]: Control connection state: fohh_connection_connected, [13.170.52.111]:38864;broker2.sha1.prod.zpath.net:[56.109.210.189]:2010\n";
    let j = parse_journal_bytes(
        text.as_bytes(),
        &JournalOptions {
            utc_offset_secs: Some(7200),
            current_year: Some(1999),
            ..JournalOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        j.formats,
        vec![JournalFormat::ShortIsoPrecise, JournalFormat::ShortPrecise]
    );
    assert_eq!(j.year_rule, YearRule::FromContext(2026));
    assert!(!j.utc_offset_assumed);
    assert_eq!(j.events[0].ts_ns, Some(ns("2026-04-02T06:03:21.25Z")));
    assert_eq!(j.events[1].ts_ns, Some(ns("2026-04-02T06:04:00.5Z")));
    assert_eq!(judge_journal(&j).verdict.class, VerdictClass::Healthy);
}

#[test]
fn json_entries_with_string_and_byte_messages() {
    let bytes: Vec<String> = "DNS resolution failed for co2br.prod.zpath.net"
        .bytes()
        .map(|b| b.to_string())
        .collect();
    let text = format!(
        "{{\"__REALTIME_TIMESTAMP\":\"1775116999000000\",\"_PID\":\"1737\",\"SYSLOG_IDENTIFIER\":\"zpa-connector-child\",\"_HOSTNAME\":\"zpa-connector\",\"MESSAGE\":\"Adding name resolution for co2br.prod.zpath.net of 52.66.116.178\"}}\n\
{{\"__REALTIME_TIMESTAMP\":\"1775117001000000\",\"_PID\":\"1737\",\"SYSLOG_IDENTIFIER\":\"zpa-connector-child\",\"MESSAGE\":[{}]}}\n\
{{\"__REALTIME_TIMESTAMP\":\"1775117002000000\",\"MESSAGE\":\"something else\"}}\n\
{{\"no_timestamp\":1}}\n",
        bytes.join(",")
    );
    let j = parse_journal_bytes(text.as_bytes(), &JournalOptions::default()).unwrap();
    assert_eq!(j.formats, vec![JournalFormat::Json]);
    assert_eq!(j.year_rule, YearRule::NotNeeded);
    assert_eq!(
        (
            j.counts.journal_lines,
            j.counts.recognised,
            j.counts.unknown,
            j.counts.other
        ),
        (3, 2, 1, 1)
    );
    assert_eq!(j.events[1].pid, Some(1737));
    assert_eq!(j.events[1].ts_ns, Some(1_775_117_001_000_000_000));
    assert_eq!(
        j.events[1].kind,
        JournalEventKind::DnsFailed {
            name: "co2br.prod.zpath.net".into()
        }
    );
    assert_eq!(judge_journal(&j).verdict.class, VerdictClass::DnsFailure);
}

#[test]
fn not_a_journal_is_an_error_and_markers_alone_are_a_journal() {
    let pcap = [
        0xd4u8, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    match parse_journal_bytes(&pcap, &JournalOptions::default()) {
        Err(JournalError::NotAJournal { hint, .. }) => assert!(hint.contains("pcap"), "{hint}"),
        other => panic!("{other:?}"),
    }
    match parse_journal_bytes(b"hello\nworld\n", &JournalOptions::default()) {
        Err(JournalError::NotAJournal { lines, .. }) => assert_eq!(lines, 2),
        other => panic!("{other:?}"),
    }
    assert!(parse_journal_bytes(b"", &JournalOptions::default()).is_err());
    let j = parse_journal_bytes(b"-- No entries --\n", &JournalOptions::default()).unwrap();
    assert_eq!(j.counts.markers, 1);
    let g = judge_journal(&j);
    assert_eq!(g.verdict.class, VerdictClass::Inconclusive);
    assert_eq!(g.verdict.exit_code(), 3);
}

#[test]
fn unknown_lines_are_counted_and_long_lines_cut() {
    let long = "x".repeat(200_000);
    let text = format!(
        "Apr 02 08:00:00 h zpa-connector-child[1]: something new\n\
Apr 02 08:00:01 h zpa-connector-child[1]: {long}\n\
-- Boot 0123456789abcdef --\n\
Apr 02 08:00:02 h zpa-connector-child[1]: Connector not yet connected to cloud\n"
    );
    let (j, g) = judge(&text);
    assert_eq!(j.counts.lines, 4);
    assert_eq!(j.counts.unknown, 2);
    assert_eq!(j.counts.long_lines, 1);
    assert_eq!(j.counts.markers, 1);
    assert_eq!(j.counts.recognised, 1);
    assert_eq!(g.verdict.class, VerdictClass::TcpBlocked);
}

#[test]
fn the_command_exit_codes_and_json() {
    let bin = env!("CARGO_BIN_EXE_pathproof");
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/journal/flapping-short.txt"
    );
    let out = std::process::Command::new(bin)
        .args([
            "journal",
            data,
            "--year",
            "2026",
            "--utc-offset",
            "+02:00",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["command"], "journal");
    assert_eq!(v["verdict"]["class"], "tcp-blocked");
    assert_eq!(v["flapping"]["cycles"], 7);
    assert_eq!(v["input"]["counts"]["markers"], 1);
    assert_eq!(v["input"]["utc_offset"], "+02:00");
    assert_eq!(v["events"][0]["type"], "control-connected");
    assert_eq!(v["events"][0]["time"], "2026-04-02T06:03:21.000000Z");
    assert_eq!(v["timeline"][0]["count"], 15);

    let pcap = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = std::process::Command::new(bin)
        .args(["journal", pcap])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a journal"));
}
