//! The service's domain: the one event type every stream holds (a JSON
//! document with its type name), the `streams` read model, the `User`
//! aggregate the command endpoint runs, and the fold that replay and
//! snapshots share.

use std::collections::HashMap;

use rwlog::{Aggregate, Event, Recorded, Timestamp, Uuid, View};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The streams snapshots are kept in: `$snapshot:<streamId>`. Clients may
/// not append to streams whose id starts with `$`.
pub const SNAPSHOT_PREFIX: &str = "$snapshot:";

/// A stream's folded state: every `eventData` object merged into one, key
/// by key, later events winning.
pub type State = Map<String, Value>;

/// An event as the service stores it: its type name, its data and its
/// metadata as JSON text, kept as written. The log is encoded with bincode,
/// which cannot carry `serde_json::Value` (it needs a self-describing
/// format), so the JSON travels as text and is parsed only when folded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stored {
    pub event_type: String,
    #[serde(with = "json_text")]
    pub data: Box<RawValue>,
    #[serde(with = "json_text")]
    pub metadata: Box<RawValue>,
}

impl Event for Stored {}

impl Stored {
    pub fn new(
        event_type: impl Into<String>,
        data: Box<RawValue>,
        metadata: Box<RawValue>,
    ) -> Self {
        Stored {
            event_type: event_type.into(),
            data,
            metadata,
        }
    }
}

/// `{}`: the metadata of an event written without any.
pub fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("`{{}}` is JSON"))
}

/// Serializes raw JSON as a string, so any serde format (bincode here)
/// can store it.
mod json_text {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(raw: &RawValue, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(raw.get())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<RawValue>, D::Error> {
        RawValue::from_string(String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// Folds one event's data into a state: an object's keys are merged in.
/// The service accepts only objects as `eventData`, so nothing else occurs.
pub fn fold(state: &mut State, data: &RawValue) {
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(data.get()) {
        state.extend(fields);
    }
}

/// What the `streams` read model knows of one stream.
#[derive(Clone, Debug, Default)]
pub struct StreamState {
    pub version: u64,
    pub position: u64,
    pub last_event_type: String,
    pub updated_at: Option<Timestamp>,
    pub state: State,
}

/// The `streams` read model, folded inline by the sequencer: every client
/// stream's version, last position and state. Snapshot streams are left
/// out.
#[derive(Clone, Debug, Default)]
pub struct Streams(pub HashMap<String, StreamState>);

impl View<Stored> for Streams {
    fn apply(&mut self, e: &Recorded<Stored>) {
        let id = e.stream().as_str();
        if id.starts_with('$') {
            return;
        }
        let s = match self.0.get_mut(id) {
            Some(s) => s,
            None => self.0.entry(id.to_owned()).or_default(),
        };
        s.version = e.version();
        s.position = e.position().0;
        if s.last_event_type != e.payload().event_type {
            s.last_event_type.clone_from(&e.payload().event_type);
        }
        s.updated_at = Some(e.recorded_at());
        fold(&mut s.state, &e.payload().data);
    }
}

/// What `POST /api/commands` may ask, the reference service's user
/// commands. Each one's `commandData` becomes the event's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    Create,
    Update,
    Delete,
}

impl CommandKind {
    pub fn parse(name: &str) -> Option<CommandKind> {
        match name {
            "CreateUser" => Some(CommandKind::Create),
            "UpdateUser" => Some(CommandKind::Update),
            "DeleteUser" => Some(CommandKind::Delete),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Create => "CreateUser",
            CommandKind::Update => "UpdateUser",
            CommandKind::Delete => "DeleteUser",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            CommandKind::Create => "UserCreated",
            CommandKind::Update => "UserUpdated",
            CommandKind::Delete => "UserDeleted",
        }
    }
}

/// A command for one user's stream.
#[derive(Debug)]
pub struct UserCommand {
    pub kind: CommandKind,
    pub data: Box<RawValue>,
    pub metadata: Box<RawValue>,
}

/// One user, folded from the user's stream: the aggregate the writer
/// actors run.
#[derive(Debug, Default)]
pub struct User {
    exists: bool,
    deleted: bool,
}

impl Aggregate for User {
    type Command = UserCommand;
    type Event = Stored;
    type Error = String;

    fn handle(&self, c: &UserCommand) -> Result<Vec<Stored>, String> {
        match (c.kind, self.exists, self.deleted) {
            (CommandKind::Create, true, _) => Err("the user already exists".into()),
            (CommandKind::Update | CommandKind::Delete, false, _) => Err("no such user".into()),
            (CommandKind::Update | CommandKind::Delete, true, true) => {
                Err("the user is deleted".into())
            }
            (kind, _, _) => Ok(vec![Stored::new(
                kind.event_type(),
                c.data.clone(),
                c.metadata.clone(),
            )]),
        }
    }

    fn apply(&mut self, e: &Stored) {
        match e.event_type.as_str() {
            "UserCreated" => self.exists = true,
            "UserDeleted" => self.deleted = true,
            _ => {}
        }
    }
}

/// The id of the snapshot of `stream` at `version`: the same every time,
/// so a snapshot taken twice (by a client and by the snapshotter, or again
/// after a restart) is written once, through the log's idempotent appends.
pub fn snapshot_id(stream: &str, version: u64) -> Uuid {
    use std::hash::BuildHasher;
    let hash = foldhash::fast::FixedState::with_seed(0x05ee_d5a9_5407).hash_one(stream);
    Uuid::from_u64_pair(hash, version)
}
