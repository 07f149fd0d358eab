//! `no_duplicates`: no user gets a message twice, nor one nobody sent.

use super::check::{Check, Counter, End};
use super::facts::{Delivery, Facts};
use super::show;
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};

/// Every delivery to a user, judged when it happens.
#[derive(Default)]
pub struct NoDuplicates {
    /// Deliveries judged.
    pub counter: Counter,
    /// Deliveries of messages nobody sent (each also a failure).
    unknown: u64,
}

impl Check for NoDuplicates {
    fn id(&self) -> CheckId {
        CheckId::NoDuplicates
    }
    fn kind(&self) -> Kind {
        Kind::Always
    }
    fn delivered(&mut self, _f: &Facts, d: &Delivery) {
        match *d {
            Delivery::First { .. } => self.counter.pass(),
            Delivery::Again { slot, id, .. } => self
                .counter
                .fail(|| format!("n{slot} got {} twice", show(id))),
            Delivery::Unknown { slot, .. } => {
                self.unknown += 1;
                self.counter
                    .fail(|| format!("n{slot} got a message nobody sent"));
            }
        }
    }
    fn result(&self, _end: &End) -> CheckResult {
        let figure = format!(
            "{} duplicates handed to users ({} unknown messages) among {} deliveries",
            self.counter.failed - self.unknown,
            self.unknown,
            self.counter.judged
        );
        self.counter
            .result(self, figure, "no message was delivered")
    }
}
