//! The WASM loader against the hand-written modules of
//! `plugins/wasm-fixtures`, each in its two forms: the core module, and
//! the same module inside `component-shell.wat`, a component of the
//! `mesos:plugin` world. A well-behaved isolator loads (and is cached
//! compiled); a looping one is stopped at its deadline, a trapping one and
//! a memory hog fail their call, and the next call gets a rebuilt
//! instance (or nothing, once quarantined); an import the host does not
//! provide traps when called; modules and components that do not speak
//! the ABI are refused at load with a message naming the plugin. The
//! cgroup isolator's host calls, as a module and as a standalone
//! component, set only granted knobs of the container of the call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesos_plugin_api::contract;
use mesos_plugin_api::host::{self, LoadError, Problem};
use mesos_plugin_api::isolator::{ContainerSpec, Isolator, LaunchInfo, Usage};
use sha2::{Digest, Sha256};

fn fixture(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/wasm-fixtures")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The forms a fixture is tested in.
#[derive(Debug, Clone, Copy)]
enum Form {
    Core,
    Component,
}

const FORMS: [Form; 2] = [Form::Core, Form::Component];

impl Form {
    /// The plugin's text in this form, from its core module's text.
    fn of(self, core: &str) -> String {
        match self {
            Form::Core => core.to_string(),
            Form::Component => contract::in_component_shell(core).unwrap(),
        }
    }
}

/// Writes plugin `name` with module text `wat` under `dir` and returns
/// its folder.
fn plugin(dir: &Path, name: &str, wat: &str, manifest_extra: &str) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("plugin.wat"), wat).unwrap();
    let sha = format!("{:x}", Sha256::digest(wat.as_bytes()));
    std::fs::write(
        folder.join("plugin.toml"),
        format!(
            "name = \"{name}\"\nkind = \"isolator\"\nruntime = \"wasm\"\nartifact = \"plugin.wat\"\nsha256 = \"{sha}\"\n{manifest_extra}"
        ),
    )
    .unwrap();
    folder
}

fn isolator(folder: &Path) -> Arc<dyn Isolator> {
    host::load(folder).unwrap().isolator().unwrap()
}

fn problem(name: &str, result: Result<host::Loaded, LoadError>) -> Problem {
    match result {
        Err(LoadError::Plugin { plugin, problem }) => {
            assert_eq!(plugin, name);
            problem
        }
        Err(other) => panic!("not a plugin problem: {other}"),
        Ok(_) => panic!("loaded"),
    }
}

fn spec() -> ContainerSpec {
    ContainerSpec {
        container_id: "c1".into(),
        resources: Default::default(),
        capabilities: Default::default(),
        sandbox: Default::default(),
        ..Default::default()
    }
}

#[test]
fn the_env_isolator_loads_answers_and_is_cached_compiled() {
    for form in FORMS {
        let dir = tempfile::tempdir().unwrap();
        let name = "com.example.env_isolator";
        plugin(dir.path(), name, &form.of(&fixture("env-isolator.wat")), "");
        let loaded = host::load_dir(dir.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].version, "0.1.0");
        let isolator = loaded[0].isolator().unwrap();
        assert_eq!(isolator.name(), name);
        let spec = ContainerSpec {
            // Long enough for a two-byte length in the answer.
            container_id: "c".repeat(300),
            ..spec()
        };
        let launch = isolator.prepare(&spec).unwrap();
        assert_eq!(
            launch.env,
            vec![
                (
                    "PLUGIN_GREETING".to_string(),
                    "hello-from-plugin".to_string()
                ),
                ("PLUGIN_CONTAINER_ID".to_string(), spec.container_id.clone()),
            ]
        );
        // Unimplemented methods get Mesos's defaults.
        assert_eq!(isolator.usage("c1").unwrap(), Usage::default());
        assert_eq!(isolator.limitation("c1").unwrap(), None);
        isolator.update(&spec).unwrap();
        isolator.recover(&["c1".into()]).unwrap();
        isolator.cleanup("c1").unwrap();
    }
}

