//! What a `chat` node tells about itself: `/peers` with member states,
//! `/stats`, and the `--metrics` endpoint in the Prometheus text format.
//! Real processes on 127.0.0.1; every wait has a deadline, and every
//! process is killed when its guard drops.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The answer to one typed command (`/peers` -> `peers`, `/stats` ->
/// `stats`).
fn ask(node: &mut Chat, command: &str, event: &str) -> Value {
    let mark = node.mark();
    node.line(command);
    node.wait_since(mark, event, PROMPT, |e| e["event"] == event)
}

/// Samples of a Prometheus text body: `name{labels}` -> value. Panics on
/// a line that is not a comment or a sample.
fn samples(body: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        out.insert(series.to_owned(), value);
    }
    out
}

/// Scrapes until `pred` holds for the samples.
fn wait_metrics(
    addr: SocketAddr,
    what: &str,
    pred: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = clock() + DELIVERY;
    loop {
        let (status, _, body) = http_get(addr, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let s = samples(&body);
        if pred(&s) {
            return s;
        }
        assert!(clock() < deadline, "metrics never showed {what}:\n{body}");
        pause(Duration::from_millis(50));
    }
}

fn alive(s: &BTreeMap<String, f64>) -> f64 {
    s.get("gossip_chat_members{state=\"alive\"}")
        .copied()
        .unwrap_or(-1.0)
}

#[test]
fn metrics_answer_in_prometheus_text_and_count_the_peers() {
    let mut a = Chat::start_with("a", &[], &["--metrics", "127.0.0.1:0"]);
    let ready = a.wait_for("ready", PROMPT, |e| e["event"] == "ready");
    let metrics: SocketAddr = ready["metrics"]
        .as_str()
        .expect("metrics address")
        .parse()
        .unwrap();
    let b = Chat::start("b", &[&a]);
    let mut c = Chat::start("c", &[&a]);
    a.wait_peers(&[&b, &c]);

    let (status, headers, body) = http_get(metrics, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("Content-Type: text/plain; version=0.0.4"),
        "{headers}"
    );
    for family in [
        "# TYPE gossip_chat_members gauge",
        "# TYPE gossip_chat_delivered_total counter",
        "# TYPE gossip_chat_dropped_total counter",
        "# TYPE gossip_chat_table_size gauge",
        "# TYPE gossip_chat_refutations_total counter",
        "# TYPE gossip_chat_send_queue_messages gauge",
        "# TYPE gossip_chat_signatures_on_driver_total counter",
    ] {
        assert!(body.contains(family), "no `{family}` in:\n{body}");
    }

    // The member gauge agrees with `/peers`.
    let s = wait_metrics(metrics, "two alive members", |s| alive(s) == 2.0);
    let peers = ask(&mut a, "/peers", "peers");
    assert_eq!(peers["peers"].as_array().unwrap().len() as f64, alive(&s));

    // Sending and delivering count.
    a.line("counted");
    a.wait_chat(&a, "counted", PROMPT);
    let s = wait_metrics(metrics, "one chat sent", |s| {
        s.get("gossip_chat_chats_sent_total") == Some(&1.0)
    });
    assert!(s["gossip_chat_delivered_total"] >= 1.0);
    assert!(s["gossip_chat_messages_sent_total"] > 0.0);

    // A member that leaves moves from alive to left, in both views.
    c.line("/quit");
    c.wait_exit(PROMPT);
    let s = wait_metrics(metrics, "c as left", |s| {
        alive(s) == 1.0 && s.get("gossip_chat_members{state=\"left\"}") == Some(&1.0)
    });
    let peers = ask(&mut a, "/peers", "peers");
    assert_eq!(peers["peers"].as_array().unwrap().len() as f64, alive(&s));

    // Anything but /metrics is not found.
    let (status, _, _) = http_get(metrics, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    drop(b);
}

#[test]
fn peers_show_states_and_stats_show_counters_in_json() {
    let mut a = Chat::start("a", &[]);
    let mut b = Chat::start("b", &[&a]);
    a.wait_peers(&[&b]);
    let texts: Vec<String> = (1..=3).map(|i| format!("hello {i}")).collect();
    for t in &texts {
        b.line(t);
    }
    a.wait_chats(&b, &texts, DELIVERY);

    let peers = ask(&mut a, "/peers", "peers");
    let p = &peers["peers"][0];
    assert_eq!(p["name"], "b");
    assert_eq!(p["addr"], b.addr_str().as_str());
    assert_eq!(p["state"], "alive");
    assert_eq!(p["neighbour"], true);
    let id = p["id"].as_str().expect("a short identity");
    assert!(
        id.len() == 4 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    let heard = p["last_heard_ms"]
        .as_u64()
        .expect("last heard of a neighbour");
    assert!(heard < 5_000, "last heard {heard} ms ago");
    assert_eq!(peers["gone"].as_array().unwrap().len(), 0);

    let stats = ask(&mut a, "/stats", "stats");
    assert_eq!(stats["stats"]["delivered"], 3, "{stats}");
    assert_eq!(stats["stats"]["malformed"], 0, "{stats}");
    assert_eq!(stats["tables"]["members"], 1, "{stats}");
    assert_eq!(stats["tables"]["neighbours"], 1, "{stats}");

    // b leaves: gone from the roster, remembered as left.
    b.line("/quit");
    b.wait_exit(PROMPT);
    a.wait_for("b leaving", PROMPT, |e| {
        e["event"] == "peer_down" && e["name"] == "b"
    });
    let peers = ask(&mut a, "/peers", "peers");
    assert_eq!(peers["peers"].as_array().unwrap().len(), 0, "{peers}");
    let gone = &peers["gone"][0];
    assert_eq!(gone["name"], "b");
    assert_eq!(gone["state"], "left");
    assert_eq!(gone["neighbour"], false);
    assert!(gone["since_ms"].is_u64());
}
