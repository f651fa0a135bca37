//! The SignalR JSON hub codec against the spec's framing rules, plus property tests: arbitrary
//! bytes never panic the decoder, and encode → decode round-trips across any frame split.
use moontick::signalr::codec::*;
use proptest::prelude::*;
use serde_json::Value;
use serde_json::json;

fn drain(d: &mut Decoder) -> Vec<Result<Decoded, CodecError>> {
    std::iter::from_fn(|| d.next_decoded()).collect()
}

#[test]
fn handshake_request_is_exact() {
    assert_eq!(
        HandshakeRequest::json_v1().encode(),
        "{\"protocol\":\"json\",\"version\":1}\x1e"
    );
    assert_eq!(HandshakeReply::ok().encode(), "{}\x1e");
    assert_eq!(
        HandshakeReply::error("nope").encode(),
        "{\"error\":\"nope\"}\x1e"
    );
}

#[test]
fn handshake_reply_sharing_a_frame_with_the_first_event_keeps_the_event() {
    let mut d = Decoder::client();
    d.push(b"{}\x1e{\"type\":1,\"target\":\"GatewayQuote\",\"arguments\":[\"X\",{}]}\x1e")
        .unwrap();
    let out = drain(&mut d);
    assert_eq!(out[0], Ok(Decoded::HandshakeReply(HandshakeReply::ok())));
    match &out[1] {
        Ok(Decoded::Message(Message::Invocation(inv))) => {
            assert_eq!(inv.target, "GatewayQuote")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn handshake_error_is_reported() {
    let mut d = Decoder::client();
    d.push(b"{\"error\":\"Requested protocol 'x' is not available.\"}\x1e")
        .unwrap();
    assert_eq!(
        d.next_decoded(),
        Some(Ok(Decoded::HandshakeReply(HandshakeReply::error(
            "Requested protocol 'x' is not available."
        ))))
    );
}

#[test]
fn server_reads_the_handshake_request_then_invocations() {
    let mut d = Decoder::server();
    d.push(HandshakeRequest::json_v1().encode().as_bytes())
        .unwrap();
    d.push(b"{\"type\":1,\"invocationId\":\"0\",\"target\":\"SubscribeAccounts\",\"arguments\":[]}\x1e")
        .unwrap();
    let out = drain(&mut d);
    assert_eq!(
        out[0],
        Ok(Decoded::HandshakeRequest(HandshakeRequest::json_v1()))
    );
    assert_eq!(
        out[1],
        Ok(Decoded::Message(Message::Invocation(
            Invocation::new("SubscribeAccounts", vec![]).with_id("0")
        )))
    );
}

#[test]
fn one_record_split_across_frames_and_several_in_one_frame() {
    let mut d = Decoder::client();
    d.push(b"{}\x1e{\"ty").unwrap();
    assert!(matches!(
        d.next_decoded(),
        Some(Ok(Decoded::HandshakeReply(_)))
    ));
    assert_eq!(d.next_decoded(), None);
    d.push(b"pe\":6}").unwrap();
    assert_eq!(d.next_decoded(), None);
    d.push(b"\x1e{\"type\":6}\x1e\x1e{\"type\":7}\x1e").unwrap();
    let out = drain(&mut d);
    assert_eq!(
        out,
        vec![
            Ok(Decoded::Message(Message::Ping)),
            Ok(Decoded::Message(Message::Ping)),
            Ok(Decoded::Message(Message::Close(Close::default()))),
        ]
    );
}

#[test]
fn unknown_types_are_skipped_and_malformed_records_do_not_stop_the_stream() {
    let mut d = Decoder::client();
    d.push(b"{}\x1e{\"type\":8,\"sequenceId\":1}\x1e{\"type\":99}\x1enot json\x1e{\"type\":6}\x1e")
        .unwrap();
    let out = drain(&mut d);
    assert_eq!(out.len(), 3);
    assert!(matches!(out[1], Err(CodecError::Malformed(_))));
    assert_eq!(out[2], Ok(Decoded::Message(Message::Ping)));
}

#[test]
fn completion_outcomes_decode() {
    let c = |s: &str| Message::decode(s.as_bytes()).unwrap().unwrap();
    assert_eq!(
        c(r#"{"type":3,"invocationId":"1"}"#),
        Message::Completion(Completion::new("1", Outcome::Void))
    );
    assert_eq!(
        c(r#"{"type":3,"invocationId":"1","result":null}"#),
        Message::Completion(Completion::new("1", Outcome::Result(Value::Null)))
    );
    assert_eq!(
        c(r#"{"type":3,"invocationId":"2","error":"boom","headers":{"a":"b"}}"#),
        Message::Completion(Completion {
            invocation_id: "2".into(),
            outcome: Outcome::Error("boom".into()),
            headers: Some([("a".to_string(), "b".to_string())].into()),
        })
    );
    assert!(Message::decode(br#"{"type":3}"#).is_err());
    assert!(Message::decode(br#"{"type":1,"arguments":[]}"#).is_err());
}

#[test]
fn encodings_match_the_spec() {
    let inv = Invocation::new("SubscribeContractQuotes", vec![json!("CON.F.US.MNQ.Z25")]);
    assert_eq!(
        Message::Invocation(inv.clone()).encode(),
        "{\"type\":1,\"target\":\"SubscribeContractQuotes\",\"arguments\":[\"CON.F.US.MNQ.Z25\"]}\x1e"
    );
    assert_eq!(
        Message::Invocation(inv.with_id("7")).encode(),
        "{\"type\":1,\"invocationId\":\"7\",\"target\":\"SubscribeContractQuotes\",\"arguments\":[\"CON.F.US.MNQ.Z25\"]}\x1e"
    );
    assert_eq!(Message::Ping.encode(), "{\"type\":6}\x1e");
    assert_eq!(
        Message::Close(Close {
            error: Some("bye".into()),
            allow_reconnect: true
        })
        .encode(),
        "{\"type\":7,\"error\":\"bye\",\"allowReconnect\":true}\x1e"
    );
    assert_eq!(
        Message::Completion(Completion::new("3", Outcome::Void)).encode(),
        "{\"type\":3,\"invocationId\":\"3\"}\x1e"
    );
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_headers() -> impl Strategy<Value = Option<Headers>> {
    prop::option::of(prop::collection::btree_map(".{0,6}", ".{0,6}", 0..3))
}

fn arb_message() -> impl Strategy<Value = Message> {
    let inv = (
        prop::option::of("[0-9]{1,4}"),
        "[A-Za-z]{1,16}",
        prop::collection::vec(arb_value(), 0..4),
        arb_headers(),
    )
        .prop_map(|(id, target, arguments, headers)| Invocation {
            invocation_id: id,
            target,
            arguments,
            stream_ids: None,
            headers,
        });
    let outcome = prop_oneof![
        Just(Outcome::Void),
        arb_value().prop_map(Outcome::Result),
        ".{0,20}".prop_map(Outcome::Error),
    ];
    prop_oneof![
        inv.prop_map(Message::Invocation),
        ("[0-9]{1,4}", outcome, arb_headers()).prop_map(|(id, outcome, headers)| {
            Message::Completion(Completion {
                invocation_id: id,
                outcome,
                headers,
            })
        }),
        ("[0-9]{1,4}", arb_value()).prop_map(|(id, item)| Message::StreamItem {
            invocation_id: id,
            item,
            headers: None,
        }),
        "[0-9]{1,4}".prop_map(|id| Message::CancelInvocation {
            invocation_id: id,
            headers: None
        }),
        Just(Message::Ping),
        (prop::option::of(".{0,20}"), any::<bool>()).prop_map(|(error, allow_reconnect)| {
            Message::Close(Close {
                error,
                allow_reconnect,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        for role in [Role::Client, Role::Server] {
            let mut d = Decoder::new(role);
            for chunk in &chunks {
                let _ = d.push(chunk);
                while d.next_decoded().is_some() {}
            }
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,200}") {
        let mut d = Decoder::client();
        let _ = d.push(b"{}\x1e");
        let _ = d.push(s.as_bytes());
        let _ = d.push(b"\x1e");
        while d.next_decoded().is_some() {}
        let _ = Message::decode(s.as_bytes());
    }

    #[test]
    fn encode_then_decode_round_trips_across_any_split(
        msgs in prop::collection::vec(arb_message(), 1..6),
        split in any::<prop::sample::Index>(),
    ) {
        let mut wire = HandshakeReply::ok().encode().into_bytes();
        for m in &msgs {
            wire.extend_from_slice(m.encode().as_bytes());
        }
        let at = split.index(wire.len());
        let mut d = Decoder::client();
        d.push(&wire[..at]).unwrap();
        let mut out = drain(&mut d);
        d.push(&wire[at..]).unwrap();
        out.extend(drain(&mut d));
        prop_assert_eq!(out.remove(0), Ok(Decoded::HandshakeReply(HandshakeReply::ok())));
        let decoded: Vec<Message> = out
            .into_iter()
            .map(|r| match r { Ok(Decoded::Message(m)) => m, other => panic!("{other:?}") })
            .collect();
        prop_assert_eq!(decoded, msgs);
    }
}
