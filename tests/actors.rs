//! Writer actors: commands for one stream run one at a time (no lost
//! update), conflicts with other writers are resolved by reload and retry,
//! refused commands append nothing, and command statuses can be looked up.

use std::time::{Duration, Instant};

#[path = "support/child.rs"]
mod child;

use rwlog::testing::AggregateTest;
use rwlog::{ActorOptions, Aggregate, CommandError, CommandStatus, Event, Position, Runtime};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Counter {
    /// The count went from `to - 1` to `to`: a lost update would repeat a `to`.
    Incremented { to: u64 },
}

impl Event for Counter {}

#[derive(Default, Debug)]
struct Count(u64);

#[derive(Debug)]
enum Cmd {
    Increment,
    IncrementBelow(u64),
}

impl Aggregate for Count {
    type Command = Cmd;
    type Event = Counter;
    type Error = String;

    fn handle(&self, command: &Cmd) -> Result<Vec<Counter>, String> {
        match command {
            Cmd::IncrementBelow(limit) if self.0 + 1 >= *limit => {
                Err(format!("would reach {limit}"))
            }
            _ => Ok(vec![Counter::Incremented { to: self.0 + 1 }]),
        }
    }

    fn apply(&mut self, Counter::Incremented { to }: &Counter) {
        self.0 = *to;
    }
}

#[test]
fn the_aggregate_decides_as_expected() {
    AggregateTest::<Count>::given_no_events()
        .when(Cmd::Increment)
        .then_expect_events([Counter::Incremented { to: 1 }]);
    AggregateTest::<Count>::given([
        Counter::Incremented { to: 1 },
        Counter::Incremented { to: 2 },
    ])
    .when(Cmd::IncrementBelow(3))
    .then_expect_error("would reach 3".to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_for_one_stream_are_serialized() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Count>(4).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let actors = actors.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    actors.send("counter", Cmd::Increment).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let tos: Vec<u64> = rt
        .log()
        .read_stream("counter", 1)
        .map(|e| match e.payload() {
            Counter::Incremented { to } => *to,
        })
        .collect();
    assert_eq!(
        tos,
        (1..=400).collect::<Vec<_>>(),
        "every increment saw the one before it"
    );
}

#[test]
fn a_conflicting_raw_append_is_resolved_by_reload_and_retry() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Count>(2).unwrap();
    assert_eq!(
        actors.send_blocking("c", Cmd::Increment).unwrap().version,
        1
    );
    // Someone else writes the stream behind the actor's back.
    rt.writer()
        .append("c", Counter::Incremented { to: 2 })
        .unwrap();
    let done = actors.send_blocking("c", Cmd::Increment).unwrap();
    assert_eq!(done.version, 3);
    let last = rt.log().get(done.position.unwrap()).unwrap();
    assert_eq!(
        last.payload(),
        &Counter::Incremented { to: 3 },
        "the retry saw the reloaded state"
    );
}

