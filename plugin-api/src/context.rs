//! Which container the plugin call in progress on this thread is about.
//! The host calls a WASM plugin makes during a call (`host::calls`) may
//! act on that container and no other; the adapters say which it is.

use std::cell::RefCell;

thread_local! {
    static CONTAINER: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Puts back the container of the enclosing call, even on a panic.
struct Restore(Option<String>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CONTAINER.with(|c| *c.borrow_mut() = previous);
    }
}

/// Runs `f` as a call about `container_id`.
pub fn about<T>(container_id: &str, f: impl FnOnce() -> T) -> T {
    let previous = CONTAINER.with(|c| c.replace(Some(container_id.to_string())));
    let _restore = Restore(previous);
    f()
}

/// The container the call in progress is about, if any.
pub fn current() -> Option<String> {
    CONTAINER.with(|c| c.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_nest_and_unwind() {
        assert_eq!(current(), None);
        about("a", || {
            assert_eq!(current().as_deref(), Some("a"));
            about("b", || assert_eq!(current().as_deref(), Some("b")));
            assert_eq!(current().as_deref(), Some("a"));
            let panicked = std::panic::catch_unwind(|| about("c", || panic!("in c")));
            assert!(panicked.is_err());
            assert_eq!(current().as_deref(), Some("a"));
        });
        assert_eq!(current(), None);
    }
}
