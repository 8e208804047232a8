//! Unmodified pymesos 0.3.15 against a real master and agent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is a failed test

use std::time::Duration;

use mesos_tests::cluster::Cluster;
use mesos_tests::python;

fn run(script: &str) {
    let Some(python) = python::require() else {
        return;
    };
    let cluster = Cluster::start();
    let outcome = python::run_script(&python, script, &[&cluster.master], Duration::from_secs(90));
    assert!(outcome.success, "{script} failed:\n{}", outcome.output);
}

#[test]
fn ten_command_tasks_run_and_finish() {
    let Some(python) = python::require() else {
        return;
    };
    let cluster = Cluster::start();
    let outcome = python::run_script(
        &python,
        "ten_tasks.py",
        &[&cluster.master, "10"],
        Duration::from_secs(90),
    );
    assert!(outcome.success, "ten_tasks.py failed:\n{}", outcome.output);
    assert!(
        outcome.output.contains("all 10 tasks finished"),
        "{}",
        outcome.output
    );
    // The master agrees: ten tasks finished, nothing is held any more.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cluster.metric("master/tasks_finished") != Some(10.0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cluster.metric("master/tasks_finished"), Some(10.0));
    assert_eq!(cluster.metric("master/cpus_used"), Some(0.0));
}

#[test]
fn custom_executor_runs_a_task_and_sends_a_framework_message() {
    run("custom_executor.py");
}

#[test]
fn killing_a_running_task_gives_task_killed() {
    run("kill_task.py");
}

#[test]
fn task_larger_than_its_offer_gets_task_error() {
    run("invalid_task.py");
}
