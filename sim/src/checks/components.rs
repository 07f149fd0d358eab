//! The components of the live nodes' neighbour graph: the fact that
//! `overlay_connected` judges.

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
