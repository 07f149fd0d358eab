//! The counters the wire bench (`benches/wire`) reads: parsed from what
//! `ip`, `/proc/net/snmp` and `ss` print, and (as root) counted in a
//! namespace of its own that is gone, with whatever ran inside, once its
//! guard drops.

#[allow(dead_code)]
#[path = "../benches/wire/place.rs"]
mod place;

use place::{parse_lo, parse_sockets, parse_tcp, Lo, Netns, Place, Socket};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn lo_counters_come_from_lo_not_from_another_link() {
    let json = r#"[{"ifindex":2,"ifname":"eth0","stats64":{"rx":{"bytes":9,"packets":9},"tx":{"bytes":9,"packets":9}}},
        {"ifindex":1,"ifname":"lo","link_type":"loopback","stats64":{"rx":{"bytes":100,"packets":2,"errors":0},"tx":{"bytes":101,"packets":3,"errors":0}}}]"#;
    assert_eq!(
        parse_lo(json),
        Some(Lo {
            tx_bytes: 101,
            tx_packets: 3,
            rx_bytes: 100,
            rx_packets: 2
        })
    );
    assert_eq!(parse_lo("[]"), None);
    assert_eq!(parse_lo("not json"), None);
}

#[test]
fn tcp_counters_are_read_by_name() {
    let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
        Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n\
        Tcp: 1 200 120000 -1 7 6 1 2 12 900 1000 3 0 1 0\n\
        Udp: InDatagrams\nUdp: 5\n";
    let tcp = parse_tcp(snmp).unwrap();
    assert_eq!(tcp.active_opens, 7);
    assert_eq!(tcp.passive_opens, 6);
    assert_eq!(tcp.attempt_fails, 1);
    assert_eq!(tcp.estab_resets, 2);
    assert_eq!(tcp.out_segs, 1000);
    assert_eq!(tcp.retrans_segs, 3);
    assert_eq!(parse_tcp("Tcp: ActiveOpens\n"), None);
}

#[test]
fn sockets_of_the_nodes_ports_only_with_their_send_counters() {
    let ss = "\
LISTEN 0      128    127.0.0.1:40000 0.0.0.0:*
ESTAB  0      0      127.0.0.1:55268 127.0.0.1:40000 bbr wscale:10,10 rto:204 mss:32768 bytes_sent:5 bytes_acked:6 segs_out:3 segs_in:2 data_segs_out:1 lastsnd:28
ESTAB  0      0      127.0.0.1:40000 127.0.0.1:55268 bbr wscale:10,10 rto:204 bytes_received:5 segs_out:1 segs_in:3 data_segs_in:1
TIME-WAIT 0   0      127.0.0.1:40000 127.0.0.1:55270
ESTAB  0      0      127.0.0.1:22 127.0.0.1:60000 bytes_sent:99 segs_out:9
garbage
";
    let ports = BTreeSet::from([40000]);
    let got = parse_sockets(ss, &ports);
    let s = |state: &str, local: &str, peer: &str, segs_out, data_segs_out, bytes_sent| Socket {
        state: state.into(),
        local: local.into(),
        peer: peer.into(),
        segs_out,
        data_segs_out,
        bytes_sent,
    };
    assert_eq!(
        got,
        vec![
            s("ESTAB", "127.0.0.1:55268", "127.0.0.1:40000", 3, 1, 5),
            s("ESTAB", "127.0.0.1:40000", "127.0.0.1:55268", 1, 0, 0),
            s("TIME-WAIT", "127.0.0.1:40000", "127.0.0.1:55270", 0, 0, 0),
        ]
    );
}

/// Needs root and iproute2: `cargo test -p gossip-chat-net --test
/// wire_counters -- --ignored`.
#[test]
#[ignore = "needs root: creates a network namespace"]
fn a_namespace_counts_its_own_traffic_and_is_gone_with_its_processes() {
    let ns = Netns::create().expect("create a namespace");
    let name = ns.name().to_owned();
    let place = Place::Netns(ns);
    assert_eq!(
        place.lo().unwrap(),
        Lo::default(),
        "a fresh lo has sent nothing"
    );
    let before = place.tcp().unwrap();

    // One refused connection attempt: a SYN out, a RST back.
    let status = place
        .command("bash")
        .args(["-c", "exec 3<>/dev/tcp/127.0.0.1/1"])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("bash");
    assert!(
        !status.success(),
        "nothing listens on port 1 in the namespace"
    );
    let lo = place.lo().unwrap();
    assert_eq!((lo.tx_packets, lo.rx_packets), (2, 2), "{lo:?}");
    assert!(
        (80..=120).contains(&lo.tx_bytes),
        "SYN and RST with IP and TCP headers: {lo:?}"
    );
    let after = place.tcp().unwrap();
    assert_eq!(after.active_opens - before.active_opens, 1);
    assert_eq!(after.attempt_fails - before.attempt_fails, 1);

    // A process still inside is killed with the namespace.
    let mut sleeper = place.command("sleep").arg("60").spawn().expect("sleep");
    drop(place);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = sleeper.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the process inside outlived its namespace"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&*name)),
        "{name} still listed: {list}"
    );
}
