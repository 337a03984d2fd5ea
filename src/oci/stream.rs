//! The stream adapter of blob copies: hash while streaming, and fail at the end on a mismatch.
//!
//! Memory stays bounded whatever the layer size: a blob flows from the source's response body
//! into the target's request body frame by frame; nothing ever holds a whole layer.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use sha2::{Digest as _, Sha256};

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
}
