//! `mesos-plugin-componentize <core.wasm> <component.wasm>`: wraps a
//! core-module plugin (the Rust SDK's `wasm32-unknown-unknown` build, a
//! clang one, a `.wat`) in the component shell, so the same source also
//! ships as a component of the `mesos:plugin` world.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: mesos-plugin-componentize <core module> <component out>");
        return ExitCode::from(2);
    };
    let result = std::fs::read(input)
        .map_err(|e| format!("{input}: {e}"))
        .and_then(|core| mesos_plugin_api::host::shell::componentize(&core))
        .and_then(|component| {
            std::fs::write(output, component).map_err(|e| format!("{output}: {e}"))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesos-plugin-componentize: {input}: {e}");
            ExitCode::FAILURE
        }
    }
}
