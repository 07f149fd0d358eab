//! The end-of-run table figures: member tables against the live count, and
//! what newcomers hold beyond the live nodes and the departures since they
//! started.

use gossip_sim::{run, scenario::parse};

#[test]
fn newcomers_in_a_cluster_without_deaths_hold_no_old_members() {
    let sc = parse(
        "t.toml",
        "duration = \"30s\"\n[nodes]\ncount = 8\n[[fault]]\nat = \"10s\"\nkind = \"join\"\ncount = 3\n",
    )
    .unwrap();
    let e = run(&sc, 0, None)
        .figures
        .end_tables
        .expect("the simulator measures the end tables");
    assert_eq!((e.live, e.newcomers), (11, 3), "{e:?}");
    assert_eq!(e.newcomer_old_members_max, 0, "{e:?}");
    assert!(e.members_max >= 10 && e.members_max <= 11, "{e:?}");
    // Departures after a newcomer started widen what it may hold: a crash
    // after the joins leaves the figure at zero.
    let sc = parse(
        "t.toml",
        "duration = \"30s\"\n[nodes]\ncount = 8\n[[fault]]\nat = \"10s\"\nkind = \"join\"\ncount = 3\n[[fault]]\nat = \"15s\"\nkind = \"crash\"\nnode = 2\n",
    )
    .unwrap();
    let e = run(&sc, 0, None)
        .figures
        .end_tables
        .expect("the simulator measures the end tables");
    assert_eq!(
        (e.live, e.newcomers, e.newcomer_old_members_max),
        (10, 3, 0),
        "{e:?}"
    );
}
