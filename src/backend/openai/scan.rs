//! The fast path of [`StreamChunk::parse`]: one pass over the payload's bytes that validates
//! the JSON grammar, reads the handful of fields exp needs and skips every other value by
//! scanning, without decoding a string or building anything.
//!
//! Profiles of the client at 2,000 streams/s showed serde spending most of a chunk's parse on
//! the keys and values it then ignores (`id`, `object`, `model`, `logprobs`, …). The scanner
//! compares keys as raw bytes and skips ignored strings without decoding them.
//!
//! It answers only when its answer is certainly serde's: on anything unusual (an escaped key,
//! a `\u` escape in a string it reads, a repeated field, a field of an unexpected type, a
//! number that is not a plain `u32`, nesting deeper than serde allows) it returns `None` and
//! the caller asks serde, which either agrees or reports the error. Grammar errors also return
//! `None`, so every malformed payload is still reported by serde, in serde's words. A property
//! test checks the agreement on generated payloads.
//!
//! [`StreamChunk::parse`]: super::wire::StreamChunk::parse

use std::borrow::Cow;

use serde::de::IgnoredAny;

use super::wire::{Choice, Delta, FirstChoice, NonEmpty, StreamChunk, Usage};

/// Deepest nesting accepted (serde_json stops at 128).
const MAX_DEPTH: u32 = 100;

/// Parses `payload` if it is a JSON object whose fields exp reads have their usual types.
pub(crate) fn scan(payload: &[u8]) -> Option<StreamChunk<'_>> {
    let mut s = Scanner { b: payload, i: 0 };
    let chunk = s.chunk()?;
    s.ws();
    (s.i == s.b.len()).then_some(chunk)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

/// A string as it appears in the payload.
struct Str<'a> {
    /// The bytes between the quotes, escapes not decoded.
    raw: &'a [u8],
    /// It holds an escape.
    escaped: bool,
    /// It holds a `\u` escape.
    unicode: bool,
}

