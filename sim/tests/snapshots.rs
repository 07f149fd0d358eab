//! Trace snapshots of the small scenarios: any change in the protocol's
//! behaviour (or in the simulator) shows up as a reviewed diff.

use gossip_sim::{load, run};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn trace_of(name: &str) -> String {
    let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let sc = load(&path).unwrap();
    let buf = Shared::default();
    let report = run(&sc, 0, Some(Box::new(buf.clone())));
    assert!(report.passed, "{}", report.render());
    let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
    // Heartbeat timeouts add bulk and no insight: keep the rest.
    text.lines()
        .filter(|l| !l.ends_with(" timeout"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn two_nodes_trace() {
    insta::assert_snapshot!(trace_of("two-nodes"));
}

#[test]
fn three_nodes_trace() {
    insta::assert_snapshot!(trace_of("three-nodes"));
}
