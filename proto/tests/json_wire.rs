//! Mesos's JSON mapping, checked byte for byte where the facts file shows
//! what Mesos emits, and rule by rule for the lenient parser.

use mesos_proto::json::{JsonError, from_json, from_json_value, to_json, to_json_vec};
use mesos_proto::v1::{self, executor, scheduler};
use prost_reflect::ReflectMessage;
use serde_json::json;

fn text<M: ReflectMessage>(message: &M) -> String {
    String::from_utf8_lossy(&to_json_vec(message)).into_owned()
}

fn framework_id(value: &str) -> v1::FrameworkId {
    v1::FrameworkId {
        value: value.into(),
    }
}

fn agent_id(value: &str) -> v1::AgentId {
    v1::AgentId {
        value: value.into(),
    }
}

fn scalar(name: &str, value: f64) -> v1::Resource {
    v1::Resource {
        name: name.into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value }),
        ..Default::default()
    }
}

// ------------------------------------------------------------ rendering

#[test]
fn subscribed_event_is_rendered_as_mesos_does() {
    let event = scheduler::Event {
        r#type: Some(scheduler::event::Type::Subscribed as i32),
        subscribed: Some(scheduler::event::Subscribed {
            framework_id: framework_id("m1-0000"),
            heartbeat_interval_seconds: Some(15.0),
            master_info: Some(v1::MasterInfo {
                id: "m1".into(),
                ip: 16_842_879,
                port: 5050,
                pid: Some("master@127.0.1.1:5050".into()),
                hostname: Some("localhost".into()),
                version: Some(mesos_proto::MESOS_VERSION.into()),
                address: Some(v1::Address {
                    hostname: Some("localhost".into()),
                    ip: Some("127.0.1.1".into()),
                    port: 5050,
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    assert_eq!(
        text(&event),
        concat!(
            r#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"m1-0000"},"#,
            r#""heartbeat_interval_seconds":15.0,"master_info":{"id":"m1","ip":16842879,"#,
            r#""port":5050,"pid":"master@127.0.1.1:5050","hostname":"localhost","#,
            r#""version":"1.11.0","address":{"hostname":"localhost","ip":"127.0.1.1","#,
            r#""port":5050}}}}"#
        )
    );
    assert_eq!(
        text(&scheduler::Event {
            r#type: Some(scheduler::event::Type::Heartbeat as i32),
            ..Default::default()
        }),
        r#"{"type":"HEARTBEAT"}"#
    );
}

#[test]
fn update_event_carries_uuid_as_padded_base64() {
    let event = scheduler::Event {
        r#type: Some(scheduler::event::Type::Update as i32),
        update: Some(scheduler::event::Update {
            status: v1::TaskStatus {
                task_id: v1::TaskId { value: "t1".into() },
                state: v1::TaskState::TaskRunning as i32,
                source: Some(v1::task_status::Source::Executor as i32),
                agent_id: Some(agent_id("m1-S0")),
                executor_id: Some(v1::ExecutorId { value: "e1".into() }),
                timestamp: Some(1_700_000_000.5),
                uuid: Some((0u8..16).collect()),
                ..Default::default()
            },
        }),
        ..Default::default()
    };
    assert_eq!(
        text(&event),
        concat!(
            r#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"t1"},"#,
            r#""state":"TASK_RUNNING","source":"SOURCE_EXECUTOR","agent_id":{"value":"m1-S0"},"#,
            r#""executor_id":{"value":"e1"},"timestamp":1700000000.5,"#,
            r#""uuid":"AAECAwQFBgcICQoLDA0ODw=="}}}"#
        )
    );
}

#[test]
fn offer_with_resources_is_rendered_as_mesos_does() {
    let mut cpus = scalar("cpus", 2.0);
    cpus.role = Some("*".into());
    let ports = v1::Resource {
        name: "ports".into(),
        r#type: v1::value::Type::Ranges as i32,
        ranges: Some(v1::value::Ranges {
            range: vec![v1::value::Range {
                begin: 31000,
                end: 32000,
            }],
        }),
        role: Some("*".into()),
        ..Default::default()
    };
    let offer = v1::Offer {
        id: v1::OfferId {
            value: "m1-O1".into(),
        },
        framework_id: framework_id("m1-0000"),
        agent_id: agent_id("m1-S0"),
        hostname: "h1".into(),
        url: Some(v1::Url {
            scheme: "http".into(),
            address: v1::Address {
                hostname: Some("h1".into()),
                ip: Some("127.0.0.1".into()),
                port: 5051,
            },
            path: Some("/slave(1)".into()),
            ..Default::default()
        }),
        resources: vec![cpus, ports],
        ..Default::default()
    };
    assert_eq!(
        text(&offer),
        concat!(
            r#"{"id":{"value":"m1-O1"},"framework_id":{"value":"m1-0000"},"#,
            r#""agent_id":{"value":"m1-S0"},"hostname":"h1","url":{"scheme":"http","#,
            r#""address":{"hostname":"h1","ip":"127.0.0.1","port":5051},"path":"/slave(1)"},"#,
            r#""resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":2.0},"role":"*"},"#,
            r#"{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000}]},"#,
            r#""role":"*"}]}"#
        )
    );
    let back: v1::Offer = from_json(&to_json_vec(&offer)).unwrap();
    assert_eq!(back, offer);
}

#[test]
fn explicit_non_deprecated_defaults_are_rendered() {
    let cases: Vec<(String, &str)> = vec![
        (text(&v1::Filters::default()), r#"{"refuse_seconds":5.0}"#),
        (
            text(&v1::CommandInfo {
                value: Some("echo hi".into()),
                ..Default::default()
            }),
            r#"{"shell":true,"value":"echo hi"}"#,
        ),
        (
            text(&v1::command_info::Uri {
                value: "http://x/y.tgz".into(),
                ..Default::default()
            }),
            r#"{"value":"http://x/y.tgz","extract":true}"#,
        ),
        (
            text(&v1::AgentInfo {
                hostname: "h".into(),
                ..Default::default()
            }),
            r#"{"hostname":"h","port":5051}"#,
        ),
        (
            text(&v1::FrameworkInfo {
                user: "u".into(),
                name: "n".into(),
                ..Default::default()
            }),
            // `role` declares a default too, but is deprecated.
            r#"{"user":"u","name":"n","failover_timeout":0.0,"checkpoint":false}"#,
        ),
        (
            text(&v1::environment::Variable {
                name: "A".into(),
                value: Some("1".into()),
                ..Default::default()
            }),
            r#"{"name":"A","type":"VALUE","value":"1"}"#,
        ),
        (
            text(&v1::network_info::IpAddress::default()),
            r#"{"protocol":"IPv4"}"#,
        ),
        (
            text(&v1::HealthCheck {
                r#type: Some(v1::health_check::Type::Command as i32),
                ..Default::default()
            }),
            concat!(
                r#"{"delay_seconds":15.0,"interval_seconds":10.0,"timeout_seconds":20.0,"#,
                r#""consecutive_failures":3,"grace_period_seconds":10.0,"type":"COMMAND"}"#
            ),
        ),
        (
            text(&v1::container_info::DockerInfo {
                image: "busybox".into(),
                ..Default::default()
            }),
            r#"{"image":"busybox","network":"HOST","privileged":false}"#,
        ),
        (text(&v1::LinuxInfo::default()), r#"{"share_cgroups":true}"#),
        (
            text(&scalar("mem", 64.0)),
            r#"{"name":"mem","type":"SCALAR","scalar":{"value":64.0}}"#,
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

#[test]
fn wide_integers_are_json_numbers_both_ways() {
    let range = v1::value::Range {
        begin: 0,
        end: u64::MAX,
    };
    assert_eq!(text(&range), r#"{"begin":0,"end":18446744073709551615}"#);
    assert_eq!(
        from_json::<v1::value::Range>(text(&range).as_bytes()).unwrap(),
        range
    );
    let time = v1::TimeInfo {
        nanoseconds: i64::MIN,
    };
    assert_eq!(text(&time), r#"{"nanoseconds":-9223372036854775808}"#);
    assert_eq!(
        from_json::<v1::TimeInfo>(text(&time).as_bytes()).unwrap(),
        time
    );
    let parsed: v1::value::Range =
        from_json(br#"{"begin":"1","end":"18446744073709551615"}"#).unwrap();
    assert_eq!(parsed, range_of(1, u64::MAX));
    let err = from_json::<v1::Address>(br#"{"port":4294967296}"#).unwrap_err();
    assert!(err.to_string().contains("'port'"), "{err}");
}

fn range_of(begin: u64, end: u64) -> v1::value::Range {
    v1::value::Range { begin, end }
}

#[test]
fn maps_are_json_objects() {
    let task = v1::TaskInfo {
        name: "t".into(),
        task_id: v1::TaskId { value: "t".into() },
        agent_id: agent_id("a"),
        limits: [("cpus".to_string(), v1::value::Scalar { value: 1.5 })].into(),
        ..Default::default()
    };
    assert_eq!(
        to_json(&task),
        json!({
            "name": "t",
            "task_id": {"value": "t"},
            "agent_id": {"value": "a"},
            "limits": {"cpus": {"value": 1.5}}
        })
    );
    assert_eq!(
        from_json_value::<v1::TaskInfo>(&to_json(&task)).unwrap(),
        task
    );
}

#[test]
fn offer_constraints_parse_with_maps_and_oneofs() {
    use scheduler::attribute_constraint::{predicate, selector};
    let constraints: scheduler::OfferConstraints = from_json(
        br#"{"role_constraints":{"web":{"groups":[{"attribute_constraints":[
            {"selector":{"attribute_name":"rack"},"predicate":{"text_equals":{"value":"r1"}}},
            {"selector":{"pseudoattribute_type":"HOSTNAME"},"predicate":{"exists":{}}}]}]}}}"#,
    )
    .unwrap();
    let group = &constraints.role_constraints["web"].groups[0];
    let first = &group.attribute_constraints[0];
    assert_eq!(
        first.selector.selector,
        Some(selector::Selector::AttributeName("rack".into()))
    );
    assert_eq!(
        first.predicate.predicate,
        Some(predicate::Predicate::TextEquals(predicate::TextEquals {
            value: "r1".into()
        }))
    );
    assert_eq!(
        group.attribute_constraints[1].selector.selector,
        Some(selector::Selector::PseudoattributeType(
            selector::PseudoattributeType::Hostname as i32
        ))
    );
    let back: scheduler::OfferConstraints = from_json_value(&to_json(&constraints)).unwrap();
    assert_eq!(back, constraints);

    let err = from_json::<scheduler::OfferConstraints>(
        br#"{"role_constraints":{"web":{"groups":[{"attribute_constraints":[
            {"selector":{"attribute_name":"rack"}}]}]}}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Missing required fields: \
         role_constraints[web].groups[0].attribute_constraints[0].predicate"
    );
}

#[test]
fn a_rich_task_round_trips() {
    let task = v1::TaskInfo {
        name: "web".into(),
        task_id: v1::TaskId {
            value: "web-1".into(),
        },
        agent_id: agent_id("m1-S0"),
        resources: vec![scalar("cpus", 0.5), scalar("mem", 32.0)],
        command: Some(v1::CommandInfo {
            shell: Some(false),
            value: Some("/bin/sleep".into()),
            arguments: vec!["sleep".into(), "10".into()],
            environment: Some(v1::Environment {
                variables: vec![v1::environment::Variable {
                    name: "K".into(),
                    r#type: Some(v1::environment::variable::Type::Value as i32),
                    value: Some("V".into()),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        container: Some(v1::ContainerInfo {
            r#type: v1::container_info::Type::Mesos as i32,
            volumes: vec![v1::Volume {
                mode: v1::volume::Mode::Ro as i32,
                container_path: "/data".into(),
                host_path: Some("/srv/data".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        kill_policy: Some(v1::KillPolicy {
            grace_period: Some(v1::DurationInfo {
                nanoseconds: 3_000_000_000,
            }),
        }),
        data: Some(b"\x00\xffbinary".to_vec()),
        labels: Some(v1::Labels {
            labels: vec![v1::Label {
                key: "k".into(),
                value: Some("v".into()),
            }],
        }),
        ..Default::default()
    };
    let rendered = to_json(&task);
    assert_eq!(rendered["data"], json!("AP9iaW5hcnk="));
    assert_eq!(rendered["container"]["volumes"][0]["mode"], json!("RO"));
    let back: v1::TaskInfo = from_json(&to_json_vec(&task)).unwrap();
    assert_eq!(back, task);
}

// ------------------------------------------------------------ parsing rules

#[test]
fn unknown_keys_and_nulls_are_ignored() {
    let filters: v1::Filters =
        from_json(br#"{"refuse_seconds":null,"bogus":{"x":[1,2]},"also":"no"}"#).unwrap();
    assert_eq!(filters.refuse_seconds, None);
}

#[test]
fn numbers_may_be_strings() {
    let range: v1::value::Range = from_json(br#"{"begin":"31000","end":32000}"#).unwrap();
    assert_eq!(range, range_of(31000, 32000));
    let address: v1::Address = from_json(br#"{"port":"5050"}"#).unwrap();
    assert_eq!(address.port, 5050);
    let filters: v1::Filters = from_json(br#"{"refuse_seconds":"Infinity"}"#).unwrap();
    assert_eq!(filters.refuse_seconds, Some(f64::INFINITY));
    let err = from_json::<v1::Address>(br#"{"port":"fifty"}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"'port': expected an integer, got "fifty""#
    );
}

#[test]
fn bools_may_be_strings() {
    for (body, want) in [
        (r#"{"user":"u","name":"n","checkpoint":true}"#, true),
        (r#"{"user":"u","name":"n","checkpoint":"true"}"#, true),
        (r#"{"user":"u","name":"n","checkpoint":"false"}"#, false),
    ] {
        let info: v1::FrameworkInfo = from_json(body.as_bytes()).unwrap();
        assert_eq!(info.checkpoint, Some(want), "{body}");
    }
    let err = from_json::<v1::FrameworkInfo>(br#"{"user":"u","name":"n","checkpoint":"yes"}"#)
        .unwrap_err();
    assert!(err.to_string().starts_with("'checkpoint': "), "{err}");
}

#[test]
fn a_single_value_stands_for_a_one_element_repeated_field() {
    let info: v1::FrameworkInfo =
        from_json(br#"{"user":"u","name":"n","roles":"web","capabilities":{"type":"MULTI_ROLE"}}"#)
            .unwrap();
    assert_eq!(info.roles, vec!["web".to_string()]);
    assert_eq!(info.capabilities.len(), 1);
    assert_eq!(
        info.capabilities[0].r#type(),
        v1::framework_info::capability::Type::MultiRole
    );
}

#[test]
fn an_array_for_a_single_field_is_an_error() {
    let err = from_json::<v1::Filters>(br#"{"refuse_seconds":[1]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'refuse_seconds': expected a single value, got an array"
    );
    let err = from_json::<scheduler::Call>(br#"{"framework_id":[{"value":"f"}]}"#).unwrap_err();
    assert!(err.to_string().starts_with("'framework_id': "), "{err}");
}

#[test]
fn enums_are_names_and_unknown_names_unset_optional_fields() {
    let status: v1::TaskStatus = from_json(
        br#"{"task_id":{"value":"t"},"state":"TASK_FAILED","source":"SOURCE_FROM_THE_FUTURE",
            "reason":"REASON_COMMAND_EXECUTOR_FAILED"}"#,
    )
    .unwrap();
    assert_eq!(status.state(), v1::TaskState::TaskFailed);
    assert_eq!(status.source, None);
    assert_eq!(
        status.reason(),
        v1::task_status::Reason::CommandExecutorFailed
    );
    let err = from_json::<v1::TaskStatus>(br#"{"task_id":{"value":"t"},"state":"TASK_NOPE"}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"'state': unknown enum value "TASK_NOPE""#
    );
}

#[test]
fn bytes_are_base64_and_bad_base64_names_the_field() {
    let call: scheduler::Call = from_json(
        br#"{"type":"MESSAGE","framework_id":{"value":"f"},
            "message":{"agent_id":{"value":"a"},"executor_id":{"value":"e"},"data":"aGk="}}"#,
    )
    .unwrap();
    assert_eq!(call.message.map(|m| m.data), Some(b"hi".to_vec()));
    let err = from_json::<scheduler::Call>(
        br#"{"message":{"agent_id":{"value":"a"},"executor_id":{"value":"e"},"data":"@@"}}"#,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("'message.data': invalid base64"),
        "{err}"
    );
}

#[test]
fn missing_required_fields_are_listed_with_their_paths() {
    let err = from_json::<v1::TaskInfo>(
        br#"{"name":"t","task_id":{},"agent_id":{"value":"a"},"resources":[{"name":"cpus"}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        err,
        JsonError::MissingRequired(vec!["task_id.value".into(), "resources[0].type".into()])
    );
    assert_eq!(
        err.to_string(),
        "Missing required fields: task_id.value, resources[0].type"
    );
}

#[test]
fn malformed_documents_are_errors() {
    assert!(matches!(
        from_json::<v1::Filters>(b"{"),
        Err(JsonError::Syntax(_))
    ));
    let err = from_json::<v1::Filters>(b"[]").unwrap_err();
    assert_eq!(err.to_string(), "'<root>': expected a JSON object");
    let err = from_json::<v1::Offer>(br#"{"id":"o1"}"#).unwrap_err();
    assert_eq!(err.to_string(), "'id': expected a JSON object");
}

// ------------------------------------------------------------ pymesos

#[test]
fn pymesos_acknowledge_is_accepted() {
    // pymesos base64-encodes the uuid it received in the UPDATE event.
    let call: scheduler::Call = from_json(
        br#"{"type":"ACKNOWLEDGE","framework_id":{"value":"m1-0000"},
            "acknowledge":{"agent_id":{"value":"m1-S0"},"task_id":{"value":"t1"},
            "uuid":"AAECAwQFBgcICQoLDA0ODw=="}}"#,
    )
    .unwrap();
    assert_eq!(call.r#type(), scheduler::call::Type::Acknowledge);
    let ack = call.acknowledge.unwrap();
    assert_eq!(ack.uuid, (0u8..16).collect::<Vec<u8>>());
}

#[test]
fn pymesos_executor_update_is_accepted() {
    // pymesos sends `timestamp` as an int although the field is a double.
    let call: executor::Call = from_json(
        br#"{"type":"UPDATE","executor_id":{"value":"e1"},"framework_id":{"value":"f1"},
            "update":{"status":{"task_id":{"value":"t1"},"state":"TASK_RUNNING",
            "source":"SOURCE_EXECUTOR","timestamp":1700000000,
            "uuid":"AAECAwQFBgcICQoLDA0ODw==","data":"aGk="}}}"#,
    )
    .unwrap();
    assert_eq!(call.r#type(), executor::call::Type::Update);
    let status = call.update.unwrap().status;
    assert_eq!(status.timestamp, Some(1.7e9));
    assert_eq!(status.uuid.map(|u| u.len()), Some(16));
    assert_eq!(status.data, Some(b"hi".to_vec()));

    let err = from_json::<executor::Call>(br#"{"type":"HEARTBEAT"}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Missing required fields: executor_id, framework_id"
    );
}

#[test]
fn pymesos_subscribe_is_accepted() {
    let call: scheduler::Call = from_json(
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"f",
            "failover_timeout":100,"capabilities":[{"type":"GPU_RESOURCES"}]}}}"#,
    )
    .unwrap();
    let info = call.subscribe.unwrap().framework_info;
    assert_eq!(info.failover_timeout, Some(100.0));
    assert_eq!(
        info.capabilities[0].r#type(),
        v1::framework_info::capability::Type::GpuResources
    );
}
