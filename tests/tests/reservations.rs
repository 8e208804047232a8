//! Dynamic reservations and persistent volumes through real processes: a
//! framework reserves, creates a volume and launches a task writing to it
//! in one ACCEPT; the data outlives the task and an agent restart; DESTROY
//! and UNRESERVE give the disk back. Operators do the same through the
//! operator API and the legacy endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::Duration;

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::codec::{self, Format};
use mesos_proto::v1::master::{Call, call};
use mesos_proto::v1::resource::{DiskInfo, ReservationInfo, disk_info, reservation_info};
use mesos_proto::v1::{self, TaskState, offer::operation, scheduler, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};
use mesos_tests::raw_http;

const ROLE: &str = "web";
const PRINCIPAL: &str = "ops";

fn reserved(mut r: v1::Resource) -> v1::Resource {
    r.reservations.push(ReservationInfo {
        r#type: Some(reservation_info::Type::Dynamic as i32),
        role: Some(ROLE.into()),
        principal: Some(PRINCIPAL.into()),
        labels: None,
    });
    r
}

fn volume(id: &str, mb: f64) -> v1::Resource {
    let mut r = reserved(scalar("disk", mb));
    r.disk = Some(Box::new(DiskInfo {
        persistence: Some(disk_info::Persistence {
            id: id.into(),
            principal: Some(PRINCIPAL.into()),
        }),
        volume: Some(v1::Volume {
            mode: v1::volume::Mode::Rw as i32,
            container_path: "data".into(),
            ..Default::default()
        }),
        source: None,
    }));
    r
}

/// The resources a framework in `ROLE` sends back: `allocation_info` for
/// MULTI_ROLE ones, as offered.
fn allocated(mut r: v1::Resource) -> v1::Resource {
    r.allocation_info = Some(v1::resource::AllocationInfo {
        role: Some(ROLE.into()),
    });
    r
}

fn op(kind: operation::Type) -> v1::offer::Operation {
    v1::offer::Operation {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn reserve(resources: Vec<v1::Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        reserve: Some(operation::Reserve {
            source: vec![],
            resources,
        }),
        ..op(operation::Type::Reserve)
    }
}

fn unreserve(resources: Vec<v1::Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        unreserve: Some(operation::Unreserve { resources }),
        ..op(operation::Type::Unreserve)
    }
}

fn create(volumes: Vec<v1::Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        create: Some(operation::Create { volumes }),
        ..op(operation::Type::Create)
    }
}

fn destroy(volumes: Vec<v1::Resource>) -> v1::offer::Operation {
    v1::offer::Operation {
        destroy: Some(operation::Destroy { volumes }),
        ..op(operation::Type::Destroy)
    }
}

fn launch(task: v1::TaskInfo) -> v1::offer::Operation {
    v1::offer::Operation {
        launch: Some(operation::Launch {
            task_infos: vec![task],
        }),
        ..op(operation::Type::Launch)
    }
}

