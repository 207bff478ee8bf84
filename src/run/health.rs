//! Whether a repetition measured a server or the lack of one (issue 12): a repetition in which
//! every request failed, or in which the server stopped answering before the end, is failed —
//! left out of the statistics, listed in the report, redone by `exp run --resume` — instead
//! of being averaged in as a server with a 100 % error rate.
//!
//! Where the line is: failures that the server *answered* (HTTP 500s, errors in the stream)
//! are a measurement at any rate short of 100 %; so are timeouts (a slow server is a result).
//! Failures that found no server (`connect`) or lost it mid-stream (`incomplete`) fail the
//! repetition when at least [`LOST_STREAK`] of them were sent after the server's last answer:
//! it went away and did not come back before the repetition ended. Fewer, or ones followed by
//! answers, are transient and stay in the measurement (counted in `error_rate`).

use std::time::Duration;

use crate::backend::{BackendError, Client};
use crate::record::Tally;

/// How long the check before a run waits for the target's model list.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests that found no server, sent after its last answer, that mean it went away.
pub const LOST_STREAK: usize = 3;

/// Why the repetition must be failed, if its records say it did not measure a server.
pub fn failure(tally: &Tally) -> Option<String> {
    let example =
        || (tally.first_failure.as_deref()).map_or(String::new(), |m| format!(" (first: {m})"));
    if tally.sent > 0 && tally.ok == 0 {
        return Some(format!(
            "every one of its {} requests failed{}: no server was measured",
            tally.sent,
            example()
        ));
    }
    let lost = tally.lost_after_last_answer();
    (tally.last_answered_ns.is_some() && lost >= LOST_STREAK).then(|| {
        format!(
            "the server went away during the repetition: {lost} requests sent after its last answer found no server or lost it (connection refused, reset or closed){}",
            example()
        )
    })
}

/// Checks, before the first repetition, that an HTTP target is there: it accepts a
/// connection and answers its protocol's models route within [`CHECK_TIMEOUT`]. `Err` names
/// the URL and says why the run cannot start; `Ok(Some(warning))` when it answers but does
/// not list the configured model, or its list does not parse (a server may serve models it
/// does not list, so neither is fatal, but neither is silent).
pub async fn check_target(client: &Client) -> Result<Option<String>, String> {
    let cfg = client.config();
    let url = format!(
        "{}/{}",
        cfg.base_url.trim_end_matches('/'),
        cfg.protocol.models_route()
    );
    let listed = match tokio::time::timeout(CHECK_TIMEOUT, client.list_models()).await {
        Err(_) => {
            return Err(format!(
                "the target does not answer: GET {url} had no reply within {} s (is the server running at that address?)",
                CHECK_TIMEOUT.as_secs()
            ));
        }
        Ok(Err(BackendError::Status { status, body })) => {
            return Err(format!(
                "the target at {} does not answer like an {} server: GET {url} gave HTTP {status} ({body})",
                cfg.base_url,
                cfg.protocol.name()
            ));
        }
        // It answered, but not with a model list in its protocol's form: requests may still
        // work (the first repetition will tell), so say so and go on.
        Ok(Err(e @ BackendError::Decode(_))) => {
            return Ok(Some(format!(
                "the target's model list does not parse ({e}); model `{}` is not checked",
                cfg.model
            )));
        }
        Ok(Err(e)) => {
            return Err(format!(
                "cannot reach the target at {}: {e} (is the server running at that address?)",
                cfg.base_url
            ));
        }
        Ok(Ok(models)) => models,
    };
    Ok((!listed.contains(&cfg.model)).then(|| {
        format!(
            "{url} does not list model `{}` (it lists: {}); requests name it anyway",
            cfg.model,
            if listed.is_empty() {
                "nothing".to_string()
            } else {
                listed.join(", ")
            }
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RequestRecord;

    /// A record sent at `t` ms with outcome `status` (`ok`, or a failure reason).
    fn rec(t: u64, status: &str) -> RequestRecord {
        let outcome = match status {
            "ok" => serde_json::json!({"status": "ok"}),
            reason => {
                serde_json::json!({"status": "failed", "reason": reason, "message": format!("{reason} at {t}")})
            }
        };
        serde_json::from_value(serde_json::json!({
            "i": t, "scheduled_ns": t * 1_000_000, "sent_ns": t * 1_000_000, "outcome": outcome
        }))
        .unwrap()
    }

    fn tally(records: &[(u64, &str)]) -> Tally {
        let mut t = Tally::default();
        for (at, status) in records {
            t.push(&rec(*at, status));
        }
        t
    }

    #[test]
    fn a_server_that_answers_is_measured_whatever_its_error_rate() {
        assert_eq!(failure(&tally(&[(1, "ok"), (2, "ok")])), None);
        // 4 of 5 answered with HTTP 500: a (bad) measurement, not a missing server.
        let http = tally(&[
            (1, "http"),
            (2, "http"),
            (3, "ok"),
            (4, "http"),
            (5, "http"),
        ]);
        assert_eq!(failure(&http), None);
        // Two refused connections at the end are below the streak; refused ones followed by
        // an answer were transient.
        assert_eq!(
            failure(&tally(&[(1, "ok"), (2, "connect"), (3, "connect")])),
            None
        );
        let transient = tally(&[
            (1, "ok"),
            (2, "connect"),
            (3, "connect"),
            (4, "connect"),
            (5, "http"),
        ]);
        assert_eq!(failure(&transient), None);
    }

    #[test]
    fn a_server_that_went_away_fails_the_repetition() {
        // Written out of send order: what counts is sent after the last answer.
        let gone = tally(&[
            (4, "connect"),
            (1, "ok"),
            (2, "incomplete"),
            (5, "connect"),
            (3, "ok"),
            (6, "connect"),
        ]);
        assert_eq!(gone.lost_after_last_answer(), 3);
        let why = failure(&gone).unwrap();
        assert!(
            why.starts_with("the server went away during the repetition: 3 requests"),
            "{why}"
        );
        assert!(why.ends_with("(first: connect at 4)"), "{why}");
    }

    #[test]
    fn a_repetition_where_every_request_failed_is_failed() {
        let why = failure(&tally(&[(1, "http"), (2, "http")])).unwrap();
        assert_eq!(
            why,
            "every one of its 2 requests failed (first: http at 1): no server was measured"
        );
        let refused = failure(&tally(&[(1, "connect")])).unwrap();
        assert!(
            refused.starts_with("every one of its 1 requests failed"),
            "{refused}"
        );
        // Nothing sent (a zero-request repetition) is not a failure of the server.
        assert_eq!(failure(&Tally::default()), None);
    }
}