fn cache_entry(folder: &Path) -> PathBuf {
    let entries: Vec<_> = std::fs::read_dir(folder.join(".cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].to_string_lossy().ends_with(".cwasm"));
    entries[0].clone()
}

#[test]
fn a_compiled_module_is_cached_next_to_the_plugin_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let env = plugin(
        dir.path(),
        "com.example.env_isolator",
        &fixture("env-isolator.wat"),
        "",
    );
    let trapping = plugin(
        dir.path(),
        "com.example.trapping_isolator",
        &fixture("trapping-isolator.wat"),
        "",
    );
    isolator(&env);
    isolator(&trapping);
    // What the next load of the env isolator runs is its cache entry:
    // with another module's in its place, that module answers.
    std::fs::copy(cache_entry(&trapping), cache_entry(&env)).unwrap();
    let p = problem("com.example.env_isolator", host::load(&env));
    assert!(
        p.to_string()
            .contains("describes itself as 'com.example.trapping_isolator'"),
        "{p}"
    );
}

#[test]
fn a_corrupt_cache_entry_is_ignored_and_replaced() {
    for form in FORMS {
        let dir = tempfile::tempdir().unwrap();
        let folder = plugin(
            dir.path(),
            "com.example.env_isolator",
            &form.of(&fixture("env-isolator.wat")),
            "",
        );
        isolator(&folder);
        let entry = cache_entry(&folder);
        let mut bytes = std::fs::read(&entry).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&entry, &bytes).unwrap();
        let isolator = isolator(&folder);
        assert_eq!(isolator.prepare(&spec()).unwrap().env.len(), 2);
        assert_ne!(std::fs::read(&entry).unwrap(), bytes, "not rewritten");
    }
}

#[test]
fn a_looping_call_times_out_and_the_next_call_gets_a_new_instance() {
    for form in FORMS {
        let dir = tempfile::tempdir().unwrap();
        let name = "com.example.looping_isolator";
        let folder = plugin(
            dir.path(),
            name,
            &form.of(&fixture("looping-isolator.wat")),
            "call_timeout_ms = 200\nquarantine_after = 0\n",
        );
        let isolator = isolator(&folder);
        for _ in 0..2 {
            let err = isolator.prepare(&spec()).unwrap_err().to_string();
            assert!(
                err.contains(name) && err.contains("did not return within 200 ms"),
                "{err}"
            );
            // Not wedged: the next call runs on a rebuilt instance.
            assert_eq!(isolator.usage("c1").unwrap(), Usage::default());
        }
    }
}

#[test]
fn a_looping_plugin_is_quarantined_per_its_policy() {
    for form in FORMS {
        let dir = tempfile::tempdir().unwrap();
        let name = "com.example.looping_isolator";
        let folder = plugin(
            dir.path(),
            name,
            &form.of(&fixture("looping-isolator.wat")),
            "call_timeout_ms = 100\nquarantine_after = 1\n",
        );
        let isolator = isolator(&folder);
        let err = isolator.prepare(&spec()).unwrap_err().to_string();
        assert!(err.contains("did not return within 100 ms"), "{err}");
        let err = isolator.usage("c1").unwrap_err().to_string();
        assert!(
            err.contains(name) && err.contains("quarantined after 1 faults"),
            "{err}"
        );
    }
}

#[test]
fn a_fail_open_looping_plugin_gets_the_defaults() {
    for form in FORMS {
        let dir = tempfile::tempdir().unwrap();
        let folder = plugin(
            dir.path(),
            "com.example.looping_isolator",
            &form.of(&fixture("looping-isolator.wat")),
            "call_timeout_ms = 100\nfailure_policy = \"fail_open\"\n",
        );
        let isolator = isolator(&folder);
        assert_eq!(isolator.prepare(&spec()).unwrap(), LaunchInfo::default());
    }
}

#[test]
fn a_trap_fails_the_call_and_the_instance_is_rebuilt() {
    for form in FORMS {
        let dir = tempfile::tempdir().unwrap();
        let name = "com.example.trapping_isolator";
        let folder = plugin(
            dir.path(),
            name,
            &form.of(&fixture("trapping-isolator.wat")),
            "quarantine_after = 0\n",
        );
        let isolator = isolator(&folder);
        // The fixture counts the calls its instance served.
        assert_eq!(isolator.usage("c1").unwrap().processes, Some(1));
        assert_eq!(isolator.usage("c1").unwrap().processes, Some(2));
        let err = isolator.prepare(&spec()).unwrap_err().to_string();
        assert!(
            err.contains(name)
                && err.contains("isolator.prepare trapped")
                && err.contains("unreachable"),
            "{err}"
        );
        assert_eq!(isolator.usage("c1").unwrap().processes, Some(1));
    }
}

