//! The store conformance suite: every operation of the `Store` interface,
//! written once against `SharedStore`, run for each backend by a small
//! file that implements [`Backend`] and lists the tests with
//! `conformance_tests!` (see `tests/sqlite.rs`).

pub mod basics;
pub mod credentials;
pub mod intake;
pub mod jmap;
pub mod model;
pub mod spam;
pub mod submission;
pub mod vacation;

use letterbox_store::SharedStore;

/// Whatever keeps a store's resources alive (a temporary directory, a
/// test database) until the test ends.
pub type Guard = Box<dyn std::any::Any + Send>;

/// How the suite gets stores of one backend.
pub trait Backend: Sync {
    /// A new, empty store.
    fn fresh(&self) -> (Guard, SharedStore);
    /// The same store opened again (after the first handle was closed).
    fn reopen(&self, guard: &Guard) -> SharedStore;
}

/// One `#[tokio::test]` per suite function, for the backend `$b`.
#[macro_export]
macro_rules! conformance_tests {
    ($b:expr; $($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                conformance::$module::$name(&$b).await
            }
        )*
    };
}
