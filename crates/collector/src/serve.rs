//! The front door: accepting connections with limits, over plain TCP or TLS
//! (docs/security.md). A stranger without a token must not be able to exhaust the
//! centre, so before any handler runs:
//! - at most `max_connections` connections are open, and at most
//!   `max_connections_per_client` from one client address; a connection over
//!   either limit is closed at once (counted as `connections_refused`);
//! - the TLS handshake and each request's headers must arrive within
//!   `header_timeout` (a client dribbling its headers is cut off; counted as
//!   `connections_timed_out` when the handshake is too slow);
//! - at most `max_requests_in_flight` requests are handled at once; over it a
//!   request is answered 503 with `Retry-After` at once (counted as `requests_shed`);
//! - request bodies are read within `body_timeout` (in the handlers that read
//!   bodies, [`crate::Limits::body_timeout`]), after the token is checked.
//!
//! Hand-written on hyper-util because `axum::serve` has no header timeout or
//! connection limits and the TLS server we used (axum-server) has neither; the
//! loop is the one of hyper-util's examples with the limits added.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};

use crate::{Counters, Limits};

/// What the front door refused, for `/metrics`.
#[derive(Debug, Default)]
pub struct DoorCounters {
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub connections_timed_out: AtomicU64,
    pub requests_shed: AtomicU64,
}

/// Open connections per client address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// A held connection slot, given back when the connection ends.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut o) = self.open.lock() {
            o.total = o.total.saturating_sub(1);
            if let Some(n) = o.per_client.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    o.per_client.remove(&self.ip);
                }
            }
        }
    }
}

fn take_slot(open: &Arc<Mutex<Open>>, ip: IpAddr, limits: &Limits) -> Option<Slot> {
    let mut o = open.lock().ok()?;
    let mine = o.per_client.get(&ip).copied().unwrap_or(0);
    if o.total >= limits.max_connections || mine >= limits.max_connections_per_client {
        return None;
    }
    o.total += 1;
    *o.per_client.entry(ip).or_insert(0) += 1;
    Some(Slot {
        open: open.clone(),
        ip,
    })
}

fn busy() -> Response<axum::body::Body> {
    let mut r = Response::new(axum::body::Body::from(
        r#"{"error":"the server is handling as many requests as it may; retry shortly"}"#,
    ));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(
        header::RETRY_AFTER,
        "1".parse().unwrap_or_else(|_| unreachable!()),
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json"
            .parse()
            .unwrap_or_else(|_| unreachable!()),
    );
    r
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open
/// connections finish for up to 30 s. With `tls`, every connection is TLS.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: axum::Router,
    limits: Limits,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let open = Arc::new(Mutex::new(Open::default()));
    let in_flight = Arc::new(Semaphore::new(limits.max_requests_in_flight));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                // Out of descriptors and the like: wait a moment, keep serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = take_slot(&open, peer.ip(), &limits) else {
            counters
                .door
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        counters
            .door
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let svc = service(router.clone(), peer, in_flight.clone(), counters.clone());
        let http = http.clone();
        let acceptor = acceptor.clone();
        let counters = counters.clone();
        let watcher = graceful.watcher();
        let handshake = limits.header_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), svc);
                    let _ = watcher.watch(conn).await;
                }
                Some(a) => {
                    let Ok(Ok(tls)) = tokio::time::timeout(handshake, a.accept(stream)).await
                    else {
                        counters
                            .door
                            .connections_timed_out
                            .fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    let conn = http.serve_connection(TokioIo::new(tls), svc);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}

/// The router as a hyper service for one connection: the peer address for the
/// handlers (`ConnectInfo`), and the in-flight limit.
fn service(
    router: axum::Router,
    peer: SocketAddr,
    in_flight: Arc<Semaphore>,
    counters: Arc<Counters>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<axum::body::Body>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response<axum::body::Body>, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let router = router.clone();
        let in_flight = in_flight.clone();
        let counters = counters.clone();
        async move {
            let Ok(_permit) = in_flight.try_acquire_owned() else {
                counters.door.requests_shed.fetch_add(1, Ordering::Relaxed);
                return Ok(busy());
            };
            req.extensions_mut().insert(ConnectInfo(peer));
            let req = req.map(axum::body::Body::new);
            let mut router = router;
            let ready =
                <axum::Router as ServiceExt<Request<axum::body::Body>>>::ready(&mut router).await;
            match ready {
                Ok(r) => r.call(req).await,
                Err(e) => match e {},
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_per_client_and_in_total_and_given_back() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_client: 2,
            ..Limits::default()
        };
        let open = Arc::new(Mutex::new(Open::default()));
        let a: IpAddr = "198.18.0.1".parse().unwrap_or_else(|_| unreachable!());
        let b: IpAddr = "198.18.0.2".parse().unwrap_or_else(|_| unreachable!());
        let a1 = take_slot(&open, a, &limits);
        let a2 = take_slot(&open, a, &limits);
        assert!(a1.is_some() && a2.is_some());
        assert!(take_slot(&open, a, &limits).is_none(), "per client");
        let b1 = take_slot(&open, b, &limits);
        assert!(b1.is_some());
        assert!(take_slot(&open, b, &limits).is_none(), "in total");
        drop(a1);
        assert!(take_slot(&open, b, &limits).is_some(), "given back");
        drop((a2, b1));
        assert_eq!(open.lock().map(|o| o.per_client.len()).unwrap_or(9), 0);
    }
}
