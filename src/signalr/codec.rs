//! The SignalR JSON hub protocol as a pure codec: handshake, 0x1E record framing, messages 1–7.
//!
//! No I/O happens here, so the client connection and the simulator's hubs share one reading of
//! the spec (dotnet/aspnetcore `src/SignalR/docs/specs/HubProtocol.md`, gateway doc §6), and the
//! property tests can hammer it without sockets. Decoding is tolerant where the spec lets it be:
//! unknown message types are skipped (newer servers add types 8/9 for stateful reconnect), and a
//! malformed record is an error for that record only; the decoder goes on with the next one.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Ends every JSON record on the wire.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// A record larger than this without a separator is treated as garbage and dropped, so a broken
/// or hostile peer cannot make us buffer without bound. Real hub records are a few KiB.
pub const MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// Message `headers`: a string map, kept ordered so encoding is deterministic.
pub type Headers = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("malformed hub record: {0}")]
    Malformed(String),
    #[error("hub record exceeds {MAX_RECORD_LEN} bytes without a record separator")]
    TooLong,
}

/// The client's first record: `{"protocol":"json","version":1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeRequest {
    pub protocol: String,
    pub version: u32,
}

impl HandshakeRequest {
    pub fn json_v1() -> Self {
        Self {
            protocol: "json".into(),
            version: 1,
        }
    }

    /// The request as sent on the wire, separator included.
    pub fn encode(&self) -> String {
        with_separator(serde_json::to_string(self).expect("handshake request serializes"))
    }
}

/// The server's answer to the handshake: `{}` accepts, `{"error":"..."}` refuses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HandshakeReply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HandshakeReply {
    pub fn ok() -> Self {
        Self { error: None }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self {
            error: Some(message.into()),
        }
    }

    pub fn encode(&self) -> String {
        with_separator(serde_json::to_string(self).expect("handshake reply serializes"))
    }
}

/// A call to a method on the other side (type 1), or a stream invocation (type 4).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// `None` for fire-and-forget calls and for server events: the callee must not reply.
    pub invocation_id: Option<String>,
    pub target: String,
    pub arguments: Vec<Value>,
    pub stream_ids: Option<Vec<String>>,
    pub headers: Option<Headers>,
}

impl Invocation {
    pub fn new(target: impl Into<String>, arguments: Vec<Value>) -> Self {
        Self {
            invocation_id: None,
            target: target.into(),
            arguments,
            stream_ids: None,
            headers: None,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.invocation_id = Some(id.into());
        self
    }
}

/// How an invocation ended. The spec forbids `result` and `error` together; neither means void.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Void,
    Result(Value),
    Error(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub invocation_id: String,
    pub outcome: Outcome,
    pub headers: Option<Headers>,
}

impl Completion {
    pub fn new(invocation_id: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            invocation_id: invocation_id.into(),
            outcome,
            headers: None,
        }
    }
}

/// Type 7: the sender is closing the connection, optionally with an error and a hint whether the
/// client should reconnect (absent means false, per spec).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Close {
    pub error: Option<String>,
    pub allow_reconnect: bool,
}

/// A decoded hub message (types 1–7).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Invocation(Invocation),
    StreamItem {
        invocation_id: String,
        item: Value,
        headers: Option<Headers>,
    },
    Completion(Completion),
    StreamInvocation(Invocation),
    CancelInvocation {
        invocation_id: String,
        headers: Option<Headers>,
    },
    Ping,
    Close(Close),
}

impl Message {
    /// The message as sent on the wire, separator included.
    pub fn encode(&self) -> String {
        let wire = match self {
            Message::Invocation(inv) => WireMessage::invocation(1, inv),
            Message::StreamInvocation(inv) => WireMessage::invocation(4, inv),
            Message::StreamItem {
                invocation_id,
                item,
                headers,
            } => WireMessage {
                kind: 2,
                invocation_id: Some(invocation_id.clone()),
                item: Some(item.clone()),
                headers: headers.clone(),
                ..WireMessage::default()
            },
            Message::Completion(c) => {
                let (result, error) = match &c.outcome {
                    Outcome::Void => (None, None),
                    Outcome::Result(v) => (Some(v.clone()), None),
                    Outcome::Error(e) => (None, Some(e.clone())),
                };
                WireMessage {
                    kind: 3,
                    invocation_id: Some(c.invocation_id.clone()),
                    result,
                    error,
                    headers: c.headers.clone(),
                    ..WireMessage::default()
                }
            }
            Message::CancelInvocation {
                invocation_id,
                headers,
            } => WireMessage {
                kind: 5,
                invocation_id: Some(invocation_id.clone()),
                headers: headers.clone(),
                ..WireMessage::default()
            },
            Message::Ping => WireMessage {
                kind: 6,
                ..WireMessage::default()
            },
            Message::Close(c) => WireMessage {
                kind: 7,
                error: c.error.clone(),
                // Only written when true: absent already means false.
                allow_reconnect: c.allow_reconnect.then_some(true),
                ..WireMessage::default()
            },
        };
        with_separator(serde_json::to_string(&wire).expect("hub message serializes"))
    }

