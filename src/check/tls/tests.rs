//! Loopback tests: every server here is started by the test on 127.0.0.1.

use super::*;
use crate::analysis::rules::issuer::{IssuerCheck, PinnedCas};
use crate::analysis::rules::validity::{ValidityProblem, validity_at};
use crate::analysis::tls::HandshakeStep;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, ServerConnection, SupportedProtocolVersion};
use socket2::SockRef;
use std::io::Write;
use std::net::TcpListener;
use std::thread::{self, JoinHandle};

const BROKER: &str = "broker1a.lab1.test";

/// A CA and a leaf it signed.
struct Pki {
    ca: CertificateDer<'static>,
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: KeyPair,
}

fn pki(ca_org: &str, leaf_not_before_year: Option<i32>) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ca_org);
    dn.push(DnType::CommonName, format!("{ca_org} root"));
    ca_params.distinguished_name = dn;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec![BROKER.to_string()]).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, BROKER);
    leaf_params.distinguished_name = dn;
    if let Some(year) = leaf_not_before_year {
        leaf_params.not_before = date_time_ymd(year, 1, 1);
        leaf_params.not_after = date_time_ymd(year + 1, 1, 1);
    }
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca: ca.der().clone(),
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key,
    }
}

fn key_der(k: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

enum ClientAuth {
    None,
    Optional,
    Required,
}

fn server_config(
    pki: &Pki,
    versions: &[&'static SupportedProtocolVersion],
    auth: ClientAuth,
) -> ServerConfig {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            let mut roots = RootCertStore::empty();
            roots.add(pki.ca.clone()).unwrap();
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let b = if matches!(auth, ClientAuth::Optional) {
                b.allow_unauthenticated()
            } else {
                b
            };
            builder.with_client_cert_verifier(b.build().unwrap())
        }
    };
    builder
        .with_single_cert(
            vec![pki.leaf.clone(), pki.ca.clone()],
            key_der(&pki.leaf_key),
        )
        .unwrap()
}

/// A rustls server for one connection; returns the SNI it saw.
fn tls_server(config: ServerConfig) -> (SocketAddr, JoinHandle<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut conn = ServerConnection::new(Arc::new(config)).unwrap();
        while conn.is_handshaking() {
            if conn.complete_io(&mut sock).is_err() {
                break;
            }
        }
        // Until the client's close_notify / EOF.
        let _ = conn.complete_io(&mut sock);
        conn.server_name().map(str::to_string)
    });
    (addr, handle)
}

/// Reads one whole TLS record (the ClientHello) so that closing the socket
/// afterwards sends a FIN, not the RST Linux sends over unread data.
fn read_client_hello(sock: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if got.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([got[3], got[4]]));
            if got.len() >= 5 + len {
                return got;
            }
        }
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// A TCP "server" that reads the ClientHello and then does `then`.
fn raw_server(then: fn(TcpStream)) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let hello = read_client_hello(&mut sock);
        assert_eq!(hello.first(), Some(&22));
        then(sock);
    });
    (addr, handle)
}

fn reset(sock: TcpStream) {
    SockRef::from(&sock)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

fn probe_config(addr: SocketAddr, sni: Option<&str>) -> TlsProbeConfig {
    let mut cfg = TlsProbeConfig::new(addr, sni.map(str::to_string));
    cfg.handshake_timeout = Duration::from_millis(800);
    cfg
}

/// The probe with its chain judged by the issuer rule (Zscaler by name, or
/// the CAs pinned).
fn judged(mut p: TlsProbe, pinned: Option<&PinnedCas>) -> TlsProbe {
    p.judge_issuer(&IssuerExpectation {
        org: "Zscaler",
        pinned,
    });
    p
}

fn now_unix() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    i64::try_from(now.unwrap().as_secs()).unwrap()
}

