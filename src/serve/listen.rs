//! The fixed server's accept loop: hyper's HTTP/1 connection driver with flattened writes, a
//! listen backlog deep enough for thousands of simultaneous connects, and a graceful stop.
//!
//! axum's own `serve` hard-wires hyper's vectored write strategy, which queues at most 16
//! buffers per `writev` (about five SSE tokens with their chunk framing): a 256-token reply
//! that is due at once took ~50 system calls, and loopback TCP costs ~5 µs of kernel time per
//! call. Flattened writes copy due frames into one buffer and write it in one call, which is
//! what lets one core serve thousands of instant 256-token replies per second (issue 7).
//! Paced tokens are written one per call either way.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

/// Pending connections the kernel may hold before `accept` (capped by `net.core.somaxconn`).
const BACKLOG: u32 = 65_535;

/// Binds `addr` with address reuse and a deep backlog.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `app` on `listener` until `stop` fires (or its sender is dropped), then stops
/// accepting, lets replies in progress finish, and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    mut stop: oneshot::Receiver<()>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.writev(false).keep_alive(true);
    loop {
        let (tcp, _peer) = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    pause_after(&e).await;
                    continue;
                }
            },
        };
        // Small frames every few milliseconds: Nagle's algorithm would hold them back.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder.serve_connection(TokioIo::new(tcp), service);
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that goes away mid-reply is its own business, not a server error.
            let _ = watched.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Backs off after an accept error: out of file descriptors (or memory) clears only when
/// connections close, so retrying at once would spin.
async fn pause_after(e: &io::Error) {
    let resource = matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS)
    );
    let pause = if resource {
        Duration::from_millis(100)
    } else {
        Duration::from_millis(1)
    };
    tokio::time::sleep(pause).await;
}
