//! What is measured: each scenario's work, threads and contenders.

use std::time::Duration;

use crate::contenders::Kind;

/// How long each measurement runs and how many rounds each scenario gets.
pub(crate) struct Budget {
    pub(crate) window: Duration,
    pub(crate) rounds: usize,
    pub(crate) log_events: u64,
    pub(crate) travel_samples: usize,
}

/// What a scenario's threads do.
pub(crate) enum Work {
    /// Threads reading, writing, or (mix) both, as fast as they can.
    Throughput {
        readers: usize,
        writers: usize,
        mix: Option<(usize, u64)>,
    },
    /// One reader timing every read while one writer saturates.
    ReadLatency,
    /// rwlog only: acknowledgement latency of `append`.
    AppendLatency { saturating: bool },
    /// rwlog only: rebuild the view from the whole log.
    Replay,
    /// rwlog only: `view_at` a random position, snapshots every 100k.
    TimeTravel,
    /// rwlog only: appends through `submit` to a log on disk with
    /// `Durability::Fsync`.
    DurableWrites { writers: usize },
    /// rwlog only: reopen a 1M-event log on disk (verify every frame,
    /// decode, rebuild the view).
    Recovery,
    /// rwlog only: commands through writer actors, from 64 concurrent
    /// clients, over this many shards.
    Actors { shards: usize },
    /// The log shared through PostgreSQL.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Pg(PgWork),
}

/// What a PostgreSQL scenario measures.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum PgWork {
    /// Processes with two writers each, for a window.
    Writes { processes: usize },
    /// One process, one writer: each `append`'s acknowledgement.
    AppendLatency,
    /// An append every millisecond in one process, timed until another
    /// process's log shows it.
    Visibility,
}

/// A named piece of work and the contenders that do it.
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) threads: &'static str,
    pub(crate) work: Work,
    pub(crate) contenders: Vec<(Kind, &'static str)>,
}