#[test]
fn a_memory_hog_is_stopped_at_its_limit() {
    for form in FORMS {
        let dir = tempfile::tempdir().unwrap();
        let name = "com.example.memory_hog";
        let folder = plugin(
            dir.path(),
            name,
            &form.of(&fixture("memory-hog.wat")),
            "memory_limit_bytes = 1048576\nquarantine_after = 0\n",
        );
        let isolator = isolator(&folder);
        let err = isolator.prepare(&spec()).unwrap_err().to_string();
        assert!(
            err.contains(name) && err.contains("memory limit of 1048576 bytes reached"),
            "{err}"
        );
        assert_eq!(isolator.usage("c1").unwrap(), Usage::default());
    }
}

#[test]
fn a_module_whose_initial_memory_is_over_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let name = "com.example.memory_hog";
    let wat = fixture("memory-hog.wat").replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 32)",
    );
    let folder = plugin(dir.path(), name, &wat, "memory_limit_bytes = 1048576\n");
    let p = problem(name, host::load(&folder));
    assert!(matches!(p, Problem::Instantiate(_)), "{p}");
    assert!(p.to_string().contains("memory limit"), "{p}");
}

#[test]
fn modules_that_do_not_speak_the_abi_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();

    let name = "com.example.wrong_version";
    let folder = plugin(dir.path(), name, &fixture("wrong-version.wat"), "");
    let p = problem(name, host::load(&folder));
    assert!(matches!(p, Problem::ApiVersion(_)), "{p}");
    assert!(p.to_string().contains("mesos.plugin.v2"), "{p}");

    let name = "com.example.missing_export";
    let folder = plugin(dir.path(), name, &fixture("missing-export.wat"), "");
    let err = host::load(&folder).unwrap_err().to_string();
    assert!(
        err.contains(name) && err.contains("ABI mismatch") && err.contains("`call`"),
        "{err}"
    );

    let name = "com.example.env_isolator";
    let v2 = fixture("env-isolator.wat").replace(
        "(func (export \"mesos_plugin_abi\") (result i32) (i32.const 1))",
        "(func (export \"mesos_plugin_abi\") (result i32) (i32.const 2))",
    );
    let folder = plugin(dir.path(), name, &v2, "");
    let err = host::load(&folder).unwrap_err().to_string();
    assert!(
        err.contains(name) && err.contains("speaks ABI version 2"),
        "{err}"
    );

    // Components are checked against the world: the interface, at this
    // major version, with these functions.
    let name = "com.example.env_isolator";
    for (wrong, why) in [
        ("(component)".to_string(), "nothing"),
        (
            Form::Component
                .of(&fixture("env-isolator.wat"))
                .replace("envelope@1.0.0", "envelope@2.0.0"),
            "the next major version",
        ),
        (
            Form::Component.of(&fixture("env-isolator.wat")).replace(
                "(export \"call\" (func $call))",
                "(export \"invoke\" (func $call))",
            ),
            "no call",
        ),
    ] {
        let folder = plugin(dir.path(), name, &wrong, "");
        let p = problem(name, host::load(&folder));
        assert!(matches!(p, Problem::Export(_)), "{why}: {p}");
        assert!(
            p.to_string()
                .contains("does not export mesos:plugin/envelope@1.0.0"),
            "{why}: {p}"
        );
    }

    let name = "com.example.not_wasm";
    let folder = plugin(dir.path(), name, "(module (func $broken", "");
    let p = problem(name, host::load(&folder));
    assert!(matches!(p, Problem::Compile(_)), "{p}");
}

/// Loads `text` as plugin `name` with `manifest_extra` and checks that
/// only prepare, which calls `import`, fails: trapping, naming it.
fn only_prepare_traps_naming(name: &str, text: &str, manifest_extra: &str, import: &str) {
    let dir = tempfile::tempdir().unwrap();
    let loaded = isolator(&plugin(dir.path(), name, text, manifest_extra));
    assert_eq!(loaded.usage("c1").unwrap(), Usage::default());
    let err = loaded.prepare(&spec()).unwrap_err().to_string();
    assert!(
        err.contains(name) && err.contains("isolator.prepare trapped") && err.contains(import),
        "{err}"
    );
}

