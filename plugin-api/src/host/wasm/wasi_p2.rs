//! A small WASI 0.2 for components whose manifest grants it (`[permissions]
//! wasi = true`), the counterpart of [`super::wasi`] for core modules:
//! what Rust's `wasm32-wasip2` standard library and wasi-libc reach for to
//! read a clock, seed a hash map, print or panic (`wit/wasi-granted.wit`
//! lists it). Standard output and error become lines of the agent's log,
//! named after the plugin; the clocks and randomness are the host's; the
//! environment, the arguments and standard input are empty; `exit` ends
//! the call as a trap. There are no files and no sockets: anything else a
//! component imports stays a trap.
//!
//! Nothing here keeps state of its own: the streams are three fixed
//! handles and every pollable is ready, so a resource's handle is its
//! meaning.

use wasmtime::component::{HasSelf, Linker, Resource, ResourceType};

use super::Guest;
use super::wasi::{monotonic_nanos, random_bytes, wall_clock};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/wasi-granted.wit",
        world: "granted",
        imports: {
            "wasi:cli/exit.exit": trappable,
            "wasi:random/random.get-random-bytes": trappable,
            "wasi:random/random.get-random-u64": trappable,
        },
    });
}

use bindings::wasi::cli::{
    environment, exit, stderr, stdin, stdout, terminal_input, terminal_output, terminal_stderr,
    terminal_stdin, terminal_stdout,
};
use bindings::wasi::clocks::{monotonic_clock, wall_clock as wall};
use bindings::wasi::io::{error, poll, streams};
use bindings::wasi::random::{insecure_seed, random};

/// Bytes one `get-random-bytes` may ask for.
const MAX_RANDOM: u64 = 64 << 10;

/// How much a write may carry: what `check-write` promises.
const WRITE_BUDGET: u64 = 64 << 10;

/// The handles of the standard streams.
const STDIN: u32 = 0;
const STDOUT: u32 = 1;
const STDERR: u32 = 2;

/// Links the interfaces of `wit/wasi-granted.wit` into `linker`.
pub(super) fn link(linker: &mut Linker<Guest>) -> wasmtime::Result<()> {
    bindings::Granted::add_to_linker::<Guest, HasSelf<Guest>>(linker, |guest| guest)?;
    // A resource an interface takes from another (`use error.{error}`) is
    // an export of its instance too. The bindings leave those out, and the
    // stubs of unknown imports would fill them with a resource of their
    // own, which the component refuses as a different type.
    let version = "@0.2.6";
    let aliases = [
        (
            "wasi:io/streams",
            "error",
            ResourceType::host::<error::Error>(),
        ),
        (
            "wasi:io/streams",
            "pollable",
            ResourceType::host::<poll::Pollable>(),
        ),
        (
            "wasi:cli/stdin",
            "input-stream",
            ResourceType::host::<streams::InputStream>(),
        ),
        (
            "wasi:cli/stdout",
            "output-stream",
            ResourceType::host::<streams::OutputStream>(),
        ),
        (
            "wasi:cli/stderr",
            "output-stream",
            ResourceType::host::<streams::OutputStream>(),
        ),
        (
            "wasi:cli/terminal-stdin",
            "terminal-input",
            ResourceType::host::<terminal_input::TerminalInput>(),
        ),
        (
            "wasi:cli/terminal-stdout",
            "terminal-output",
            ResourceType::host::<terminal_output::TerminalOutput>(),
        ),
        (
            "wasi:cli/terminal-stderr",
            "terminal-output",
            ResourceType::host::<terminal_output::TerminalOutput>(),
        ),
    ];
    for (interface, resource, ty) in aliases {
        linker
            .instance(&format!("{interface}{version}"))?
            .resource(resource, ty, |_, _| Ok(()))?;
    }
    Ok(())
}

impl poll::Host for Guest {}

impl poll::HostPollable for Guest {
    fn ready(&mut self, _: Resource<poll::Pollable>) -> bool {
        true
    }

    fn block(&mut self, _: Resource<poll::Pollable>) {}