pub(crate) fn scenarios() -> Vec<Scenario> {
    let maps = || {
        Kind::MAPS
            .iter()
            .map(|k| (*k, k.name()))
            .collect::<Vec<_>>()
    };
    // The read scenarios also measure rwlog's hot-loop reader.
    let reads = || {
        let mut v = maps();
        v.insert(1, (Kind::RwlogCached, Kind::RwlogCached.name()));
        v
    };
    let plus = |mut v: Vec<(Kind, &'static str)>, extra: Kind| {
        v.push((extra, extra.name()));
        v
    };
    let writers = || {
        Kind::WRITERS
            .iter()
            .map(|k| (*k, k.name()))
            .collect::<Vec<_>>()
    };
    let rw = |name, threads, readers, writers| Scenario {
        name,
        threads,
        work: Work::Throughput {
            readers,
            writers,
            mix: None,
        },
        contenders: Vec::new(),
    };
    let mut v = vec![
        Scenario {
            contenders: reads(),
            ..rw("reads_1r", "1r", 1, 0)
        },
        Scenario {
            contenders: reads(),
            ..rw("reads_2r", "2r", 2, 0)
        },
        Scenario {
            contenders: reads(),
            ..rw("reads_4r", "4r", 4, 0)
        },
        Scenario {
            contenders: plus(plus(reads(), Kind::RwlogDeepQueue), Kind::RwlogThread),
            ..rw("reads_2r_1w", "2r+1w", 2, 1)
        },
        Scenario {
            contenders: writers(),
            ..rw("writes_1w", "1w", 0, 1)
        },
        Scenario {
            contenders: writers(),
            ..rw("writes_2w", "2w", 0, 2)
        },
        Scenario {
            contenders: writers(),
            ..rw("writes_4w", "4w", 0, 4)
        },
    ];
    for (name, pct) in [("mix_90_10", 90), ("mix_99_1", 99)] {
        v.push(Scenario {
            name,
            threads: "2rw",
            work: Work::Throughput {
                readers: 0,
                writers: 0,
                mix: Some((2, pct)),
            },
            contenders: maps(),
        });
    }
    v.push(Scenario {
        name: "read_latency_1w",
        threads: "1r+1w",
        work: Work::ReadLatency,
        contenders: plus(reads(), Kind::Unshared),
    });
    v.push(Scenario {
        name: "append_latency",
        threads: "1w",
        work: Work::AppendLatency { saturating: false },
        contenders: vec![
            (Kind::RwlogAppend, "rwlog append (idle)"),
            (Kind::RwlogThreadAppend, "rwlog append (idle), thread mode"),
        ],
    });
    v.push(Scenario {
        name: "append_latency",
        threads: "1w+2 submitting",
        work: Work::AppendLatency { saturating: true },
        contenders: vec![
            (Kind::RwlogAppend, "rwlog append (saturated)"),
            (
                Kind::RwlogThreadAppend,
                "rwlog append (saturated), thread mode",
            ),
        ],
    });
    v.push(Scenario {
        name: "replay",
        threads: "1",
        work: Work::Replay,
        contenders: vec![(Kind::Rwlog, "rwlog view_at(head - 1), no snapshots")],
    });
    for (name, shards, label) in [
        (
            "actors_1s",
            1,
            ("rwlog actors, 1 shard", "thread mode, 1 shard"),
        ),
        (
            "actors_2s",
            2,
            ("rwlog actors, 2 shards", "thread mode, 2 shards"),
        ),
        (
            "actors_4s",
            4,
            ("rwlog actors, 4 shards", "thread mode, 4 shards"),
        ),
    ] {
        v.push(Scenario {
            name,
            threads: "64 clients",
            work: Work::Actors { shards },
            contenders: vec![(Kind::Rwlog, label.0), (Kind::RwlogThread, label.1)],
        });
    }
    v.push(Scenario {
        name: "durable_writes_2w",
        threads: "2w",
        work: Work::DurableWrites { writers: 2 },
        contenders: vec![
            (Kind::Rwlog, "rwlog submit, Fsync"),
            (Kind::RwlogThread, "rwlog submit, Fsync, thread mode"),
        ],
    });
    v.push(Scenario {
        name: "recovery",
        threads: "1",
        work: Work::Recovery,
        contenders: vec![(Kind::Rwlog, "rwlog reopen 1M events")],
    });
    v.extend(postgres_scenarios());
    v.push(Scenario {
        name: "time_travel",
        threads: "1",
        work: Work::TimeTravel,
        contenders: vec![(Kind::Rwlog, "rwlog view_at(random), snapshots/100k")],
    });
    v
}

/// The PostgreSQL scenarios' names, for saying they were skipped.
pub(crate) const PG_SCENARIOS: &str =
    "pg_writes_1p, pg_writes_2p, pg_append_latency, pg_visibility";

/// Why the PostgreSQL scenarios do not run, if they do not.
pub(crate) fn postgres_skipped() -> Option<String> {
    #[cfg(feature = "postgres")]
    return crate::postgres::unavailable();
    #[cfg(not(feature = "postgres"))]
    Some("built without the postgres feature (cargo run --release --features postgres --example compare)".into())
}

fn postgres_scenarios() -> Vec<Scenario> {
    if postgres_skipped().is_some() {
        return Vec::new();
    }
    let writes = |name, threads, processes| Scenario {
        name,
        threads,
        work: Work::Pg(PgWork::Writes { processes }),
        contenders: vec![
            (Kind::Rwlog, "rwlog submit"),
            (Kind::RwlogAppend, "rwlog append"),
            (Kind::PlainInsert, Kind::PlainInsert.name()),
        ],
    };
    vec![
        writes("pg_writes_1p", "1 process × 2w", 1),
        writes("pg_writes_2p", "2 processes × 2w", 2),
        Scenario {
            name: "pg_append_latency",
            threads: "1 process × 1w",
            work: Work::Pg(PgWork::AppendLatency),
            contenders: vec![(Kind::RwlogAppend, "rwlog append (idle)")],
        },
        Scenario {
            name: "pg_visibility",
            threads: "2 processes",
            work: Work::Pg(PgWork::Visibility),
            contenders: vec![(Kind::RwlogAppend, "append in A until B's log shows it")],
        },
    ]
}
