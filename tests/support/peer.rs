//! Starting a test peer process and waiting until it says it is ready.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Starts `command` and waits up to 30 s for a line of its output
/// containing `ready`. Its error output is drained (so it never blocks) and
/// shown if it does not start, with `hint` saying what to install.
pub(crate) fn spawn_until_ready(
    mut command: Command,
    ready: &str,
    what: &str,
    hint: &str,
) -> Child {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e} ({hint})"));
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stderr).lines().map_while(Result::ok).collect();
        let _ = err_tx.send(lines.join("\n"));
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains(ready) => return child,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let errors = err_rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default();
                panic!("{what} did not start ({hint}): {errors}");
            }
        }
    }
}
