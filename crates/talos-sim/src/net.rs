//! Outgoing connections from a machine's own address. With per-machine loopback
//! addresses, the sink and the provisioning server see each machine at its own source
//! IP, as they see each machine's overlay address in production.

use std::net::{IpAddr, SocketAddr};

use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;
use tonic::transport::{Channel, Endpoint, Uri};

async fn dial(uri: Uri, source: IpAddr) -> std::io::Result<TokioIo<tokio::net::TcpStream>> {
    let host = uri
        .host()
        .unwrap_or("localhost")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let mut addrs = tokio::net::lookup_host((host.as_str(), port)).await?;
    let target = addrs
        .find(|a| a.is_ipv4() == source.is_ipv4())
        .ok_or_else(|| std::io::Error::other(format!("no address for {host}")))?;
    let socket = if source.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Only loopback targets are reachable from a loopback source.
    if target.ip().is_loopback() {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(TokioIo::new(stream))
}

/// A plain TCP connection to `addr` (`host:port`), from `source` when given.
pub(crate) async fn tcp_from(
    addr: &str,
    source: Option<IpAddr>,
) -> std::io::Result<tokio::net::TcpStream> {
    let target = tokio::net::lookup_host(addr)
        .await?
        .find(|a| source.is_none_or(|s| a.is_ipv4() == s.is_ipv4()))
        .ok_or_else(|| std::io::Error::other(format!("no address for {addr}")))?;
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source.filter(|_| target.ip().is_loopback()) {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(target).await
}

/// Connects `endpoint`, from `source` when given.
pub(crate) async fn connect_from(
    endpoint: Endpoint,
    source: Option<IpAddr>,
) -> Result<Channel, tonic::transport::Error> {
    match source {
        None => endpoint.connect().await,
        Some(ip) => {
            endpoint
                .connect_with_connector(tower::service_fn(move |uri: Uri| dial(uri, ip)))
                .await
        }
    }
}