    fn drop(&mut self, _: Resource<poll::Pollable>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl error::Host for Guest {}

impl error::HostError for Guest {
    fn to_debug_string(&mut self, _: Resource<error::Error>) -> String {
        "no error".into()
    }

    fn drop(&mut self, _: Resource<error::Error>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl streams::Host for Guest {}

impl streams::HostInputStream for Guest {
    fn drop(&mut self, _: Resource<streams::InputStream>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl streams::HostOutputStream for Guest {
    fn check_write(
        &mut self,
        _: Resource<streams::OutputStream>,
    ) -> Result<u64, streams::StreamError> {
        Ok(WRITE_BUDGET)
    }

    fn write(
        &mut self,
        stream: Resource<streams::OutputStream>,
        contents: Vec<u8>,
    ) -> Result<(), streams::StreamError> {
        self.print(stream.rep(), &contents);
        Ok(())
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<streams::OutputStream>,
        contents: Vec<u8>,
    ) -> Result<(), streams::StreamError> {
        self.print(stream.rep(), &contents);
        Ok(())
    }

    fn flush(&mut self, _: Resource<streams::OutputStream>) -> Result<(), streams::StreamError> {
        Ok(())
    }

    fn blocking_flush(
        &mut self,
        _: Resource<streams::OutputStream>,
    ) -> Result<(), streams::StreamError> {
        Ok(())
    }

    fn subscribe(&mut self, _: Resource<streams::OutputStream>) -> Resource<poll::Pollable> {
        Resource::new_own(0)
    }

    fn drop(&mut self, _: Resource<streams::OutputStream>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl monotonic_clock::Host for Guest {
    fn now(&mut self) -> u64 {
        monotonic_nanos()
    }

    fn resolution(&mut self) -> u64 {
        1
    }
}

impl wall::Host for Guest {
    fn now(&mut self) -> wall::Datetime {
        let now = wall_clock();
        wall::Datetime {
            seconds: now.as_secs(),
            nanoseconds: now.subsec_nanos(),
        }
    }

    fn resolution(&mut self) -> wall::Datetime {
        wall::Datetime {
            seconds: 0,
            nanoseconds: 1,
        }
    }
}

impl random::Host for Guest {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        if len > MAX_RANDOM {
            return Err(wasmtime::Error::msg(format!(
                "get-random-bytes asked for {len} bytes; at most {MAX_RANDOM} per call"
            )));
        }
        random_bytes(len as usize)
            .map_err(|e| wasmtime::Error::msg(format!("get-random-bytes: {e}")))
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        let mut word = [0u8; 8];
        let bytes =
            random_bytes(8).map_err(|e| wasmtime::Error::msg(format!("get-random-u64: {e}")))?;
        word.copy_from_slice(&bytes);
        Ok(u64::from_le_bytes(word))
    }
}

impl insecure_seed::Host for Guest {
    fn insecure_seed(&mut self) -> (u64, u64) {
        let now = wall_clock();
        (
            now.as_secs(),
            monotonic_nanos() ^ u64::from(now.subsec_nanos()),
        )
    }
}

impl environment::Host for Guest {
    fn get_environment(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn get_arguments(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn initial_cwd(&mut self) -> Option<String> {
        None
    }
}

impl exit::Host for Guest {
    fn exit(&mut self, status: Result<(), ()>) -> wasmtime::Result<()> {
        let status = if status.is_ok() { "success" } else { "failure" };
        Err(wasmtime::Error::msg(format!(
            "the plugin exited ({status})"
        )))
    }
}

impl stdin::Host for Guest {
    fn get_stdin(&mut self) -> Resource<streams::InputStream> {
        Resource::new_own(STDIN)
    }
}

impl stdout::Host for Guest {
    fn get_stdout(&mut self) -> Resource<streams::OutputStream> {
        Resource::new_own(STDOUT)
    }
}

impl stderr::Host for Guest {
    fn get_stderr(&mut self) -> Resource<streams::OutputStream> {
        Resource::new_own(STDERR)
    }
}

impl terminal_input::Host for Guest {}

impl terminal_input::HostTerminalInput for Guest {
    fn drop(&mut self, _: Resource<terminal_input::TerminalInput>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl terminal_output::Host for Guest {}

impl terminal_output::HostTerminalOutput for Guest {
    fn drop(&mut self, _: Resource<terminal_output::TerminalOutput>) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// Not terminals: line buffering is the log's business.
impl terminal_stdin::Host for Guest {
    fn get_terminal_stdin(&mut self) -> Option<Resource<terminal_input::TerminalInput>> {
        None
    }
}

impl terminal_stdout::Host for Guest {
    fn get_terminal_stdout(&mut self) -> Option<Resource<terminal_output::TerminalOutput>> {
        None
    }
}

impl terminal_stderr::Host for Guest {
    fn get_terminal_stderr(&mut self) -> Option<Resource<terminal_output::TerminalOutput>> {
        None
    }
}
