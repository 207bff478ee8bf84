//! The client against tiny canned servers that each misbehave in one way: every failure
//! reason gets its own known-answer test.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::tests::{config, spec};
use super::*;
use crate::record::{FailureReason, Outcome, RequestRecord};

/// One step of a canned reply.
#[derive(Clone)]
pub(super) enum Step {
    Write(&'static [u8]),
    Sleep(u64),
    /// Keep the connection open without writing (until the client gives up).
    Hang,
    /// Write bytes made at run time (e.g. a giant event).
    Owned(Vec<u8>),
    /// Abort the connection with a TCP reset (RST), as a crashed or killed server does.
    Reset,
}

pub(super) const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
pub(super) const TOKEN: &[u8] = b"data: {\"choices\":[{\"index\":0,\"text\":\" a\"}]}\n\n";

/// A server that reads one request per connection, plays `steps`, then closes.
pub(super) async fn canned(steps: Vec<Step>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let steps = std::sync::Arc::new(steps);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let steps = steps.clone();
            tokio::spawn(async move {
                read_request(&mut sock).await;
                for step in steps.iter() {
                    match step {
                        Step::Write(b) => sock.write_all(b).await.unwrap(),
                        Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                        Step::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
                        Step::Owned(b) => {
                            // The client may give up part-way (that is what some tests check).
                            if sock.write_all(b).await.is_err() {
                                return;
                            }
                        }
                        Step::Reset => {
                            sock.set_zero_linger().unwrap();
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}/v1")
}

/// Reads request headers and a `content-length` body.
pub(super) async fn read_request(sock: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = sock.read(&mut tmp).await.unwrap();
        buf.extend_from_slice(&tmp[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
        if buf.len() >= end + 4 + len || n == 0 {
            return;
        }
    }
}

pub(super) async fn send_to(
    base_url: String,
    tweak: impl FnOnce(&mut ClientConfig),
) -> RequestRecord {
    let mut cfg = config(base_url, Protocol::OpenaiCompletions);
    tweak(&mut cfg);
    let client = Client::new(cfg).unwrap();
    client.send(&spec(2, 8), 0, Instant::now(), 0).await
}

pub(super) fn failure(r: &RequestRecord) -> (FailureReason, Option<u16>, &str) {
    match &r.outcome {
        Outcome::Failed {
            reason,
            http_status,
            message,
        } => (*reason, *http_status, message),
        Outcome::Ok => panic!("expected a failure, got {r:?}"),
    }
}

#[tokio::test]
async fn connection_refused_is_a_connect_failure() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let r = send_to(format!("http://{addr}/v1"), |_| {}).await;
    assert_eq!(failure(&r).0, FailureReason::Connect);
    assert!(r.sent_ns.is_some() && r.chunks.is_empty() && r.done_ns.is_none());
}

#[tokio::test]
async fn http_500_keeps_status_and_body_text() {
    let url = canned(vec![Step::Write(
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n\
          content-length: 43\r\nconnection: close\r\n\r\n{\"error\":{\"message\":\"engine core is dead\"}}",
    )])
    .await;
    let r = send_to(url, |_| {}).await;
    let (reason, status, message) = failure(&r);
    assert_eq!((reason, status), (FailureReason::Http, Some(500)));
    assert!(message.contains("engine core is dead"), "{message}");
}

#[tokio::test]
async fn http_429_keeps_retry_after() {
    let url = canned(vec![Step::Write(
        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 3\r\ncontent-length: 4\r\n\r\nbusy",
    )])
    .await;
    let r = send_to(url, |_| {}).await;
    let (reason, status, message) = failure(&r);
    assert_eq!((reason, status), (FailureReason::Http, Some(429)));
    assert_eq!(message, "429 Too Many Requests (retry-after: 3): busy");
}

#[tokio::test]
async fn the_api_key_never_reaches_a_message() {
    // A server that quotes the authorization header back in its error.
    let url = canned(vec![Step::Write(
        b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 33\r\n\r\nbad token: Bearer sk-live-abc123\n",
    )])
    .await;
    let r = send_to(url, |c| c.api_key = Some("sk-live-abc123".into())).await;
    let (_, status, message) = failure(&r);
    assert_eq!(status, Some(401));
    assert!(
        !message.contains("sk-live-abc123") && message.contains("[redacted]"),
        "{message}"
    );
}

#[tokio::test]
async fn error_object_mid_stream_with_status_200_is_a_stream_error() {
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Write(TOKEN),
        Step::Write(
            b"data: {\"error\":{\"message\":\"boom\",\"type\":\"internal\",\"code\":500}}\n\n",
        ),
        Step::Write(b"data: [DONE]\n\n"),
    ])
    .await;
    let r = send_to(url, |_| {}).await;
    let (reason, status, message) = failure(&r);
    assert_eq!(
        (reason, status, message),
        (FailureReason::StreamError, None, "boom")
    );
    assert_eq!(r.chunks.len(), 1, "content before the error is kept");
    assert_eq!(r.done_ns, Some(r.chunks[0].at_ns));
}

#[tokio::test]
async fn malformed_json_chunk_is_a_protocol_failure() {
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Write(b"data: {\"choices\":[{\"text\"\n\n"),
    ])
    .await;
    let r = send_to(url, |_| {}).await;
    let (reason, _, message) = failure(&r);
    assert_eq!(reason, FailureReason::Protocol);
    assert!(message.contains("malformed JSON"), "{message}");
}

#[tokio::test]
async fn stream_closed_without_done_or_finish_reason_is_incomplete() {
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Write(TOKEN),
        Step::Write(TOKEN),
    ])
    .await;
    let r = send_to(url, |_| {}).await;
    assert_eq!(failure(&r).0, FailureReason::Incomplete);
    assert_eq!(r.chunks.len(), 2);
}

