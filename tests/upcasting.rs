//! Schema evolution: a log written with v1 of an event type is read back
//! as v2 through a registered upcaster (replay, time travel, subscriptions);
//! without one, opening fails with an error naming the type and version.

use std::collections::BTreeMap;

use rwlog::{Error, Event, Position, Recorded, Runtime, Storage, View};
use serde::{Deserialize, Serialize};

/// Version 1: amounts without a currency.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum AccountV1 {
    Opened(String),
    Deposited(u64),
}

impl Event for AccountV1 {
    fn event_type(&self) -> &'static str {
        match self {
            AccountV1::Opened(_) => "Opened",
            AccountV1::Deposited(_) => "Deposited",
        }
    }
}

/// Version 2: every amount has a currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Account {
    Opened { owner: String },
    Deposited { amount: u64, currency: String },
}

impl Event for Account {
    const SCHEMA_VERSION: u32 = 2;

    fn event_type(&self) -> &'static str {
        match self {
            Account::Opened { .. } => "Opened",
            Account::Deposited { .. } => "Deposited",
        }
    }
}

fn v1_to_v2(old: AccountV1) -> Account {
    match old {
        AccountV1::Opened(owner) => Account::Opened { owner },
        AccountV1::Deposited(amount) => Account::Deposited {
            amount,
            currency: "EUR".into(),
        },
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ByCurrency(BTreeMap<String, u64>);

impl View<Account> for ByCurrency {
    fn apply(&mut self, e: &Recorded<Account>) {
        if let Account::Deposited { amount, currency } = e.payload() {
            *self.0.entry(currency.clone()).or_default() += amount;
        }
    }
}

fn open_v2(dir: &std::path::Path) -> rwlog::Result<Runtime<Account>> {
    Runtime::<Account>::builder()
        .storage(Storage::dir(dir))
        .upcaster(1, v1_to_v2)
        .view("by_currency", ByCurrency::default())
        .build()
}

#[test]
fn v1_events_are_read_back_as_v2() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rt = Runtime::<AccountV1>::builder()
            .storage(Storage::dir(dir.path()))
            .build()
            .unwrap();
        let w = rt.writer();
        w.append("acct", AccountV1::Opened("ada".into())).unwrap();
        w.append("acct", AccountV1::Deposited(5)).unwrap();
        w.append("acct", AccountV1::Deposited(7)).unwrap();
        rt.shutdown().unwrap();
    }

    let rt = open_v2(dir.path()).unwrap();
    let events: Vec<_> = rt.log().read_all(..).collect();
    assert_eq!(
        events[0].payload(),
        &Account::Opened {
            owner: "ada".into()
        }
    );
    assert_eq!(
        events[2].payload(),
        &Account::Deposited {
            amount: 7,
            currency: "EUR".into()
        }
    );
    assert!(
        events.iter().all(|e| e.schema_version() == 1),
        "events keep their stored version"
    );
    // Replay and time travel see v2.
    assert_eq!(
        rt.reader::<ByCurrency>("by_currency").unwrap().latest().0["EUR"],
        12
    );
    assert_eq!(
        rt.view_at::<ByCurrency>("by_currency", Position(2))
            .unwrap()
            .0["EUR"],
        5
    );
    // New events are stored as v2; a mixed log reads back whole.
    rt.writer()
        .append(
            "acct",
            Account::Deposited {
                amount: 1,
                currency: "USD".into(),
            },
        )
        .unwrap();
    rt.shutdown().unwrap();
    drop(rt);

    let rt = open_v2(dir.path()).unwrap();
    let versions: Vec<u32> = rt.log().read_all(..).map(|e| e.schema_version()).collect();
    assert_eq!(versions, [1, 1, 1, 2]);
    let kinds: Vec<&str> = rt
        .subscribe(Position(1))
        .take(4)
        .map(|e| e.payload().event_type())
        .collect();
    assert_eq!(kinds, ["Opened", "Deposited", "Deposited", "Deposited"]);
    let totals = rt
        .reader::<ByCurrency>("by_currency")
        .unwrap()
        .latest()
        .into_arc();
    assert_eq!((totals.0["EUR"], totals.0["USD"]), (12, 1));
}

#[test]
fn a_missing_upcaster_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rt = Runtime::<AccountV1>::builder()
            .storage(Storage::dir(dir.path()))
            .build()
            .unwrap();
        rt.writer().append("acct", AccountV1::Deposited(5)).unwrap();
        rt.shutdown().unwrap();
    }
    let err = Runtime::<Account>::builder()
        .storage(Storage::dir(dir.path()))
        .build()
        .unwrap_err();
    match &err {
        Error::NoUpcaster {
            event_type,
            schema_version,
            position,
        } => {
            assert_eq!(
                (event_type.as_str(), *schema_version, *position),
                ("Deposited", 1, Position(1))
            );
        }
        other => panic!("expected NoUpcaster, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("Deposited") && message.contains("schema version 1"),
        "{message}"
    );
}
