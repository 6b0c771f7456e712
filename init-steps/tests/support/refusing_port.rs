//! A loopback port that refuses connections for as long as the test holds it: a socket bound
//! to it that does not listen, so the kernel answers a connect with a reset, and no server
//! another test starts meanwhile can take the port (a port freed after a probe can be).
#![allow(dead_code, unreachable_pub)] // Shared by several test files.

use tokio::net::TcpSocket;

/// Holds the port; it refuses connections until dropped.
pub struct RefusingPort {
    _socket: TcpSocket,
    pub port: u16,
}

impl RefusingPort {
    pub fn new() -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        Self {
            _socket: socket,
            port,
        }
    }
}
