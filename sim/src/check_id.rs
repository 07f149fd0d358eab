//! The one list of check names: every check the simulator can judge, in
//! report order. Scenarios name checks (`skip`, `xfail`, `judge`) by these
//! names; the report prints them.

use std::fmt;

/// A check the simulator judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckId {
    /// Initial nodes know every live member soon after the last start.
    Discovery,
    /// A joiner knows every live member soon after it joins.
    Join,
    /// A dead node leaves every live roster within the deadline.
    Detection,
    /// No live, reachable node is removed as dead.
    NoFalseRemoval,
    /// Every message reaches every connected node within the deadline.
    Delivery,
    /// Per-sender order of delivery.
    Order,
    /// No message handed to a user twice.
    NoDuplicates,
    /// Every table and queue stays within its bound.
    BoundedState,
    /// Invented addresses are neither kept for good nor dialled without end.
    InventedPeers,
    /// Rosters agree after the faults end, and keep agreeing.
    Convergence,
    /// The live nodes' neighbour graph is one component at the end.
    OverlayConnected,
    /// Every message is held by every live node at the end.
    EventualDelivery,
    /// A node without the cluster key and the members exchange nothing.
    Admission,
    /// No honest user gets a chat its claimed author did not send.
    Forgery,
    /// No honest node holds an honest member in a state it did not sign.
    ForgedState,
}

impl CheckId {
    /// Every check, in report order.
    pub const ALL: [CheckId; 15] = [
        CheckId::Discovery,
        CheckId::Join,
        CheckId::Detection,
        CheckId::NoFalseRemoval,
        CheckId::Delivery,
        CheckId::Order,
        CheckId::NoDuplicates,
        CheckId::BoundedState,
        CheckId::InventedPeers,
        CheckId::Convergence,
        CheckId::OverlayConnected,
        CheckId::EventualDelivery,
        CheckId::Admission,
        CheckId::Forgery,
        CheckId::ForgedState,
    ];

    /// The name used in scenario files and reports.
    pub const fn name(self) -> &'static str {
        match self {
            CheckId::Discovery => "discovery",
            CheckId::Join => "join",
            CheckId::Detection => "detection",
            CheckId::NoFalseRemoval => "no_false_removal",
            CheckId::Delivery => "delivery",
            CheckId::Order => "order",
            CheckId::NoDuplicates => "no_duplicates",
            CheckId::BoundedState => "bounded_state",
            CheckId::InventedPeers => "invented_peers",
            CheckId::Convergence => "convergence",
            CheckId::OverlayConnected => "overlay_connected",
            CheckId::EventualDelivery => "eventual_delivery",
            CheckId::Admission => "admission",
            CheckId::Forgery => "forgery",
            CheckId::ForgedState => "forged_state",
        }
    }

    /// The check of that name.
    pub fn from_name(name: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Every name, comma-separated (for error messages).
    pub fn names() -> String {
        CheckId::ALL.map(CheckId::name).join(", ")
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for c in CheckId::ALL {
            assert_eq!(CheckId::from_name(c.name()), Some(c));
        }
        let mut names: Vec<_> = CheckId::ALL.map(CheckId::name).to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CheckId::ALL.len());
        assert_eq!(CheckId::from_name("nope"), None);
    }
}
