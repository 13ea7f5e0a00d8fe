//! The rustls client configuration of the probe: accept any chain but record
//! it, verify handshake signatures for real, and note a CertificateRequest.
//!
//! Accepting any chain is safe here because the probe never sends
//! application data: it exists to see what the server (or whatever answers in
//! its place) presents, including a chain no trust store would accept.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WantsClientCert};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ConfigBuilder, DigitallySignedStruct, Error, SignatureScheme, sign::CertifiedKey,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the handshake showed of the server, filled in by rustls' callbacks.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    chain: Mutex<Vec<Vec<u8>>>,
    client_cert_requested: AtomicBool,
}

impl Recorded {
    /// The chain as sent, leaf first (empty if none arrived).
    pub(super) fn chain(&self) -> Vec<Vec<u8>> {
        // A poisoned lock only means a callback panicked; the data is intact.
        self.chain.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn client_cert_requested(&self) -> bool {
        self.client_cert_requested.load(Ordering::Relaxed)
    }
}

/// Accepts every chain, records it, and checks signatures with the
/// provider's algorithms (a server that cannot prove it holds the key still
/// fails the handshake).
#[derive(Debug)]
struct RecordingVerifier {
    recorded: Arc<Recorded>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        *self
            .recorded
            .chain
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Notes that the server asked for a client certificate and offers none
/// (rustls then sends an empty Certificate message).
#[derive(Debug)]
struct RecordingClientCertResolver {
    recorded: Arc<Recorded>,
}

impl ResolvesClientCert for RecordingClientCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.recorded
            .client_cert_requested
            .store(true, Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        false // as rustls' own "no client auth" resolver
    }
}

/// A client config offering TLS 1.3 and 1.2 (as the connector does) with the
/// recording verifier and resolver, and what they record.
pub(super) fn recording_config(alpn: &[String]) -> Result<(ClientConfig, Arc<Recorded>), Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorded = Arc::new(Recorded::default());
    let builder: ConfigBuilder<ClientConfig, WantsClientCert> =
        ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RecordingVerifier {
                recorded: recorded.clone(),
                provider,
            }));
    let mut config = builder.with_client_cert_resolver(Arc::new(RecordingClientCertResolver {
        recorded: recorded.clone(),
    }));
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok((config, recorded))
}