fn task(offer: &v1::Offer, id: &str, command: &str, resources: Vec<v1::Resource>) -> v1::TaskInfo {
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources,
        command: Some(v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Framework {
    client: SchedulerClient,
    events: EventStream,
    /// Offers received and not used yet, whatever the test was waiting
    /// for when they came: an offer nobody answers holds its resources.
    outstanding: Vec<v1::Offer>,
}

/// Outstanding offers of one agent, seen as one.
struct Offers {
    view: v1::Offer,
    ids: Vec<v1::OfferId>,
}

impl std::ops::Deref for Offers {
    type Target = v1::Offer;

    fn deref(&self) -> &v1::Offer {
        &self.view
    }
}

impl Framework {
    async fn subscribe(cluster: &Cluster) -> Framework {
        let mut client = SchedulerClient::new(&cluster.master);
        let events = client
            .subscribe(v1::FrameworkInfo {
                user: String::new(),
                name: "volumes".into(),
                roles: vec![ROLE.into()],
                principal: Some(PRINCIPAL.into()),
                checkpoint: Some(true),
                capabilities: vec![v1::framework_info::Capability {
                    r#type: Some(v1::framework_info::capability::Type::MultiRole as i32),
                }],
                ..Default::default()
            })
            .await
            .unwrap();
        Framework {
            client,
            events,
            outstanding: Vec::new(),
        }
    }

    /// The next event; offers and rescinds are booked on the way.
    async fn event(&mut self) -> scheduler::Event {
        let event = tokio::time::timeout(Duration::from_secs(30), self.events.next())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("stream open");
        match event.r#type() {
            event::Type::Offers => {
                let offers = event.offers.clone().unwrap_or_default().offers;
                self.outstanding.extend(offers);
            }
            event::Type::Rescind => {
                if let Some(rescind) = &event.rescind {
                    self.outstanding.retain(|o| o.id != rescind.offer_id);
                }
            }
            _ => {}
        }
        event
    }

    /// Offers are held until together they satisfy `want` (one agent
    /// here). Resources freed while an offer is out come in another offer;
    /// declining the parts could go on forever, so they are accepted
    /// together, as Mesos allows for offers of one agent.
    async fn offer_where(&mut self, want: impl Fn(&v1::Offer) -> bool) -> Offers {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(first) = self.outstanding.first() {
                let view = v1::Offer {
                    resources: self
                        .outstanding
                        .iter()
                        .flat_map(|o| o.resources.clone())
                        .collect(),
                    ..first.clone()
                };
                if want(&view) {
                    let ids = self.outstanding.drain(..).map(|o| o.id).collect();
                    return Offers { view, ids };
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no wanted offer within 60 s (holding {:?})",
                self.outstanding
            );
            self.event().await;
        }
    }

    async fn accept(&self, offers: &Offers, operations: Vec<v1::offer::Operation>) {
        self.client
            .call(scheduler::Call {
                r#type: Some(scheduler::call::Type::Accept as i32),
                accept: Some(scheduler::call::Accept {
                    offer_ids: offers.ids.clone(),
                    operations,
                    filters: Some(v1::Filters {
                        refuse_seconds: Some(0.0),
                    }),
                }),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// Waits for `id` to end, acknowledging every update; its final state.
    async fn terminal(&mut self, id: &str) -> v1::TaskStatus {
        loop {
            let event = self.event().await;
            if event.r#type() != event::Type::Update {
                continue;
            }
            let status = event.update.unwrap().status;
            self.client.acknowledge(&status).await.unwrap();
            let terminal = !matches!(
                status.state(),
                TaskState::TaskStaging | TaskState::TaskStarting | TaskState::TaskRunning
            );
            if status.task_id.value == id && terminal {
                return status;
            }
        }
    }
}

fn has_volume(offer: &v1::Offer, id: &str) -> bool {
    offer.resources.iter().any(|r| {
        r.disk
            .as_ref()
            .and_then(|d| d.persistence.as_ref())
            .is_some_and(|p| p.id == id)
    })
}

fn reserved_cpus(offer: &v1::Offer) -> f64 {
    offer
        .resources
        .iter()
        .filter(|r| r.name == "cpus" && !r.reservations.is_empty())
        .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
        .sum()
}

fn options() -> Options {
    Options {
        agent_resources: "cpus:2;mem:512;disk:200".into(),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_create_write_restart_read_destroy_unreserve() {
    let mut cluster = Cluster::start_with(options());
    let mut fw = Framework::subscribe(&cluster).await;

    // One ACCEPT: reserve, make a volume of part of the reserved disk, and
    // run a task that writes into it.
    let offer = fw.offer_where(|_| true).await;
    let reservation = vec![
        allocated(reserved(scalar("cpus", 1.0))),
        allocated(reserved(scalar("mem", 128.0))),
        allocated(reserved(scalar("disk", 100.0))),
    ];
    let writer = task(
        &offer,
        "writer",
        "echo persisted > data/out",
        vec![
            allocated(reserved(scalar("cpus", 0.5))),
            allocated(reserved(scalar("mem", 64.0))),
            allocated(volume("vol1", 50.0)),
        ],
    );
    fw.accept(
        &offer,
        vec![
            reserve(reservation),
            create(vec![allocated(volume("vol1", 50.0))]),
            launch(writer),
        ],
    )
    .await;
    let status = fw.terminal("writer").await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");
    let dir = cluster
        .agent_work_dir(0)
        .join("volumes/roles")
        .join(ROLE)
        .join("vol1");
    assert_eq!(
        std::fs::read_to_string(dir.join("out")).unwrap(),
        "persisted\n"
    );

    // The master shows the reservation; the agent's checkpoint keeps it
    // across a restart, and it is offered to the role with the volume.
    let state = cluster.state();
    let slave = &state["slaves"][0];
    assert_eq!(slave["reserved_resources"][ROLE]["cpus"], 1.0, "{slave}");
    assert_eq!(slave["reserved_resources"][ROLE]["disk"], 100.0, "{slave}");
    assert_eq!(slave["unreserved_resources"]["cpus"], 1.0, "{slave}");
    cluster.kill_agent(0);
    cluster.restart_agent(0, &[]).unwrap();
    // Everything reserved, in one offer (a partial one is declined).
    let whole = |o: &v1::Offer| has_volume(o, "vol1") && reserved_cpus(o) == 1.0;
    let offer = fw.offer_where(whole).await;
    // The offer may be the master's from before the restart: the agent
    // can still be starting.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let state = loop {
        match raw_http::get(&cluster.agents[0], "/state") {
            Ok(response) => break response,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "agent /state: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let agent_state: serde_json::Value = serde_json::from_slice(&state.body).unwrap();
    assert_eq!(
        agent_state["reserved_resources"][ROLE]["disk"], 100.0,
        "{agent_state}"
    );

    // A second task finds the first one's data.
    let reader = task(
        &offer,
        "reader",
        "grep -q persisted data/out",
        vec![
            allocated(reserved(scalar("cpus", 0.5))),
            allocated(reserved(scalar("mem", 64.0))),
            allocated(volume("vol1", 50.0)),
        ],
    );
    fw.accept(&offer, vec![launch(reader)]).await;
    let status = fw.terminal("reader").await;
    assert_eq!(status.state(), TaskState::TaskFinished, "{status:?}");

    // DESTROY deletes the data; UNRESERVE gives everything back.
    let offer = fw.offer_where(whole).await;
    fw.accept(
        &offer,
        vec![
            destroy(vec![allocated(volume("vol1", 50.0))]),
            unreserve(vec![
                allocated(reserved(scalar("cpus", 1.0))),
                allocated(reserved(scalar("mem", 128.0))),
                allocated(reserved(scalar("disk", 100.0))),
            ]),
        ],
    )
    .await;
    let offer = fw
        .offer_where(|o| !has_volume(o, "vol1") && reserved_cpus(o) == 0.0)
        .await;
    assert!(offer.resources.iter().all(|r| r.reservations.is_empty()));
    assert!(!dir.exists(), "a destroyed volume's data is deleted");
    let state = cluster.state();
    assert_eq!(
        state["slaves"][0]["reserved_resources"],
        serde_json::json!({})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_operations_change_nothing() {
    let cluster = Cluster::start_with(options());
    let mut fw = Framework::subscribe(&cluster).await;
    let offer = fw.offer_where(|_| true).await;
    let mut other_role = reserved(scalar("cpus", 1.0));
    other_role.reservations[0].role = Some("db".into());
    let with_id = |mut o: v1::offer::Operation, id: &str| {
        o.id = Some(v1::OperationId { value: id.into() });
        o
    };
    fw.accept(
        &offer,
        vec![
            // Another role's reservation, more than offered, and a volume
            // on unreserved disk are all refused.
            with_id(reserve(vec![allocated(other_role)]), "other-role"),
            with_id(
                reserve(vec![allocated(reserved(scalar("cpus", 5.0)))]),
                "too-much",
            ),
            with_id(
                create(vec![allocated({
                    let mut v = volume("v", 10.0);
                    v.reservations.clear();
                    v
                })]),
                "unreserved-volume",
            ),
            with_id(
                reserve(vec![allocated(reserved(scalar("cpus", 1.0)))]),
                "fine",
            ),
        ],
    )
    .await;
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 4 {
        let event = fw.event().await;
        if event.r#type() == event::Type::UpdateOperationStatus {
            let status = event.update_operation_status.unwrap().status;
            seen.insert(
                status.operation_id.clone().unwrap().value,
                (status.state(), status.message.unwrap_or_default()),
            );
        }
    }
    assert_eq!(seen["fine"].0, v1::OperationState::OperationFinished);
    for id in ["other-role", "too-much", "unreserved-volume"] {
        assert_eq!(seen[id].0, v1::OperationState::OperationError, "{id}");
    }
    assert!(
        seen["other-role"].1.contains("db"),
        "{:?}",
        seen["other-role"]
    );
    assert!(
        seen["unreserved-volume"].1.contains("unreserved"),
        "{:?}",
        seen["unreserved-volume"]
    );
    let state = cluster.state();
    assert_eq!(
        state["slaves"][0]["reserved_resources"],
        serde_json::json!({ROLE: {"cpus": 1.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}}),
        "only the valid reservation was made"
    );
}

fn operator(cluster: &Cluster, call: &Call) -> raw_http::Response {
    raw_http::request(
        &cluster.master,
        "POST",
        "/api/v1",
        &[("Content-Type", "application/json")],
        &codec::encode(Format::Json, call),
    )
    .unwrap()
}

fn reserved_on_master(cluster: &Cluster) -> serde_json::Value {
    cluster.state()["slaves"][0]["reserved_resources"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_reserve_and_make_volumes() {
    let cluster = Cluster::start_with(options());
    // An offer outstanding to a framework does not stop the operator: it
    // is rescinded to make room.
    let mut fw = Framework::subscribe(&cluster).await;
    let offer = fw.offer_where(|_| true).await;
    let agent_id = offer.agent_id.clone();

    let reserve = |resources: Vec<v1::Resource>| Call {
        r#type: Some(call::Type::ReserveResources as i32),
        reserve_resources: Some(call::ReserveResources {
            agent_id: agent_id.clone(),
            source: vec![],
            resources,
        }),
        ..Default::default()
    };
    let r = operator(
        &cluster,
        &reserve(vec![
            reserved(scalar("cpus", 2.0)),
            reserved(scalar("disk", 100.0)),
        ]),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(reserved_on_master(&cluster)[ROLE]["cpus"], 2.0);

    // Bad input: unreserved resources, more than the agent has, an
    // unknown agent.
    let r = operator(&cluster, &reserve(vec![scalar("mem", 1.0)]));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("not dynamically reserved"),
        "{}",
        r.text()
    );
    let r = operator(&cluster, &reserve(vec![reserved(scalar("mem", 100_000.0))]));
    assert_eq!(r.status, 409, "{}", r.text());
    let mut unknown = reserve(vec![reserved(scalar("mem", 1.0))]);
    unknown.reserve_resources.as_mut().unwrap().agent_id.value = "nope".into();
    assert_eq!(operator(&cluster, &unknown).status, 400);

    // A volume through the operator API, then through the legacy form.
    let create = Call {
        r#type: Some(call::Type::CreateVolumes as i32),
        create_volumes: Some(call::CreateVolumes {
            agent_id: agent_id.clone(),
            volumes: vec![volume("ops-vol", 40.0)],
        }),
        ..Default::default()
    };
    let r = operator(&cluster, &create);
    assert_eq!(r.status, 202, "{}", r.text());
    let dir = cluster
        .agent_work_dir(0)
        .join("volumes/roles")
        .join(ROLE)
        .join("ops-vol");
    wait_until(|| dir.is_dir()).await;
    let r = operator(&cluster, &create);
    assert_eq!(r.status, 409, "the same volume twice: {}", r.text());

    let volumes_json =
        serde_json::to_string(&[mesos_proto::json::to_json(&volume("ops-vol", 40.0))]).unwrap();
    let form = format!(
        "slaveId={}&volumes={}",
        agent_id.value,
        urlencode(&volumes_json)
    );
    let r = raw_http::request(
        &cluster.master,
        "POST",
        "/master/destroy-volumes",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    wait_until(|| !dir.exists()).await;

    let resources_json = serde_json::to_string(&[
        mesos_proto::json::to_json(&reserved(scalar("cpus", 2.0))),
        mesos_proto::json::to_json(&reserved(scalar("disk", 100.0))),
    ])
    .unwrap();
    let form = format!(
        "slaveId={}&resources={}",
        agent_id.value,
        urlencode(&resources_json)
    );
    let r = raw_http::request(
        &cluster.master,
        "POST",
        "/master/unreserve",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(reserved_on_master(&cluster), serde_json::json!({}));
    let r = raw_http::request(
        &cluster.master,
        "POST",
        "/master/reserve",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("slaveId={}&resources=notjson", agent_id.value).as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    drop(fw);
}

async fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition not met within 10 s");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
