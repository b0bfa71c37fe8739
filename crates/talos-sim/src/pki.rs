//! The simulated fleet's OS PKI: one Ed25519 CA (as Talos uses), a server certificate
//! per machine with IP and DNS SANs, and client certificates whose Organization is the
//! Talos role.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ED25519, SanType,
};

use crate::SimError;

/// A PEM certificate and its PEM private key.
#[derive(Clone)]
pub struct Identity {
    /// PEM certificate.
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Talos API roles (`pkg/machinery/role/role.go`), carried as the client
/// certificate's Organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `os:reader`: reads only.
    Reader,
    /// `os:operator`: reads plus reboot, shutdown, service control.
    Operator,
    /// `os:admin`: everything.
    Admin,
}

impl Role {
    /// The Organization string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "os:reader",
            Self::Operator => "os:operator",
            Self::Admin => "os:admin",
        }
    }

    /// The highest role named in a DER client certificate. The CA's own name never
    /// contains an `os:` role, so a byte search over the DER is exact enough here.
    pub(crate) fn from_cert_der(der: &[u8]) -> Option<Self> {
        let has = |needle: &str| der.windows(needle.len()).any(|w| w == needle.as_bytes());
        [Self::Admin, Self::Operator, Self::Reader]
            .into_iter()
            .find(|r| has(r.as_str()))
    }
}

/// The fleet CA.
pub struct Pki {
    ca_cert: Certificate,
    ca_key: KeyPair,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

fn rc(e: rcgen::Error) -> SimError {
    SimError::Pki(e.to_string())
}

impl Pki {
    /// A fresh CA.
    pub fn generate() -> Result<Self, SimError> {
        let ca_key = KeyPair::generate_for(&PKCS_ED25519).map_err(rc)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "talos-sim");
        dn.push(DnType::CommonName, "talos-sim fleet CA");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = params.self_signed(&ca_key).map_err(rc)?;
        Ok(Self { ca_cert, ca_key })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_cert.pem()
    }

    /// An apid server certificate for `hostname` and `ips`.
    pub fn issue_server(&self, hostname: &str, ips: &[IpAddr]) -> Result<Identity, SimError> {
        let key = KeyPair::generate_for(&PKCS_ED25519).map_err(rc)?;
        let mut params = CertificateParams::new(vec![hostname.to_owned()]).map_err(rc)?;
        params
            .subject_alt_names
            .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, hostname);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .map_err(rc)?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate for `role`.
    pub fn issue_client(&self, role: Role) -> Result<Identity, SimError> {
        let key = KeyPair::generate_for(&PKCS_ED25519).map_err(rc)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, role.as_str());
        dn.push(DnType::CommonName, "talos-sim client");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .map_err(rc)?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
