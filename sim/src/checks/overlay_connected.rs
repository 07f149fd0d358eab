//! `overlay_connected`: by the end of the run the live nodes' neighbour
//! graph is one component. Rosters can list everyone while the links
//! form two islands that never hear of each other's news; this check
//! looks at the links.

use super::check::{Check, Counter, End};
use super::facts::Facts;
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};
use gossip_chat::Instant;

/// The components of the honest live nodes' neighbour graph at one
/// instant: each component's size, largest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Components {
    /// Sizes, largest first.
    pub sizes: Vec<u32>,
}

impl Components {
    /// The components of the graph over `nodes` (slots) whose links are
    /// `edges` (pairs of slots; links to slots not in `nodes` are ignored,
    /// a link counts in both directions).
    pub fn of(slots: usize, nodes: &[u32], edges: &[(u32, u32)]) -> Components {
        let mut parent: Vec<u32> = (0..slots as u32).collect();
        let mut member = vec![false; slots];
        for &n in nodes {
            member[n as usize] = true;
        }
        fn root(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let up = parent[parent[x as usize] as usize];
                parent[x as usize] = up;
                x = up;
            }
            x
        }
        for &(a, b) in edges {
            if !member[a as usize] || !member[b as usize] {
                continue;
            }
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            if ra != rb {
                parent[ra.max(rb) as usize] = ra.min(rb);
            }
        }
        let mut size = vec![0u32; slots];
        for &n in nodes {
            let r = root(&mut parent, n);
            size[r as usize] += 1;
        }
        let mut sizes: Vec<u32> = size.into_iter().filter(|&s| s > 0).collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        Components { sizes }
    }

    /// Live nodes in the graph.
    pub fn nodes(&self) -> u32 {
        self.sizes.iter().sum()
    }

    /// `1 component over 20 live nodes`, or `2 components: sizes 10, 10`.
    pub fn describe(&self) -> String {
        match self.sizes.len() {
            0 => "no live node".into(),
            1 => format!("1 component over {} live nodes", self.nodes()),
            n => {
                let mut shown: Vec<String> =
                    self.sizes.iter().take(8).map(u32::to_string).collect();
                if n > 8 {
                    shown.push("...".into());
                }
                format!(
                    "{n} components over {} live nodes: sizes {}",
                    self.nodes(),
                    shown.join(", ")
                )
            }
        }
    }
}

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
