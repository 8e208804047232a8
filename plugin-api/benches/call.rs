//! Per-call overhead of an isolator call, built-in vs dylib, with a 1 KiB
//! payload each way (a 1 KiB container ID, echoed back in the
//! environment). Prints nanoseconds per call for:
//! - built-in: a Rust `Isolator` with the env isolator's logic, called
//!   directly;
//! - envelope in-process: the same logic behind the SDK (protobuf decode
//!   and encode, panic guard), no FFI;
//! - dylib raw: the env-isolator plugin's `call` through the C vtable on
//!   the caller's thread (FFI, codec, copy out, free);
//! - dylib via agent path: the loaded plugin as the agent calls it
//!   (request encode, watchdog thread hand-off, response decode), calls
//!   in a row;
//! - dylib after 1 ms idle: the same, but each call after a pause, when
//!   the plugin's thread has gone to sleep and must be woken;
//! - wasm raw (feature `wasm`): the WASM env isolator
//!   (`plugins/wasm-fixtures/env-isolator.wat`) through its envelope:
//!   deadline re-armed twice, alloc, copy in, call, bounds checks, copy out;
//! - wasm via agent path: the loaded WASM plugin as the agent calls it (no
//!   thread hand-off: the epoch deadline bounds the call on the caller's
//!   thread);
//! - wasm new instance: a fresh instance, configured, in place of the
//!   last (what a fault costs the next call);
//! - the same three for the component form (the module inside
//!   `component-shell.wat`: the canonical ABI's lifting and lowering, and
//!   the shell's copies between its memory and the module's);
//! - the same three for `plugins/env-isolator` built by the SDK for
//!   `wasm32-wasip2`, a component of Rust (the SDK's protobuf codec inside
//!   the guest), when that build is there.
//!
//! Run: `cargo build --release -p env-isolator &&
//! (cd plugins/env-isolator && cargo build --release --target wasm32-wasip2) &&
//! cargo bench -p mesos-plugin-api --features wasm --bench call`
//! (or point MESOS_PLUGIN_LIB at a libenv_isolator.so).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mesos_plugin_api::abi::method;
use mesos_plugin_api::adapter::Policy;
use mesos_plugin_api::envelope::{Envelope, PluginError};
use mesos_plugin_api::host::{self, dylib::Dylib, manifest};
use mesos_plugin_api::isolator::{
    ContainerSpec, Isolator, IsolatorError, LaunchInfo, Limitation, Usage,
};
use mesos_plugin_api::sdk::{InProcess, IsolatorPlugin, mesos, proto};
use prost::Message;

/// The env isolator's logic as a built-in.
struct Native;

impl Isolator for Native {
    fn name(&self) -> &'static str {
        "native"
    }
    fn recover(&self, _: &[String]) -> Result<(), IsolatorError> {
        Ok(())
    }
    fn prepare(&self, spec: &ContainerSpec) -> Result<LaunchInfo, IsolatorError> {
        Ok(LaunchInfo {
            cgroup_procs: Vec::new(),
            env: vec![
                ("PLUGIN_GREETING".into(), "hello-from-plugin".into()),
                ("PLUGIN_CONTAINER_ID".into(), spec.container_id.clone()),
            ],
            labels: vec![("com.example.env_isolator".into(), Some("prepared".into()))],
            ..Default::default()
        })
    }
    fn update(&self, _: &ContainerSpec) -> Result<(), IsolatorError> {
        Ok(())
    }
    fn limitation(&self, _: &str) -> Result<Option<Limitation>, IsolatorError> {
        Ok(None)
    }
    fn usage(&self, _: &str) -> Result<Usage, IsolatorError> {
        Ok(Usage::default())
    }
    fn cleanup(&self, _: &str) -> Result<(), IsolatorError> {
        Ok(())
    }
}

/// The same logic written with the SDK: the env isolator plugin's.
#[derive(Default)]
struct Sdk;

impl IsolatorPlugin for Sdk {
    const NAME: &'static str = "com.example.bench";
    const VERSION: &'static str = "0.1.0";

