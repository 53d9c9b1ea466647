//! The traces of one level this test binary emits, each as its fields in
//! one line, through a global subscriber (the sequencer and readers may
//! run on any thread). One level per binary: the first call's.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0 += &format!("{}={value:?} ", field.name());
    }
}

struct Collect {
    level: tracing::Level,
    lines: Arc<Mutex<Vec<String>>>,
}

impl tracing::Subscriber for Collect {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() == self.level
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        e.record(&mut fields);
        self.lines.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The traces at `level` so far (installing the subscriber at the first
/// call).
pub fn traces(level: tracing::Level) -> Arc<Mutex<Vec<String>>> {
    static TRACES: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    Arc::clone(TRACES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collect = Collect {
            level,
            lines: Arc::clone(&lines),
        };
        tracing::subscriber::set_global_default(collect).expect("the only subscriber");
        lines
    }))
}
