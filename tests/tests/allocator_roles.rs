//! The allocator through real processes: role weights split an agent,
//! static reservations go only to their role, and `--roles` refuses other
//! roles.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mesos_cli::scheduler_client::{EventStream, SchedulerClient, scalar};
use mesos_proto::v1::{self, scheduler::event};
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
    let (_client, mut events) = subscribe(&cluster, "web").await;
    assert!(
        offer_within(&mut events, Duration::from_secs(20))
            .await
            .is_some()
    );
}
