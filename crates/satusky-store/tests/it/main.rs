//! The store's one integration binary: the conformance suite on SQLite (a
//! file, and `sqlite::memory:` as other crates' tests use it) always, and on
//! PostgreSQL when `SATUSKY_TEST_POSTGRES_URL` is set (set
//! but unreachable fails), each test on its own fresh database; plus the
//! tests of opening and migrating databases.

mod harness;
mod open;

/// One test per conformance function and database.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::on_sqlite(satusky_store::conformance::$name).await;
                }
            )*
        }

        mod sqlite_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::on_sqlite_memory(satusky_store::conformance::$name).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::harness::on_postgres(satusky_store::conformance::$name).await;
                }
            )*
        }
    };
}

satusky_store::conformance_suite!(on_both_databases);
