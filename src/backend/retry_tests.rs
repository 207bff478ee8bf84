//! The one retry, against raw TCP servers that decide per request (numbered in arrival order
//! across connections) whether to answer or to close: a keep-alive connection closed just as
//! it is reused costs one retry on a fresh connection; a server that always closes costs
//! exactly one retry, then an error; nothing is retried once a response has begun, nor after
//! a timeout or an HTTP error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::failure_tests::failure;
use super::tests::{config, spec};
use super::*;
use crate::record::{FailureReason, RequestRecord};

/// A whole streamed reply that leaves the connection open for the next request.
const KEEP_ALIVE_REPLY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
content-length: 84\r\n\r\n\
data: {\"choices\":[{\"index\":0,\"text\":\" a\",\"finish_reason\":\"length\"}]}\n\n\
data: [DONE]\n\n";

/// What the server does with one request.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Answer it with [`KEEP_ALIVE_REPLY`] and wait for the next request on the connection.
    Answer,
    /// Close the connection once the whole request has arrived (a FIN).
    Close,
    /// Close the connection as soon as the request's first bytes arrive, leaving the rest
    /// unread (the kernel then sends a reset).
    Reset,
    /// Send the head and one token, then close.
    BreakMidStream,
    /// Answer 500 and close.
    Error500,
    /// Never answer.
    Hang,
}

/// Requests and connections the server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    connections: AtomicU64,
}

/// A server that plays `act(n)` for the `n`-th request it receives (0-based, counted across
/// connections).
/// Decides what the server does with its `n`-th request.
type Policy = fn(u64) -> Act;

async fn server(act: Policy) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(connection(sock, counts.clone(), act));
        }
    });
    (format!("http://{addr}/v1"), seen)
}

/// Serves one connection, request after request, until an act closes it.
async fn connection(mut sock: TcpStream, seen: Arc<Seen>, act: Policy) {
    loop {
        // Wait for the first bytes of the next request before deciding.
        let mut first = [0u8; 1];
        if !matches!(sock.peek(&mut first).await, Ok(1)) {
            return;
        }
        let n = seen.requests.fetch_add(1, Ordering::SeqCst);
        let act = act(n);
        if let Act::Reset = act {
            let _ = sock.read(&mut first).await;
            return;
        }
        super::failure_tests::read_request(&mut sock).await;
        let reply: &[u8] = match act {
            Act::Answer => KEEP_ALIVE_REPLY,
            Act::Close | Act::Reset => return,
            Act::BreakMidStream => {
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n\
                  data: {\"choices\":[{\"index\":0,\"text\":\" a\"}]}\n\n"
            }
            Act::Error500 => {
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops"
            }
            Act::Hang => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
        };
        if sock.write_all(reply).await.is_err() || !matches!(act, Act::Answer) {
            return;
        }
    }
}

async fn send(client: &Client, index: u64) -> RequestRecord {
    client.send(&spec(2, 1), index, Instant::now(), 0).await
}

fn client(url: String) -> Client {
    let mut cfg = config(url, Protocol::OpenaiCompletions);
    cfg.timeout = Duration::from_millis(500);
    Client::new(cfg).unwrap()
}

/// Request 0 on a new connection, answered; request 1 reuses that connection, which the
/// server closes as the request arrives; the retry, on a fresh connection, is answered.
async fn reused_connection_closed_by(how: Act) {
    let (url, seen) = server(if matches!(how, Act::Close) {
        |n| if n == 1 { Act::Close } else { Act::Answer }
    } else {
        |n| if n == 1 { Act::Reset } else { Act::Answer }
    })
    .await;
    let client = client(url);
    let first = send(&client, 0).await;
    assert!(first.outcome.is_ok(), "{:?}", first.outcome);
    assert_eq!(first.first_sent_ns, None);
    // Lets the first connection go back to the pool, so the next request reuses it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = send(&client, 1).await;
    assert!(second.outcome.is_ok(), "{how:?}: {:?}", second.outcome);
    let (first_try, retry) = (second.first_sent_ns.unwrap(), second.sent_ns.unwrap());
    assert!(
        retry > first_try,
        "the retry is sent after the first attempt"
    );
    assert_eq!(second.chunks.len(), 1);
    // Request 1 twice (its first attempt and its retry), on two connections.
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_reused_connection_closed_as_the_request_arrives_is_retried_once_on_a_fresh_one() {
    reused_connection_closed_by(Act::Close).await;
}

#[tokio::test]
async fn a_reused_connection_reset_as_the_request_arrives_is_retried_once_on_a_fresh_one() {
    reused_connection_closed_by(Act::Reset).await;
}

#[tokio::test]
async fn a_server_that_always_closes_costs_exactly_one_retry_then_an_error() {
    for how in [Act::Close, Act::Reset] {
        let (url, seen) = server(if matches!(how, Act::Close) {
            |_| Act::Close
        } else {
            |_| Act::Reset
        })
        .await;
        let r = send(&client(url), 0).await;
        let (reason, status, message) = failure(&r);
        assert_eq!(
            (reason, status),
            (FailureReason::Incomplete, None),
            "{how:?}"
        );
        assert!(
            message.contains("retried once on a fresh connection"),
            "{message}"
        );
        assert!(r.first_sent_ns.is_some() && r.chunks.is_empty());
        assert_eq!(seen.requests.load(Ordering::SeqCst), 2, "{how:?}");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2, "{how:?}");
    }
}

#[tokio::test]
async fn nothing_is_retried_once_a_response_began_nor_after_a_timeout_or_an_http_error() {
    let cases: [(Policy, FailureReason); 3] = [
        (|_| Act::BreakMidStream, FailureReason::Incomplete),
        (|_| Act::Error500, FailureReason::Http),
        (|_| Act::Hang, FailureReason::Timeout),
    ];
    for (act, reason) in cases {
        let (url, seen) = server(act).await;
        let r = send(&client(url), 0).await;
        assert_eq!(failure(&r).0, reason, "{:?}", r.outcome);
        assert_eq!(r.first_sent_ns, None, "{reason:?}");
        assert_eq!(seen.requests.load(Ordering::SeqCst), 1, "{reason:?}");
    }
}
