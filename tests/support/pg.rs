//! The PostgreSQL server the shared-log tests run against: its URL (from
//! `RWLOG_PG_URL`, default the local server), whether it answers, and a
//! schema of its own for each test, dropped after.
//!
//! Without a server the tests print one line saying so and pass; with
//! `CI=true` they fail instead, since CI must run them.
#![allow(dead_code)]

use std::sync::OnceLock;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn url() -> String {
    std::env::var("RWLOG_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A client for the test's own SQL (not rwlog's).
pub fn client() -> postgres::Client {
    postgres::Client::connect(&url(), postgres::NoTls).expect("connect to PostgreSQL")
}

/// Whether the server answers; if not, says so once (or, under CI, fails).
pub fn available() -> bool {
    static ANSWER: OnceLock<Result<(), String>> = OnceLock::new();
    let answer = ANSWER.get_or_init(|| {
        postgres::Client::connect(&url(), postgres::NoTls)
            .map(drop)
            .map_err(|e| e.to_string())
    });
    match answer {
        Ok(()) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and PostgreSQL at {} does not answer: {e}", url())
        }
        Err(e) => {
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| {
                eprintln!(
                    "skipping the PostgreSQL tests: {} does not answer ({e}); set RWLOG_PG_URL",
                    url()
                )
            });
            false
        }
    }
}

/// A schema for one test, empty at the start and dropped at the end.
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn new(test: &str) -> Schema {
        let name = format!("t_{test}_{}", std::process::id());
        drop_schema(&name);
        Schema { name }
    }

    /// rwlog's storage for this schema.
    pub fn storage(&self) -> rwlog::Storage {
        rwlog::Storage::postgres(url()).schema(&self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        drop_schema(&self.name);
    }
}

fn drop_schema(name: &str) {
    let mut c = client();
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
        .expect("drop the test schema");
}