#[test]
fn an_import_the_host_does_not_provide_traps_when_called() {
    let name = "com.example.wasi_import";
    let module = fixture("wasi-import.wat");
    only_prepare_traps_naming(name, &module, "", "wasi_snapshot_preview1::fd_write");

    // Granted, the same module gets its stdout line, clock and random.
    let granted = tempfile::tempdir().unwrap();
    let wasi = "[permissions]\nwasi = true\n";
    let folder = plugin(granted.path(), name, &module, wasi);
    isolator(&folder).prepare(&spec()).unwrap();

    // A component's import the grant does not serve (an interface of
    // WASI 0.2 outside `wit/wasi-granted.wit`) traps, granted or not.
    let component = fixture("wasi-import.component.wat");
    for manifest_extra in ["", wasi] {
        only_prepare_traps_naming(
            name,
            &component,
            manifest_extra,
            "wasi:random/insecure@0.2.0",
        );
    }
}

#[test]
fn a_wasm_hook_goes_through_the_hook_adapter() {
    use mesos_plugin_api::hook::{Containerizer, Decoration, PreLaunch};
    let dir = tempfile::tempdir().unwrap();
    let name = "com.example.noop_hook";
    let folder = plugin(dir.path(), name, &fixture("noop-hook.wat"), "");
    let manifest = folder.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("kind = \"isolator\"", "kind = \"hook\""),
    )
    .unwrap();
    let loaded = host::load(&folder).unwrap();
    assert!(loaded.isolator().is_none());
    let hook = loaded.hook().unwrap();
    assert_eq!(hook.name(), name);
    let launch = PreLaunch {
        containerizer: Containerizer::Mesos,
        task: None,
        executor: Default::default(),
        container_id: "c1".into(),
        container_name: None,
        sandbox_directory: "/sandbox".into(),
        mapped_sandbox_directory: "/mnt/mesos/sandbox".into(),
        added: Decoration::default(),
    };
    // Unimplemented: no change.
    assert_eq!(
        hook.slave_pre_launch_decorator(&launch).unwrap(),
        Decoration::default()
    );
    assert_eq!(
        hook.slave_executor_environment_decorator(&Default::default())
            .unwrap(),
        None
    );
    // Declared as an isolator, the same module is refused.
    std::fs::write(&manifest, text).unwrap();
    let p = problem(name, host::load(&folder));
    assert!(matches!(p, Problem::KindMismatch(_)), "{p}");
}

#[test]
fn a_new_artifact_replaces_the_cache_entry_of_the_old_one() {
    for form in FORMS {
        let dir = tempfile::tempdir().unwrap();
        let name = "com.example.env_isolator";
        let wat = form.of(&fixture("env-isolator.wat"));
        let folder = plugin(dir.path(), name, &wat, "");
        isolator(&folder);
        let old = cache_entry(&folder);
        plugin(dir.path(), name, &format!("{wat}\n;; version 2\n"), "");
        isolator(&folder);
        // `cache_entry` checks there is one entry.
        assert_ne!(cache_entry(&folder), old);
    }
}

/// Records the knobs the host would set.
#[derive(Default)]
struct Knobs(std::sync::Mutex<Vec<String>>);

impl host::calls::HostCalls for Knobs {
    fn set_cgroup_knob(&self, container_id: &str, knob: &str, value: &str) -> Result<(), String> {
        if container_id == "gone" {
            return Err("container 'gone' has no cgroup".into());
        }
        self.0
            .lock()
            .unwrap()
            .push(format!("{container_id} {knob}={value}"));
        Ok(())
    }
}

/// The cgroup isolator in `form`: the core module, or its standalone
/// component (the shell cannot pass host calls through).
fn cgroup_fixture(form: Form) -> String {
    match form {
        Form::Core => fixture("cgroup-isolator.wat"),
        Form::Component => fixture("cgroup-isolator.component.wat"),
    }
}

