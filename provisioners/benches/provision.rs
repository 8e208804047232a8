//! Provision time of a busybox image (built from the host's `/bin/busybox`
//! as a `docker save` archive) with the copy and overlay backends.
//!
//! `cargo bench -p mesos-provisioners --bench provision [-- --runs N]`
//! prints a markdown table: the cold provision (archive read, layers
//! extracted into an empty store), then the median and worst of N warm
//! provisions (layers cached) and of N destroys. Overlay needs root and is
//! left out otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use mesos_provisioners::{Digest, DockerStore, ImageReference, Provisioner};
use serde_json::json;

fn busybox_archive() -> Vec<u8> {
    let mut layer = tar::Builder::new(Vec::new());
    for dir in ["bin", "tmp", "etc"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        layer
            .append_data(&mut header, format!("{dir}/"), &b""[..])
            .unwrap();
    }
    layer
        .append_path_with_name("/bin/busybox", "bin/busybox")
        .unwrap();
    for applet in ["sh", "ls", "cat", "echo", "sleep", "env", "true"] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        layer
            .append_link(&mut header, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let layer = layer.into_inner().unwrap();
    let config = serde_json::to_vec(&json!({
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [Digest::of(&layer).to_string()]},
    }))
    .unwrap();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": ["busybox:latest"],
        "Layers": ["layer/layer.tar"],
    }]))
    .unwrap();
    let mut archive = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("layer/layer.tar", &layer),
        (config_name.as_str(), &config),
        ("manifest.json", &manifest),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        archive.append_data(&mut header, name, &data[..]).unwrap();
    }
    archive.into_inner().unwrap()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed())
}

fn median_and_max(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn bench(backend: &str, archive: &[u8], runs: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    std::fs::write(registry.join("busybox:latest.tar"), archive).unwrap();
    let store = DockerStore::new(dir.path().join("store"), &registry).unwrap();
    let provisioner = Provisioner::new(dir.path().join("provisioner"), store, backend).unwrap();
    let image = ImageReference::parse("busybox").unwrap();

    let (_, cold) = timed(|| provisioner.provision("cold", &image).unwrap());
    provisioner.destroy("cold").unwrap();
    let mut warm = Vec::new();
    let mut destroy = Vec::new();
    for i in 0..runs {
        let id = format!("c{i}");
        warm.push(timed(|| provisioner.provision(&id, &image).unwrap()).1);
        destroy.push(timed(|| provisioner.destroy(&id).unwrap()).1);
    }
    let (warm_median, warm_max) = median_and_max(warm);
    let (destroy_median, destroy_max) = median_and_max(destroy);
    format!(
        "| {backend} | {} | {} | {} | {} | {} |",
        ms(cold),
        ms(warm_median),
        ms(warm_max),
        ms(destroy_median),
        ms(destroy_max)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(20usize)
        .max(1);
    if !Path::new("/bin/busybox").exists() {
        eprintln!("/bin/busybox not found: apt-get install busybox-static");
        return;
    }
    let archive = busybox_archive();
    println!(
        "busybox image: {} KiB archive, {runs} warm runs per backend\n",
        archive.len() / 1024
    );
    println!(
        "| backend | cold provision | warm provision (median) | warm (max) | destroy (median) | destroy (max) |"
    );
    println!("|---|---|---|---|---|---|");
    println!("{}", bench("copy", &archive, runs));
    if nix::unistd::geteuid().is_root() {
        println!("{}", bench("overlay", &archive, runs));
    } else {
        println!("| overlay | needs root | | | | |");
    }
}
