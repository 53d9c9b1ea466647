//! Schema evolution: upcasters turn payloads stored by an older version of
//! the event type into the current one, whenever the log is read from disk.

use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;

use super::codec;
use crate::error::{Error, Result};
use crate::position::Position;

type Upcast<E> = Box<dyn Fn(&[u8]) -> std::result::Result<E, String> + Send + Sync>;

/// The registered upcasters, by the schema version they read.
pub(crate) struct Upcasters<E> {
    by_version: HashMap<u32, Upcast<E>>,
}

impl<E> fmt::Debug for Upcasters<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut versions: Vec<_> = self.by_version.keys().collect();
        versions.sort();
        f.debug_struct("Upcasters")
            .field("versions", &versions)
            .finish()
    }
}

impl<E> Default for Upcasters<E> {
    fn default() -> Self {
        Upcasters {
            by_version: HashMap::new(),
        }
    }
}

impl<E> Upcasters<E> {
    /// Registers `f` for payloads stored with `schema_version`, decoded as
    /// an `Old` first.
    pub(crate) fn add<Old, F>(&mut self, schema_version: u32, f: F)
    where
        Old: DeserializeOwned,
        F: Fn(Old) -> E + Send + Sync + 'static,
    {
        let up: Upcast<E> = Box::new(move |bytes| Ok(f(codec::decode_whole::<Old>(bytes)?)));
        self.by_version.insert(schema_version, up);
    }

    /// Turns a stored payload of an older schema version into an `E`.
    pub(crate) fn upcast(
        &self,
        event_type: &str,
        schema_version: u32,
        position: Position,
        bytes: &[u8],
    ) -> Result<E> {
        let up = self
            .by_version
            .get(&schema_version)
            .ok_or_else(|| Error::NoUpcaster {
                event_type: event_type.to_owned(),
                schema_version,
                position,
            })?;
        up(bytes).map_err(|reason| {
            Error::Codec(format!(
                "upcasting `{event_type}` v{schema_version} at position {position}: {reason}"
            ))
        })
    }
}
