//! The lab's PKI: a throwaway CA, generated at every `up`, and the server certificate it
//! signs for nginx. Clients trust the CA certificate; the CA's key stays in the state
//! directory (0600, removed with the lab) only so a test can issue nginx a replacement
//! certificate ([`Signer`]) as a real certificate rotation would.

use std::fs::{OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::layout::LabPaths;
use crate::Error;

/// How long lab certificates are valid: the lab is rebuilt long before this runs out.
const VALID_DAYS: i64 = 90;

/// A freshly generated lab CA and a server certificate signed by it, as PEM text.
#[derive(Debug, Clone)]
pub struct LabPki {
    /// The CA certificate (what clients trust).
    pub ca_pem: String,
    /// The CA's private key, PKCS#8 (written 0600; used only to issue replacements).
    pub ca_key_pem: String,
    /// The server certificate followed by the CA certificate (what nginx serves).
    pub server_chain_pem: String,
    /// The server's private key, PKCS#8.
    pub server_key_pem: String,
}

/// Who signs a replacement server certificate ([`LabPki::reissue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The lab CA clients trust: a routine certificate rotation.
    LabCa,
    /// A fresh CA nobody trusts (same names as the lab's): what an impostor would serve.
    Stranger,
}

/// Makes `params` valid from yesterday for `VALID_DAYS` days: a day of slack costs nothing
/// and spares surprises around midnight.
fn set_validity(params: &mut CertificateParams) {
    let today = days_since_epoch(SystemTime::now());
    let at = |days: i64| {
        let (year, month, day) = civil_from_days(days);
        rcgen::date_time_ymd(year, month, day)
    };
    (params.not_before, params.not_after) = (at(today - 1), at(today - 1 + VALID_DAYS));
}

/// The lab CA's parameters ("quickdraw lab CA", certSign, pathlen 0). Signing with them and
/// the CA's key gives certificates that chain to the CA certificate made from them.
fn ca_params() -> CertificateParams {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "quickdraw lab CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "quickdraw lab");
    // pathlen 0: this CA signs leaves only.
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca);
    ca
}

/// A server certificate for `server_name` (SAN, EKU serverAuth) signed by `issuer`, and
/// its fresh key, as PEM.
fn leaf(server_name: &str, issuer: &Issuer<'_, KeyPair>) -> Result<(String, String), Error> {
    let mut leaf = CertificateParams::new(vec![server_name.to_owned()])?;
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, server_name);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    set_validity(&mut leaf);
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf.signed_by(&leaf_key, issuer)?;
    Ok((leaf.pem(), leaf_key.serialize_pem()))
}

impl LabPki {
    /// Generates a CA ("quickdraw lab CA", ECDSA P-256, certSign) and a server certificate
    /// for `server_name` (SAN `server_name`, EKU serverAuth), both valid from yesterday for
    /// `VALID_DAYS` days.
    pub fn generate(server_name: &str) -> Result<Self, Error> {
        let ca_key = KeyPair::generate()?;
        let ca_key_pem = ca_key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(ca_params(), ca_key)?;
        let (leaf_pem, server_key_pem) = leaf(server_name, &ca)?;
        Ok(LabPki {
            ca_pem: ca.pem(),
            ca_key_pem,
            server_chain_pem: format!("{leaf_pem}{}", ca.pem()),
            server_key_pem,
        })
    }

    /// Writes ca.pem, ca.key and server.key (mode 0600) and server.pem into the lab's
    /// state directory.
    pub(crate) fn write(&self, paths: &LabPaths) -> Result<(), Error> {
        write_file(&paths.ca_cert, &self.ca_pem, 0o644)?;
        write_file(&paths.ca_key, &self.ca_key_pem, 0o600)?;
        write_server(paths, &self.server_chain_pem, &self.server_key_pem)
    }

    /// Replaces nginx's certificate and key in the state directory with a fresh pair for
    /// `server_name` signed by `signer`; the CA clients trust (ca.pem) is left as it is.
    /// nginx serves it after a reload.
    pub(crate) fn reissue(
        paths: &LabPaths,
        server_name: &str,
        signer: Signer,
    ) -> Result<(), Error> {
        let (chain, key) = match signer {
            Signer::LabCa => {
                let read =
                    |p: &Path| std::fs::read_to_string(p).map_err(|e| Error::file("read", p, e));
                let ca_pem = read(&paths.ca_cert)?;
                let ca_key = KeyPair::from_pem(&read(&paths.ca_key)?)?;
                let (leaf_pem, key) = leaf(server_name, &Issuer::new(ca_params(), ca_key))?;
                (format!("{leaf_pem}{ca_pem}"), key)
            }
            Signer::Stranger => {
                let stranger = LabPki::generate(server_name)?;
                (stranger.server_chain_pem, stranger.server_key_pem)
            }
        };
        write_server(paths, &chain, &key)
    }
}

/// Writes nginx's chain (0644) and key (0600).
fn write_server(paths: &LabPaths, chain_pem: &str, key_pem: &str) -> Result<(), Error> {
    write_file(&paths.server_cert, chain_pem, 0o644)?;
    write_file(&paths.server_key, key_pem, 0o600)
}

/// Writes `text` to `path` with `mode`, which holds before the first byte is written (even
/// when the file already existed), so the key is never readable by others, not even briefly.
pub(crate) fn write_file(path: &Path, text: impl AsRef<[u8]>, mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::file("create", path, e))?;
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| Error::file("chmod", path, e))?;
    file.write_all(text.as_ref())
        .map_err(|e| Error::file("write", path, e))
}

/// Writes a fresh session ticket key for nginx (`ssl_session_ticket_key`): 80 random bytes
/// (AES-256 tickets), mode 0600. Tickets sealed with the previous key are refused after
/// nginx reloads it: their clients fall back to a full handshake.
pub(crate) fn write_ticket_key(paths: &LabPaths) -> Result<(), Error> {
    use std::io::Read;
    let random = Path::new("/dev/urandom");
    let mut key = [0u8; 80];
    std::fs::File::open(random)
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| Error::file("read", random, e))?;
    write_file(&paths.ticket_key, key, 0o600)
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

    /// A rotation: the replacement (new key) chains to the CA clients already trust; a
    /// stranger's certificate for the same name does not.
    #[test]
    fn a_reissued_certificate_chains_to_the_lab_ca_and_a_strangers_does_not() {
        let dir = std::env::temp_dir().join(format!("qd-bench-reissue-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let paths = LabPaths::under(&dir);
        let pki = LabPki::generate("target.lab").unwrap();
        pki.write(&paths).unwrap();
        let served = |paths: &LabPaths| LabPki {
            server_chain_pem: fs::read_to_string(&paths.server_cert).unwrap(),
            server_key_pem: fs::read_to_string(&paths.server_key).unwrap(),
            ..pki.clone()
        };
        LabPki::reissue(&paths, "target.lab", Signer::LabCa).unwrap();
        let rotated = served(&paths);
        LabPki::reissue(&paths, "target.lab", Signer::Stranger).unwrap();
        let stranger = served(&paths);
        let ca_key_mode = fs::metadata(&paths.ca_key).unwrap().permissions().mode();
        fs::remove_dir_all(&dir).unwrap();

        assert_ne!(rotated.server_key_pem, pki.server_key_pem);
        assert_ne!(rotated.server_chain_pem, pki.server_chain_pem);
        handshake(&pki.ca_pem, &rotated).unwrap();
        let err = handshake(&pki.ca_pem, &stranger).unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
        assert_eq!(ca_key_mode & 0o777, 0o600);
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
