//! `mesos-execute`: runs one task through the master and follows it,
//! printing each state transition. Exits 0 if the task finishes.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use mesos_cli::scheduler_client::SchedulerClient;
use mesos_flags::Loaded;
use mesos_proto::v1::{self, TaskState, scheduler::event};
use mesos_resources::Resources;

mesos_flags::flags! {
    /// Flags of mesos-execute.
    struct ExecuteFlags {
        /// Master to use: host:port.
        master: String,
        /// Name of the task (also its ID).
        name: String,
        /// Shell command to run.
        command: String,
        /// Resources of the task.
        resources: String = "cpus:0.1;mem:32",
        /// Name of the framework.
        framework_name: String = "mesos-execute",
        /// Role to subscribe with.
        role: String = "*",
        /// Kill the task after it has run this long.
        kill_after: Option<mesos_flags::Duration>,
        /// Environment of the command, as a JSON object of names to values.
        env: Option<String>,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let flags = match ExecuteFlags::load() {
        Ok(Loaded::Flags(f)) => f,
        Ok(Loaded::Help(help)) => {
            println!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n\nSee 'mesos-execute --help' for the flags.");
            return ExitCode::from(2);
        }
    };
    match run(flags).await {
        Ok(TaskState::TaskFinished) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("mesos-execute: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn environment(json: Option<&str>) -> anyhow::Result<Option<v1::Environment>> {
    let Some(json) = json else { return Ok(None) };
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).context("--env must be a JSON object of names to values")?;
    let variables = map
        .into_iter()
        .map(|(name, value)| v1::environment::Variable {
            name,
            value: Some(
                value
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| value.to_string()),
            ),
            ..Default::default()
        })
        .collect();
    Ok(Some(v1::Environment { variables }))
}

async fn run(flags: ExecuteFlags) -> anyhow::Result<TaskState> {
    let wanted = Resources::from(
        mesos_resources::parse_resources(&flags.resources, "*").context("--resources")?,
    );
    let env = environment(flags.env.as_deref())?;
    let mut client = SchedulerClient::new(&flags.master);
    let framework = v1::FrameworkInfo {
        user: std::env::var("USER").unwrap_or_default(),
        name: flags.framework_name.clone(),
        role: Some(flags.role.clone()),
        ..Default::default()
    };
    let mut events = client
        .subscribe(framework)
        .await
        .with_context(|| format!("subscribing to {}", flags.master))?;
    let framework_id = client
        .framework_id()
        .map(|f| f.value.clone())
        .unwrap_or_default();
    println!("Subscribed with ID {framework_id}");
    let task_id = v1::TaskId {
        value: flags.name.clone(),
    };
    let mut launched = false;
    let mut kill_at: Option<tokio::time::Instant> = None;

    loop {
        let next = async {
            match kill_at {
                Some(at) => tokio::time::timeout_at(at, events.next()).await.ok(),
                None => Some(events.next().await),
            }
        };
        let Some(event) = next.await else {
            println!(
                "Killing task '{}' after {:?}",
                flags.name,
                flags.kill_after.map(|d| d.0)
            );
            client.kill(&task_id).await?;
            kill_at = None;
            continue;
        };
        let Some(event) = event? else {
            bail!("the master closed the subscription")
        };
        match event.r#type() {
            event::Type::Offers => {
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    let offered = Resources::from(offer.resources.clone());
                    if launched || !offered.contains(&wanted) {
                        client.decline(&offer.id, 5.0).await?;
                        continue;
                    }
                    let task = v1::TaskInfo {
                        name: flags.name.clone(),
                        task_id: task_id.clone(),
                        agent_id: offer.agent_id.clone(),
                        resources: wanted.iter().cloned().collect(),
                        command: Some(v1::CommandInfo {
                            value: Some(flags.command.clone()),
                            shell: Some(true),
                            environment: env.clone(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    client.launch(&offer.id, vec![task], None).await?;
                    launched = true;
                    println!(
                        "Submitted task '{}' to agent '{}'",
                        flags.name, offer.agent_id.value
                    );
                }
            }
            event::Type::Update => {
                let Some(update) = event.update else { continue };
                let status = update.status;
                let state = status.state();
                let mut line = format!(
                    "Received status update {} for task '{}'",
                    state.as_str_name(),
                    status.task_id.value
                );
                if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
                    line.push_str(&format!("\n  message: '{message}'"));
                }
                if let Some(reason) = status
                    .reason
                    .and_then(|r| v1::task_status::Reason::try_from(r).ok())
                {
                    line.push_str(&format!("\n  reason: {}", reason.as_str_name()));
                }
                println!("{line}");
                client.acknowledge(&status).await?;
                if state == TaskState::TaskRunning
                    && let Some(after) = flags.kill_after
                {
                    kill_at = Some(tokio::time::Instant::now() + after.0);
                }
                if state.is_terminal() {
                    let _ = tokio::time::timeout(Duration::from_secs(5), client.teardown()).await;
                    return Ok(state);
                }
            }
            event::Type::Error => {
                bail!(
                    "error from the master: {}",
                    event.error.map(|e| e.message).unwrap_or_default()
                )
            }
            _ => {}
        }
    }
}
