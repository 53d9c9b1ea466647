//! Child processes for crash tests: the test binary runs one of its own
//! tests in a child (selected by an environment variable), reads what the
//! child prints line by line, and kills it with SIGKILL.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Lines, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

/// A running child: the test binary, running one test.
pub struct Child {
    child: std::process::Child,
    lines: Lines<BufReader<ChildStdout>>,
    stdin: Option<ChildStdin>,
}

/// Runs `test` of this test binary in a child process, with `env` set.
pub fn spawn(test: &str, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // RWLOG_CHILD_STDERR=1 shows what children say on stderr (panics).
        .stderr(match std::env::var_os("RWLOG_CHILD_STDERR") {
            Some(_) => Stdio::inherit(),
            None => Stdio::null(),
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the child");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let stdin = child.stdin.take();
    Child {
        child,
        lines,
        stdin,
    }
}

impl Child {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the child printed, or `None` once it closed stdout.
    /// (The test harness prints `test <name> ... ` before the test's first
    /// line; that is left out.)
    pub fn line(&mut self) -> Option<String> {
        let line = self.lines.next().and_then(Result::ok)?;
        Some(
            match (line.starts_with("test "), line.split_once(" ... ")) {
                (true, Some((_, rest))) => rest.to_owned(),
                _ => line,
            },
        )
    }

    /// The next line that starts with `prefix`, with the prefix removed.
    pub fn expect(&mut self, prefix: &str) -> String {
        loop {
            match self.line() {
                Some(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                None => panic!("the child ended before printing `{prefix}`"),
            }
        }
    }

    /// Sends one line to the child's stdin.
    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the child");
        stdin.flush().expect("flush");
    }

    /// Kills the child (SIGKILL) and returns what it printed before dying.
    pub fn kill(mut self) -> Vec<String> {
        self.child.kill().expect("SIGKILL");
        self.finish()
    }

    /// Waits for the child to exit by itself; returns what it printed.
    pub fn finish(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        while let Some(line) = self.line() {
            rest.push(line);
        }
        self.child.wait().expect("wait for the child");
        rest
    }
}

/// For the child: blocks until the parent sends a line (or closes stdin).
pub fn wait_for_parent() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    line.trim().to_owned()
}

/// For the child: prints one line to the parent, at once.
pub fn tell_parent(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("stdout");
}