/// Loads the cgroup isolator in `form` with `manifest_extra`, the daemon's
/// host calls given to it.
fn cgroup_isolator(
    dir: &Path,
    form: Form,
    manifest_extra: &str,
) -> (Arc<dyn Isolator>, Arc<Knobs>) {
    let name = "com.example.cgroup_isolator";
    let folder = plugin(dir, name, &cgroup_fixture(form), manifest_extra);
    let loaded = host::load(&folder).unwrap();
    let knobs = Arc::new(Knobs::default());
    loaded.provide_host_calls(knobs.clone());
    (loaded.isolator().unwrap(), knobs)
}

#[test]
fn a_granted_knob_is_set_for_the_container_of_the_call_only() {
    for form in FORMS {
        a_granted_knob_is_set(form);
    }
}

fn a_granted_knob_is_set(form: Form) {
    let dir = tempfile::tempdir().unwrap();
    let granted = "[permissions]\ncgroup_knobs = [\"cpu.shares\"]\n";
    let (isolator, knobs) = cgroup_isolator(dir.path(), form, granted);
    isolator.prepare(&spec()).unwrap();
    assert_eq!(*knobs.0.lock().unwrap(), ["c1 cpu.shares=321"], "{form:?}");

    // The host refusing (here: no such cgroup) fails the prepare as the
    // plugin decides; the instance lives on.
    let gone = ContainerSpec {
        container_id: "gone".into(),
        ..spec()
    };
    let e = isolator.prepare(&gone).unwrap_err().to_string();
    assert!(e.contains("set_cgroup_knob was refused"), "{form:?}: {e}");
    if let Form::Component = form {
        // A component hears why.
        assert!(e.contains("container 'gone' has no cgroup"), "{e}");
    }
    isolator.prepare(&spec()).unwrap();
    assert_eq!(knobs.0.lock().unwrap().len(), 2);

    // Not granted, or about another container: refused before the host
    // is asked.
    let other = "config = \"config\"\n";
    for (extra, why) in [
        ("", "knob 'cpu.shares' is not granted"),
        (
            &*format!("{other}{granted}"),
            "container 'not-this-container' is not the one this call is about ('c1')",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("com.example.cgroup_isolator");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("config"), "other").unwrap();
        let (isolator, knobs) = cgroup_isolator(dir.path(), form, extra);
        let e = isolator.prepare(&spec()).unwrap_err().to_string();
        assert!(
            e.contains("set_cgroup_knob was refused"),
            "{form:?} {extra}: {e}"
        );
        if let Form::Component = form {
            assert!(e.contains(why), "{e}");
        }
        assert!(knobs.0.lock().unwrap().is_empty());
    }
}
#[test]
fn permissions_are_for_wasm_plugins_and_name_knobs() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, expected) in [
        (
            "[permissions]\ncgroup_knobs = [\"../../etc/passwd\"]\n",
            "'../../etc/passwd' is not a cgroup control file name like cpu.shares",
        ),
        ("[permissions]\nnetwork = true\n", "unknown field `network`"),
    ] {
        let folder = plugin(
            dir.path(),
            "com.example.x",
            &fixture("cgroup-isolator.wat"),
            extra,
        );
        let e = host::load(&folder).unwrap_err().to_string();
        assert!(e.contains(expected), "{e}");
    }
    let folder = plugin(
        dir.path(),
        "com.example.y",
        &fixture("cgroup-isolator.wat"),
        "[permissions]\ncgroup_knobs = [\"cpu.shares\"]\n",
    );
    let manifest = std::fs::read_to_string(folder.join("plugin.toml"))
        .unwrap()
        .replace("runtime = \"wasm\"", "runtime = \"dylib\"");
    std::fs::write(folder.join("plugin.toml"), manifest).unwrap();
    let e = host::load(&folder).unwrap_err().to_string();
    assert!(
        e.contains("permissions apply to runtime \"wasm\" only"),
        "{e}"
    );
}

#[test]
fn a_host_call_naming_bytes_outside_the_memory_traps() {
    let dir = tempfile::tempdir().unwrap();
    let core = fixture("cgroup-isolator.wat").replace(
        "(call $log (i32.const 2) (i32.const 160) (i32.const 18))",
        "(call $log (i32.const 2) (i32.const 65530) (i32.const 18))",
    );
    let folder = plugin(dir.path(), "com.example.cgroup_isolator", &core, "");
    let e = isolator(&folder).prepare(&spec()).unwrap_err().to_string();
    assert!(
        e.contains("isolator.prepare trapped: a host call names bytes outside the memory"),
        "{e}"
    );
}