    /// Decodes one record (without its separator). `Ok(None)` is a well-formed message of a type
    /// this codec does not know, which the spec says to ignore.
    ///
    /// # Errors
    /// `Malformed` when the record is not JSON, has no integer `type`, or lacks a field its type
    /// requires (`target`, `invocationId`).
    pub fn decode(record: &[u8]) -> Result<Option<Message>, CodecError> {
        let wire: WireMessage =
            serde_json::from_slice(record).map_err(|e| CodecError::Malformed(e.to_string()))?;
        wire.into_message()
    }
}

/// One shape for every message type: each type uses a subset of the fields.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    #[serde(rename = "type")]
    kind: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    invocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    arguments: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stream_ids: Option<Vec<String>>,
    // `present_value`: a `"result": null` is a real null result, unlike an absent one (void).
    #[serde(
        default,
        deserialize_with = "present_value",
        skip_serializing_if = "Option::is_none"
    )]
    result: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present_value",
        skip_serializing_if = "Option::is_none"
    )]
    item: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow_reconnect: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<Headers>,
}

fn present_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl WireMessage {
    fn invocation(kind: i64, inv: &Invocation) -> Self {
        WireMessage {
            kind,
            invocation_id: inv.invocation_id.clone(),
            target: Some(inv.target.clone()),
            arguments: Some(inv.arguments.clone()),
            stream_ids: inv.stream_ids.clone(),
            headers: inv.headers.clone(),
            ..WireMessage::default()
        }
    }

    fn into_message(self) -> Result<Option<Message>, CodecError> {
        let missing =
            |field: &str| CodecError::Malformed(format!("type {} without {field}", self.kind));
        let msg = match self.kind {
            1 | 4 => {
                let inv = Invocation {
                    target: self.target.clone().ok_or_else(|| missing("target"))?,
                    invocation_id: self.invocation_id,
                    // Some servers omit an empty argument list; treat it as empty.
                    arguments: self.arguments.unwrap_or_default(),
                    stream_ids: self.stream_ids,
                    headers: self.headers,
                };
                if self.kind == 1 {
                    Message::Invocation(inv)
                } else if inv.invocation_id.is_none() {
                    return Err(missing("invocationId"));
                } else {
                    Message::StreamInvocation(inv)
                }
            }
            2 => Message::StreamItem {
                invocation_id: self
                    .invocation_id
                    .clone()
                    .ok_or_else(|| missing("invocationId"))?,
                item: self.item.unwrap_or(Value::Null),
                headers: self.headers,
            },
            3 => {
                let id = self
                    .invocation_id
                    .clone()
                    .ok_or_else(|| missing("invocationId"))?;
                // An error wins over a result if a peer breaks the "never both" rule: failing
                // loudly is safer than acting on a result the peer also called an error.
                let outcome = match (self.error, self.result) {
                    (Some(e), _) => Outcome::Error(e),
                    (None, Some(v)) => Outcome::Result(v),
                    (None, None) => Outcome::Void,
                };
                Message::Completion(Completion {
                    invocation_id: id,
                    outcome,
                    headers: self.headers,
                })
            }
            5 => Message::CancelInvocation {
                invocation_id: self
                    .invocation_id
                    .clone()
                    .ok_or_else(|| missing("invocationId"))?,
                headers: self.headers,
            },
            6 => Message::Ping,
            7 => Message::Close(Close {
                error: self.error,
                allow_reconnect: self.allow_reconnect.unwrap_or(false),
            }),
            _ => return Ok(None),
        };
        Ok(Some(msg))
    }
}

fn with_separator(mut json: String) -> String {
    json.push(RECORD_SEPARATOR as char);
    json
}

