//! The network checks: DNS (through a configurable server, so the local stack can use its
//! stand-in), TCP, TLS, and an HTTP health GET pinned to an address.
//!
//! DNS is a minimal A query over UDP (RFC 1035 §4) rather than a resolver crate: the check asks
//! one server one question and compares the answer, with no caching, search domains or
//! fallbacks that could hide a wrong record.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Why a TCP, TLS or HTTP check failed, as the check observed it (its text is recorded as the
/// check's observation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NetError(pub String);

impl NetError {
    fn from(e: impl std::fmt::Display) -> NetError {
        NetError(e.to_string())
    }
}

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// The server says the name does not exist (RCODE 3).
    #[error("NXDOMAIN")]
    NxDomain,
    /// The server answered with another error code.
    #[error("DNS error code {0}")]
    Rcode(u8),
    /// No answer within the deadline, or the socket failed.
    #[error("no answer: {0}")]
    NoAnswer(String),
    /// The answer could not be parsed.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

/// The A query for `name`, with transaction id `id` and recursion desired.
pub fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len().min(63) as u8);
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn skip_name(msg: &[u8], mut i: usize) -> Result<usize, DnsError> {
    loop {
        let len = *msg.get(i).ok_or_else(|| DnsError::Malformed("name runs past the end".into()))? as usize;
        match len {
            0 => return Ok(i + 1),
            l if l & 0xC0 == 0xC0 => return Ok(i + 2),
            l => i += l + 1,
        }
    }
}

/// The IPv4 addresses in the answer section of a response to query `id`. CNAMEs are skipped:
/// the server resolves the chain and lists the A records after them.
pub fn parse_answer(id: u16, msg: &[u8]) -> Result<Vec<IpAddr>, DnsError> {
    let bad = |m: &str| DnsError::Malformed(m.into());
    if msg.len() < 12 || u16::from_be_bytes([msg[0], msg[1]]) != id {
        return Err(bad("short or for another query"));
    }
    match msg[3] & 0x0F {
        0 => {}
        3 => return Err(DnsError::NxDomain),
        rc => return Err(DnsError::Rcode(rc)),
    }
    let (qd, an) = (u16::from_be_bytes([msg[4], msg[5]]), u16::from_be_bytes([msg[6], msg[7]]));
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(msg, i)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..an {
        i = skip_name(msg, i)?;
        let head = msg.get(i..i + 10).ok_or_else(|| bad("record header"))?;
        let (rtype, len) = (u16::from_be_bytes([head[0], head[1]]), u16::from_be_bytes([head[8], head[9]]) as usize);
        let data = msg.get(i + 10..i + 10 + len).ok_or_else(|| bad("record data"))?;
        if rtype == 1 && len == 4 {
            ips.push(IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3])));
        }
        i += 10 + len;
    }
    Ok(ips)
}

/// Resolves `name` to its addresses: through `server` when given (one UDP question, retried once
/// after half the deadline), else through the system resolver.
pub async fn resolve(server: Option<SocketAddr>, name: &str, deadline: Duration) -> Result<Vec<IpAddr>, DnsError> {
    let Some(server) = server else {
        return match tokio::time::timeout(deadline, tokio::net::lookup_host((name, 0))).await {
            Ok(Ok(addrs)) => Ok(addrs.map(|a| a.ip()).collect()),
            Ok(Err(e)) => Err(DnsError::NoAnswer(e.to_string())),
            Err(_) => Err(DnsError::NoAnswer(format!("no answer within {deadline:?}"))),
        };
    };
    let bind: SocketAddr =
        if server.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { "[::]:0".parse().expect("static") };
    let socket = UdpSocket::bind(bind).await.map_err(|e| DnsError::NoAnswer(e.to_string()))?;
    socket.connect(server).await.map_err(|e| DnsError::NoAnswer(e.to_string()))?;
    let id: u16 = rand::random();
    let q = query(id, name);
    let mut buf = vec![0u8; 4096];
    for _ in 0..2 {
        socket.send(&q).await.map_err(|e| DnsError::NoAnswer(e.to_string()))?;
        // Datagrams for an earlier, abandoned attempt carry the same id and are as good.
        if let Ok(Ok(n)) = tokio::time::timeout(deadline / 2, socket.recv(&mut buf)).await {
            return parse_answer(id, &buf[..n]);
        }
    }
    Err(DnsError::NoAnswer(format!("{server} did not answer within {deadline:?}")))
}

