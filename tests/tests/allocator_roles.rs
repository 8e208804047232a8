//! The allocator through real processes: role weights split an agent,
//! static reservations go only to their role, a MULTI_ROLE framework gets
//! one offer per role, and `--roles` refuses other roles.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::v1::{self, framework_info, scheduler::event};
use mesos_tests::cluster::{Cluster, Options};

async fn subscribe(cluster: &Cluster, role: &str) -> (SchedulerClient, EventStream) {
    let mut client = SchedulerClient::new(&cluster.master);
    let events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: format!("in {role}"),
            role: Some(role.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    (client, events)
}

/// The next offer, or `None` if none comes within `wait`.
async fn offer_within(events: &mut EventStream, wait: Duration) -> Option<v1::Offer> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .ok()?
            .unwrap()
            .expect("stream open");
        if event.r#type() == event::Type::Offers {
            return event.offers.unwrap().offers.into_iter().next();
        }
    }
}

fn cpus(offer: &v1::Offer, reserved_to: Option<&str>) -> f64 {
    offer
        .resources
        .iter()
        .filter(|r| r.name == "cpus")
        .filter(|r| {
            let role = r.reservations.last().and_then(|x| x.role.as_deref());
            role == reserved_to
        })
        .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
        .sum()
}

const TASKS: usize = 40;

