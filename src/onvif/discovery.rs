//! WS-Discovery, as ONVIF cameras answer it: a Probe for NetworkVideoTransmitter devices
//! sent to the multicast group 239.255.255.250:3702 (the whole LAN segment: a
//! time-to-live of one hop) and/or straight to given addresses (a camera on another
//! subnet, or a test that must not multicast), then every ProbeMatch that comes back
//! within the wait, one per device.

use super::soap::text_of;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

pub const MULTICAST_GROUP: SocketAddrV4 =
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 3702);
/// The port a directed probe goes to when none is given.
pub const DISCOVERY_PORT: u16 = 3702;
/// The most addresses one scan probes (a /24).
pub const MAX_TARGETS: usize = 256;
/// The largest datagram read.
const MAX_DATAGRAM: usize = 65_535;

/// A device that answered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    /// Its endpoint reference (a stable urn:uuid).
    pub endpoint: String,
    /// Where it answered from.
    pub address: String,
    /// Its device service URLs.
    pub xaddrs: Vec<String>,
    /// From its scopes, when it says: name, hardware (model) and manufacturer.
    pub name: Option<String>,
    pub model: Option<String>,
    pub manufacturer: Option<String>,
}

fn probe_message() -> std::io::Result<String> {
    let mut id = [0u8; 16];
    getrandom::getrandom(&mut id).map_err(std::io::Error::other)?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    Ok(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><e:Header><w:MessageID>urn:uuid:{uuid}</w:MessageID><w:To e:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To><w:Action e:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header><e:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></e:Body></e:Envelope>"#
    ))
}

/// Probes `targets` (and the multicast group when `multicast`) and collects the answers
/// for `wait`.
pub async fn discover(
    targets: &[SocketAddr],
    multicast: bool,
    wait: Duration,
) -> std::io::Result<Vec<Found>> {
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    socket.set_multicast_ttl_v4(1)?;
    let probe = probe_message()?;
    if multicast {
        socket.send_to(probe.as_bytes(), MULTICAST_GROUP).await?;
    }
    for target in targets.iter().take(MAX_TARGETS) {
        // One unreachable address must not end the scan.
        if let Err(e) = socket.send_to(probe.as_bytes(), target).await {
            tracing::debug!("ONVIF probe to {target}: {e}");
        }
    }
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while let Ok(received) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
        let Ok((n, from)) = received else { continue };
        let text = String::from_utf8_lossy(&buf[..n]);
        if let Some(f) = read_match(&text, from) {
            found.entry(f.endpoint.clone()).or_insert(f);
        }
    }
    Ok(found.into_values().collect())
}

/// A ProbeMatch, if `text` is one.
fn read_match(text: &str, from: SocketAddr) -> Option<Found> {
    let doc = roxmltree::Document::parse(text).ok()?;
    let m = doc
        .descendants()
        .find(|n| n.tag_name().name() == "ProbeMatch")?;
    let xaddrs: Vec<String> = text_of(m, "XAddrs")?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let scopes: Vec<&str> = text_of(m, "Scopes")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let scope = |kind: &str| {
        scopes.iter().find_map(|s| {
            let value = s.strip_prefix(&format!("onvif://www.onvif.org/{kind}/"))?;
            let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
            Some(decoded.replace('_', " "))
        })
    };
    Some(Found {
        endpoint: text_of(m, "Address").unwrap_or_default().to_string(),
        address: from.ip().to_string(),
        xaddrs,
        name: scope("name"),
        model: scope("hardware"),
        manufacturer: scope("manufacturer").or_else(|| scope("mfr")),
    })
}

/// The addresses a scan request names: `a.b.c.d`, `a.b.c.d:port` or a last-octet range
/// `a.b.c.d-e`, comma or space separated; at most `MAX_TARGETS`.
pub fn parse_targets(text: &str) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for item in text
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        out.extend(parse_target(item)?);
        if out.len() > MAX_TARGETS {
            return Err(format!("at most {MAX_TARGETS} addresses in one scan"));
        }
    }
    Ok(out)
}

fn parse_target(item: &str) -> Result<Vec<SocketAddr>, String> {
    let bad = || format!("{item:?} is not an address (a.b.c.d, a.b.c.d:port or a.b.c.d-e)");
    if let Ok(addr) = item.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    if let Ok(ip) = item.parse::<Ipv4Addr>() {
        return Ok(vec![SocketAddr::from((ip, DISCOVERY_PORT))]);
    }
    let (first, last) = item.split_once('-').ok_or_else(bad)?;
    let first: Ipv4Addr = first.parse().map_err(|_| bad())?;
    let last: u8 = last.parse().map_err(|_| bad())?;
    let [a, b, c, start] = first.octets();
    if last < start {
        return Err(bad());
    }
    Ok((start..=last)
        .map(|d| SocketAddr::from((Ipv4Addr::new(a, b, c, d), DISCOVERY_PORT)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_ranges_and_ports() {
        let t = parse_targets("192.168.1.20, 10.0.0.5:3703 192.168.1.250-254").unwrap();
        assert_eq!(t.len(), 7);
        assert_eq!(t[1], "10.0.0.5:3703".parse().unwrap());
        assert_eq!(t[6], "192.168.1.254:3702".parse().unwrap());
        assert!(parse_targets("cam.lan").is_err());
        assert!(parse_targets("10.0.0.9-3").is_err());
        assert!(parse_targets("10.0.0.0-255, 10.0.1.1").is_err());
    }

    #[test]
    fn a_probe_match_is_read_and_other_datagrams_are_not() {
        let text = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Body><d:ProbeMatches><d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:1234</a:Address></a:EndpointReference><d:Scopes>onvif://www.onvif.org/name/Front_Door onvif://www.onvif.org/hardware/DS-2CD2043</d:Scopes><d:XAddrs>http://10.0.0.7/onvif/device_service http://[fe80::1]/onvif/device_service</d:XAddrs></d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>"#;
        let from: SocketAddr = "10.0.0.7:3702".parse().unwrap();
        let f = read_match(text, from).unwrap();
        assert_eq!(f.endpoint, "urn:uuid:1234");
        assert_eq!(f.xaddrs.len(), 2);
        assert_eq!(f.name.as_deref(), Some("Front Door"));
        assert_eq!(f.model.as_deref(), Some("DS-2CD2043"));
        assert!(read_match("<Probe/>", from).is_none());
        assert!(read_match("not xml", from).is_none());
    }
}
