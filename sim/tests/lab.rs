//! The real lab (`lab`): a short scenario passes with real processes;
//! Ctrl-C and a panic leave no namespace, filter rule or process behind;
//! what cannot be carried out for real is refused with `FILE:LINE`; the
//! lab finds netem as `tc` does, and carries out a spike with it or
//! refuses it without; a real report leaves out what it cannot measure.
//!
//! The tests that need namespaces say so and return when this machine
//! cannot create them (not root); CI runs as root with
//! `GOSSIP_LAB_REQUIRED=1`, where they must run.
//! Every wait has a deadline.

use gossip_sim::lab::fabric::{lab_namespaces, Fabric};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

const LAB: &str = env!("CARGO_BIN_EXE_lab");

fn scenario(name: &str) -> String {
    format!("{}/../scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The `chat` program next to `lab`, built if it is not there yet.
fn chat() -> String {
    let path = std::path::Path::new(LAB).with_file_name("chat");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "gossip-chat-net", "--bin", "chat"])
            .status()
            .expect("cargo runs");
        assert!(ok.success(), "cannot build chat");
    }
    path.to_string_lossy().into_owned()
}

/// Whether this machine lets the lab create namespaces. With
/// `GOSSIP_LAB_REQUIRED` set (CI, as root) it must.
fn namespaces_here() -> bool {
    match Fabric::create(1) {
        Ok(_) => true,
        Err(e) if std::env::var_os("GOSSIP_LAB_REQUIRED").is_some() => {
            panic!("GOSSIP_LAB_REQUIRED is set, but: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// Whether this kernel can delay packets, as the lab finds it.
fn netem_here() -> bool {
    Fabric::create(1).expect("namespaces").netem().present()
}

/// The lab's stderr, line by line, on a channel.
fn lines(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = channel();
    let err = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for a line of `rx` that starts with `start`, within `within`
/// (real processes: the deadline is on the wall clock).
#[allow(clippy::disallowed_methods)]
fn wait_for(rx: &Receiver<String>, start: &str, within: Duration) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with(start) => return l,
            Ok(_) => {}
            Err(e) => panic!("no line starting with {start:?} within {within:?}: {e}"),
        }
    }
}

/// Waits for `child` to exit, within `within`.
fn exit_within(child: Child, within: Duration) -> ExitStatus {
    let (tx, rx) = channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let mut child = child;
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(within) {
        Ok(status) => status.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("lab did not exit within {within:?}");
        }
    }
}

fn pids_in(prefix: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for ns in lab_namespaces().iter().filter(|n| n.starts_with(prefix)) {
        let out = Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .expect("ip runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        pids.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    pids
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
}

#[test]
fn a_short_scenario_passes_with_real_processes_and_leaves_nothing() {
    if !namespaces_here() {
        return;
    }
    let mut child = Command::new(LAB)
        .args([&scenario("lab-smoke.toml"), "--json", "--chat", &chat()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab starts");
    let rx = lines(&mut child);
    let running = wait_for(&rx, "lab: running in namespaces ", Duration::from_secs(20));
    let prefix = running
        .trim_start_matches("lab: running in namespaces ")
        .trim_end_matches('*')
        .to_string();
    wait_for(&rx, "lab: 5 nodes ready", Duration::from_secs(10));
    let pids = pids_in(&prefix);
    assert_eq!(pids.len(), 5, "one chat process per node: {pids:?}");
    let mut out = child.stdout.take().expect("piped stdout");
    let status = exit_within(child, Duration::from_secs(60));
    let mut json = String::new();
    std::io::Read::read_to_string(&mut out, &mut json).expect("stdout");
    let v: serde_json::Value = serde_json::from_str(&json).expect("the report is JSON");
    let judged = |name: &str| {
        v["report"]["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == name)
            .map(|c| {
                (
                    c["status"].as_str().unwrap_or("").to_string(),
                    c["judged"].as_u64().unwrap_or(0),
                )
            })
    };
    assert_eq!(status.code(), Some(0), "report: {json}");
    let (status, n) = judged("detection").expect("a detection check");
    assert!(
        status == "pass" && n >= 2,
        "crash and kill detected for real: {status} {n}"
    );
    assert!(v["report"]["figures"]["detection_ms"]["n"].as_u64() > Some(0));
    assert!(v["wire"]["payload_bytes_per_node_s"].as_f64() > Some(0.0));
    // What a real run cannot count is left out, not given as 0.
    let figures = &v["report"]["figures"];
    for key in [
        "msgs_per_node_s",
        "by_kind",
        "copies_per_delivery",
        "end_tables",
    ] {
        assert!(figures.get(key).is_none(), "{key}: {figures}");
    }
    assert!(figures["bytes_per_node_s"].as_f64() > Some(0.0));
    // One note on latency, true to this kernel.
    let notes: Vec<&str> = v["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .filter(|n| n.contains("latency"))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    if netem_here() {
        assert!(notes[0].contains("added with netem"), "{notes:?}");
    } else {
        assert!(
            notes[0].contains("is not added") && notes[0].contains("no netem"),
            "{notes:?}"
        );
    }
    assert!(
        lab_namespaces().iter().all(|n| !n.starts_with(&prefix)),
        "namespaces left: {:?}",
        lab_namespaces()
    );
    let left: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn ctrl_c_removes_every_namespace_rule_and_process() {
    if !namespaces_here() {
        return;
    }
    let mut child = Command::new(LAB)
        .args([
            &scenario("partition.toml"),
            "--nodes",
            "6",
            "--chat",
            &chat(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab starts");
    let rx = lines(&mut child);
    let running = wait_for(&rx, "lab: running in namespaces ", Duration::from_secs(20));
    let prefix = running
        .trim_start_matches("lab: running in namespaces ")
        .trim_end_matches('*')
        .to_string();
    wait_for(&rx, "lab: 6 nodes ready", Duration::from_secs(10));
    let pids = pids_in(&prefix);
    assert_eq!(pids.len(), 6, "{pids:?}");
    // 7 namespaces: the hub (bridge and filter table) and one per node.
    let ours = lab_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .count();
    assert_eq!(ours, 7);
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success());
    let status = exit_within(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130));
    wait_for(&rx, "lab: interrupted", Duration::from_secs(1));
    assert!(
        lab_namespaces().iter().all(|n| !n.starts_with(&prefix)),
        "namespaces left: {:?}",
        lab_namespaces()
    );
    let left: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn a_panic_removes_the_namespaces() {
    if !namespaces_here() {
        return;
    }
    let (tx, rx) = channel();
    let r = std::panic::catch_unwind(move || {
        let f = Fabric::create(3).expect("namespaces");
        tx.send(f.prefix().to_string()).expect("send");
        f.filter(&gossip_sim::lab::filter::script(3, |_, _| 10_000))
            .expect("the filter applies");
        panic!("boom");
    });
    assert!(r.is_err());
    let prefix = rx.recv().expect("prefix");
    assert!(
        lab_namespaces().iter().all(|n| !n.starts_with(&prefix)),
        "namespaces left: {:?}",
        lab_namespaces()
    );
}

#[test]
fn what_cannot_be_done_for_real_is_refused_with_its_line() {
    let dir = std::env::temp_dir().join(format!("lab-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("hostile.toml");
    std::fs::write(
        &file,
        "duration = \"5s\"\n[nodes]\ncount = 3\n\n[[fault]]\nat = \"1s\"\nkind = \"misbehave\"\nnode = 1\n",
    )
    .expect("write");
    let out = Command::new(LAB)
        .arg(&file)
        .args(["--chat", "/bin/true"])
        .output()
        .expect("lab runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("lab: {}:7: misbehave:", file.display());
    assert!(err.starts_with(&want), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn clean_removes_what_a_killed_lab_left() {
    if !namespaces_here() {
        return;
    }
    let mut child = Command::new(LAB)
        .args([&scenario("lab-smoke.toml"), "--chat", &chat()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab starts");
    let rx = lines(&mut child);
    let running = wait_for(&rx, "lab: running in namespaces ", Duration::from_secs(20));
    let prefix = running
        .trim_start_matches("lab: running in namespaces ")
        .trim_end_matches('*')
        .to_string();
    wait_for(&rx, "lab: 5 nodes ready", Duration::from_secs(10));
    let pids = pids_in(&prefix);
    assert_eq!(pids.len(), 5, "{pids:?}");
    // SIGKILL: no chance to clean up; the namespaces and nodes remain.
    child.kill().expect("kill");
    let _ = exit_within(child, Duration::from_secs(10));
    assert_eq!(
        lab_namespaces()
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .count(),
        6
    );
    let out = Command::new(LAB)
        .arg("--clean")
        .output()
        .expect("lab --clean");
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("removed {prefix}hub")), "{said}");
    assert!(
        lab_namespaces().iter().all(|n| !n.starts_with(&prefix)),
        "namespaces left: {:?}",
        lab_namespaces()
    );
    let left: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn the_lab_finds_netem_as_tc_does() {
    if !namespaces_here() {
        return;
    }
    let f = Fabric::create(1).expect("namespaces");
    let out = Command::new("tc")
        .args([
            "-n",
            &f.ns(0),
            "qdisc",
            "add",
            "dev",
            "lo",
            "root",
            "netem",
            "delay",
            "1ms",
        ])
        .output()
        .expect("tc runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(f.netem().present(), out.status.success(), "tc: {err}");
    if !out.status.success() {
        assert!(err.contains("Specified qdisc kind is unknown"), "tc: {err}");
    }
}

#[test]
fn a_spike_is_carried_out_with_netem_and_refused_without() {
    if !namespaces_here() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("lab-spike-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("spike.toml");
    std::fs::write(
        &file,
        "duration = \"4s\"\n[nodes]\ncount = 3\n\n[[fault]]\nat = \"1s\"\nkind = \"spike\"\nnode = 1\nextra = \"100ms\"\nfor = \"1s\"\n",
    )
    .expect("write");
    let child = Command::new(LAB)
        .arg(&file)
        .args(["--chat", &chat()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab starts");
    let mut child = child;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let status = exit_within(child, Duration::from_secs(40));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut report, mut err) = (String::new(), String::new());
    std::io::Read::read_to_string(&mut stdout, &mut report).expect("stdout");
    std::io::Read::read_to_string(&mut stderr, &mut err).expect("stderr");
    if netem_here() {
        assert_eq!(status.code(), Some(0), "{err}{report}");
        assert!(report.contains("spike +100ms"), "{report}");
    } else {
        assert_eq!(status.code(), Some(2), "{err}{report}");
        let want = format!("lab: {}:7: spike:", file.display());
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with(&want) && last.contains("netem"), "{err}");
    }
    let ours = format!("gclab-{pid}-");
    assert!(
        lab_namespaces().iter().all(|n| !n.starts_with(&ours)),
        "namespaces left: {:?}",
        lab_namespaces()
    );
}
