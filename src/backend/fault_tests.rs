//! More misbehaving servers (issue 6), each a known-answer test of the client: a wrong content
//! type, a giant event, an event that never ends, a very slow first byte before and after the
//! headers, and a connection reset mid-stream. Shares the canned servers of
//! `failure_tests.rs`.

use std::time::{Duration, Instant};

use super::failure_tests::{SSE_HEAD, Step, TOKEN, canned, failure, send_to};
use crate::record::{FailureReason, Outcome};

const DONE: &[u8] = b"data: [DONE]\n\n";

#[tokio::test]
async fn a_200_that_is_html_is_a_protocol_failure_quoting_the_body() {
    let url = canned(vec![Step::Write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: 29\r\n\
          connection: close\r\n\r\n<html>proxy login page</html>",
    )])
    .await;
    let r = send_to(url, |_| {}).await;
    let (reason, status, message) = failure(&r);
    assert_eq!((reason, status), (FailureReason::Protocol, None));
    assert_eq!(
        message,
        "expected text/event-stream, got a reply that is not an event stream \
         (text/html; charset=utf-8): <html>proxy login page</html>"
    );
    assert!(r.chunks.is_empty());
}

#[tokio::test]
async fn a_200_without_a_content_type_is_a_protocol_failure() {
    let url = canned(vec![Step::Write(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
    )])
    .await;
    let r = send_to(url, |_| {}).await;
    let (reason, _, message) = failure(&r);
    assert_eq!(reason, FailureReason::Protocol);
    assert!(
        message.contains("a reply without a content type"),
        "{message}"
    );
}

/// One SSE event whose text is `n` bytes long.
fn giant_event(n: usize) -> Vec<u8> {
    let mut ev = b"data: {\"choices\":[{\"index\":0,\"text\":\"".to_vec();
    ev.extend(std::iter::repeat_n(b'x', n));
    ev.extend_from_slice(b"\",\"finish_reason\":\"length\"}]}\n\n");
    ev
}

#[tokio::test]
async fn an_8_mb_event_is_one_chunk_stamped_when_it_completes() {
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Write(TOKEN),
        Step::Owned(giant_event(8_000_000)),
        Step::Write(DONE),
    ])
    .await;
    let r = send_to(url, |c| c.idle_timeout = Duration::from_secs(5)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.chunks.len(), 2);
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert!(r.chunks[1].at_ns >= r.chunks[0].at_ns);
}

#[tokio::test]
async fn an_event_that_never_ends_is_refused_past_8_mib() {
    let mut endless = b"data: {\"choices\":[{\"text\":\"".to_vec();
    endless.extend(std::iter::repeat_n(b'y', 9 * 1024 * 1024));
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Owned(endless),
        Step::Hang,
    ])
    .await;
    let started = Instant::now();
    let r = send_to(url, |c| c.idle_timeout = Duration::from_secs(5)).await;
    let (reason, _, message) = failure(&r);
    assert_eq!(reason, FailureReason::Protocol);
    assert_eq!(message, "an event exceeded 8388608 bytes without ending");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not an idle timeout"
    );
}

#[tokio::test]
async fn slow_headers_are_waited_for_and_counted_in_ttft() {
    let url = canned(vec![
        Step::Sleep(400),
        Step::Write(SSE_HEAD),
        Step::Write(TOKEN),
        Step::Write(DONE),
    ])
    .await;
    let r = send_to(url, |c| c.idle_timeout = Duration::from_millis(100)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let ttft = Duration::from_nanos(r.chunks[0].at_ns - r.sent_ns.unwrap());
    assert!(ttft >= Duration::from_millis(400), "{ttft:?}");
}

/// Regression: the idle limit ran from the headers, so a request that waited in the server's
/// queue longer than `idle_timeout` before its first token (headers are sent at once) was
/// failed as `idle_timeout` instead of being measured with its long TTFT.
#[tokio::test]
async fn a_first_token_slower_than_the_idle_limit_is_measured_not_failed() {
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Sleep(400),
        Step::Write(TOKEN),
        Step::Write(DONE),
    ])
    .await;
    let r = send_to(url, |c| c.idle_timeout = Duration::from_millis(100)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    let ttft = Duration::from_nanos(r.chunks[0].at_ns - r.sent_ns.unwrap());
    assert!(ttft >= Duration::from_millis(400), "{ttft:?}");
}

#[tokio::test]
async fn a_first_token_that_never_comes_is_a_total_timeout() {
    let url = canned(vec![Step::Write(SSE_HEAD), Step::Hang]).await;
    let r = send_to(url, |c| {
        c.idle_timeout = Duration::from_millis(50);
        c.timeout = Duration::from_millis(300);
    })
    .await;
    let (reason, _, message) = failure(&r);
    assert_eq!(reason, FailureReason::Timeout);
    assert_eq!(message, "request did not finish within the 300ms timeout");
}

#[tokio::test]
async fn a_connection_reset_mid_stream_is_incomplete_and_keeps_what_came() {
    let url = canned(vec![
        Step::Write(SSE_HEAD),
        Step::Write(TOKEN),
        Step::Write(TOKEN),
        Step::Sleep(20),
        Step::Reset,
    ])
    .await;
    let r = send_to(url, |_| {}).await;
    let (reason, status, message) = failure(&r);
    assert_eq!((reason, status), (FailureReason::Incomplete, None));
    assert!(
        message.starts_with("stream broke before [DONE] or a finish reason"),
        "{message}"
    );
    assert_eq!(r.chunks.len(), 2);
    assert_eq!(r.done_ns, Some(r.chunks[1].at_ns));
}

#[tokio::test]
async fn a_reset_before_any_reply_is_not_a_success() {
    let url = canned(vec![Step::Reset]).await;
    let r = send_to(url, |_| {}).await;
    let (reason, _, message) = failure(&r);
    assert!(
        matches!(reason, FailureReason::Incomplete | FailureReason::Connect),
        "{reason:?}: {message}"
    );
    assert!(r.chunks.is_empty());
}