/// Buffers WebSocket payloads and yields complete records split on 0x1E.
///
/// Frames and records are independent: one frame may hold several records, and one record may
/// span frames, so nothing may assume a frame is a message.
#[derive(Debug, Default)]
pub struct RecordBuffer {
    buf: Vec<u8>,
    /// Start of the first unread byte; compacting lazily keeps the common case (whole records
    /// per frame) free of memmoves.
    start: usize,
}

impl RecordBuffer {
    /// Appends a payload.
    ///
    /// # Errors
    /// `TooLong` when the unfinished record grows past [`MAX_RECORD_LEN`]; the buffered bytes are
    /// dropped so the stream can resynchronise at the next separator.
    pub fn push(&mut self, data: &[u8]) -> Result<(), CodecError> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
        let pending = self.buf.len() - self.start;
        if pending > MAX_RECORD_LEN && !self.buf[self.start..].contains(&RECORD_SEPARATOR) {
            self.buf.clear();
            self.start = 0;
            return Err(CodecError::TooLong);
        }
        Ok(())
    }

    /// The next complete record, without its separator. Empty records (two separators in a row)
    /// are skipped.
    pub fn next_record(&mut self) -> Option<Vec<u8>> {
        self.with_next_record(<[u8]>::to_vec)
    }

    /// Like [`RecordBuffer::next_record`], but lends the record to `f` instead of copying it:
    /// the hot path decodes straight from the buffer.
    pub fn with_next_record<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        loop {
            let pos = self.buf[self.start..]
                .iter()
                .position(|&b| b == RECORD_SEPARATOR)?;
            let record = self.start..self.start + pos;
            self.start += pos + 1;
            let blank = self.buf[record.clone()].iter().all(u8::is_ascii_whitespace);
            if blank {
                self.compact();
                continue;
            }
            let out = f(&self.buf[record]);
            self.compact();
            return Some(out);
        }
    }

    fn compact(&mut self) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Bytes received that do not yet form a complete record.
    pub fn pending_len(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Which end of the connection the decoder serves: it decides what the first record means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads the server's handshake reply, then messages.
    Client,
    /// Reads the client's handshake request, then messages.
    Server,
}

/// What a [`Decoder`] produced from the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Only for [`Role::Client`], always first.
    HandshakeReply(HandshakeReply),
    /// Only for [`Role::Server`], always first.
    HandshakeRequest(HandshakeRequest),
    Message(Message),
}

/// A stateful decoder for one connection: records in, handshake then messages out.
///
/// The handshake reply and the first event often share one frame; because the decoder keeps the
/// rest of the frame buffered, that event is not lost.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    records: RecordBuffer,
    handshake_done: bool,
}

impl Decoder {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            records: RecordBuffer::default(),
            handshake_done: false,
        }
    }

    pub fn client() -> Self {
        Self::new(Role::Client)
    }

    pub fn server() -> Self {
        Self::new(Role::Server)
    }

    /// Appends a WebSocket payload (text or binary).
    ///
    /// # Errors
    /// See [`RecordBuffer::push`].
    pub fn push(&mut self, data: &[u8]) -> Result<(), CodecError> {
        self.records.push(data)
    }

    /// The next decoded item, `None` when more bytes are needed. Unknown message types are
    /// skipped here.
    ///
    /// # Errors
    /// A malformed record yields `Some(Err(..))` and is consumed; call again for the next one.
    pub fn next_decoded(&mut self) -> Option<Result<Decoded, CodecError>> {
        loop {
            let (role, handshake) = (self.role, !self.handshake_done);
            let decoded = self.records.with_next_record(|record| {
                if !handshake {
                    return Message::decode(record).map(|m| m.map(Decoded::Message));
                }
                let parsed = match role {
                    Role::Client => serde_json::from_slice::<HandshakeReply>(record)
                        .map(Decoded::HandshakeReply),
                    Role::Server => serde_json::from_slice::<HandshakeRequest>(record)
                        .map(Decoded::HandshakeRequest),
                };
                parsed
                    .map(Some)
                    .map_err(|e| CodecError::Malformed(format!("handshake: {e}")))
            })?;
            self.handshake_done = true;
            match decoded {
                // An unknown message type: skip it.
                Ok(None) => continue,
                Ok(Some(d)) => return Some(Ok(d)),
                Err(e) => return Some(Err(e)),
            }
        }
    }

    pub fn handshake_done(&self) -> bool {
        self.handshake_done
    }
}