    fn prepare(&self, r: proto::PrepareRequest) -> Result<proto::PrepareResponse, PluginError> {
        let var = |name: &str, value: String| proto::EnvironmentVariable {
            name: name.into(),
            value,
        };
        Ok(proto::PrepareResponse {
            env: vec![
                var("PLUGIN_GREETING", "hello-from-plugin".into()),
                var("PLUGIN_CONTAINER_ID", r.container_id),
            ],
            labels: vec![mesos::Label {
                key: "com.example.env_isolator".into(),
                value: Some("prepared".into()),
            }],
            ..Default::default()
        })
    }
}

fn lib_path() -> PathBuf {
    if let Some(path) = std::env::var_os("MESOS_PLUGIN_LIB") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let deps = exe.parent().map(PathBuf::from).unwrap_or_default();
    let profile = deps.parent().map(PathBuf::from).unwrap_or_default();
    [
        profile.join("libenv_isolator.so"),
        deps.join("libenv_isolator.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_default()
}

/// Nanoseconds per call of `f`, the best of five rounds.
fn measure(name: &str, iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        best = best.min(start.elapsed());
    }
    let ns = best.as_nanos() as f64 / f64::from(iterations);
    println!("{name:<28} {ns:>10.0} ns/call");
    ns
}

fn main() -> Result<(), String> {
    let spec = ContainerSpec {
        container_id: "x".repeat(1024),
        resources: Default::default(),
        capabilities: Default::default(),
        sandbox: Default::default(),
        ..Default::default()
    };
    let request = proto::PrepareRequest {
        container_id: spec.container_id.clone(),
        resources: Vec::new(),
        sandbox: String::new(),
    }
    .encode_to_vec();
    println!("payload: {} bytes in, ~1 KiB out", request.len());

    let native = Native;
    let builtin = measure("built-in", 200_000, || {
        black_box(native.prepare(black_box(&spec)).ok());
    });

    let (_, in_process) = InProcess::<Sdk>::new(&[]).map_err(|e| e.to_string())?;
    let in_process_ns = measure("envelope in-process", 200_000, || {
        black_box(in_process.call(method::PREPARE, black_box(&request)).ok());
    });

    let lib = lib_path();
    if lib.exists() {
        dylib(&lib, &spec, &request, (builtin, in_process_ns))?;
    } else {
        println!(
            "dylib rows skipped: libenv_isolator.so not found (cargo build --release -p env-isolator, or set MESOS_PLUGIN_LIB)"
        );
    }
    #[cfg(feature = "wasm")]
    {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/wasm-fixtures");
        let read = |file: &str| {
            let path = fixtures.join(file);
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let module = read("env-isolator.wat")?;
        let component = mesos_plugin_api::contract::in_component_shell(&module)
            .ok_or("env-isolator.wat holds no module")?;
        wasm(
            "wasm",
            "env-isolator.wat",
            module.as_bytes(),
            &spec,
            &request,
            builtin,
        )?;
        let shelled = component.as_bytes();
        wasm(
            "component",
            "env-isolator.wat",
            shelled,
            &spec,
            &request,
            builtin,
        )?;
        let wasip2 = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/wasm32-wasip2/release/env_isolator.wasm");
        match std::fs::read(&wasip2) {
            Ok(rust) => wasm(
                "rust component",
                "env_isolator.wasm",
                &rust,
                &spec,
                &request,
                builtin,
            )?,
            Err(_) => println!(
                "rust component rows skipped: {} not found (cd plugins/env-isolator && cargo build --release --target wasm32-wasip2)",
                wasip2.display()
            ),
        }
    }
    Ok(())
}

fn dylib(
    lib: &Path,
    spec: &ContainerSpec,
    request: &[u8],
    (builtin, in_process): (f64, f64),
) -> Result<(), String> {
    println!("plugin: {}", lib.display());
    let dylib = Dylib::open(lib).map_err(|e| e.to_string())?;
    let raw = measure("dylib raw (vtable call)", 200_000, || {
        black_box(dylib.call(method::PREPARE, black_box(request)).ok());
    });

    let bytes = std::fs::read(lib).map_err(|e| e.to_string())?;
    let loaded = host::load_manifest(manifest::Manifest {
        name: "com.example.env_isolator".into(),
        kind: manifest::Kind::Isolator,
        runtime: manifest::Runtime::Dylib,
        artifact: lib.to_path_buf(),
        sha256: host::sha256_hex(&bytes),
        api_versions: vec![mesos_plugin_api::abi::API_VERSION.into()],
        policy: Policy::default(),
        call_timeout: Duration::from_secs(5),
        config: None,
        permissions: Default::default(),
    })
    .map_err(|e| e.to_string())?;
    let isolator = loaded
        .isolator()
        .ok_or("the bench plugin is not an isolator")?;
    let agent_path = measure("dylib via agent path", 20_000, || {
        black_box(isolator.prepare(black_box(spec)).ok());
    });

    // A call after a quiet spell finds the plugin's thread asleep.
    let mut cold: Vec<Duration> = (0..200)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(1));
            let start = Instant::now();
            black_box(isolator.prepare(black_box(spec)).ok());
            start.elapsed()
        })
        .collect();
    cold.sort();
    let cold = cold[cold.len() / 2].as_nanos();
    println!(
        "{:<28} {cold:>10} ns/call (median)",
        "dylib after 1 ms idle"
    );

    println!(
        "dylib overhead over built-in: {:.0} ns raw (target <= 200 ns), of which {:.0} ns crossing the boundary; {:.0} ns with the watchdog hand-off",
        raw - builtin,
        raw - in_process,
        agent_path - builtin
    );
    Ok(())
}