#[test]
fn granted_wasi_has_no_other_descriptor_and_checks_every_address() {
    let dir = tempfile::tempdir().unwrap();
    let name = "com.example.wasi_import";
    let wasi = "[permissions]\nwasi = true\n";
    for (from, to, expected) in [
        (
            "(call $fd_write (i32.const 1)",
            "(call $fd_write (i32.const 3)",
            "a WASI call failed",
        ),
        (
            r#"(data (i32.const 2048) "\34\08\00\00\10\00\00\00")"#,
            r#"(data (i32.const 2048) "\00\00\ff\00\10\00\00\00")"#,
            "isolator.prepare trapped: a host call names bytes outside the memory",
        ),
    ] {
        let text = fixture("wasi-import.wat").replace(from, to);
        assert_ne!(text, fixture("wasi-import.wat"));
        let folder = plugin(dir.path(), name, &text, wasi);
        let e = isolator(&folder).prepare(&spec()).unwrap_err().to_string();
        assert!(e.contains(expected), "{e}");
    }
}

#[test]
fn a_wasm_allocator_that_trapped_gets_its_books_rebuilt() {
    use mesos_plugin_api::allocator::{AgentSpec, Allocator, FrameworkSpec};
    use mesos_proto::v1;
    let dir = tempfile::tempdir().unwrap();
    let name = "com.example.flaky_allocator";
    let folder = plugin(dir.path(), name, &fixture("flaky-allocator.wat"), "");
    let manifest = std::fs::read_to_string(folder.join("plugin.toml"))
        .unwrap()
        .replace("kind = \"isolator\"", "kind = \"allocator\"");
    std::fs::write(folder.join("plugin.toml"), manifest).unwrap();
    let loaded = host::load(&folder).unwrap();
    let mut allocator = loaded.allocator().unwrap().start().unwrap();
    let cpus = |value| {
        vec![v1::Resource {
            name: "cpus".into(),
            r#type: v1::value::Type::Scalar as i32,
            scalar: Some(v1::value::Scalar { value }),
            ..Default::default()
        }]
    };
    allocator.add_framework(
        FrameworkSpec {
            id: "f1".into(),
            roles: Vec::new(),
            suppressed_roles: Vec::new(),
        },
        &[],
    );
    allocator.add_agent(
        AgentSpec {
            id: "a1".into(),
            hostname: "a1".into(),
            total: cpus(4.0).into(),
        },
        &[],
    );
    let now = std::time::Instant::now();
    assert!(allocator.allocate(now).is_empty(), "the cycle traps");
    let grants = allocator.allocate(now);
    assert_eq!(grants.len(), 1, "the rebuilt instance got the reset");
    assert_eq!(
        (grants[0].framework_id.as_str(), grants[0].agent_id.as_str()),
        ("f1", "a1")
    );
}

#[test]
fn a_core_module_in_binary_componentizes_into_a_working_component() {
    use mesos_plugin_api::host::shell::componentize;
    let dir = tempfile::tempdir().unwrap();
    let name = "com.example.env_isolator";
    // A binary module with a name of its own, as toolchains write them.
    let core =
        wat::parse_str(fixture("env-isolator.wat").replacen("(module", "(module $env_isolator", 1))
            .unwrap();
    let component = componentize(&core).unwrap();
    assert_eq!(
        &component[4..8],
        &[0x0d, 0x00, 0x01, 0x00],
        "a component's preamble"
    );
    let folder = dir.path().join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("plugin.wasm"), &component).unwrap();
    let sha = format!("{:x}", Sha256::digest(&component));
    std::fs::write(
        folder.join("plugin.toml"),
        format!("name = \"{name}\"\nkind = \"isolator\"\nruntime = \"wasm\"\nartifact = \"plugin.wasm\"\nsha256 = \"{sha}\"\n"),
    )
    .unwrap();
    let launch = isolator(&folder).prepare(&spec()).unwrap();
    assert_eq!(launch.env[0].0, "PLUGIN_GREETING");

    assert_eq!(componentize(&component).unwrap_err(), "already a component");
    assert!(
        componentize(b"not wasm")
            .unwrap_err()
            .starts_with("not a module")
    );
}
