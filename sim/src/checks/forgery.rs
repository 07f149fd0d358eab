//! `forgery`: no honest user gets a chat its claimed author never sent.
//!
//! Judged from the first forgery a hostile node sends on (a forged chat,
//! alone or in a repair batch, or an impostor hello): every delivery to an
//! honest user from then on must be of a message its author sent (an id a
//! user sent), with the name, text and time the author sent it with. A
//! forged chat that got through shows as a delivery of an id nobody sent
//! (it claimed the member's next seq before the member used it) or as one
//! whose content differs from the sender's (the member's own message got
//! through elsewhere first).

use super::check::{Check, Counter, End};
use super::facts::{Delivery, Facts};
use super::show;
use crate::check_id::CheckId;
use crate::report::{CheckResult, Kind};

/// Every delivery to an honest user once forgeries are about, judged when
/// it happens.
#[derive(Default)]
pub struct Forgery {
    /// Deliveries judged.
    pub counter: Counter,
    /// Of the failures: deliveries of ids nobody sent.
    unsent: u64,
}

impl Check for Forgery {
    fn id(&self) -> CheckId {
        CheckId::Forgery
    }
    fn kind(&self) -> Kind {
        Kind::Always
    }
    fn delivered(&mut self, f: &Facts, d: &Delivery) {
        if f.forgeries == 0 {
            return;
        }
        match *d {
            Delivery::First {
                slot, id, altered, ..
            }
            | Delivery::Again {
                slot, id, altered, ..
            } => {
                if f.is_hostile(slot) {
                    return;
                }
                self.counter.judge(!altered, || {
                    format!(
                        "n{slot} got {} with a name, text or time its author did not send",
                        show(id)
                    )
                });
            }
            Delivery::Unknown { slot, id } => {
                if f.is_hostile(slot) {
                    return;
                }
                self.unsent += 1;
                self.counter
                    .fail(|| format!("n{slot} got {}, which its author never sent", show(id)));
            }
        }
    }
    fn result(&self, end: &End) -> CheckResult {
        let figure = format!(
            "{} forged chats delivered ({} of ids never sent) among {} deliveries judged; {} forgeries sent",
            self.counter.failed, self.unsent, self.counter.judged, end.facts.forgeries
        );
        self.counter.result(
            self,
            figure,
            "no forged chat or impostor hello was sent (or nothing was delivered after one)",
        )
    }
}