/// The WASM rows of one form of the env isolator (`bytes`, text or
/// binary), compiled into a temporary plugin folder as `file` (its compile
/// cache goes there too).
#[cfg(feature = "wasm")]
fn wasm(
    form: &str,
    file: &str,
    bytes: &[u8],
    spec: &ContainerSpec,
    request: &[u8],
    builtin: f64,
) -> Result<(), String> {
    use mesos_plugin_api::host::wasm::Wasm;

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let artifact = dir.path().join(file);
    std::fs::write(&artifact, bytes).map_err(|e| e.to_string())?;
    let limits = manifest::WasmLimits::default();
    let manifest = manifest::Manifest {
        name: "com.example.env_isolator".into(),
        kind: manifest::Kind::Isolator,
        runtime: manifest::Runtime::Wasm(limits),
        artifact,
        sha256: host::sha256_hex(bytes),
        api_versions: vec![mesos_plugin_api::abi::API_VERSION.into()],
        policy: Policy::default(),
        call_timeout: Duration::from_secs(5),
        config: None,
        permissions: Default::default(),
    };

    let host = host::calls::HostContext::new(&manifest, Default::default());
    let plugin = Wasm::open(&manifest, limits, bytes, host).map_err(|e| e.to_string())?;
    plugin
        .configure(mesos_plugin_api::abi::API_VERSION, Vec::new())
        .map_err(|e| e.to_string())?;
    let raw = measure(&format!("{form} raw (envelope call)"), 200_000, || {
        black_box(plugin.call(method::PREPARE, black_box(request)).ok());
    });
    measure(&format!("{form} new instance"), 2_000, || {
        black_box(plugin.restart().ok());
    });

    let loaded = host::load_manifest(manifest).map_err(|e| e.to_string())?;
    let isolator = loaded
        .isolator()
        .ok_or("the bench plugin is not an isolator")?;
    let agent_path = measure(&format!("{form} via agent path"), 200_000, || {
        black_box(isolator.prepare(black_box(spec)).ok());
    });
    println!(
        "{form} overhead over built-in: {:.0} ns raw, {:.0} ns as the agent calls it",
        raw - builtin,
        agent_path - builtin
    );
    Ok(())
}
