//! `chat --tui` refuses what it cannot do: with `--json`, or with stdout
//! not a terminal, it exits with code 2 and one line on stderr, before
//! listening. (The screen itself is tested in the program's own tests,
//! drawn into a test backend.)

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(10);

fn refused(args: &[&str]) -> String {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(args)
            .stdin(Stdio::null()),
        DEADLINE,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("chat: "), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: printed on stdout");
    stderr
}

#[test]
fn tui_with_json_exits_with_code_2_and_one_line() {
    let stderr = refused(&["--listen", "127.0.0.1:0", "--tui", "--json"]);
    assert!(
        stderr.contains("--tui") && stderr.contains("--json"),
        "{stderr}"
    );
}

#[test]
fn tui_without_a_terminal_exits_with_code_2_and_one_line() {
    // Refused before listening: the address stays free.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap().to_string();
    drop(probe);
    let stderr = refused(&["--listen", &addr, "--tui"]);
    assert!(stderr.contains("terminal"), "{stderr}");
    std::net::TcpListener::bind(&addr).expect("the address was left free");
}