/// Fields seen so far in one object, to refuse repeats (serde rejects them).
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn first(&mut self, bit: u8) -> Option<()> {
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh.then_some(())
    }
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next non-blank byte, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Consumes `null` if it comes next.
    fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(true);
        }
        Some(false)
    }

    /// A string's raw bytes (between the quotes), checked for control characters and
    /// well-formed escapes.
    fn string(&mut self) -> Option<Str<'a>> {
        self.eat(b'"')?;
        let start = self.i;
        let (mut escaped, mut unicode) = (false, false);
        // A plain loop: the strings of a chunk are a few bytes long, too short for memchr's
        // vector search to pay for its set-up (it showed in profiles).
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => {
                    return Some(Str {
                        raw: &self.b[start..self.i - 1],
                        escaped,
                        unicode,
                    });
                }
                b'\\' => {
                    escaped = true;
                    match *self.b.get(self.i)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.b.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            unicode = true;
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                0..0x20 => return None,
                _ => {}
            }
        }
    }

    /// An object key compared as raw bytes. serde decodes keys, so they must be UTF-8;
    /// escaped keys go to serde.
    fn key(&mut self) -> Option<&'a [u8]> {
        let key = self.string()?;
        if key.escaped || !(key.raw.is_ascii() || std::str::from_utf8(key.raw).is_ok()) {
            return None;
        }
        self.eat(b':')?;
        Some(key.raw)
    }

    /// Walks `{ key: value, … }`, handing each key to `field` (which consumes its value).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Skips one value of any type, checking its grammar.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => {
                self.i += 1;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// A number by JSON's grammar; returns its text.
    fn number(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        let digits = |s: &mut Self| {
            let from = s.i;
            while s.b.get(s.i).is_some_and(u8::is_ascii_digit) {
                s.i += 1;
            }
            (s.i > from).then_some(())
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => digits(self)?,
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            digits(self)?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            digits(self)?;
        }
        Some(&self.b[start..self.i])
    }

    /// `null` or a plain non-negative integer that fits a `u32`.
    fn count(&mut self) -> Option<Option<u32>> {
        if self.null()? {
            return Some(None);
        }
        let text = self.number()?;
        if !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(text).ok()?.parse().ok().map(Some)
    }

    /// `null`, or a string reduced to "non-empty" (serde decodes it, so it must be UTF-8).
    fn non_empty(&mut self) -> Option<NonEmpty> {
        if self.null()? {
            return Some(NonEmpty(false));
        }
        if self.peek()? != b'"' {
            return None;
        }
        let text = self.string()?;
        // Simple escapes are ASCII, so the raw bytes are UTF-8 exactly when the text is.
        if text.unicode || !(text.raw.is_ascii() || std::str::from_utf8(text.raw).is_ok()) {
            return None;
        }
        Some(NonEmpty(!text.raw.is_empty()))
    }

    fn chunk(&mut self) -> Option<StreamChunk<'a>> {
        let mut chunk = StreamChunk::default();
        let mut seen = Seen::default();
        self.object(|s, key| match key {
            b"choices" => {
                seen.first(1)?;
                chunk.first = s.choices()?;
                Some(())
            }
            b"usage" => {
                seen.first(2)?;
                chunk.usage = if s.null()? { None } else { Some(s.usage()?) };
                Some(())
            }
            b"error" => {
                seen.first(4)?;
                chunk.error = if s.null()? {
                    None
                } else {
                    s.skip(1)?;
                    Some(IgnoredAny)
                };
                Some(())
            }
            _ => s.skip(1),
        })?;
        Some(chunk)
    }

    fn choices(&mut self) -> Option<FirstChoice<'a>> {
        if self.null()? {
            return Some(FirstChoice(None));
        }
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(FirstChoice(None));
        }
        let first = self.choice()?;
        loop {
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.skip(2)?;
                }
                b']' => {
                    self.i += 1;
                    return Some(FirstChoice(Some(first)));
                }
                _ => return None,
            }
        }
    }

    fn choice(&mut self) -> Option<Choice<'a>> {
        let mut choice = Choice::default();
        let mut seen = Seen::default();
        if self.peek()? != b'{' {
            return None;
        }
        self.object(|s, key| match key {
            b"text" => {
                seen.first(1)?;
                choice.text = s.non_empty()?;
                Some(())
            }
            b"delta" => {
                seen.first(2)?;
                choice.delta = if s.null()? { None } else { Some(s.delta()?) };
                Some(())
            }
            b"finish_reason" => {
                seen.first(4)?;
                choice.finish_reason = s.finish_reason()?;
                Some(())
            }
            _ => s.skip(3),
        })?;
        Some(choice)
    }

    fn finish_reason(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null()? {
            return Some(None);
        }
        if self.peek()? != b'"' {
            return None;
        }
        let text = self.string()?;
        if text.escaped {
            return None;
        }
        std::str::from_utf8(text.raw)
            .ok()
            .map(|s| Some(Cow::Borrowed(s)))
    }

    fn delta(&mut self) -> Option<Delta> {
        let mut delta = Delta::default();
        let mut seen = Seen::default();
        if self.peek()? != b'{' {
            return None;
        }
        self.object(|s, key| {
            let (bit, slot) = match key {
                b"content" => (1, &mut delta.content),
                b"reasoning" => (2, &mut delta.reasoning),
                b"reasoning_content" => (4, &mut delta.reasoning_content),
                _ => return s.skip(4),
            };
            seen.first(bit)?;
            *slot = s.non_empty()?;
            Some(())
        })?;
        Some(delta)
    }

    fn usage(&mut self) -> Option<Usage> {
        let mut usage = Usage::default();
        let mut seen = Seen::default();
        if self.peek()? != b'{' {
            return None;
        }
        self.object(|s, key| match key {
            b"prompt_tokens" => {
                seen.first(1)?;
                usage.prompt_tokens = s.count()?;
                Some(())
            }
            b"completion_tokens" => {
                seen.first(2)?;
                usage.completion_tokens = s.count()?;
                Some(())
            }
            _ => s.skip(3),
        })?;
        Some(usage)
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