#[test]
fn genuine_tls13_chain_is_recorded() {
    let pki = pki("Zscaler test CA", None);
    let (addr, server) = tls_server(server_config(
        &pki,
        &[&rustls::version::TLS13],
        ClientAuth::None,
    ));
    let p = handshake(&probe_config(addr, Some(BROKER)));
    assert_eq!(server.join().unwrap().as_deref(), Some(BROKER));

    assert_eq!(p.connect, ConnectOutcome::Connected);
    assert_eq!(p.outcome, Some(HandshakeOutcome::Completed));
    assert_eq!(p.version.as_deref(), Some("TLS 1.3"));
    let cipher = p.cipher.clone().unwrap();
    assert!(
        cipher.starts_with("TLS_AES_") || cipher.starts_with("TLS_CHACHA20"),
        "{cipher}"
    );
    assert_eq!(p.client_cert_requested, Some(false));
    assert_eq!(p.alpn, None);
    assert_eq!(p.chain.len(), 2);
    let leaf = &p.chain[0];
    assert_eq!(leaf.subject_cn.as_deref(), Some(BROKER));
    assert_eq!(leaf.issuer_org.as_deref(), Some("Zscaler test CA"));
    assert_eq!(leaf.key, "EC P-256");
    assert_eq!(
        leaf.sha256,
        cert::hex(ring::digest::digest(&ring::digest::SHA256, &pki.leaf).as_ref())
    );
    let p = judged(p, None);
    assert_eq!(
        p.issuer_class,
        Some(IssuerJudgement::Genuine {
            org: "Zscaler test CA".into(),
            by: IssuerCheck::ByName,
        })
    );
    assert!(validity_at(&p.certificates, now_unix()).is_empty());
    assert!(p.connect_ms.is_some() && p.handshake_ms.is_some());
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("\"result\":\"completed\""), "{json}");
    assert!(json.contains("\"class\":\"genuine\""), "{json}");
    assert!(
        json.contains("\"issuer_org\":\"Zscaler test CA\""),
        "{json}"
    );
    assert!(json.contains("\"by\":\"by-name\""), "{json}");
}

#[test]
fn pinned_ca_passes_the_broker_and_fails_a_same_name_impostor() {
    let broker = pki("Zscaler test CA", None);
    let pinned = PinnedCas::from_pem(broker.ca_pem.as_bytes(), "test").unwrap();
    let (addr, server) = tls_server(server_config(
        &broker,
        &[&rustls::version::TLS13],
        ClientAuth::None,
    ));
    let p = judged(handshake(&probe_config(addr, Some(BROKER))), Some(&pinned));
    server.join().unwrap();
    assert_eq!(
        p.issuer_class,
        Some(IssuerJudgement::Genuine {
            org: "Zscaler test CA".into(),
            by: IssuerCheck::PinnedCa,
        })
    );
    // Another CA with the same name: genuine by name, foreign when pinned.
    let impostor = pki("Zscaler test CA", None);
    let (addr, server) = tls_server(server_config(
        &impostor,
        &[&rustls::version::TLS12],
        ClientAuth::None,
    ));
    let p = handshake(&probe_config(addr, Some(BROKER)));
    server.join().unwrap();
    assert!(matches!(
        judged(p.clone(), None).issuer_class,
        Some(IssuerJudgement::Genuine { .. })
    ));
    assert_eq!(
        judged(p, Some(&pinned)).issuer_class,
        Some(IssuerJudgement::Foreign {
            issuer_named: "Zscaler test CA".into(),
            depth: 0,
            by: IssuerCheck::PinnedCa,
        })
    );
}

