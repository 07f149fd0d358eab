//! `order`: each user gets each sender's messages in the order sent.

use super::check::{Check, Counter, End};
use super::facts::{Delivery, Facts};
use super::show;
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};

/// Every first delivery of a message, judged against the last one of its
/// stream at the same life.
#[derive(Default)]
pub struct Order {
    /// Deliveries judged.
    pub counter: Counter,
    /// Per life, per stream: the last seq delivered.
    last_seq: Vec<Vec<u64>>,
}

impl Check for Order {
    fn id(&self) -> CheckId {
        CheckId::Order
    }
    fn kind(&self) -> Kind {
        Kind::Always
    }
    fn delivered(&mut self, _f: &Facts, d: &Delivery) {
        let &Delivery::First {
            slot,
            life,
            id,
            stream,
            ..
        } = d
        else {
            return;
        };
        if self.last_seq.len() <= life as usize {
            self.last_seq.resize_with(life as usize + 1, Vec::new);
        }
        let seqs = &mut self.last_seq[life as usize];
        if seqs.len() <= stream as usize {
            seqs.resize(stream as usize + 1, 0);
        }
        let last = &mut seqs[stream as usize];
        let was = *last;
        self.counter.judge(id.seq > was, || {
            format!("n{slot} got {} after #{was}", show(id))
        });
        *last = was.max(id.seq);
    }
    fn result(&self, _end: &End) -> CheckResult {
        let figure = format!(
            "{} out-of-order deliveries among {} judged",
            self.counter.failed, self.counter.judged
        );
        self.counter
            .result(self, figure, "no message was delivered")
    }
}
