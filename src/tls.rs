//! The dashboard's TLS: rustls with the ring provider, TLS 1.2 and 1.3 only, no OpenSSL.
//! Without `security.tls_cert`/`tls_key` on disk, a self-signed certificate is generated
//! (rcgen) with SANs for localhost, 127.0.0.1, ::1, the hostname and the box's LAN
//! addresses; its key is written 0600 in a 0700 directory. The SHA-256 fingerprint is
//! printed so a homeowner can compare it with what the browser shows. A user-supplied
//! pair is used as given; a missing half, an unreadable file, an expired certificate, or
//! a key that does not match the certificate stops start-up with a message naming the file.

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SHA-256 of the certificate, as colon-separated hex (what browsers show).
    pub fingerprint: String,
    pub generated: bool,
    /// rustls settings for the pair (loaded and checked once).
    pub server: Arc<rustls::ServerConfig>,
}

/// The names and addresses a generated certificate covers, plus `extra`.
pub fn default_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
            names.push(format!("{h}.local"));
        }
    }
    names.extend(lan_addresses());
    names.extend(extra.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// Non-loopback IPv4 and IPv6 addresses of this machine's interfaces.
fn lan_addresses() -> Vec<String> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we walk read-only and free with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return out;
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: cur points into the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: sa_family says which sockaddr type ifa_addr points to.
            let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
            let ip: Option<std::net::IpAddr> = match family {
                libc::AF_INET => {
                    let sa = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                    Some(std::net::Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)).into())
                }
                libc::AF_INET6 => {
                    let sa = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                    let v6 = std::net::Ipv6Addr::from(sa.sin6_addr.s6_addr);
                    // Link-local addresses need a zone id a certificate cannot hold.
                    (!v6.is_unicast_link_local()).then_some(v6.into())
                }
                _ => None,
            };
            if let Some(ip) = ip.filter(|ip| !ip.is_loopback()) {
                out.push(ip.to_string());
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: ifap came from getifaddrs.
    unsafe { libc::freeifaddrs(ifap) };
    out
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// How long a generated certificate is valid, unless `certs generate --days` says: 825
/// days, the longest validity scanners (testssl.sh) and Apple's platforms accept for a
/// certificate a user trusts by hand, and long enough that a box is not found with an
/// expired dashboard after a year. Start-up warns 30 days before it ends.
pub const DEFAULT_VALID_DAYS: u32 = 825;

/// Writes a new self-signed certificate and key for `names`, valid for
/// `DEFAULT_VALID_DAYS`; returns the fingerprint.
pub fn generate(cert: &Path, key: &Path, names: &[String]) -> anyhow::Result<String> {
    generate_for(cert, key, names, DEFAULT_VALID_DAYS)
}

/// `generate`, valid for `days` from now.
pub fn generate_for(
    cert: &Path,
    key: &Path,
    names: &[String],
    days: u32,
) -> anyhow::Result<String> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .context("a certificate name is not a valid DNS name or IP address")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sentrix");
    // From yesterday (UTC), so a client a few hours behind still accepts it, for `days` in
    // all: scanners measure the validity from notBefore to notAfter. A board that boots
    // with its clock in the past (no RTC, before NTP) only gets a start-up warning.
    let day_ms: i64 = 86_400_000;
    let start_ms = crate::base::clock::wall_ms() - day_ms;
    let (y, m, d) = crate::base::clock::utc_ymd(start_ms);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = crate::base::clock::utc_ymd(start_ms + i64::from(days) * day_ms);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let key_pair = rcgen::KeyPair::generate().context("cannot generate a key")?;
    let certificate = params.self_signed(&key_pair).context("cannot sign")?;
    for dir in [cert.parent(), key.parent()].into_iter().flatten() {
        if !dir.as_os_str().is_empty() {
            crate::store::keys::create_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    write_private(key, key_pair.serialize_pem().as_bytes())?;
    std::fs::write(cert, certificate.pem())
        .with_context(|| format!("cannot write {}", cert.display()))?;
    Ok(fingerprint(certificate.der()))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The configured pair, generated first if neither file exists.
pub fn ensure(config: &crate::config::Config) -> anyhow::Result<CertFiles> {
    let (cert, key) = (config.paths.tls_cert.clone(), config.paths.tls_key.clone());
    let generated = match (cert.exists(), key.exists()) {
        (false, false) => {
            generate(&cert, &key, &default_names(&[]))?;
            true
        }
        (true, false) => bail!(
            "{}: the certificate's key is missing (security.tls_key)",
            key.display()
        ),
        (false, true) => bail!(
            "{}: the key's certificate is missing (security.tls_cert)",
            cert.display()
        ),
        (true, true) => false,
    };
    let (certs, key_der) = load(&cert, &key)?;
    Ok(CertFiles {
        fingerprint: fingerprint(&certs[0]),
        server: build(certs, key_der, &cert, &key)?,
        cert,
        key,
        generated,
    })
}

fn load(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("{}: cannot read the certificate", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: not a PEM certificate", cert.display()))?;
    if certs.is_empty() {
        bail!("{}: no certificate in the file", cert.display());
    }
    check_validity(cert, &certs[0], crate::base::clock::wall_ms() / 1000)?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: not a readable PEM private key", key.display()))?;
    Ok((certs, key_der))
}

/// Refuses a leaf certificate whose notAfter has passed at `now_s` (Unix seconds): a
/// browser would refuse it anyway, and an installer learns it here, by name, rather than
/// from a homeowner. One not yet valid only warns: a board without a real-time clock can
/// boot with a date in the past until NTP answers. Expiry within 30 days warns too.
pub fn check_validity(path: &Path, der: &[u8], now_s: i64) -> anyhow::Result<()> {
    let (not_before_s, not_after_s) = validity_s(der)
        .map_err(|e| anyhow::anyhow!("{}: not a valid X.509 certificate: {e}", path.display()))?;
    let day = |t_s: i64| crate::base::clock::utc_date(t_s * 1000);
    if now_s > not_after_s {
        bail!(
            "{}: the certificate expired on {} (UTC); install a renewed one, or delete it and \
             its key and run `sentrix certs generate` for a new self-signed pair",
            path.display(),
            day(not_after_s)
        );
    }
    if now_s < not_before_s {
        tracing::warn!(
            "{}: the certificate is not valid before {} (UTC); is this box's clock right?",
            path.display(),
            day(not_before_s)
        );
    } else if not_after_s - now_s < 30 * 86_400 {
        tracing::warn!(
            "{}: the certificate expires on {} (UTC); renew it soon",
            path.display(),
            day(not_after_s)
        );
    }
    Ok(())
}

/// A certificate's (notBefore, notAfter) in Unix seconds. Reads only as far as its
/// validity, with yasna (the DER library rcgen already brings); checking the rest is
/// rustls's work. BER is accepted: this check is about dates, not encodings.
fn validity_s(der: &[u8]) -> yasna::ASN1Result<(i64, i64)> {
    yasna::parse_ber(der, |cert| {
        cert.read_sequence(|cert| {
            let validity = cert.next().read_sequence(tbs_validity_s)?;
            cert.next().read_der()?; // signatureAlgorithm
            cert.next().read_der()?; // signatureValue
            Ok(validity)
        })
    })
}

/// The validity inside a TBSCertificate, after its optional version, serial number,
/// signature algorithm and issuer; what follows it (subject, key, extensions) is skipped.
fn tbs_validity_s(tbs: &mut yasna::BERReaderSeq<'_, '_>) -> yasna::ASN1Result<(i64, i64)> {
    tbs.read_optional(|r| r.read_tagged(yasna::Tag::context(0), |r| r.read_der()))?;
    for _serial_algorithm_issuer in 0..3 {
        tbs.next().read_der()?;
    }
    let validity = tbs
        .next()
        .read_sequence(|v| Ok((time_s(v.next())?, time_s(v.next())?)))?;
    while tbs.read_optional(|r| r.read_der())?.is_some() {}
    Ok(validity)
}

/// An X.509 Time, UTCTime (years to 2049) or GeneralizedTime, in Unix seconds.
fn time_s(r: yasna::BERReader<'_, '_>) -> yasna::ASN1Result<i64> {
    if r.lookahead_tag()? == yasna::tags::TAG_UTCTIME {
        Ok(r.read_utctime()?.datetime().unix_timestamp())
    } else {
        Ok(r.read_generalized_time()?.datetime().unix_timestamp())
    }
}

/// rustls server settings for the pair: TLS 1.3 and 1.2, HTTP/1.1.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let (certs, key_der) = load(cert, key)?;
    build(certs, key_der, cert, key)
}

fn build(
    certs: Vec<CertificateDer<'static>>,
    key_der: PrivateKeyDer<'static>,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: preferred_suites(),
        ..rustls::crypto::ring::default_provider()
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .with_context(|| {
            format!(
                "{} and {} do not make a usable pair (does the key belong to the certificate?)",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The server picks the suite, in `preferred_suites` order, whatever the client lists
    // first (what scanners expect of a server: "cipher order configured").
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// The suites the dashboard offers, most preferred first: AEADs with forward secrecy only.
/// TLS 1.3's three, then TLS 1.2's ECDHE with AES-GCM or ChaCha20-Poly1305, for ECDSA
/// certificates (the generated one) and RSA ones (an installer's own CA). AES-256 first;
/// ChaCha20 before AES-128, as it is the faster one on boards without AES instructions
/// (a Raspberry Pi 4).
fn preferred_suites() -> Vec<rustls::SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    vec![
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ]
}

/// An HTTPS client builder for sentrix's outgoing connections (webhooks, the off-site
/// bucket): rustls, the system's roots plus `ca_file`'s certificates, no redirects, a
/// 10 s connect timeout. Callers add their own request timeout.
pub fn client_builder(ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder, String> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sentrix/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {}: {e}", ca.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{}: not a PEM certificate: {e}", ca.display()))?;
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn generated_pairs_load_and_a_foreign_key_is_refused() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile_dir()?;
        let (c1, k1) = (dir.join("a.crt"), dir.join("a.key"));
        let (c2, k2) = (dir.join("b.crt"), dir.join("b.key"));
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let fp = super::generate(&c1, &k1, &names)?;
        super::generate(&c2, &k2, &names)?;
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(super::server_config(&c1, &k1).is_ok());
        let err = super::server_config(&c1, &k2)
            .err()
            .ok_or("a foreign key was accepted")?;
        assert!(
            format!("{err:#}").contains("do not make a usable pair"),
            "{err:#}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    /// A generated certificate runs from yesterday for exactly the days asked (scanners
    /// measure notBefore to notAfter), and the server picks the suite itself.
    #[test]
    fn generated_validity_is_the_days_asked_and_the_server_orders_suites()
    -> Result<(), Box<dyn std::error::Error>> {
        // Not tempfile_dir(): the other test removes that one when it ends.
        let dir = std::env::temp_dir().join(format!("sentrix-tls-days-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (c, k) = (dir.join("v.crt"), dir.join("v.key"));
        super::generate_for(&c, &k, &["localhost".to_string()], 30)?;
        let (certs, _) = super::load(&c, &k)?;
        let (not_before_s, not_after_s) = super::validity_s(certs[0].as_ref())?;
        assert_eq!(not_after_s - not_before_s, 30 * 86_400);
        let now_s = crate::base::clock::wall_ms() / 1000;
        assert!(not_before_s <= now_s && now_s - not_before_s <= 2 * 86_400);
        let config = super::server_config(&c, &k)?;
        assert!(config.ignore_client_order);
        assert_eq!(
            config.crypto_provider().cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn an_expired_certificate_is_refused_by_name_and_date() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile_dir()?.join("expired");
        std::fs::create_dir_all(&dir)?;
        let (cert, key) = (dir.join("old.crt"), dir.join("old.key"));
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 6, 30);
        let pair = rcgen::KeyPair::generate()?;
        let signed = params.self_signed(&pair)?;
        std::fs::write(&cert, signed.pem())?;
        std::fs::write(&key, pair.serialize_pem())?;
        let err = format!(
            "{:#}",
            super::server_config(&cert, &key)
                .err()
                .ok_or("an expired certificate was accepted")?
        );
        assert!(err.contains("expired on 2021-06-30"), "{err}");
        assert!(err.contains("old.crt"), "{err}");
        // The same certificate is accepted while it was valid, so the date is what failed.
        let der = std::fs::read_to_string(&cert)?;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(der.as_bytes())?;
        assert!(super::check_validity(&cert, &der, 1_600_000_000).is_ok());
        // 2021-06-30 is the last valid day, to the second.
        assert!(super::check_validity(&cert, &der, 1_625_011_200).is_ok());
        assert!(super::check_validity(&cert, &der, 1_625_011_201).is_err());
        Ok(())
    }

    #[test]
    fn validity_dates_are_read_from_utc_and_generalized_times()
    -> Result<(), Box<dyn std::error::Error>> {
        // rcgen writes UTCTime up to 2049 and GeneralizedTime from 2050, as RFC 5280 asks.
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
        params.not_before = rcgen::date_time_ymd(2049, 12, 31);
        params.not_after = rcgen::date_time_ymd(2051, 3, 1);
        let signed = params.self_signed(&rcgen::KeyPair::generate()?)?;
        let der = signed.der().to_vec();
        assert_eq!(
            super::validity_s(&der)?,
            (2_524_521_600, 2_561_241_600),
            "2049-12-31 and 2051-03-01, 00:00 UTC"
        );
        // Anything cut short, or not a certificate at all, is an error and not a date.
        for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
            assert!(super::validity_s(&der[..cut]).is_err(), "cut at {cut}");
        }
        assert!(super::validity_s(b"-----BEGIN CERTIFICATE-----").is_err());
        let path = std::path::Path::new("garbage.crt");
        let err = super::check_validity(path, &der[..40], 0)
            .err()
            .ok_or("accepted")?;
        assert!(
            format!("{err:#}").contains("garbage.crt: not a valid X.509"),
            "{err:#}"
        );
        Ok(())
    }

    fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
        let d = std::env::temp_dir().join(format!("sentrix-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }
}