#[test]
fn foreign_issuer_over_tls12_without_sni() {
    let pki = pki("Safemarch Inc", None);
    let (addr, server) = tls_server(server_config(
        &pki,
        &[&rustls::version::TLS12],
        ClientAuth::None,
    ));
    let p = handshake(&probe_config(addr, None));
    assert_eq!(server.join().unwrap(), None, "no SNI extension");
    assert_eq!(p.outcome, Some(HandshakeOutcome::Completed));
    assert_eq!(p.version.as_deref(), Some("TLS 1.2"));
    assert!(
        p.cipher
            .as_deref()
            .unwrap()
            .starts_with("TLS_ECDHE_ECDSA_WITH_"),
        "{:?}",
        p.cipher
    );
    assert_eq!(
        judged(p, None).issuer_class,
        Some(IssuerJudgement::Foreign {
            issuer_named: "Safemarch Inc".into(),
            depth: 0,
            by: IssuerCheck::ByName,
        })
    );
    // An IP address as SNI is not sent either.
    let (addr, server) = tls_server(server_config(
        &pki,
        &[&rustls::version::TLS12],
        ClientAuth::None,
    ));
    let p = handshake(&probe_config(addr, Some("127.0.0.1")));
    assert_eq!(server.join().unwrap(), None);
    assert_eq!(p.outcome, Some(HandshakeOutcome::Completed));
}

#[test]
fn certificate_request_is_recorded() {
    let pki = pki("Zscaler test CA", None);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let (addr, server) = tls_server(server_config(&pki, &[version], ClientAuth::Optional));
        let p = handshake(&probe_config(addr, Some(BROKER)));
        server.join().unwrap();
        assert_eq!(p.outcome, Some(HandshakeOutcome::Completed), "{version:?}");
        assert_eq!(p.client_cert_requested, Some(true), "{version:?}");
        assert_eq!(p.post_handshake_alert, None);
    }
}

#[test]
fn required_client_certificate_is_refused_visibly() {
    let pki = pki("Zscaler test CA", None);
    // TLS 1.3: the server's verdict comes after our Finished.
    let (addr, server) = tls_server(server_config(
        &pki,
        &[&rustls::version::TLS13],
        ClientAuth::Required,
    ));
    let p = handshake(&probe_config(addr, Some(BROKER)));
    server.join().unwrap();
    assert_eq!(p.outcome, Some(HandshakeOutcome::Completed));
    assert_eq!(p.client_cert_requested, Some(true));
    assert_eq!(
        p.post_handshake_alert.as_deref(),
        Some("certificate_required")
    );
    // TLS 1.2: before the server's Finished.
    let (addr, server) = tls_server(server_config(
        &pki,
        &[&rustls::version::TLS12],
        ClientAuth::Required,
    ));
    let p = handshake(&probe_config(addr, Some(BROKER)));
    server.join().unwrap();
    assert!(
        matches!(p.outcome, Some(HandshakeOutcome::AlertReceived { .. })),
        "{:?}",
        p.outcome
    );
    assert_eq!(p.client_cert_requested, Some(true));
    assert_eq!(p.chain.len(), 2);
}

#[test]
fn not_yet_valid_leaf_still_completes_and_is_flagged() {
    let pki = pki("Zscaler test CA", Some(2099));
    let (addr, server) = tls_server(server_config(
        &pki,
        &[&rustls::version::TLS13],
        ClientAuth::None,
    ));
    let p = handshake(&probe_config(addr, Some(BROKER)));
    server.join().unwrap();
    assert_eq!(p.outcome, Some(HandshakeOutcome::Completed));
    assert_eq!(p.chain[0].not_before, "2099-01-01T00:00:00Z");
    let problems = validity_at(&p.certificates, now_unix());
    assert!(
        matches!(problems.as_slice(), [ValidityProblem::NotYetValid { index: 0, by_s, .. }] if *by_s > 0),
        "{problems:?}"
    );
}

/// Signs with a key that is not the certificate's.
#[derive(Debug)]
struct WrongKey(Arc<CertifiedKey>);

