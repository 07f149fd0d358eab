//! The statically linked `chat`: built with `crt-static`, it has no program
//! interpreter and needs no shared library, and two copies of it chat.
//!
//! Builds its own copy (several minutes on two cores), so it is ignored by
//! default: `cargo test --test net_static -- --ignored`. Linux only.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds `chat` as the README says (`CHAT_STATIC_BIN` names an already
/// built one instead).
fn build_static() -> PathBuf {
    if let Some(bin) = std::env::var_os("CHAT_STATIC_BIN") {
        return bin.into();
    }
    // The workspace root, one above this package: its target/ is shared.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "chat", "--target", TARGET])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(root)
        .status()
        .expect("run cargo");
    assert!(status.success(), "static build failed");
    target_dir.join(TARGET).join("release").join("chat")
}

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Checks an ELF64 file: no PT_INTERP (no dynamic loader) and no DT_NEEDED
/// (no shared library). A static-pie binary keeps a dynamic section for its
/// own relocations, so that alone is allowed.
fn assert_static(bin: &Path) {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NEEDED: u64 = 1;
    let b = std::fs::read(bin).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(b[4], 2, "not ELF64");
    let (phoff, phentsize, phnum) = (
        u64_at(&b, 0x20) as usize,
        u16_at(&b, 0x36),
        u16_at(&b, 0x38),
    );
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = u32_at(&b, ph);
        assert_ne!(
            p_type,
            PT_INTERP,
            "{} asks for a dynamic loader",
            bin.display()
        );
        if p_type == PT_DYNAMIC {
            let (off, size) = (
                u64_at(&b, ph + 0x08) as usize,
                u64_at(&b, ph + 0x20) as usize,
            );
            for d in (off..off + size).step_by(16) {
                let tag = u64_at(&b, d);
                assert_ne!(tag, DT_NEEDED, "{} needs a shared library", bin.display());
                if tag == 0 {
                    break;
                }
            }
        }
    }
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &Path, args: &[&str]) -> (Kill, crossbeam_channel::Receiver<serde_json::Value>) {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--json"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    (Kill(child), rx)
}

fn wait(
    rx: &crossbeam_channel::Receiver<serde_json::Value>,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = crossbeam_channel::after(std::time::Duration::from_secs(10));
    loop {
        crossbeam_channel::select! {
            recv(rx) -> v => {
                let v = v.expect("chat exited");
                if pred(&v) {
                    return v;
                }
            }
            recv(deadline) -> _ => panic!("event not seen within 10 s"),
        }
    }
}

#[test]
#[ignore = "builds a release binary; run with --ignored"]
fn the_crt_static_build_is_static_and_two_nodes_chat() {
    let bin = build_static();
    assert_static(&bin);
    let (_a, a_rx) = spawn(&bin, &["--name", "a"]);
    let ready = wait(&a_rx, |e| e["event"] == "ready");
    let a_addr = ready["addr"].as_str().unwrap().to_owned();
    let (mut b, b_rx) = spawn(&bin, &["--name", "b", "--join", &a_addr]);
    wait(&b_rx, |e| e["event"] == "peer_up");
    wait(&a_rx, |e| e["event"] == "peer_up");
    let stdin = b.0.stdin.as_mut().unwrap();
    writeln!(stdin, "static hello").unwrap();
    stdin.flush().unwrap();
    let got = wait(&a_rx, |e| e["event"] == "chat");
    assert_eq!(got["text"], "static hello");
    assert_eq!(got["name"], "b");
    eprintln!(
        "{} is statically linked; two nodes exchanged a message",
        bin.display()
    );
}

#[test]
fn the_static_check_rejects_a_dynamically_linked_binary() {
    let dynamic = Path::new(env!("CARGO_BIN_EXE_chat"));
    let verdict = std::panic::catch_unwind(|| assert_static(dynamic));
    assert!(verdict.is_err(), "the default build links libc dynamically");
}
