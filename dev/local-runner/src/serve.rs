//! Loopback HTTP/1.1 servers whose connections end with them.
//!
//! `axum::serve` spawns connections as detached tasks, so a long-polling connection (the
//! runtime's `GET next`) outlives the server; here every connection lives in a `JoinSet` that is
//! dropped, and so aborted, with the server.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// The peer address of a request, put in its extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

/// A running server; dropping it closes the listener and every connection.
#[derive(Debug)]
pub(crate) struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn serve(listener: TcpListener, router: Router) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            };
            let router = router.clone();
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(Peer(peer));
                    let router = router.clone();
                    async move {
                        let Ok(response) = router.oneshot(request).await;
                        Ok::<_, Infallible>(response)
                    }
                });
            connections.spawn(async move {
                // A client that never finishes its headers is dropped, as API Gateway's edge
                // would (the body has its own limit in the API front).
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(crate::apigw::CLIENT_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    Ok(Server { addr, task })
}