#[test]
fn conflicts_beyond_the_retries_are_reported() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = without_retries(&rt);
    actors.send_blocking("c", Cmd::Increment).unwrap();
    rt.writer()
        .append("c", Counter::Incremented { to: 2 })
        .unwrap();
    match actors.send_blocking("c", Cmd::Increment) {
        Err(CommandError::Conflict { attempts: 1 }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(rt.log().stream_version("c"), 2, "nothing was appended");
}

#[test]
fn a_refused_command_appends_nothing() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Count>(2).unwrap();
    actors.send_blocking("c", Cmd::Increment).unwrap();
    match actors.send_blocking("c", Cmd::IncrementBelow(2)) {
        Err(CommandError::Domain(reason)) => assert_eq!(reason, "would reach 2"),
        other => panic!("expected a domain error, got {other:?}"),
    }
    assert_eq!(rt.head(), Position(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_and_causation_can_be_looked_up() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Count>(2).unwrap();
    let ok = actors.submit("c", Cmd::Increment).await.unwrap().id();
    let refused = actors
        .submit("c", Cmd::IncrementBelow(1))
        .await
        .unwrap()
        .id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let done = loop {
        if let Some(CommandStatus::Completed(done)) = actors.status(ok) {
            break done;
        }
        assert!(Instant::now() < deadline, "the command never completed");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    assert_eq!(
        (done.command, done.position, done.version),
        (ok, Some(Position(1)), 1)
    );
    loop {
        match actors.status(refused) {
            Some(CommandStatus::Failed(why)) => {
                assert!(why.contains("would reach 1"), "{why}");
                break;
            }
            _ => {
                assert!(Instant::now() < deadline, "the refusal never showed");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    assert_eq!(actors.status(rwlog::Uuid::now_v7()), None);
    // The event carries the command as its cause, and the correlation id.
    let corr = rwlog::Uuid::now_v7();
    let d = actors
        .send_correlated("c", Cmd::Increment, Some(corr))
        .await
        .unwrap();
    let e = rt.log().get(d.position.unwrap()).unwrap();
    assert_eq!(e.metadata().causation_id, Some(d.command));
    assert_eq!(e.metadata().correlation_id, Some(corr));
}

#[tokio::test(flavor = "current_thread")]
async fn a_submitted_command_is_awaited() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Count>(1).unwrap();
    let first = actors.submit("c", Cmd::Increment).await.unwrap();
    let second = actors.submit("c", Cmd::IncrementBelow(1)).await.unwrap();
    let id = first.id();
    let done = first.await.unwrap();
    assert_eq!((done.command, done.version), (id, 1));
    assert!(matches!(
        actors.status(id),
        Some(CommandStatus::Completed(_))
    ));
    match second.await {
        Err(rwlog::CommandError::Domain(_)) => {}
        other => panic!("expected the aggregate's refusal, got {other:?}"),
    }
}

/// Panics on its `Boom` command.
#[derive(Default, Debug)]
struct Touchy(u64);

#[derive(Debug)]
enum Poke {
    Fine,
    Boom,
}

impl Aggregate for Touchy {
    type Command = Poke;
    type Event = Counter;
    type Error = String;

    fn handle(&self, command: &Poke) -> Result<Vec<Counter>, String> {
        match command {
            Poke::Boom => panic!("a bug in the aggregate"),
            Poke::Fine => Ok(vec![Counter::Incremented { to: self.0 + 1 }]),
        }
    }

    fn apply(&mut self, Counter::Incremented { to }: &Counter) {
        self.0 = *to;
    }
}

#[test]
fn a_panicking_command_fails_alone_and_its_shard_goes_on() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Touchy>(1).unwrap();
    let tasks = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tasks.block_on(async {
        let limit = Duration::from_secs(10);
        actors.send("a", Poke::Fine).await.unwrap();
        let boom = actors.submit("a", Poke::Boom).await.unwrap();
        let id = boom.id();
        match tokio::time::timeout(limit, boom).await.unwrap() {
            Err(CommandError::Panicked(message)) => {
                assert!(message.contains("a bug in the aggregate"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(actors.status(id), Some(CommandStatus::Failed(_))));
        // The same stream (its aggregate reloaded) and another: both served.
        let again = tokio::time::timeout(limit, actors.send("a", Poke::Fine))
            .await
            .unwrap();
        assert_eq!(again.unwrap().version, 2);
        let other = tokio::time::timeout(limit, actors.send("b", Poke::Fine))
            .await
            .unwrap();
        assert_eq!(other.unwrap().version, 1);
    });
}

/// One shard whose conflicts are not retried.
fn without_retries(rt: &Runtime<Counter>) -> rwlog::Actors<Count> {
    let options = ActorOptions {
        retries: 0,
        ..ActorOptions::default()
    };
    rt.actors_with::<Count>(1, options).unwrap()
}

/// Submits `commands` to one shard before its actor runs (on a current-thread
/// runtime, nothing else runs until this task waits), so the actor finds
/// them all in its mailbox at once; returns their outcomes in order.
async fn all_at_once<A: Aggregate>(
    actors: &rwlog::Actors<A>,
    commands: Vec<(&str, A::Command)>,
) -> Vec<Result<rwlog::Done, CommandError<A::Error>>> {
    let mut submitted = Vec::new();
    for (stream, command) in commands {
        submitted.push(actors.submit(stream, command).await.unwrap());
    }
    let mut outcomes = Vec::new();
    for s in submitted {
        outcomes.push(s.await);
    }
    outcomes
}

/// One increment each to streams `s0`, `s1`, … `s{n - 1}`, all at once.
async fn increment_each(
    actors: &rwlog::Actors<Count>,
    n: usize,
) -> Vec<Result<rwlog::Done, CommandError<String>>> {
    let streams: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let commands = streams
        .iter()
        .map(|s| (s.as_str(), Cmd::Increment))
        .collect();
    all_at_once(actors, commands).await
}

#[tokio::test(flavor = "current_thread")]
async fn commands_waiting_for_distinct_streams_are_appended_in_one_batch() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Count>(1).unwrap();
    let outcomes = increment_each(&actors, 50).await;
    statuses_are_final(&actors, &outcomes);
    for (i, outcome) in outcomes.iter().enumerate() {
        let done = outcome.as_ref().unwrap();
        assert_eq!(done.version, 1);
        assert_eq!(
            done.position,
            Some(Position(i as u64 + 1)),
            "in mailbox order"
        );
    }
    let stats = rt.stats();
    assert_eq!(
        (stats.appended, stats.batches),
        (50, 1),
        "one batch for the group"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_command_waiting_behind_one_for_its_stream_is_decided_on_what_that_one_appended() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    // No retries: a command decided on a stale state would conflict and fail.
    let actors = without_retries(&rt);
    // c, d, c, d, …: each group is cut where a stream repeats.
    let commands = (0..10)
        .map(|i| (if i % 2 == 0 { "c" } else { "d" }, Cmd::IncrementBelow(4)))
        .collect();
    let outcomes = all_at_once(&actors, commands).await;
    let versions: Vec<_> = outcomes
        .iter()
        .map(|o| o.as_ref().map(|d| d.version).map_err(|e| e.to_string()))
        .collect();
    for (i, v) in versions.iter().enumerate() {
        match i / 2 {
            0..=2 => assert_eq!(v, &Ok(i as u64 / 2 + 1), "{versions:?}"),
            _ => assert!(
                v.as_ref().is_err_and(|e| e.contains("would reach 4")),
                "{versions:?}"
            ),
        }
    }
    assert_eq!(rt.log().stream_version("c"), 3);
    assert_eq!(rt.log().stream_version("d"), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn a_conflict_in_a_group_is_retried_alone() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Count>(1).unwrap();
    actors.send("c", Cmd::Increment).await.unwrap();
    // Someone else writes c behind the actor's back.
    rt.writer()
        .append("c", Counter::Incremented { to: 2 })
        .unwrap();
    let commands = vec![
        ("d", Cmd::Increment),
        ("c", Cmd::Increment),
        ("e", Cmd::Increment),
    ];
    let outcomes = all_at_once(&actors, commands).await;
    let versions: Vec<_> = outcomes
        .iter()
        .map(|o| o.as_ref().unwrap().version)
        .collect();
    assert_eq!(versions, [1, 3, 1]);
    let c = outcomes[1].as_ref().unwrap();
    let last = rt.log().get(c.position.unwrap()).unwrap();
    assert_eq!(
        last.payload(),
        &Counter::Incremented { to: 3 },
        "retried on the reloaded state"
    );
    assert_eq!(rt.log().stream_version("c"), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn a_conflict_in_a_group_counts_as_an_attempt() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = without_retries(&rt);
    actors.send("c", Cmd::Increment).await.unwrap();
    rt.writer()
        .append("c", Counter::Incremented { to: 2 })
        .unwrap();
    let outcomes = all_at_once(&actors, vec![("c", Cmd::Increment), ("d", Cmd::Increment)]).await;
    assert!(
        matches!(outcomes[0], Err(CommandError::Conflict { attempts: 1 })),
        "{:?}",
        outcomes[0]
    );
    assert_eq!(outcomes[1].as_ref().unwrap().version, 1);
    assert_eq!(rt.log().stream_version("c"), 2, "nothing was appended to c");
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_command_in_a_group_fails_alone() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Touchy>(1).unwrap();
    let commands = vec![("a", Poke::Fine), ("b", Poke::Boom), ("c", Poke::Fine)];
    let outcomes = all_at_once(&actors, commands).await;
    assert_eq!(outcomes[0].as_ref().unwrap().version, 1);
    assert!(matches!(&outcomes[1], Err(CommandError::Panicked(m)) if m.contains("a bug")));
    assert_eq!(outcomes[2].as_ref().unwrap().version, 1);
    assert_eq!(
        rt.log().stream_version("b"),
        0,
        "the panicking command appended nothing"
    );
    assert_eq!(actors.send("b", Poke::Fine).await.unwrap().version, 1);
}

#[cfg(feature = "durable")]
#[tokio::test(flavor = "current_thread")]
async fn on_a_durable_log_a_group_of_commands_is_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let rt = durable_log(dir.path());
    let actors = rt.actors::<Count>(1).unwrap();
    for outcome in increment_each(&actors, 20).await {
        assert_eq!(outcome.unwrap().version, 1);
    }
    let stats = rt.stats();
    assert_eq!((stats.appended, stats.batches), (20, 1));
    drop(actors);
    rt.shutdown().unwrap();
    let reopened = durable_log(dir.path());
    assert_eq!(
        reopened.head(),
        Position(20),
        "every acknowledged command is on disk"
    );
}

/// Its `apply` panics on an increment to 100 or more; the command is the
/// count to write (0: one more than now).
#[derive(Default, Debug)]
struct Fragile(u64);

impl Aggregate for Fragile {
    type Command = u64;
    type Event = Counter;
    type Error = String;

    fn handle(&self, to: &u64) -> Result<Vec<Counter>, String> {
        let to = if *to == 0 { self.0 + 1 } else { *to };
        Ok(vec![Counter::Incremented { to }])
    }

    fn apply(&mut self, Counter::Incremented { to }: &Counter) {
        assert!(*to < 100, "apply cannot take {to}");
        self.0 = *to;
    }
}

/// Every outcome's command has its final status once its reply came.
fn statuses_are_final<A: Aggregate>(
    actors: &rwlog::Actors<A>,
    outcomes: &[Result<rwlog::Done, CommandError<A::Error>>],
) {
    for done in outcomes.iter().flatten() {
        assert!(matches!(
            actors.status(done.command),
            Some(CommandStatus::Completed(_))
        ));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_applying_a_groups_append_fails_only_its_command() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Fragile>(1).unwrap();
    let outcomes = all_at_once(&actors, vec![("a", 0), ("b", 100), ("c", 0)]).await;
    assert_eq!(outcomes[0].as_ref().unwrap().version, 1);
    assert!(
        matches!(&outcomes[1], Err(CommandError::Panicked(m)) if m.contains("cannot take 100"))
    );
    assert_eq!(outcomes[2].as_ref().unwrap().version, 1);
    statuses_are_final(&actors, &outcomes);
    // b's event was appended before its apply panicked; the shard goes on.
    assert_eq!(rt.log().stream_version("b"), 1);
    assert_eq!(actors.send("d", 0).await.unwrap().version, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_reloading_after_a_conflict_in_a_group_fails_only_its_command() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Fragile>(1).unwrap();
    actors.send("c", 0).await.unwrap();
    // Someone else writes c an event its aggregate cannot apply.
    rt.writer()
        .append("c", Counter::Incremented { to: 100 })
        .unwrap();
    let outcomes = all_at_once(&actors, vec![("c", 0), ("d", 0)]).await;
    assert!(
        matches!(&outcomes[0], Err(CommandError::Panicked(m)) if m.contains("cannot take 100"))
    );
    assert_eq!(outcomes[1].as_ref().unwrap().version, 1);
    statuses_are_final(&actors, &outcomes);
    assert_eq!(
        actors.send("e", 0).await.unwrap().version,
        1,
        "the shard goes on"
    );
}

/// 60 commands for 30 streams, twice each, through a queue of 2: every
/// group is larger than the queue.
async fn through_a_small_queue(sequencing: rwlog::Sequencing, storage: Option<rwlog::Storage>) {
    let mut builder = Runtime::<Counter>::builder()
        .queue_capacity(2)
        .sequencing(sequencing);
    if let Some(storage) = storage {
        builder = builder.storage(storage);
    }
    let rt = builder.build().unwrap();
    let actors = rt.actors::<Fragile>(1).unwrap();
    let streams: Vec<String> = (0..60).map(|i| format!("s{}", i % 30)).collect();
    let commands = streams.iter().map(|s| (s.as_str(), 0)).collect();
    let outcomes = tokio::time::timeout(Duration::from_secs(30), all_at_once(&actors, commands))
        .await
        .expect("every command is answered");
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.as_ref().unwrap().version, 1 + i as u64 / 30);
    }
    statuses_are_final(&actors, &outcomes);
    assert_eq!(rt.head(), Position(60));
}

#[tokio::test(flavor = "current_thread")]
async fn a_group_larger_than_the_queue_is_sequenced_whole_in_every_mode() {
    for sequencing in [rwlog::Sequencing::Combining, rwlog::Sequencing::Thread] {
        through_a_small_queue(sequencing, None).await;
        #[cfg(feature = "durable")]
        {
            let dir = tempfile::tempdir().unwrap();
            let storage = rwlog::Storage::dir(dir.path()).durability(rwlog::Durability::Fsync);
            through_a_small_queue(sequencing, Some(storage)).await;
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn commands_waiting_when_the_handles_are_dropped_are_all_answered() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let actors = rt.actors::<Fragile>(1).unwrap();
    let mut submitted = Vec::new();
    for stream in ["c", "c", "d", "c", "d"] {
        submitted.push(actors.submit(stream, 0).await.unwrap());
    }
    drop(actors);
    let mut versions = Vec::new();
    for s in submitted {
        let done = tokio::time::timeout(Duration::from_secs(10), s).await;
        versions.push(done.expect("answered").unwrap().version);
    }
    assert_eq!(versions, [1, 2, 1, 3, 2]);
}

/// Where the SIGKILL child keeps its log.
#[cfg(feature = "durable")]
const CHILD_DIR: &str = "RWLOG_ACTORS_CHILD_DIR";

#[cfg(feature = "durable")]
fn durable_log(dir: impl AsRef<std::path::Path>) -> Runtime<Counter> {
    Runtime::<Counter>::builder()
        .storage(rwlog::Storage::dir(dir.as_ref()).durability(rwlog::Durability::Fsync))
        .build()
        .expect("open the log")
}

/// The child of the crash test: 32 client tasks send commands to one
/// shard (so they are grouped) until killed, printing every completed one
/// and, now and then, the runtime's mean events per batch.
#[cfg(feature = "durable")]
#[test]
fn actors_crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let rt = std::sync::Arc::new(durable_log(&dir));
    let tasks = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let actors = {
        let _inside = tasks.enter();
        rt.actors::<Count>(1).unwrap()
    };
    tasks.block_on(async {
        let clients: Vec<_> = (0..32u64)
            .map(|c| {
                let (actors, rt) = (actors.clone(), std::sync::Arc::clone(&rt));
                tokio::spawn(async move {
                    for i in 0u64.. {
                        let stream = format!("s{}", (c * 7 + i) % 50);
                        let done = actors.send(stream.as_str(), Cmd::Increment).await;
                        let done = done.expect("command");
                        let at = done.position.expect("appended");
                        child::tell_parent(&format!("DONE {at} {stream} {}", done.version));
                        if c == 0 && i % 5 == 4 {
                            child::tell_parent(&format!("BATCH {}", rt.stats().mean_batch));
                        }
                    }
                })
            })
            .collect();
        for c in clients {
            let _ = c.await;
        }
    });
}

#[cfg(feature = "durable")]
#[test]
fn commands_completed_by_grouped_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let mut mean_batches: Vec<f64> = Vec::new();
    for (round, wanted) in [3usize, 150, 40, 600].into_iter().enumerate() {
        let mut child = child::spawn("actors_crash_child", &[(CHILD_DIR, path)]);
        let mut lines = Vec::new();
        while lines
            .iter()
            .filter(|l: &&String| l.starts_with("DONE "))
            .count()
            < wanted
        {
            match child.line() {
                Some(line) => lines.push(line),
                None => panic!("round {round}: the child ended: {lines:?}"),
            }
        }
        // Completions printed before the kill are still in the pipe.
        lines.extend(child.kill());
        mean_batches.extend(
            lines
                .iter()
                .filter_map(|l| l.strip_prefix("BATCH ")?.parse::<f64>().ok()),
        );
        let rt = durable_log(path);
        let mut done = 0;
        for line in &lines {
            let Some(rest) = line.strip_prefix("DONE ") else {
                continue;
            };
            let f: Vec<&str> = rest.split(' ').collect();
            let at = Position(f[0].parse().unwrap());
            let e = rt
                .log()
                .get(at)
                .unwrap_or_else(|| panic!("round {round}: completed at {at}, head {}", rt.head()));
            assert_eq!(e.stream().as_str(), f[1], "round {round}: {at}");
            assert_eq!(e.version().to_string(), f[2], "round {round}: {at}");
            done += 1;
        }
        assert!(done >= wanted, "round {round}");
        rt.shutdown().unwrap();
    }
    // The child's commands were appended in groups, not one by one.
    assert!(
        mean_batches.iter().any(|&b| b > 2.0),
        "events per batch: {mean_batches:?}"
    );
}

#[test]
fn an_actor_with_a_full_mailbox_still_lets_the_other_tasks_of_its_runtime_run() {
    let rt = Runtime::<Counter>::builder().build().unwrap();
    let tasks = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = ActorOptions {
        mailbox: 100_000,
        ..ActorOptions::default()
    };
    let actors = {
        let _inside = tasks.enter();
        rt.actors_with::<Count>(1, options).unwrap()
    };
    // 20,000 commands wait in the mailbox before the actor first runs
    // (sent from another runtime: this one runs nothing until block_on),
    // all for one stream: each group is one command, and the commands
    // behind it wait in the actor's own queue, not in the mailbox.
    let sender = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let submitted: Vec<_> = sender.block_on(async {
        let mut submitted = Vec::new();
        for _ in 0..20_000 {
            submitted.push(actors.submit("c", Cmd::Increment).await.unwrap());
        }
        submitted
    });
    // This task is behind the actor on the runtime's one thread: it runs
    // once the actor yields, which an actor that kept the thread for as
    // long as its mailbox holds commands would do only after all of them.
    tasks.block_on(tokio::task::yield_now());
    let done_then = rt.head().0;
    assert!(
        done_then < 20_000,
        "the actor kept the thread for every command"
    );
    // And every command is answered.
    tasks.block_on(async {
        for s in submitted {
            s.await.unwrap();
        }
    });
    assert_eq!(rt.log().stream_version("c"), 20_000);
}
