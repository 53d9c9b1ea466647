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

/// The example's lines between `// {name}: begin` and `// {name}: end`,
/// without their common indentation.
fn quoted(example: &str, name: &str) -> String {
    let block = between(
        example,
        &format!("// {name}: begin\n"),
        &format!("// {name}: end\n"),
    )
    .trim_end();
    let indent = block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    block
        .lines()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_running_migration_section_quotes_the_example_phase_by_phase() {
    let root = env!("CARGO_MANIFEST_DIR");
    let example = std::fs::read_to_string(format!("{root}/examples/migrate.rs")).unwrap();
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let section = between(&readme, "## Migrating a running program\n", "\n## ");
    for phase in ["types", "shadow", "reads", "cut-over"] {
        let code = quoted(&example, phase);
        assert!(
            section.contains(&format!("```rust\n{code}\n```")),
            "README lacks the example's {phase} phase:\n{code}"
        );
    }
}
