//! Client side of the streaming inference protocols: turns a [`RequestSpec`] into one HTTP
//! request and the server's event stream into a [`RequestRecord`].
//!
//! [`protocol`] is the seam: the closed set of wire protocols ([`Protocol`]) and the trait
//! each one implements (route, request body, reading one stream event). `openai` holds the
//! two OpenAI-compatible protocols. Everything protocol-independent is shared: [`client`]
//! owns the connection pool and the request, [`sse`] decodes the event stream (pure), and
//! the private modules read the stream under its limits and classify failures.
//!
//! A new protocol is a new module here (like `openai/`) and its registration in
//! `protocol.rs`; the scenario's `[target] kind` names come from [`Protocol::name`].
//!
//! [`RequestSpec`]: crate::workload::work::RequestSpec
//! [`RequestRecord`]: crate::record::RequestRecord

pub mod client;
mod failure;
mod openai;
pub mod protocol;
pub mod sse;
mod stream;

#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod retry_tests;
#[cfg(test)]
mod tests;

pub use client::{Client, ClientConfig, REQUEST_HEADER};
pub(crate) use failure::error_chain;
pub use protocol::{PromptCount, Protocol};

/// Why a client could not be built, or a side request (`/models`) failed. Per-request
/// failures are not errors: they are recorded in the request's outcome.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The base URL does not parse or is not http.
    #[error("invalid base URL `{url}`: {reason} (hint: it should look like http://host:port/v1)")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An https URL, which this build cannot speak.
    #[error(
        "`{url}` uses https, but this build of exp has no TLS support \
         (hint: use plain http://, e.g. through a local port-forward or an ssh tunnel)"
    )]
    TlsUnsupported {
        /// The URL as configured.
        url: String,
    },
    /// A configured header name or value is not valid HTTP (the value is never shown).
    #[error("invalid header `{name}`: {reason}")]
    InvalidHeader {
        /// The header name as configured.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Build(String),
    /// A side request could not be sent or its body not read.
    #[error("request failed: {0}")]
    Request(String),
    /// A side request got a non-2xx answer.
    #[error("server answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Start of the reply body.
        body: String,
    },
    /// A side request's reply could not be understood.
    #[error("could not decode the reply: {0}")]
    Decode(String),
}
