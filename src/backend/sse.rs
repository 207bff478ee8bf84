//! Incremental Server-Sent Events decoder over byte chunks: pure, no I/O.
//!
//! Network reads cut a stream anywhere, so the decoder keeps the unfinished tail of the last
//! read and hands out complete events only. It follows the WHATWG EventSource framing rules
//! that matter for OpenAI-compatible servers:
//!
//! * lines end in LF, CRLF or CR (a CR at the end of one read and an LF at the start of the
//!   next are one line ending);
//! * a line starting with `:` is a comment (keep-alive) and is skipped;
//! * `field: value` strips one optional space after the colon; a line without a colon is a
//!   field with an empty value;
//! * several `data:` lines in one event are joined with `\n`;
//! * an empty line dispatches the event; an event without `data` is not dispatched;
//! * `event:`, `id:`, `retry:` and unknown fields are ignored (chat/completions never need
//!   them);
//! * a UTF-8 byte-order mark at the very start of the stream is skipped.
//!
//! A data payload of exactly `[DONE]` is reported as [`SseEvent::Done`].
//!
//! The decoder owns two buffers that grow to the largest event seen and are then reused, so
//! feeding a read allocates nothing in the steady state.

use memchr::memchr2;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseEvent<'a> {
    /// The event's data (its `data:` lines joined with `\n`), borrowed from the decoder until
    /// the next call.
    Data(&'a [u8]),
    /// The `data: [DONE]` sentinel that ends an OpenAI stream.
    Done,
}

