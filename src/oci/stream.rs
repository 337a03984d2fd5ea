//! Stream adapters for blob copies: hash while streaming and fail at the end on a mismatch, and
//! regroup small network frames into upload chunks of a fixed size.
//!
//! Memory stays bounded whatever the layer size: at most one chunk ([`CHUNK`]) plus the
//! transport's own buffers per blob in flight. Nothing ever holds a whole layer.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use sha2::{Digest as _, Sha256};

/// Upload chunk size: `oci-client` sends one PATCH per chunk. Equal to its own maximum chunk
/// size, so it never splits ours; large enough that a 200 MiB layer takes 50 requests.
pub(crate) const CHUNK: usize = 4 * 1024 * 1024;

/// The bytes of a blob did not hash to its digest. Travels inside an `io::Error` through the
/// upload so the upload aborts before its final, committing request.
#[derive(Debug, thiserror::Error)]
#[error("content of {expected} hashes to {actual}")]
pub(crate) struct Mismatch {
    pub expected: String,
    pub actual: String,
}

type IoStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Passes bytes through, hashing and counting them; at the end, yields an error instead of
/// ending when the hash is not `expected`.
pub(crate) struct Verify {
    inner: IoStream,
    hasher: Option<Sha256>,
    expected: String,
    counter: Arc<AtomicU64>,
}

impl Verify {
    /// `counter` is incremented by every byte passed through (progress reporting).
    pub(crate) fn new(inner: IoStream, expected: &str, counter: Arc<AtomicU64>) -> Verify {
        Verify { inner, hasher: Some(Sha256::new()), expected: expected.to_owned(), counter }
    }
}

impl Stream for Verify {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(hasher) = this.hasher.as_mut() else { return Poll::Ready(None) };
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                hasher.update(&bytes);
                this.counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.hasher = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                let actual = format!("sha256:{}", hex::encode(this.hasher.take().expect("checked").finalize()));
                if actual == this.expected {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(std::io::Error::other(Mismatch { expected: this.expected.clone(), actual }))))
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Regroups a stream into chunks of exactly `size` bytes (the last one shorter). An error is
/// passed on at once, and the buffered bytes are dropped with it.
pub(crate) struct Rechunk<S> {
    inner: S,
    buf: BytesMut,
    size: usize,
    done: bool,
}

impl<S> Rechunk<S> {
    pub(crate) fn new(inner: S, size: usize) -> Rechunk<S> {
        Rechunk { inner, buf: BytesMut::new(), size, done: false }
    }
}

impl<S: Stream<Item = std::io::Result<Bytes>> + Unpin> Stream for Rechunk<S> {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.buf.len() >= this.size {
                return Poll::Ready(Some(Ok(this.buf.split_to(this.size).freeze())));
            }
            if this.done {
                return Poll::Ready((!this.buf.is_empty()).then(|| Ok(this.buf.split().freeze())));
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if this.buf.is_empty() && bytes.len() == this.size {
                        return Poll::Ready(Some(Ok(bytes)));
                    }
                    this.buf.extend_from_slice(&bytes);
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    this.buf.clear();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => this.done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn frames(parts: &[&'static [u8]]) -> IoStream {
        Box::pin(futures::stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>()))
    }

    #[tokio::test]
    async fn verify_passes_matching_content_and_counts_it() {
        let counter = Arc::new(AtomicU64::new(0));
        let digest = crate::oci::sha256_digest(b"hello world");
        let out: Vec<_> = Verify::new(frames(&[b"hello ", b"world"]), &digest, counter.clone()).collect().await;
        assert!(out.iter().all(|r| r.is_ok()));
        assert_eq!(counter.load(Ordering::Relaxed), 11);
    }

    #[tokio::test]
    async fn verify_fails_at_the_end_on_other_content() {
        let digest = crate::oci::sha256_digest(b"hello world");
        let out: Vec<_> = Verify::new(frames(&[b"hello ", b"WORLD"]), &digest, Arc::default()).collect().await;
        let last = out.last().unwrap().as_ref().unwrap_err();
        let m = last.get_ref().unwrap().downcast_ref::<Mismatch>().unwrap();
        assert_eq!(m.expected, digest);
        assert_eq!(m.actual, crate::oci::sha256_digest(b"hello WORLD"));
    }

    #[tokio::test]
    async fn rechunk_regroups_frames_and_keeps_errors() {
        let out: Vec<_> = Rechunk::new(frames(&[b"ab", b"cde", b"f", b"ghij"]), 4).map(|r| r.unwrap()).collect().await;
        assert_eq!(out, vec![Bytes::from_static(b"abcd"), Bytes::from_static(b"efgh"), Bytes::from_static(b"ij")]);
        let failing: IoStream = Box::pin(futures::stream::iter(vec![Ok(Bytes::from_static(b"ab")), Err(std::io::Error::other("x"))]));
        let out: Vec<_> = Rechunk::new(failing, 4).collect().await;
        assert_eq!(out.len(), 1);
        assert!(out[0].is_err());
    }
}
