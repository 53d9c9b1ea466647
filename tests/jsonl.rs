//! Export to JSON lines and import back: positions, streams, versions, ids,
//! metadata and payloads come back the same; importing twice adds nothing;
//! a bad line is named.
#![cfg(all(feature = "jsonl", feature = "durable"))]

use rwlog::{Error, Event, Metadata, NewEvent, Position, Runtime, Storage};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Account {
    Opened { owner: String },
    Deposited { amount: u64 },
}

impl Event for Account {
    fn event_type(&self) -> &'static str {
        match self {
            Account::Opened { .. } => "Opened",
            Account::Deposited { .. } => "Deposited",
        }
    }
}

type Row = (u64, String, u64, uuid::Uuid, Metadata, Account);

fn rows(rt: &Runtime<Account>) -> Vec<Row> {
    rt.log()
        .read_all(..)
        .map(|e| {
            (
                e.position().0,
                e.stream().to_string(),
                e.version(),
                e.id(),
                e.metadata().clone(),
                e.payload().clone(),
            )
        })
        .collect()
}

fn filled() -> Runtime<Account> {
    let rt = Runtime::<Account>::builder().build().unwrap();
    let w = rt.writer();
    for i in 0..2_500u64 {
        let stream = format!("acct-{}", i % 17);
        if i < 17 {
            let why = Metadata::new().with("source", "branch-4");
            w.append(
                &*stream,
                NewEvent::new(Account::Opened {
                    owner: format!("o{i}"),
                })
                .metadata(why),
            )
            .unwrap();
        } else {
            w.append(stream, Account::Deposited { amount: i }).unwrap();
        }
    }
    rt
}

fn export(rt: &Runtime<Account>) -> Vec<u8> {
    let mut out = Vec::new();
    assert_eq!(rt.export_jsonl(&mut out, ..).unwrap(), rt.log().head().0);
    out
}

#[test]
fn an_export_imports_into_a_fresh_directory_the_same_and_twice_adds_nothing() {
    let rt = filled();
    let file = export(&rt);
    let first_line =
        String::from_utf8_lossy(&file[..file.iter().position(|b| *b == b'\n').unwrap()])
            .into_owned();
    assert!(
        first_line.contains(r#""event_type":"Opened""#),
        "{first_line}"
    );
    assert!(
        first_line.contains(r#""source","branch-4""#),
        "{first_line}"
    );

    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Runtime::<Account>::builder()
            .storage(Storage::dir(dir.path()))
            .build()
            .unwrap()
    };
    let copy = open();
    let done = copy.import_jsonl(&file[..]).unwrap();
    assert_eq!((done.read, done.appended, done.skipped), (2_500, 2_500, 0));
    assert_eq!(rows(&copy), rows(&rt));
    let again = copy.import_jsonl(&file[..]).unwrap();
    assert_eq!((again.appended, again.skipped), (0, 2_500));
    assert_eq!(copy.log().head(), Position(2_500));
    copy.shutdown().unwrap();
    drop(copy);
    // Durable: the same after a reopen.
    assert_eq!(rows(&open()), rows(&rt));
}

#[test]
fn an_interrupted_import_resumes() {
    let rt = filled();
    let file = export(&rt);
    let half: Vec<u8> = file
        .split(|b| *b == b'\n')
        .take(1_000)
        .collect::<Vec<_>>()
        .join(&b'\n');
    let copy = Runtime::<Account>::builder().build().unwrap();
    assert_eq!(copy.import_jsonl(&half[..]).unwrap().appended, 1_000);
    let rest = copy.import_jsonl(&file[..]).unwrap();
    assert_eq!((rest.appended, rest.skipped), (1_500, 1_000));
    assert_eq!(rows(&copy), rows(&rt));
}

#[test]
fn a_bad_line_is_named_and_nothing_after_it_is_imported() {
    let rt = filled();
    let file = String::from_utf8(export(&rt)).unwrap();
    let mut lines: Vec<String> = file.lines().take(10).map(str::to_owned).collect();
    lines[6] = lines[6].replace(r#""payload""#, r#""payloadd""#);
    let copy = Runtime::<Account>::builder().build().unwrap();
    match copy.import_jsonl(lines.join("\n").as_bytes()) {
        Err(Error::Import { line, reason }) => {
            assert_eq!(line, 7);
            assert!(reason.contains("payloadd"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(copy.log().head(), Position(6));

    // A log that holds other events at those positions is refused.
    let other = Runtime::<Account>::builder().build().unwrap();
    other
        .writer()
        .append("x", Account::Deposited { amount: 1 })
        .unwrap();
    match other.import_jsonl(file.as_bytes()) {
        Err(Error::Import { line: 1, reason }) => {
            assert!(reason.contains("another event"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // A gap is refused too.
    let gap: String = file.lines().skip(1).take(1).collect();
    let fresh = Runtime::<Account>::builder().build().unwrap();
    assert!(matches!(
        fresh.import_jsonl(gap.as_bytes()),
        Err(Error::Import { line: 1, .. })
    ));
    assert!(matches!(
        fresh.import_jsonl(&b"{not json\n"[..]),
        Err(Error::Import { line: 1, .. })
    ));
}

#[test]
fn a_version_that_does_not_follow_is_refused_before_anything_behind_it_lands() {
    let line = |position: u64, stream: &str, version: u64| {
        format!(
            r#"{{"position":{position},"stream":"{stream}","version":{version},"id":"{}","payload":{{"Deposited":{{"amount":1}}}}}}"#,
            uuid::Uuid::new_v4()
        )
    };
    let copy = Runtime::<Account>::builder().build().unwrap();
    // Stream `a` at version 2 first: nothing may land, `b`'s line included.
    let file = [line(1, "a", 2), line(2, "b", 1)].join("\n");
    match copy.import_jsonl(file.as_bytes()) {
        Err(Error::Import { line: 1, reason }) => assert!(reason.contains("version 2"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(copy.log().head(), Position(0));
    let zero = line(1, "a", 0);
    assert!(matches!(
        copy.import_jsonl(zero.as_bytes()),
        Err(Error::Import { line: 1, .. })
    ));
    // Versions that follow, interleaved across streams: imported.
    let file = [line(1, "a", 1), line(2, "b", 1), line(3, "a", 2)].join("\n");
    assert_eq!(copy.import_jsonl(file.as_bytes()).unwrap().appended, 3);
}
