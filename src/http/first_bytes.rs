//! Waiting, with a deadline, for a connection's first bytes, then handing
//! them back in front of the stream.
//!
//! An HTTP/2 server reads the client's connection preface with no deadline
//! of its own, so a client that completes the TLS handshake, picks `h2` and
//! then says nothing would hold its connection slot for ever. Reading the
//! first bytes here, under the header-read timeout, closes that gap; the
//! bytes are replayed so hyper sees the stream untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// A stream with some already-read bytes put back in front.
pub struct Replayed<S> {
    first: Vec<u8>,
    at: usize,
    inner: S,
}

/// Reads at least one byte within `deadline`; `None` if the client sent
/// nothing in time or closed.
pub async fn wait_for_first_bytes<S: AsyncRead + Unpin>(mut stream: S, deadline: Duration) -> Option<Replayed<S>> {
    let mut first = vec![0u8; 64];
    match tokio::time::timeout(deadline, stream.read(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {
            first.truncate(n);
            Some(Replayed { first, at: 0, inner: stream })
        }
        _ => None,
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replayed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.first.len() {
            let n = buf.remaining().min(this.first.len() - this.at);
            buf.put_slice(&this.first[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replayed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn the_first_bytes_are_replayed_and_silence_times_out() {
        let (mut client, server) = tokio::io::duplex(256);
        client.write_all(b"PRI * HTTP/2.0").await.unwrap();
        drop(client);
        let mut replayed = wait_for_first_bytes(server, Duration::from_secs(1)).await.unwrap();
        let mut all = Vec::new();
        replayed.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"PRI * HTTP/2.0");

        let (_client, server) = tokio::io::duplex(256);
        assert!(wait_for_first_bytes(server, Duration::from_millis(50)).await.is_none());
    }
}