/// Incremental SSE decoder: [`feed`](SseDecoder::feed) reads as they arrive, then drain
/// complete events with [`next_event`](SseDecoder::next_event).
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes received but not yet consumed as complete lines (`buf[pos..]`).
    buf: Vec<u8>,
    pos: usize,
    /// `buf[pos..scan]` holds no line terminator: the next search starts at `scan`, so a
    /// long line arriving in many reads is scanned once, not once per read (an 8 MB event in
    /// 16 KB reads was rescanned 500 times).
    scan: usize,
    /// Data lines of the event being assembled, each followed by `\n`.
    data: Vec<u8>,
    /// True while at least one `data` field belongs to the current event.
    has_data: bool,
    /// The previous line ended in CR: a leading LF of the next bytes belongs to it.
    skip_lf: bool,
    /// The stream start has been checked for a byte-order mark.
    bom_checked: bool,
    /// The end of the stream was signalled with [`finish`](SseDecoder::finish).
    finished: bool,
    /// `data` holds the event handed out last; clear it before assembling the next one.
    dispatched: bool,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one network read. Events it completes are returned by
    /// [`next_event`](SseDecoder::next_event).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.scan = self.scan.saturating_sub(self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held for events not yet complete (unfinished lines and data lines of the event
    /// being assembled); a caller can cap it against a server that never ends a line.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos + self.data.len()
    }

    /// Marks the end of the stream. An unterminated last line is discarded (as the spec
    /// says), but data lines already complete are dispatched as a last event, so a server that
    /// ends with `data: [DONE]\n` and no blank line is still understood.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// The next complete event, or `None` until more bytes are fed (or, after
    /// [`finish`](SseDecoder::finish), when the stream is exhausted).
    pub fn next_event(&mut self) -> Option<SseEvent<'_>> {
        if self.dispatched {
            self.data.clear();
            self.dispatched = false;
        }
        if !self.skip_bom() {
            return None;
        }
        while let Some((start, end)) = self.next_line() {
            if start == end {
                if self.has_data {
                    return Some(self.dispatch());
                }
                continue;
            }
            self.field(start, end);
        }
        if self.finished && self.has_data {
            self.buf.truncate(self.pos);
            return Some(self.dispatch());
        }
        None
    }

    /// Skips a leading byte-order mark; false while the first bytes could still be one.
    fn skip_bom(&mut self) -> bool {
        if self.bom_checked {
            return true;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < BOM.len() && BOM.starts_with(rest) && !self.finished {
            return false;
        }
        if rest.starts_with(BOM) {
            self.pos += BOM.len();
        }
        self.bom_checked = true;
        true
    }

    /// The next complete line as a range of `buf` (terminator excluded), consuming it.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        if self.skip_lf && self.pos < self.buf.len() {
            self.skip_lf = false;
            if self.buf[self.pos] == b'\n' {
                self.pos += 1;
            }
        }
        let start = self.pos;
        let from = self.scan.clamp(start, self.buf.len().max(start));
        let Some(found) = memchr2(b'\n', b'\r', &self.buf[from..]) else {
            self.scan = self.buf.len();
            return None;
        };
        let at = from + found;
        if self.buf[at] == b'\r' {
            match self.buf.get(at + 1) {
                Some(b'\n') => self.pos = at + 2,
                Some(_) => self.pos = at + 1,
                None => {
                    self.pos = at + 1;
                    self.skip_lf = true;
                }
            }
        } else {
            self.pos = at + 1;
        }
        self.scan = self.pos;
        Some((start, at))
    }

    /// Applies one non-empty line to the event being assembled.
    fn field(&mut self, start: usize, end: usize) {
        let line = &self.buf[start..end];
        if line[0] == b':' {
            return;
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &line[line.len()..]),
        };
        if name == b"data" {
            self.data.extend_from_slice(value);
            self.data.push(b'\n');
            self.has_data = true;
        }
    }

    /// Hands out the assembled event; its bytes are cleared on the next call.
    fn dispatch(&mut self) -> SseEvent<'_> {
        self.has_data = false;
        self.dispatched = true;
        // Every data line ends in '\n'; the last one is not part of the payload.
        let payload = &self.data[..self.data.len() - 1];
        if payload == b"[DONE]" {
            SseEvent::Done
        } else {
            SseEvent::Data(payload)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An owned copy of an event, for comparing decodes.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Data(String),
        Done,
    }

    fn drain(dec: &mut SseDecoder, out: &mut Vec<Ev>) {
        while let Some(ev) = dec.next_event() {
            out.push(match ev {
                SseEvent::Data(d) => Ev::Data(String::from_utf8(d.to_vec()).unwrap()),
                SseEvent::Done => Ev::Done,
            });
        }
    }

    fn decode(chunks: &[&[u8]]) -> Vec<Ev> {
        let mut dec = SseDecoder::new();
        let mut out = Vec::new();
        for c in chunks {
            dec.feed(c);
            drain(&mut dec, &mut out);
        }
        dec.finish();
        drain(&mut dec, &mut out);
        out
    }

    fn data(s: &str) -> Ev {
        Ev::Data(s.to_owned())
    }

    /// Streams with the shapes real servers send, plus every framing rule, and their events.
    fn cases() -> Vec<(&'static [u8], Vec<Ev>)> {
        vec![
            (
                b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
                vec![data("{\"a\":1}"), data("{\"b\":2}"), Ev::Done],
            ),
            (
                b"data: x\r\n\r\ndata: y\r\n\r\n",
                vec![data("x"), data("y")],
            ),
            (b"data: x\r\rdata: y\r\r", vec![data("x"), data("y")]),
            (b"\xEF\xBB\xBFdata: bom\n\n", vec![data("bom")]),
            (
                b": ping\n\n:keep-alive\ndata: a\n: mid\ndata: b\n\n",
                vec![data("a\nb")],
            ),
            (
                b"event: message\nid: 7\nretry: 10\ndata:no-space\n\n",
                vec![data("no-space")],
            ),
            (b"data:  two\n\ndata\n\n", vec![data(" two"), data("")]),
            (b"id: 1\n\n\n\ndata: after\n\n", vec![data("after")]),
            (b"data: a\r\ndata: b\rdata: c\n\r\n", vec![data("a\nb\nc")]),
            (b"data: [DONE]\n", vec![Ev::Done]),
            (b"data: ok\n\ndata: {\"cut", vec![data("ok")]),
        ]
    }

    #[test]
    fn whole_streams_decode_to_known_events() {
        for (stream, want) in cases() {
            assert_eq!(
                decode(&[stream]),
                want,
                "{:?}",
                String::from_utf8_lossy(stream)
            );
        }
    }

    #[test]
    fn every_two_way_split_gives_the_same_events() {
        for (stream, want) in cases() {
            for i in 0..=stream.len() {
                let got = decode(&[&stream[..i], &stream[i..]]);
                assert_eq!(
                    got,
                    want,
                    "split at {i} of {:?}",
                    String::from_utf8_lossy(stream)
                );
            }
        }
    }

    #[test]
    fn every_three_way_split_gives_the_same_events() {
        for (stream, want) in cases() {
            for i in 0..=stream.len() {
                for j in i..=stream.len() {
                    let got = decode(&[&stream[..i], &stream[i..j], &stream[j..]]);
                    assert_eq!(got, want, "splits {i},{j}");
                }
            }
        }
    }

    #[test]
    fn byte_at_a_time_gives_the_same_events() {
        for (stream, want) in cases() {
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(decode(&bytes), want);
        }
    }

    #[test]
    fn event_is_ready_only_when_its_blank_line_arrives() {
        let mut dec = SseDecoder::new();
        dec.feed(b"data: a\n");
        assert_eq!(dec.next_event(), None);
        dec.feed(b"\n");
        assert_eq!(dec.next_event(), Some(SseEvent::Data(b"a")));
        assert_eq!(dec.next_event(), None);
    }

    #[test]
    fn cr_at_end_of_a_read_then_lf_is_one_line_ending() {
        let mut dec = SseDecoder::new();
        dec.feed(b"data: a\r");
        assert_eq!(dec.next_event(), None);
        dec.feed(b"\n\r");
        assert_eq!(dec.next_event(), Some(SseEvent::Data(b"a")));
        dec.feed(b"\ndata: b\n\n");
        assert_eq!(dec.next_event(), Some(SseEvent::Data(b"b")));
    }

    #[test]
    fn buffered_counts_what_waits_for_completion() {
        let mut dec = SseDecoder::new();
        dec.feed(b"data: ab\ndata: c");
        assert_eq!(dec.next_event(), None);
        assert_eq!(dec.buffered(), "ab\n".len() + "data: c".len());
    }

    #[test]
    fn partial_bom_is_not_data() {
        let mut dec = SseDecoder::new();
        dec.feed(b"\xEF");
        assert_eq!(dec.next_event(), None);
        dec.feed(b"\xBB\xBFdata: z\n\n");
        assert_eq!(dec.next_event(), Some(SseEvent::Data(b"z")));
    }

    /// Regression: the unfinished line was searched from its start on every read, so an
    /// 8 MB event in 16 KB reads cost about 500 scans of up to 8 MB (13 s in a debug build).
    #[test]
    fn a_giant_event_in_small_reads_is_scanned_once() {
        let mut stream = b"data: {\"choices\":[{\"text\":\"".to_vec();
        stream.extend(std::iter::repeat_n(b'a', 8_000_000));
        stream.extend_from_slice(b"\"}]}\n\ndata: [DONE]\n\n");
        let start = std::time::Instant::now();
        let mut dec = SseDecoder::new();
        let mut sizes = Vec::new();
        for read in stream.chunks(16 * 1024) {
            dec.feed(read);
            while let Some(ev) = dec.next_event() {
                sizes.push(match ev {
                    SseEvent::Data(d) => d.len(),
                    SseEvent::Done => 0,
                });
            }
        }
        assert_eq!(sizes, [8_000_000 + 25, 0]);
        let took = start.elapsed();
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    }

    /// Renders events with one line-ending style, random comments and both `data:` spellings.
    fn render(events: &[(Vec<String>, bool)], eol: &str, bom: bool) -> (Vec<u8>, Vec<Ev>) {
        let mut s = String::new();
        if bom {
            s.push('\u{FEFF}');
        }
        let mut want = Vec::new();
        for (lines, comment) in events {
            if *comment {
                s.push_str(": keep-alive");
                s.push_str(eol);
            }
            for line in lines {
                let sep = if line.starts_with(' ') || line.is_empty() {
                    ": "
                } else {
                    ":"
                };
                s.push_str("data");
                s.push_str(sep);
                s.push_str(line);
                s.push_str(eol);
            }
            s.push_str(eol);
            let joined = lines.join("\n");
            want.push(if joined == "[DONE]" {
                Ev::Done
            } else {
                Ev::Data(joined)
            });
        }
        (s.into_bytes(), want)
    }

    fn split_at_points(stream: &[u8], mut cuts: Vec<usize>) -> Vec<&[u8]> {
        cuts.iter_mut().for_each(|c| *c %= stream.len() + 1);
        cuts.sort_unstable();
        let mut parts = Vec::new();
        let mut last = 0;
        for c in cuts {
            parts.push(&stream[last..c]);
            last = c;
        }
        parts.push(&stream[last..]);
        parts
    }

    proptest! {
        #[test]
        fn random_streams_and_random_splits_decode_to_the_rendered_events(
            events in prop::collection::vec(
                (prop::collection::vec("[ -~]{0,12}|\\[DONE\\]", 1..4), any::<bool>()),
                0..8,
            ),
            eol in prop::sample::select(vec!["\n", "\r\n", "\r"]),
            bom in any::<bool>(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let (stream, want) = render(&events, eol, bom);
            let parts = split_at_points(&stream, cuts);
            prop_assert_eq!(decode(&parts), want);
        }
    }
}
