//! The scheduler endpoint's status codes and headers, byte for byte, with
//! malformed input; the master keeps serving through all of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::io::Read;
use std::time::Duration;

use mesos_tests::cluster::Cluster;
use mesos_tests::raw_http::{self, Response};

const PATH: &str = "/api/v1/scheduler";
const JSON: (&str, &str) = ("Content-Type", "application/json");
const SUBSCRIBE: &str =
    r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"raw"}}}"#;

fn post(cluster: &Cluster, headers: &[(&str, &str)], body: &str) -> Response {
    raw_http::request(&cluster.master, "POST", PATH, headers, body.as_bytes()).expect("request")
}

/// Opens a subscription; returns the stream id, the framework id and the
/// socket (the subscription lives as long as it).
fn subscribe(cluster: &Cluster) -> (String, String, std::net::TcpStream, Vec<u8>) {
    let (head, mut rest, mut socket) = raw_http::open_stream(
        &cluster.master,
        PATH,
        &[JSON, ("Accept", "application/json")],
        SUBSCRIBE.as_bytes(),
    )
    .expect("subscribe");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert!(head.header("content-length").is_none());
    let stream_id = head
        .header("mesos-stream-id")
        .expect("Mesos-Stream-Id")
        .to_string();
    // Read until SUBSCRIBED and the first HEARTBEAT are both in.
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&raw_http::dechunk(&rest)).contains("HEARTBEAT") {
        let n = socket.read(&mut buf).expect("read events");
        assert!(n > 0, "stream closed early");
        rest.extend_from_slice(&buf[..n]);
    }
    let events = raw_http::dechunk(&rest);
    let text = String::from_utf8_lossy(&events).to_string();
    // RecordIO: "<len>\n<json>" with the first record SUBSCRIBED.
    let (len, tail) = text.split_once('\n').expect("record length");
    let len: usize = len.parse().expect("numeric length");
    let first: serde_json::Value =
        serde_json::from_str(&tail[..len]).expect("first record is JSON");
    assert_eq!(first["type"], "SUBSCRIBED");
    assert_eq!(first["subscribed"]["heartbeat_interval_seconds"], 15.0);
    let framework_id = first["subscribed"]["framework_id"]["value"]
        .as_str()
        .expect("id")
        .to_string();
    (stream_id, framework_id, socket, events)
}

#[test]
fn malformed_calls_get_the_right_status_and_a_message() {
    let cluster = Cluster::start();

    let r = post(&cluster, &[JSON], "{not json");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Failed to parse"), "{}", r.text());

    let r = post(&cluster, &[], SUBSCRIBE);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Content-Type"), "{}", r.text());

    let r = post(&cluster, &[("Content-Type", "text/plain")], SUBSCRIBE);
    assert_eq!(r.status, 415, "{}", r.text());

    let r = raw_http::request(&cluster.master, "GET", PATH, &[], b"").expect("GET");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));

    let r = post(
        &cluster,
        &[JSON],
        r#"{"type":"TEARDOWN","framework_id":{"value":"nope"}}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Framework cannot be found");

    let r = post(
        &cluster,
        &[JSON],
        r#"{"type":"ACCEPT","framework_id":{"value":"x"}}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("'accept'"), "{}", r.text());

    let r = post(
        &cluster,
        &[JSON],
        r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u"}}}"#,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("subscribe.framework_info.name"),
        "{}",
        r.text()
    );

    let r = post(&cluster, &[JSON, ("Accept", "text/html")], SUBSCRIBE);
    assert_eq!(r.status, 406, "{}", r.text());

    let r = post(&cluster, &[JSON, ("Mesos-Stream-Id", "abc")], SUBSCRIBE);
    assert_eq!(r.status, 400);

    // Through all of that the master kept serving.
    assert_eq!(
        raw_http::get(&cluster.master, "/health")
            .expect("health")
            .status,
        200
    );
    let (stream_id, framework_id, _socket, _) = subscribe(&cluster);

    // A call without the stream id, with a wrong one, then a good one.
    let revive = format!(r#"{{"type":"REVIVE","framework_id":{{"value":"{framework_id}"}}}}"#);
    let r = post(&cluster, &[JSON], &revive);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Mesos-Stream-Id"), "{}", r.text());
    let r = post(&cluster, &[JSON, ("Mesos-Stream-Id", "wrong")], &revive);
    assert_eq!(r.status, 400);
    let r = post(
        &cluster,
        &[JSON, ("Mesos-Stream-Id", stream_id.as_str())],
        &revive,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());

    // An acknowledgement whose uuid is not 16 bytes.
    let ack = format!(
        r#"{{"type":"ACKNOWLEDGE","framework_id":{{"value":"{framework_id}"}},
            "acknowledge":{{"agent_id":{{"value":"a"}},"task_id":{{"value":"t"}},"uuid":"AAAA"}}}}"#
    );
    let r = post(
        &cluster,
        &[JSON, ("Mesos-Stream-Id", stream_id.as_str())],
        &ack,
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("UUID"), "{}", r.text());
}

#[test]
fn calls_after_the_stream_closed_are_forbidden() {
    let cluster = Cluster::start();
    let (stream_id, framework_id, socket, _) = subscribe(&cluster);
    drop(socket);
    let revive = format!(r#"{{"type":"REVIVE","framework_id":{{"value":"{framework_id}"}}}}"#);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = post(
            &cluster,
            &[JSON, ("Mesos-Stream-Id", stream_id.as_str())],
            &revive,
        );
        if r.status == 403 {
            assert_eq!(r.text(), "Framework is not subscribed");
            break;
        }
        assert_eq!(r.status, 202, "{}", r.text());
        assert!(
            std::time::Instant::now() < deadline,
            "the master never noticed the closed stream"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let state = cluster.state();
    assert_eq!(state["frameworks"][0]["connected"], false);
}

#[test]
fn protobuf_subscribe_is_answered_in_protobuf() {
    let cluster = Cluster::start();
    // SUBSCRIBE{framework_info{user:"u", name:"p"}} encoded by hand:
    // Call.type=1 (field 2, varint), Call.subscribe (field 3) {
    //   framework_info (field 1) { user (1) "u", name (2) "p" } }
    let body: &[u8] = &[
        0x10, 0x01, 0x1a, 0x08, 0x0a, 0x06, 0x0a, 0x01, b'u', 0x12, 0x01, b'p',
    ];
    let (head, _, _socket) = raw_http::open_stream(
        &cluster.master,
        PATH,
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Accept", "application/x-protobuf"),
        ],
        body,
    )
    .expect("subscribe");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/x-protobuf"));
}

#[test]
fn an_invalid_framework_gets_an_error_event_and_the_stream_ends() {
    let cluster = Cluster::start();
    let body = r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"bad","role":"a b"}}}"#;
    let r = post(&cluster, &[JSON, ("Accept", "application/json")], body);
    assert_eq!(r.status, 200);
    let text = r.text();
    let (len, record) = text.split_once('\n').expect("one record");
    assert_eq!(
        len.parse::<usize>().unwrap(),
        record.len(),
        "exactly one record, then the end"
    );
    let event: serde_json::Value = serde_json::from_str(record).unwrap();
    assert_eq!(event["type"], "ERROR");
    assert!(
        event["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'a b'"),
        "{event}"
    );
    assert!(cluster.state()["frameworks"].as_array().unwrap().is_empty());
}
