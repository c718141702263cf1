//! What the sans-IO machines hand the shell to send: bytes, where, and how.

use std::net::SocketAddr;

use crate::config::Transport;

/// Bytes for the shell to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: SocketAddr,
    pub transport: Transport,
    /// For TLS: the name the server's certificate must carry.
    pub server_name: String,
    /// A connection to write on while it is open (its peer's address): a call's carrier
    /// that reached us over TCP/TLS. Once it is gone, `destination` by `transport`.
    pub connection: Option<SocketAddr>,
    pub bytes: Vec<u8>,
}
