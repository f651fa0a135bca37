//! Log output of the real binary when stderr is not a terminal: plain text, no ANSI colours.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `moontick sim` with stderr piped and returns its log up to the line that says it
/// listens (a line logged at INFO, which the pretty format colours on a terminal).
fn sim_log(extra_env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_moontick"))
        .args(["sim", "--port", "0"])
        .current_dir(dir.path())
        .env_clear()
        .env("RUST_LOG", "info")
        .envs(extra_env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let done = line.contains("simulator listening");
            log.push_str(&line);
            log.push('\n');
            if done {
                break;
            }
        }
        let _ = tx.send(log);
    });
    let log = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let log = log.expect("the simulator logs that it listens");
    assert!(log.contains("simulator listening"), "{log}");
    log
}

#[test]
fn piped_logs_have_no_colour() {
    let log = sim_log(&[]);
    assert!(
        !log.contains("\x1b["),
        "escape codes in a piped log: {log:?}"
    );
    assert!(log.contains("INFO"), "{log}");
}

#[test]
fn no_color_is_honoured_too() {
    let log = sim_log(&[("NO_COLOR", "1")]);
    assert!(!log.contains("\x1b["), "{log:?}");
}
