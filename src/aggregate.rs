//! The command side's model: an [`Aggregate`] decides which events a
//! command produces from the state folded from its stream. Writer actors
//! (`Runtime::actors`, with the `async` feature) run aggregates; [`testing`]
//! tests one without a runtime.

use std::fmt;

use crate::error::Error;
use crate::event::Event;
use crate::position::Position;
use uuid::Uuid;

/// A consistency boundary: the state of one stream, folded from its events,
/// that decides which events a command produces.
///
/// `handle` must not change anything: it only decides. `apply` folds an
/// event (a past one when loading, or one just appended) into the state.
pub trait Aggregate: Default + Send + 'static {
    /// What the aggregate is asked to do.
    type Command: Send + 'static;
    /// What happened: the runtime's event type.
    type Event: Event + Clone;
    /// Why a command was refused (a business rule).
    type Error: fmt::Display + Send + 'static;

    /// Decides the events `command` produces, or why it is refused.
    fn handle(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state.
    fn apply(&mut self, event: &Self::Event);
}

/// A command's result once handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Done {
    /// The command's id (the appended events' causation id).
    pub command: Uuid,
    /// The last appended event's position (`None` if the command produced
    /// no events).
    pub position: Option<Position>,
    /// The stream's version after the command.
    pub version: u64,
    /// How many events the command appended.
    pub events: u64,
}

/// Why a command did not complete.
#[derive(Debug)]
#[non_exhaustive]
pub enum CommandError<D> {
    /// The aggregate refused it: nothing was appended.
    Domain(D),
    /// Other writers kept changing the stream: still conflicting after the
    /// configured retries. Nothing was appended.
    Conflict {
        /// How many times the command was tried.
        attempts: u32,
    },
    /// The runtime refused or failed the append (`Closed`, `Io`, …).
    Runtime(Error),
    /// The aggregate's `handle` or `apply` panicked, with this message.
    /// The stream's aggregate is reloaded from the log for its next
    /// command; if the append was made before the panic, the log holds it.
    Panicked(String),
}

impl<D: fmt::Display> fmt::Display for CommandError<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Domain(e) => write!(f, "refused: {e}"),
            CommandError::Conflict { attempts } => {
                write!(
                    f,
                    "the stream kept changing: conflict after {attempts} attempts"
                )
            }
            CommandError::Runtime(e) => write!(f, "{e}"),
            CommandError::Panicked(message) => write!(f, "the aggregate panicked: {message}"),
        }
    }
}

impl<D: fmt::Display + fmt::Debug> std::error::Error for CommandError<D> {}

/// Where a command is, by its id (see `Actors::status`, with the `async`
/// feature).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandStatus {
    /// In an actor's mailbox.
    Pending,
    /// Being handled.
    Processing,
    /// Handled; its events are in the log.
    Completed(Done),
    /// Refused or failed, with why.
    Failed(String),
}

/// Given/when/then tests for aggregates, as cqrs-es and disintegrate offer:
/// given these past events, when this command, then these events (or this
/// error).
///
/// ```
/// use rwlog::{Aggregate, Event};
/// use rwlog::testing::AggregateTest;
///
/// #[derive(Clone, Debug, PartialEq)]
/// enum Light { On, Off }
/// impl Event for Light {}
///
/// #[derive(Default)]
/// struct Switch(bool);
/// impl Aggregate for Switch {
///     type Command = bool; // turn on?
///     type Event = Light;
///     type Error = &'static str;
///     fn handle(&self, on: &bool) -> Result<Vec<Light>, &'static str> {
///         match (self.0, *on) {
///             (false, true) => Ok(vec![Light::On]),
///             (true, false) => Ok(vec![Light::Off]),
///             _ => Err("already so"),
///         }
///     }
///     fn apply(&mut self, e: &Light) { self.0 = *e == Light::On }
/// }
///
/// AggregateTest::<Switch>::given([Light::On, Light::Off]).when(true).then_expect_events([Light::On]);
/// AggregateTest::<Switch>::given([Light::On]).when(true).then_expect_error("already so");
/// ```
pub mod testing {
    use std::fmt::Debug;

    use super::Aggregate;

    /// An aggregate built from past events, ready for a command.
    #[derive(Debug)]
    pub struct AggregateTest<A> {
        aggregate: A,
    }

    /// What the aggregate decided.
    #[derive(Debug)]
    pub struct Outcome<A: Aggregate> {
        result: Result<Vec<A::Event>, A::Error>,
    }

    impl<A: Aggregate> AggregateTest<A> {
        /// Folds `events` into a default aggregate.
        pub fn given(events: impl IntoIterator<Item = A::Event>) -> AggregateTest<A> {
            let mut aggregate = A::default();
            for e in events {
                aggregate.apply(&e);
            }
            AggregateTest { aggregate }
        }

        /// A fresh aggregate: its stream has no events.
        pub fn given_no_events() -> AggregateTest<A> {
            AggregateTest::given([])
        }

        /// Handles `command`.
        pub fn when(self, command: A::Command) -> Outcome<A> {
            Outcome {
                result: self.aggregate.handle(&command),
            }
        }
    }

    impl<A: Aggregate> Outcome<A>
    where
        A::Event: PartialEq + Debug,
        A::Error: Debug,
    {
        /// Asserts the command produced exactly these events.
        #[track_caller]
        pub fn then_expect_events(self, expected: impl IntoIterator<Item = A::Event>) {
            let expected: Vec<_> = expected.into_iter().collect();
            match self.result {
                Ok(events) => assert_eq!(events, expected, "the command produced other events"),
                Err(e) => {
                    panic!("expected events {expected:?}, but the command was refused: {e:?}")
                }
            }
        }

        /// Asserts the command was refused with this error.
        #[track_caller]
        pub fn then_expect_error(self, expected: A::Error)
        where
            A::Error: PartialEq,
        {
            match self.result {
                Ok(events) => {
                    panic!("expected the error {expected:?}, but the command produced {events:?}")
                }
                Err(e) => assert_eq!(e, expected, "the command was refused for another reason"),
            }
        }

        /// The raw result, for other checks.
        pub fn result(self) -> Result<Vec<A::Event>, A::Error> {
            self.result
        }
    }
}
