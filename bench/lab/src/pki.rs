//! The lab's PKI: a throwaway CA, generated at every `up`, and the server certificate it
//! signs for nginx. Only the CA certificate leaves this module for clients to trust.

use std::fs::{OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::layout::LabPaths;
use crate::Error;

/// How long lab certificates are valid: the lab is rebuilt long before this runs out.
const VALID_DAYS: i64 = 90;

/// A freshly generated lab CA and a server certificate signed by it, as PEM text.
///
/// The CA's private key is dropped once the server certificate is signed: nothing else is
/// ever issued by a lab CA, so it never touches the disk.
#[derive(Debug, Clone)]
pub struct LabPki {
    /// The CA certificate (what clients trust).
    pub ca_pem: String,
    /// The server certificate followed by the CA certificate (what nginx serves).
    pub server_chain_pem: String,
    /// The server's private key, PKCS#8.
    pub server_key_pem: String,
}

impl LabPki {
    /// Generates a CA ("quickdraw lab CA", ECDSA P-256, certSign) and a server certificate
    /// for `server_name` (SAN `server_name`, EKU serverAuth), both valid from yesterday for
    /// `VALID_DAYS` days.
    pub fn generate(server_name: &str) -> Result<Self, Error> {
        let today = days_since_epoch(SystemTime::now());
        // From yesterday: a day of slack costs nothing and spares surprises around midnight.
        let at = |days: i64| {
            let (year, month, day) = civil_from_days(days);
            rcgen::date_time_ymd(year, month, day)
        };
        let (not_before, not_after) = (at(today - 1), at(today - 1 + VALID_DAYS));

        let mut ca = CertificateParams::default();
        ca.distinguished_name = rcgen::DistinguishedName::new();
        ca.distinguished_name
            .push(DnType::CommonName, "quickdraw lab CA");
        ca.distinguished_name
            .push(DnType::OrganizationName, "quickdraw lab");
        // pathlen 0: this CA signs leaves only.
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        (ca.not_before, ca.not_after) = (not_before, not_after);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

        let mut leaf = CertificateParams::new(vec![server_name.to_owned()])?;
        leaf.distinguished_name = rcgen::DistinguishedName::new();
        leaf.distinguished_name
            .push(DnType::CommonName, server_name);
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        (leaf.not_before, leaf.not_after) = (not_before, not_after);
        let leaf_key = KeyPair::generate()?;
        let leaf = leaf.signed_by(&leaf_key, &ca)?;

        Ok(LabPki {
            ca_pem: ca.pem(),
            server_chain_pem: format!("{}{}", leaf.pem(), ca.pem()),
            server_key_pem: leaf_key.serialize_pem(),
        })
    }

    /// Writes ca.pem, server.pem and server.key (mode 0600) into the lab's state directory.
    pub(crate) fn write(&self, paths: &LabPaths) -> Result<(), Error> {
        write_file(&paths.ca_cert, &self.ca_pem, 0o644)?;
        write_file(&paths.server_cert, &self.server_chain_pem, 0o644)?;
        write_file(&paths.server_key, &self.server_key_pem, 0o600)
    }
}

/// Writes `text` to `path` with `mode`, which holds before the first byte is written (even
/// when the file already existed), so the key is never readable by others, not even briefly.
pub(crate) fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::file("create", path, e))?;
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| Error::file("chmod", path, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| Error::file("write", path, e))
}

/// Days since 1970-01-01 (UTC) at `now`.
fn days_since_epoch(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01: H. Hinnant's
/// `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>). rcgen takes
/// dates as y/m/d and this spares a direct dependency on the `time` crate.
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::Command;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    fn client(ca_pem: &str) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    fn server(pki: &LabPki) -> Arc<ServerConfig> {
        let chain = CertificateDer::pem_slice_iter(pki.server_chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(config)
    }

    /// Runs a TLS 1.3 handshake in memory between a rustls client trusting `ca_pem` and a
    /// rustls server presenting `pki`'s chain.
    fn handshake(ca_pem: &str, pki: &LabPki) -> Result<(), rustls::Error> {
        let name = ServerName::try_from("target.lab").unwrap();
        let mut c = ClientConnection::new(client(ca_pem), name).unwrap();
        let mut s = ServerConnection::new(server(pki)).unwrap();
        for _ in 0..10 {
            let mut wire = Vec::new();
            c.write_tls(&mut wire).unwrap();
            s.read_tls(&mut &wire[..]).unwrap();
            s.process_new_packets()?;
            wire.clear();
            s.write_tls(&mut wire).unwrap();
            c.read_tls(&mut &wire[..]).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn rustls_accepts_the_chain_with_the_lab_ca_only() {
        let pki = LabPki::generate("target.lab").unwrap();
        handshake(&pki.ca_pem, &pki).unwrap();
        let stranger = LabPki::generate("target.lab").unwrap();
        let err = handshake(&stranger.ca_pem, &pki).unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    /// Outside truth: OpenSSL checks what webpki does not (the CA's keyCertSign usage, the
    /// leaf's serverAuth purpose).
    #[test]
    fn openssl_verifies_the_leaf_for_tls_servers() {
        let pki = LabPki::generate("target.lab").unwrap();
        let dir = std::env::temp_dir().join(format!("qd-bench-pki-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let paths = LabPaths::under(&dir);
        pki.write(&paths).unwrap();
        let out = Command::new("openssl")
            .arg("verify")
            .args(["-x509_strict", "-purpose", "sslserver", "-verify_hostname"])
            .arg("target.lab")
            .arg("-CAfile")
            .arg(&paths.ca_cert)
            .arg(&paths.server_cert)
            .output()
            .expect("openssl is installed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let key_mode = fs::metadata(&paths.server_key)
            .unwrap()
            .permissions()
            .mode();
        fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{text}");
        assert_eq!(key_mode & 0o777, 0o600);
    }
}
