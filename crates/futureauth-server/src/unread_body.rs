//! A refusal answered before the request body was read (a console 403, an API 401) must not
//! break the client's keep-alive connection. Hyper cannot reuse a connection whose request
//! body is still unread, so it closes it; without a word, a client that sends its body late
//! (in a later packet) and then its next request on the same connection sees that request
//! fail. This layer says `Connection: close` on every response whose request body was not
//! read to its end, so the client opens a new connection instead.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// Whether the request announces a body (`Content-Length` above 0, or any
/// `Transfer-Encoding`).
fn announces_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
}

/// The request body, noting when it has been read to its end.
struct Tracked {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: `Connection: close` on the answer to a request whose body was left unread.
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    if !announces_body(request.headers()) {
        return next.run(request).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = Body::new(Tracked {
        inner: body,
        finished: finished.clone(),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if !finished.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_announced_by_its_length_or_encoding() {
        let with = |name: header::HeaderName, value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            h
        };
        assert!(announces_body(&with(header::CONTENT_LENGTH, "12")));
        assert!(!announces_body(&with(header::CONTENT_LENGTH, "0")));
        assert!(announces_body(&with(header::TRANSFER_ENCODING, "chunked")));
        assert!(!announces_body(&HeaderMap::new()));
    }
}