/// The trust roots: the platform's (webpki) plus the named extra CA, as every other client of
/// this binary trusts them.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, NetError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        for cert in
            CertificateDer::pem_file_iter(path).map_err(|e| NetError(format!("CA file {}: {e}", path.display())))?
        {
            roots
                .add(cert.map_err(|e| NetError(format!("CA file {}: {e}", path.display())))?)
                .map_err(|e| NetError(format!("CA file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(NetError::from)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens a TCP connection to `addr`.
pub async fn tcp(addr: SocketAddr, deadline: Duration) -> Result<TcpStream, NetError> {
    match tokio::time::timeout(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(NetError::from(e)),
        Err(_) => Err(NetError(format!("no connection within {deadline:?}"))),
    }
}

/// Connects and completes a verified TLS handshake with SNI `fqdn`. Postgres first needs its
/// SSLRequest (as libpq sends it), then speaks TLS; everything else is TLS from the first byte.
/// Returns the negotiated protocol version.
pub async fn tls(
    addr: SocketAddr,
    fqdn: &str,
    postgres: bool,
    config: Arc<ClientConfig>,
    deadline: Duration,
) -> Result<String, NetError> {
    let work = async {
        let mut stream = tcp(addr, deadline).await?;
        if postgres {
            // Int32 length 8, Int32 80877103 (SSLRequest).
            stream.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).await.map_err(NetError::from)?;
            let mut answer = [0u8; 1];
            stream.read_exact(&mut answer).await.map_err(NetError::from)?;
            if answer[0] != b'S' {
                return Err(NetError("the server refused TLS (SSLRequest answered N)".into()));
            }
        }
        let name = ServerName::try_from(fqdn.to_owned()).map_err(NetError::from)?;
        let tls = TlsConnector::from(config).connect(name, stream).await.map_err(NetError::from)?;
        Ok(tls.get_ref().1.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default())
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_else(|_| Err(NetError(format!("no handshake within {deadline:?}"))))
}

/// `GET https://{host}:{port}{path}` with the connection pinned to `addr` (Host and SNI stay
/// `host`), through the run's trust roots. Returns the status and at most 4 KiB of the body.
pub async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    addr: IpAddr,
    ca_file: Option<&Path>,
    deadline: Duration,
) -> Result<(u16, String), NetError> {
    let mut builder = reqwest::Client::builder()
        .timeout(deadline)
        .resolve(host, SocketAddr::new(addr, port))
        .user_agent(concat!("vibedata-bootstrap/", env!("CARGO_PKG_VERSION"), " health"));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| NetError(format!("CA file {}: {e}", path.display())))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(NetError::from)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(NetError::from)?;
    let resp = client
        .get(format!("https://{host}:{port}{path}"))
        .send()
        .await
        .map_err(|e| NetError(crate::azure::pipeline::error_chain(&e)))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Ok((status, body.chars().take(4096).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_and_its_answer() {
        let q = query(0x1234, "kv.privatelink.vaultcore.azure.net");
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        // The response echoes the question, then a CNAME (skipped) and an A record via pointers.
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 2;
        r.extend_from_slice(&[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 0, 0, 2, 0xC0, 12]);
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 10, 1, 2, 3]);
        assert_eq!(parse_answer(0x1234, &r).unwrap(), [IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))]);
        let mut nx = q.clone();
        nx[3] = 0x83;
        assert_eq!(parse_answer(0x1234, &nx), Err(DnsError::NxDomain));
        assert!(parse_answer(0x9999, &r).is_err(), "another query's answer");
    }
}
