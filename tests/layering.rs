//! The source's shape: `src/` reads as the data flow, in layers, with no
//! module importing one above it and no import cycle; no file over 500
//! lines and no function over 60 (tests excepted); the compare example's
//! main file under 200 lines. A change that breaks one fails here, naming
//! the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may use modules of its own layer or
/// below; within a layer, no two modules may use each other.
const LAYERS: &[&[&str]] = &[
    &["sync", "faults", "error", "position", "telemetry"],
    &["event", "signal"],
    &["log", "storage"],
    &["view", "write"],
    &["read"],
    &["hub"],
    &["sequencer", "subscription", "aggregate"],
    &["projection", "actor"],
    &["runtime", "ops"],
    &["migrate", "cli"],
    &["lib"],
];

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 60;
const MAX_COMPARE_MAIN_LINES: usize = 200;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` -> `["a", "b"]`; `src/a.rs` -> `["a"]`; `src/lib.rs` -> `["lib"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
}

/// The code of a line: no comment, no string or char literal contents.
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => break,
            '"' => {
                out.push('"');
                while let Some(s) = chars.next() {
                    match s {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push('"');
            }
            '\'' => {
                // A char literal ('x', '\n', '{'), or a lifetime ('a).
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') || rest.chars().nth(1) == Some('\'') {
                    while let Some(s) = chars.next() {
                        if s == '\\' {
                            chars.next();
                        } else if s == '\'' {
                            break;
                        }
                    }
                    out.push_str("' '");
                } else {
                    out.push('\'');
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The lines before the file's unit tests (`#[cfg(test)]` / `#[cfg(all(test`).
fn non_test_lines(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]") && !l.starts_with("#[cfg(all(test"))
        .collect()
}

/// Every module path a file refers to, absolute: `crate::x::y` and
/// `super::x`, resolved against the file's own module.
fn references(module: &[String], lines: &[&str]) -> Vec<(usize, Vec<String>)> {
    let mut refs = Vec::new();
    // Inline modules (`mod testing {`) open at these indents, with names.
    let mut inline: Vec<(usize, String)> = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let code = code_of(line);
        let indent = code.len() - code.trim_start().len();
        if inline.last().is_some_and(|(i, _)| *i == indent) && code.trim() == "}" {
            inline.pop();
        }
        let words: Vec<&str> = code.split_whitespace().collect();
        if let Some(k) = words.iter().position(|w| *w == "mod") {
            if words.get(k + 2) == Some(&"{") {
                inline.push((indent, words[k + 1].to_string()));
            }
        }
        // `super` is the parent of the module a line is in: the file's
        // module, then its inline modules.
        let mut here: Vec<String> = module.to_vec();
        here.extend(inline.iter().map(|(_, name)| name.clone()));
        let parent: Vec<String> = here[..here.len().saturating_sub(1)].to_vec();
        for (prefix, base) in [("crate::", Vec::new()), ("super::", parent.clone())] {
            let mut rest = code.as_str();
            while let Some(i) = rest.find(prefix) {
                let before = rest[..i].chars().last();
                let after = &rest[i + prefix.len()..];
                rest = after;
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let mut path = base.clone();
                path.extend(
                    after
                        .split("::")
                        .map(|s| {
                            s.chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect::<String>()
                        })
                        .take_while(|s| !s.is_empty()),
                );
                refs.push((n + 1, path));
            }
        }
        // `mod child;` makes the child a part of this module, not a use.
    }
    refs
}

struct Source {
    files: BTreeMap<Vec<String>, (PathBuf, String)>,
}

impl Source {
    fn read() -> Source {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let mut files = BTreeMap::new();
        for p in paths {
            let mut module = module_of(&src, &p);
            // `sync/loom_impl.rs` is `sync::imp` by a `#[path]`.
            if module == ["sync", "loom_impl"] {
                module = vec!["sync".into(), "imp".into()];
            }
            let text = fs::read_to_string(&p).unwrap();
            files.insert(module, (p, text));
        }
        Source { files }
    }

    /// The longest module of the crate that `path` starts with; an item
    /// of the crate root (`crate::Error`, a re-export) is `lib`'s.
    fn resolve(&self, path: &[String]) -> Option<Vec<String>> {
        let found = (1..=path.len())
            .rev()
            .map(|k| path[..k].to_vec())
            .find(|m| self.files.contains_key(m));
        match found {
            Some(m) => Some(m),
            // An item of the crate root, or a `crate::{A, B}` group of them.
            None => Some(vec!["lib".to_string()]),
        }
    }
}

fn layer_of(top: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("module `{top}` is in no layer: add it to LAYERS"))
}