impl ResolvesServerCert for WrongKey {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[test]
fn bad_handshake_signature_fails_the_handshake() {
    let pki = pki("Zscaler test CA", None);
    let other = KeyPair::generate().unwrap();
    let signer = rustls::crypto::ring::sign::any_supported_type(&key_der(&other)).unwrap();
    let certified = CertifiedKey::new(vec![pki.leaf.clone(), pki.ca.clone()], signer);
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(WrongKey(Arc::new(certified))));
    let (addr, server) = tls_server(config);
    let p = handshake(&probe_config(addr, Some(BROKER)));
    server.join().unwrap();
    match &p.outcome {
        Some(HandshakeOutcome::Failed { reason, server }) => {
            assert!(reason.to_lowercase().contains("signature"), "{reason}");
            assert!(server.bytes > 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.chain.len(), 2, "the chain is recorded all the same");
}

#[test]
fn reset_after_client_hello() {
    let (addr, server) = raw_server(reset);
    let p = handshake(&probe_config(addr, Some(BROKER)));
    server.join().unwrap();
    assert_eq!(p.connect, ConnectOutcome::Connected);
    assert_eq!(p.outcome, Some(HandshakeOutcome::ResetAfterClientHello));
    assert_eq!(p.client_cert_requested, None);
    let p = judged(p, None);
    assert!(p.chain.is_empty() && p.issuer_class.is_none() && p.version.is_none());
}

#[test]
fn closed_after_client_hello() {
    let (addr, server) = raw_server(drop);
    let p = handshake(&probe_config(addr, Some(BROKER)));
    server.join().unwrap();
    assert_eq!(p.outcome, Some(HandshakeOutcome::ClosedAfterClientHello));
}

#[test]
fn silence_after_client_hello() {
    let (addr, server) = raw_server(|mut sock| {
        // Hold the connection until the client gives up.
        let mut buf = [0u8; 64];
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = sock.read(&mut buf);
    });
    let mut cfg = probe_config(addr, Some(BROKER));
    cfg.handshake_timeout = Duration::from_millis(300);
    let p = handshake(&cfg);
    assert_eq!(p.outcome, Some(HandshakeOutcome::SilenceAfterClientHello));
    assert!(p.handshake_ms.unwrap() >= 290.0);
    drop(p);
    server.join().unwrap();
}

/// The first bytes of a ServerHello: a record of 80 bytes, a ServerHello of
/// 76, of which 10 are sent.
const PARTIAL_SERVER_HELLO: [u8; 19] = [22, 3, 3, 0, 80, 2, 0, 0, 76, 3, 3, 1, 2, 3, 4, 5, 6, 7, 8];

#[test]
fn reset_and_timeout_during_handshake_say_how_far_the_server_got() {
    let (addr, server) = raw_server(|mut sock| {
        sock.write_all(&PARTIAL_SERVER_HELLO).unwrap();
        // Let the client read it before the RST.
        thread::sleep(Duration::from_millis(200));
        reset(sock);
    });
    let p = handshake(&probe_config(addr, Some(BROKER)));
    server.join().unwrap();
    let expected = ServerProgress {
        bytes: 19,
        last_step: Some(HandshakeStep::ServerHello),
        last_step_complete: false,
        not_tls: false,
    };
    assert_eq!(
        p.outcome,
        Some(HandshakeOutcome::ResetDuringHandshake { server: expected })
    );

    let (addr, server) = raw_server(|mut sock| {
        sock.write_all(&PARTIAL_SERVER_HELLO).unwrap();
        let mut buf = [0u8; 64];
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = sock.read(&mut buf);
    });
    let mut cfg = probe_config(addr, Some(BROKER));
    cfg.handshake_timeout = Duration::from_millis(300);
    let p = handshake(&cfg);
    assert_eq!(
        p.outcome,
        Some(HandshakeOutcome::TimeoutDuringHandshake { server: expected })
    );
    drop(p);
    server.join().unwrap();
}

#[test]
fn refused_port() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = handshake(&probe_config(addr, Some(BROKER)));
    assert_eq!(p.connect, ConnectOutcome::Refused);
    assert_eq!(p.outcome, None);
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("\"result\":\"refused\""), "{json}");
}

