//! One interface for every stream the gateway relays natively: bytes of the provider's
//! stream in, bytes for the client out, and a [`StreamCapture`] of what it said for the log.
//!
//! - [`OpenAIStreamRelay`]: an OpenAI chat stream, relayed as it came;
//! - [`AnthropicToOpenAI`](super::AnthropicToOpenAI): Anthropic Messages events as OpenAI
//!   chunks;
//! - [`GeminiToOpenAI`](super::GeminiToOpenAI): `streamGenerateContent` events as OpenAI
//!   chunks;
//! - [`ToMessages`]: any of those, its OpenAI chunks then written as Anthropic Messages
//!   events (`/v1/messages` answered by a provider that does not speak them).

use super::messages::MessagesWriter;
use super::{Clock, OpenAIStreamRelay, StreamCapture};

/// A stream's translator, fed on whatever thread reads the provider.
pub trait StreamTranslate: Send {
    /// Appends to `out` what `chunk` completes.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>);
    /// The end of the provider's body (a clean end, not a failure): appends what it adds.
    fn finish(&mut self, out: &mut Vec<u8>);
    /// What the stream said so far; `oversized` set means it must stop here.
    fn capture(&self) -> &StreamCapture;
    /// The longest event the translator reads.
    fn max_event_bytes(&self) -> usize;
}

impl<C: Clock + Send> StreamTranslate for OpenAIStreamRelay<C> {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&OpenAIStreamRelay::feed(self, chunk));
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&OpenAIStreamRelay::finish(self));
    }

    fn capture(&self) -> &StreamCapture {
        OpenAIStreamRelay::capture(self)
    }

    fn max_event_bytes(&self) -> usize {
        OpenAIStreamRelay::max_event_bytes(self)
    }
}

/// An OpenAI-chunk stream written on as Anthropic Messages events. `message_start` goes out
/// with the first bytes the inner stream has for the client (so nothing is sent before its
/// first event, and a request can still fall back until then); the capture is the inner
/// stream's.
///
/// A stream that ends without finishing is not closed here: its caller ends it with the
/// gateway's error (the one the inner stream's client would get), as an Anthropic `error`.
pub struct ToMessages {
    inner: Box<dyn StreamTranslate>,
    writer: MessagesWriter,
    chunks: Vec<u8>,
    started: bool,
}

impl ToMessages {
    /// `model` and `message_id` are `message_start`'s.
    pub fn new(inner: Box<dyn StreamTranslate>, model: &str, message_id: &str) -> Self {
        Self {
            inner,
            writer: MessagesWriter::new(model, message_id),
            chunks: Vec::new(),
            started: false,
        }
    }

    fn write(&mut self, out: &mut Vec<u8>) {
        if self.chunks.is_empty() {
            return;
        }
        if !self.started {
            self.started = true;
            self.writer.start(out);
        }
        self.writer.feed(&self.chunks, out);
        self.chunks.clear();
    }
}

impl StreamTranslate for ToMessages {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.inner.feed(chunk, &mut self.chunks);
        self.write(out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.inner.finish(&mut self.chunks);
        self.write(out);
        if self.started {
            self.writer.finish(out, false);
        }
    }

    fn capture(&self) -> &StreamCapture {
        self.inner.capture()
    }

    fn max_event_bytes(&self) -> usize {
        self.inner.max_event_bytes()
    }
}