#[tokio::test]
async fn chunked_body_cut_mid_stream_is_incomplete() {
    let url = canned(vec![
        Step::Write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"),
        Step::Write(b"2f\r\ndata: {\"choices\":[{\"index\":0,\"text\":\" a\"}]}\n\n\r\n"),
        Step::Write(b"40\r\ndata: {\"cho"),
    ])
    .await;
    let r = send_to(url, |_| {}).await;
    let (reason, _, message) = failure(&r);
    assert_eq!(reason, FailureReason::Incomplete, "{message}");
    assert_eq!(r.chunks.len(), 1);
}

#[tokio::test]
async fn finish_reason_without_done_is_ok_and_role_only_stream_is_empty() {
    let finish =
        b"data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"stop\"}]}\n\n";
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Write(TOKEN),
        Step::Write(finish),
    ])
    .await;
    let r = send_to(url, |_| {}).await;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    // Issue 12: ok, but recorded, so the report can say so.
    assert!(r.no_done, "{r:?}");
    let with_done = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Write(TOKEN),
        Step::Write(finish),
        Step::Write(b"data: [DONE]\n\n"),
    ])
    .await;
    let r = send_to(with_done, |_| {}).await;
    assert_eq!((r.outcome, r.no_done), (Outcome::Ok, false));
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Write(finish),
        Step::Write(b"data: [DONE]\n\n"),
    ])
    .await;
    assert_eq!(failure(&send_to(url, |_| {}).await).0, FailureReason::Empty);
}

#[tokio::test]
async fn a_stall_mid_stream_is_an_idle_timeout() {
    let url = canned(vec![Step::Write(SSE_HEAD), Step::Write(TOKEN), Step::Hang]).await;
    let start = Instant::now();
    let r = send_to(url, |c| c.idle_timeout = Duration::from_millis(150)).await;
    assert_eq!(failure(&r).0, FailureReason::IdleTimeout);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(r.chunks.len(), 1);
}

#[tokio::test]
async fn keep_alive_comments_are_not_content_and_do_not_stop_the_total_timeout() {
    let mut steps = vec![Step::Write(SSE_HEAD)];
    for _ in 0..40 {
        steps.push(Step::Write(b": ping\n\n"));
        steps.push(Step::Sleep(25));
    }
    let url = canned(steps).await;
    let r = send_to(url, |c| {
        c.idle_timeout = Duration::from_millis(100);
        c.timeout = Duration::from_millis(300);
    })
    .await;
    assert_eq!(failure(&r).0, FailureReason::Timeout);
    assert!(r.chunks.is_empty());
}

#[tokio::test]
async fn non_streaming_json_reply_is_a_protocol_failure() {
    let url = canned(vec![Step::Write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 29\r\n\r\n{\"choices\":[{\"text\":\"all\"}]}",
    )])
    .await;
    let r = send_to(url, |_| {}).await;
    let (reason, _, message) = failure(&r);
    assert_eq!(reason, FailureReason::Protocol);
    assert!(message.contains("non-streaming JSON reply"), "{message}");
}

#[tokio::test]
async fn an_event_split_across_writes_is_stamped_when_it_completes() {
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Write(b"data: {\"choices\":[{\"index\":0,\"te"),
        Step::Sleep(60),
        Step::Write(b"xt\":\" a\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,"),
        Step::Write(b"\"completion_tokens\":1}}\n\ndata: [DONE]\n\n"),
    ])
    .await;
    let origin = Instant::now();
    let client = Client::new(config(url, Protocol::OpenaiCompletions)).unwrap();
    let r = client.send(&spec(2, 8), 0, origin, 0).await;
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(
        (r.chunks.len(), r.input_tokens, r.output_tokens),
        (1, Some(2), Some(1))
    );
    let ttft = Duration::from_nanos(r.chunks[0].at_ns - r.sent_ns.unwrap());
    assert!(ttft >= Duration::from_millis(60), "{ttft:?}");
}

/// Issue 12: keep-alive comments reset `idle_timeout` (any byte does), so a server that stalls
/// while sending them is never timed out by it; `token_timeout` counts only tokens.
#[tokio::test]
async fn keep_alives_reset_the_idle_limit_but_not_the_token_limit() {
    const PING: &[u8] = b": keep-alive\n\n";
    let finish =
        b"data: {\"choices\":[{\"index\":0,\"text\":\" b\",\"finish_reason\":\"length\"}]}\n\n";
    let mut steps = vec![Step::Write(SSE_HEAD), Step::Write(TOKEN)];
    for _ in 0..16 {
        steps.extend([Step::Sleep(50), Step::Write(PING)]);
    }
    steps.extend([Step::Write(finish), Step::Write(b"data: [DONE]\n\n")]);
    // 800 ms of keep-alives, each within the 150 ms idle limit: measured, not failed.
    let url = canned(steps.clone()).await;
    let r = send_to(url, |c| c.idle_timeout = Duration::from_millis(150)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.chunks.len(), 2);
    // With token_timeout = 200 ms the stall is cut, though bytes keep coming.
    let url = canned(steps).await;
    let start = Instant::now();
    let r = send_to(url, |c| {
        c.idle_timeout = Duration::from_millis(150);
        c.token_timeout = Some(Duration::from_millis(200));
    })
    .await;
    let (reason, _, message) = failure(&r);
    assert_eq!(reason, FailureReason::IdleTimeout);
    assert_eq!(
        message,
        "no token for 200ms (token_timeout: keep-alive comments do not count)"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(380),
        "{took:?}"
    );
    assert_eq!(r.chunks.len(), 1);
}