#[test]
fn invalid_sni_is_not_attempted() {
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let p = handshake(&probe_config(addr, Some("not a name!")));
    assert!(
        matches!(p.connect, ConnectOutcome::NotAttempted { .. }),
        "{:?}",
        p.connect
    );
}

/// Resets connections whose ClientHello carries `BROKER`, answers the others
/// with a few bytes; serves `count` connections.
fn sni_filter_server(count: usize) -> (SocketAddr, JoinHandle<()>) {
    sni_filter_server_on(TcpListener::bind("127.0.0.1:0").unwrap(), count)
}

fn sni_filter_server_on(listener: TcpListener, count: usize) -> (SocketAddr, JoinHandle<()>) {
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        for _ in 0..count {
            let (mut sock, _) = listener.accept().unwrap();
            let hello = read_client_hello(&mut sock);
            if hello.windows(BROKER.len()).any(|w| w == BROKER.as_bytes()) {
                reset(sock);
            } else {
                // A handshake_failure alert: bytes back, as a server would.
                let _ = sock.write_all(&[21, 3, 3, 0, 2, 2, 40]);
                let mut buf = [0u8; 64];
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = sock.read(&mut buf);
            }
        }
    });
    (addr, handle)
}

#[test]
fn sni_replay_finds_the_filter_on_loopback() {
    // TTL means nothing on loopback: every TTL reaches the "filter", which
    // exercises the plumbing (first_reset_ttl = 1, hop 0 = this host).
    let (addr, server) = sni_filter_server(4);
    let mut cfg = SniReplayConfig::new(addr, BROKER.to_string(), 2);
    cfg.wait = Duration::from_millis(500);
    let r = sni_replay(&cfg);
    server.join().unwrap();
    assert_eq!(r.attempts.len(), 4);
    for a in &r.attempts {
        let expected_reset = !a.control;
        assert_eq!(a.outcome == ReplayOutcome::Reset, expected_reset, "{a:?}");
        if a.control {
            assert_eq!(a.sni, "pathproof-control.invalid");
            assert_eq!(a.outcome, ReplayOutcome::Answered { bytes: 7 });
        }
    }
    // The order alternates: real first at TTL 1, control first at TTL 2.
    assert!(!r.attempts[0].control && r.attempts[2].control);
    assert_eq!(r.first_reset_ttl, Some(1));
    assert!(!r.control_reset);
    assert_eq!(
        r.conclusion,
        SniReplayConclusion::SniFilter {
            first_reset_ttl: 1,
            filter_hop: 0
        }
    );
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"conclusion\":\"sni-filter\""), "{json}");
}

#[test]
fn sni_replay_stops_once_both_names_are_answered() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        for _ in 0..2 {
            let (mut sock, _) = listener.accept().unwrap();
            read_client_hello(&mut sock);
            let _ = sock.write_all(&[21, 3, 3, 0, 2, 2, 40]);
            let mut buf = [0u8; 64];
            let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = sock.read(&mut buf);
        }
    });
    let mut cfg = SniReplayConfig::new(addr, BROKER.to_string(), 5);
    cfg.wait = Duration::from_millis(500);
    let r = sni_replay(&cfg);
    server.join().unwrap();
    assert_eq!(r.attempts.len(), 2);
    assert_eq!(r.conclusion, SniReplayConclusion::NoDifference);
}

#[test]
fn sni_replay_over_ipv6_loopback() {
    // IPV6_UNICAST_HOPS instead of IP_TTL; skipped where ::1 is not configured.
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        return;
    };
    let (addr, server) = sni_filter_server_on(listener, 2);
    let mut cfg = SniReplayConfig::new(addr, BROKER.to_string(), 1);
    cfg.wait = Duration::from_millis(500);
    let r = sni_replay(&cfg);
    server.join().unwrap();
    assert_eq!(r.first_reset_ttl, Some(1), "{r:?}");
    assert!(!r.control_reset);
}
