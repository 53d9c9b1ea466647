//! Writer actors: commands for one stream run one at a time (no lost
//! update), conflicts with other writers are resolved by reload and retry,
//! refused commands append nothing, and command statuses can be looked up.

use std::time::{Duration, Instant};

use rwlog::testing::AggregateTest;
use rwlog::{ActorOptions, Aggregate, CommandError, CommandStatus, Event, Position, Runtime};

#[derive(Clone, Debug, PartialEq)]
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
    let options = ActorOptions {
        retries: 0,
        ..ActorOptions::default()
    };
    let actors = rt.actors_with::<Count>(1, options).unwrap();
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