#[test]
fn no_module_uses_one_above_it_and_there_is_no_cycle() {
    let source = Source::read();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut upward = Vec::new();
    for (module, (path, text)) in &source.files {
        let lines = non_test_lines(text);
        for (line, reference) in references(module, &lines) {
            let Some(target) = source.resolve(&reference) else {
                continue;
            };
            if target == *module || target.starts_with(module) {
                continue;
            }
            let (from, to) = (&module[0], &target[0]);
            if from != to && layer_of(to) > layer_of(from) {
                upward.push(format!(
                    "{}:{line}: `{from}` (layer {}) uses `{}` (layer {})",
                    path.display(),
                    layer_of(from),
                    target.join("::"),
                    layer_of(to)
                ));
            }
            edges.entry(module.clone()).or_default().insert(target);
        }
    }
    assert!(
        upward.is_empty(),
        "imports pointing up:\n{}",
        upward.join("\n")
    );
    // Cycles among files: a depth-first search for a back edge.
    let mut state: BTreeMap<&Vec<String>, u8> = BTreeMap::new();
    fn visit<'a>(
        m: &'a Vec<String>,
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<&'a Vec<String>, u8>,
        stack: &mut Vec<&'a Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(m, 1);
        stack.push(m);
        for next in edges.get(m).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let at = stack.iter().position(|s| *s == next).unwrap();
                    let mut cycle: Vec<String> = stack[at..].iter().map(|s| s.join("::")).collect();
                    cycle.push(next.join("::"));
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m, 2);
        None
    }
    for m in source.files.keys() {
        if !state.contains_key(m) {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(m, &edges, &mut state, &mut stack) {
                panic!("an import cycle: {}", cycle.join(" -> "));
            }
        }
    }
}

/// Functions longer than the limit: (line, name, lines).
fn long_functions(lines: &[&str]) -> Vec<(usize, String, usize)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let code = code_of(lines[i]);
        let trimmed = code.trim_start();
        let is_fn = trimmed.split_whitespace().take(6).any(|w| w == "fn")
            && !trimmed.starts_with("//")
            && trimmed.contains('(');
        if !is_fn {
            i += 1;
            continue;
        }
        let name: String = trimmed
            .split("fn ")
            .nth(1)
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // Find the body's braces; a declaration ending in `;` has none.
        let (mut depth, mut opened, mut j) = (0i32, false, i);
        while j < lines.len() {
            let c = code_of(lines[j]);
            for ch in c.chars() {
                match ch {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    ';' if !opened && depth == 0 => {
                        j = lines.len();
                        break;
                    }
                    _ => {}
                }
            }
            if opened && depth == 0 {
                break;
            }
            j += 1;
        }
        if opened && j < lines.len() {
            let len = j - i + 1;
            if len > MAX_FN_LINES {
                found.push((i + 1, name, len));
            }
        }
        i += 1;
    }
    found
}

#[test]
fn no_file_over_500_lines_and_no_function_over_60() {
    let source = Source::read();
    let mut problems = Vec::new();
    for (path, text) in source.files.values() {
        let lines = non_test_lines(text);
        if lines.len() > MAX_FILE_LINES {
            problems.push(format!(
                "{}: {} lines before its tests (at most {MAX_FILE_LINES})",
                path.display(),
                lines.len()
            ));
        }
        for (line, name, len) in long_functions(&lines) {
            problems.push(format!(
                "{}:{line}: fn {name} is {len} lines (at most {MAX_FN_LINES})",
                path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "too long:\n{}", problems.join("\n"));
}

#[test]
fn the_compare_examples_main_file_is_short() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let main = [root.join("compare/main.rs"), root.join("compare.rs")]
        .into_iter()
        .find(|p| p.exists())
        .expect("the compare example");
    let lines = fs::read_to_string(&main).unwrap().lines().count();
    assert!(
        lines <= MAX_COMPARE_MAIN_LINES,
        "{}: {lines} lines (at most {MAX_COMPARE_MAIN_LINES})",
        main.display()
    );
}

#[test]
fn the_checks_themselves_catch_what_they_look_for() {
    // A function of 61 lines is found; one of 60 is not.
    let long: Vec<String> = std::iter::once("fn long() {".to_string())
        .chain((0..59).map(|_| "    x();".to_string()))
        .chain(std::iter::once("}".to_string()))
        .collect();
    let refs: Vec<&str> = long.iter().map(String::as_str).collect();
    assert_eq!(long_functions(&refs), [(1, "long".to_string(), 61)]);
    assert!(long_functions(&refs[1..]).is_empty());
    // Braces in strings and char literals do not count.
    assert_eq!(
        code_of(r#"let s = "{"; let c = '}'; // {"#),
        r#"let s = ""; let c = ' '; "#
    );
    // `super::` resolves against the file's parent module.
    let module = vec!["storage".to_string(), "read".to_string()];
    let refs = references(
        &module,
        &["use super::frame::{self, X};", "use crate::event::Batch;"],
    );
    assert_eq!(refs[0].1, ["storage", "frame"]);
    assert_eq!(refs[1].1, ["event", "Batch"]);
    let refs = references(
        &module,
        &[
            "pub mod testing {",
            "    use super::X;",
            "}",
            "use super::Y;",
        ],
    );
    assert_eq!(
        (refs[0].1.clone(), refs[1].1.clone()),
        (
            vec!["storage".into(), "read".into(), "X".into()],
            vec!["storage".into(), "Y".into()]
        )
    );
}
