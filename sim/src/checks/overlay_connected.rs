//! `overlay_connected`: by the end of the run the live nodes' neighbour
//! graph is one component. Rosters can list everyone while the links
//! form two islands that never hear of each other's news; this check
//! looks at the links.

use super::check::{Check, Counter, End};
use super::components::Components;
use super::facts::Facts;
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};
use gossip_chat::Instant;

/// The overlay at the end of the run, and when it first was whole in the
/// liveness phase.
#[derive(Default)]
pub struct OverlayConnected {
    /// The last sample (the end of the run, once it is over).
    last: Option<Components>,
    /// When the overlay was first one component in the liveness phase.
    whole_at: Option<Instant>,
    counter: Counter,
}

impl Check for OverlayConnected {
    fn id(&self) -> CheckId {
        CheckId::OverlayConnected
    }
    fn kind(&self) -> Kind {
        Kind::Eventually
    }
    fn overlay(&mut self, f: &Facts, now: Instant, c: &Components) {
        if self.whole_at.is_none() && c.sizes.len() == 1 && f.liveness_from.is_some() {
            self.whole_at = Some(now);
        }
        self.last = Some(c.clone());
    }
    /// Judged once, on the sample taken at the end.
    fn finish(&mut self, _f: &Facts, now: Instant) {
        let Some(c) = &self.last else { return };
        if c.sizes.is_empty() {
            return;
        }
        let what = c.describe();
        self.counter
            .judge(c.sizes.len() == 1, || format!("at {now}: {what}"));
    }
    fn result(&self, end: &End) -> CheckResult {
        let mut figure = self
            .last
            .as_ref()
            .map_or_else(|| "no sample".into(), Components::describe);
        if let (Some(from), Some(at)) = (end.facts.liveness_from, self.whole_at) {
            figure.push_str(&format!(" (whole {} after faults ended)", at - from));
        }
        self.counter.result(self, figure, "no live node at the end")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_islands_are_two_components() {
        // n0-n1-n2 and n3-n4, n5 not live; a link to n5 joins nothing.
        let edges = [(0, 1), (2, 1), (3, 4), (4, 5), (2, 5)];
        let c = Components::of(6, &[0, 1, 2, 3, 4], &edges);
        assert_eq!(c.sizes, vec![3, 2]);
        assert_eq!(c.describe(), "2 components over 5 live nodes: sizes 3, 2");
        let c = Components::of(6, &[0, 1, 2, 3, 4], &[(0, 1), (1, 2), (2, 3), (4, 3)]);
        assert_eq!(c.describe(), "1 component over 5 live nodes");
    }
}
