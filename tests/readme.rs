//! README.md's "Migrating from RwLock" quotes `examples/migrate_rwlock.rs`
//! exactly (which runs with `cargo test`'s example build and by hand), and
//! the rwlog half is at most 8 lines longer than the lock's.

fn between<'a>(text: &'a str, begin: &str, end: &str) -> &'a str {
    let a = text.find(begin).unwrap_or_else(|| panic!("no {begin:?}")) + begin.len();
    let b = text[a..].find(end).unwrap_or_else(|| panic!("no {end:?}")) + a;
    text[a..b].trim_end_matches('\n')
}

#[test]
fn the_migration_section_quotes_the_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let example = std::fs::read_to_string(format!("{root}/examples/migrate_rwlock.rs")).unwrap();
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let before = between(&example, "// before: begin\n", "// before: end\n");
    let after = between(&example, "// after: begin\n", "// after: end\n");
    let section = between(&readme, "## Migrating from RwLock\n", "\n## ");
    assert!(
        section.contains(before),
        "README lacks the example's lock half"
    );
    assert!(
        section.contains(after),
        "README lacks the example's rwlog half"
    );
    let (b, a) = (before.lines().count(), after.lines().count());
    assert!(
        a <= b + 8,
        "the rwlog half is {a} lines against the lock's {b}"
    );
}
