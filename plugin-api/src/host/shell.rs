//! The component shell (`wit/component-shell.wat`): a component of the
//! `mesos:plugin` world around any core module that speaks the core-module
//! ABI, whose own small module translates between the canonical ABI and
//! the core one. It gives the WAT fixtures their component form, and
//! turns a core-module plugin (the Rust SDK's `wasm32` build, a C one)
//! into a component ([`componentize`], `mesos-plugin-componentize`). The
//! translation copies each payload once more each way than a component
//! built by `wit-bindgen` would.

/// The shell's text; the module goes where it says `;; @core`.
pub const SHELL: &str = include_str!("../../wit/component-shell.wat");

/// The component form of a core module's text: the module placed in the
/// shell. `None` if `core` holds no `(module`.
pub fn in_component_shell(core: &str) -> Option<String> {
    let body = core[core.find("(module")? + "(module".len()..].trim_start();
    // The shell names the module `$plugin`; a name of its own goes.
    let body = match body.strip_prefix('$') {
        Some(named) => {
            let end = named
                .find(|c: char| c.is_whitespace() || c == '(' || c == ')')
                .unwrap_or(named.len());
            &named[end..]
        }
        None => body,
    };
    Some(SHELL.replacen(";; @core", &format!("(core module $plugin {body}"), 1))
}

/// The component, in binary, of the core module `core` (binary or text).
#[cfg(feature = "wasm")]
pub fn componentize(core: &[u8]) -> Result<Vec<u8>, String> {
    let binary = wat::parse_bytes(core).map_err(|e| format!("not a module: {e}"))?;
    if super::wasm::is_component(&binary) {
        return Err("already a component".into());
    }
    let text = wasmprinter::print_bytes(&binary).map_err(|e| format!("not a module: {e:#}"))?;
    let component = in_component_shell(&text)
        .ok_or_else(|| "the module prints without `(module`".to_string())?;
    wat::parse_str(&component).map_err(|e| format!("cannot build the component: {e}"))
}