/// Launches one `sleep 1000` task of 0.1 cpu per offer, handing the rest
/// back at once, until the cluster has run `TASKS` tasks in total.
async fn launch_until_full(
    client: SchedulerClient,
    mut events: EventStream,
    total: Arc<AtomicUsize>,
) -> usize {
    let mut mine = 0;
    while total.load(Ordering::SeqCst) < TASKS {
        let Some(offer) = offer_within(&mut events, Duration::from_secs(1)).await else {
            continue;
        };
        if cpus(&offer, None) < 0.1 {
            client.decline(&offer.id, 0.0).await.unwrap();
            continue;
        }
        let id = format!("{}-{mine}", client.framework_id().unwrap().value);
        let task = v1::TaskInfo {
            name: id.clone(),
            task_id: v1::TaskId { value: id },
            agent_id: offer.agent_id.clone(),
            resources: vec![scalar("cpus", 0.1), scalar("mem", 16.0)],
            command: Some(v1::CommandInfo {
                value: Some("sleep 1000".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        client
            .launch(&offer.id, vec![task], Some(0.0))
            .await
            .unwrap();
        mine += 1;
        total.fetch_add(1, Ordering::SeqCst);
    }
    mine
}

#[tokio::test]
async fn role_weights_split_an_agent_one_to_three() {
    let cluster = Cluster::start_with(Options {
        agent_resources: "cpus:4;mem:4096;disk:4096;ports:[31000-32000]".into(),
        master_flags: vec![
            "--allocation_interval=50ms".into(),
            "--weights=light=1,heavy=3".into(),
        ],
        ..Options::default()
    });
    let total = Arc::new(AtomicUsize::new(0));
    let (light, light_events) = subscribe(&cluster, "light").await;
    let (heavy, heavy_events) = subscribe(&cluster, "heavy").await;
    let light = tokio::spawn(launch_until_full(light, light_events, total.clone()));
    let heavy = tokio::spawn(launch_until_full(heavy, heavy_events, total.clone()));
    let (light, heavy) = (light.await.unwrap(), heavy.await.unwrap());
    assert_eq!(light + heavy, TASKS, "the agent's 4 cpus hold 40 tasks");
    // 1:3 of 40 tasks is 10:30; the last offers may go either way.
    assert!(
        (8..=12).contains(&light),
        "light got {light} tasks, heavy {heavy}"
    );
}

#[tokio::test]
async fn reserved_cpus_go_only_to_their_role() {
    let cluster = Cluster::start_with(Options {
        agent_resources: "cpus:2;cpus(ops):3;mem:2048;disk:4096;ports:[31000-32000]".into(),
        ..Options::default()
    });
    let (_star, mut star_events) = subscribe(&cluster, "*").await;
    let offer = offer_within(&mut star_events, Duration::from_secs(20))
        .await
        .expect("an offer for *");
    assert_eq!(cpus(&offer, None), 2.0);
    assert_eq!(
        cpus(&offer, Some("ops")),
        0.0,
        "no ops cpus for *: {offer:?}"
    );
    // `*` holds the unreserved resources: ops gets exactly its reservation.
    let (_ops, mut ops_events) = subscribe(&cluster, "ops").await;
    let offer = offer_within(&mut ops_events, Duration::from_secs(20))
        .await
        .expect("an offer for ops");
    assert_eq!(cpus(&offer, Some("ops")), 3.0);
    assert_eq!(cpus(&offer, None), 0.0);
    assert!(
        offer_within(&mut star_events, Duration::from_millis(500))
            .await
            .is_none(),
        "nothing left for *"
    );
}

#[tokio::test]
async fn roles_outside_the_whitelist_are_refused() {
    let cluster = Cluster::start_with(Options {
        master_flags: vec![
            "--allocation_interval=100ms".into(),
            "--roles=web,db".into(),
        ],
        ..Options::default()
    });
    let mut client = SchedulerClient::new(&cluster.master);
    let refused = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "outsider".into(),
            role: Some("batch".into()),
            ..Default::default()
        })
        .await;
    assert!(refused.is_err(), "role batch is not in --roles");
    let (client, mut events) = subscribe(&cluster, "web").await;
    assert!(
        offer_within(&mut events, Duration::from_secs(20))
            .await
            .is_some()
    );
    // Nor can a subscribed framework move to such a role.
    let moved = client
        .call(v1::scheduler::Call {
            r#type: Some(v1::scheduler::call::Type::UpdateFramework as i32),
            update_framework: Some(v1::scheduler::call::UpdateFramework {
                framework_info: v1::FrameworkInfo {
                    user: String::new(),
                    name: "in web".into(),
                    id: client.framework_id().cloned(),
                    role: Some("batch".into()),
                    ..Default::default()
                },
                suppressed_roles: vec![],
                offer_constraints: None,
            }),
            ..Default::default()
        })
        .await;
    let error = moved.expect_err("batch is not in --roles").to_string();
    assert!(error.contains("--roles"), "{error}");
    assert_eq!(cluster.state()["frameworks"][0]["role"], "web");
}

/// Offers until there are `n` of them, each with the role it was made for.
async fn offers(events: &mut EventStream, n: usize) -> Vec<(String, v1::Offer)> {
    let mut all = Vec::new();
    while all.len() < n {
        let event = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("offers in time")
            .unwrap()
            .expect("stream open");
        for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
            let role = offer
                .allocation_info
                .as_ref()
                .and_then(|a| a.role.clone())
                .expect("a MULTI_ROLE offer says its role");
            all.push((role, offer));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[tokio::test]
async fn multi_role_framework_gets_an_offer_per_role() {
    let cluster = Cluster::start_with(Options {
        agent_resources: "cpus:2;cpus(b):1;mem:2048;disk:4096;ports:[31000-32000]".into(),
        ..Options::default()
    });
    let mut client = SchedulerClient::new(&cluster.master);
    let mut events = client
        .subscribe(v1::FrameworkInfo {
            user: String::new(),
            name: "two roles".into(),
            roles: vec!["a".into(), "b".into()],
            capabilities: vec![framework_info::Capability {
                r#type: Some(framework_info::capability::Type::MultiRole as i32),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    for round in 0..2 {
        let got = offers(&mut events, 2).await;
        let roles: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(roles, vec!["a", "b"], "round {round}");
        let (a, b) = (&got[0].1, &got[1].1);
        assert_eq!(cpus(a, None), 2.0);
        assert_eq!(
            cpus(a, Some("b")),
            0.0,
            "b's reservation is not offered to a"
        );
        assert_eq!(cpus(b, Some("b")), 1.0);
        assert!(
            a.resources
                .iter()
                .chain(&b.resources)
                .all(|r| r.allocation_info.is_some()),
            "every resource is stamped with its role"
        );
        // Declined resources come back to the role they were offered for.
        for (_, offer) in &got {
            client.decline(&offer.id, 0.0).await.unwrap();
        }
    }
}
