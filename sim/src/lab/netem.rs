//! Latency with the kernel's `netem` queueing discipline, where the kernel
//! has it: whether it does, and the `tc` arguments that give a node's
//! links the model's latency.
//!
//! A packet from node `a` to node `b` leaves `a`'s `eth0` (in `a`'s
//! namespace), crosses the hub's bridge and leaves the hub's `vb` towards
//! `b`. The model's one-way latency goes on every node's `eth0`, so each
//! hop gets it once. A `spike` on a node adds its extra latency on that
//! node's `eth0` (what it sends) and on the hub's end of its veth (what it
//! receives). Everything is on interfaces inside the run's namespaces, so
//! it goes with them.

use crate::scenario::Latency;
use gossip_chat::Duration;

/// Whether this kernel can delay packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Netem {
    /// `tc qdisc add ... netem` works: latency is added.
    Present,
    /// It does not; the one-line reason.
    Missing(String),
}

impl Netem {
    /// Whether latency can be added.
    pub fn present(&self) -> bool {
        *self == Netem::Present
    }
}

/// Whether `tc`'s error says the kernel has no netem (no `sch_netem`
/// module): `Error: Specified qdisc kind is unknown.` from current
/// iproute2, `Unknown qdisc "netem"` from older ones.
pub fn unknown_qdisc(stderr: &str) -> bool {
    let e = stderr.to_ascii_lowercase();
    e.contains("specified qdisc kind is unknown")
        || e.contains("unknown qdisc \"netem\"")
        || e.contains("unknown qdisc netem")
}

/// `tc` arguments for a `qdisc` command on `dev` that delays what leaves
/// it by `latency` plus `extra` (a constant when `latency` is).
///
/// A uniform latency in `[min, max]` is netem's `delay MEAN JITTER`
/// (uniform without a `distribution`); a log-normal one has no netem
/// distribution and is added as its median (the report says so).
pub fn delay_args(verb: &str, dev: &str, latency: Latency, extra: Duration) -> Vec<String> {
    let us = |d: Duration| format!("{}us", d.as_millis().saturating_mul(1000));
    let mut args: Vec<String> = ["qdisc", verb, "dev", dev, "root", "netem", "delay"]
        .iter()
        .map(ToString::to_string)
        .collect();
    match latency {
        Latency::Constant(d) => args.push(us(d + extra)),
        Latency::Uniform(min, max) => {
            // In microseconds, so an odd span keeps its half-millisecond.
            let (lo, hi) = (min.as_millis() * 1000, max.as_millis() * 1000);
            let mean = (lo + hi) / 2 + extra.as_millis() * 1000;
            args.push(format!("{mean}us"));
            if hi > lo {
                args.push(format!("{}us", (hi - lo) / 2));
            }
        }
        Latency::LogNormal { median, .. } => args.push(us(median + extra)),
    }
    args
}

/// How the model's latency is carried out with netem, for the report's
/// note.
pub fn describe(latency: Latency) -> String {
    match latency {
        Latency::Constant(d) => format!("{d} per hop"),
        Latency::Uniform(a, b) => format!("uniform {a}..{b} per hop"),
        Latency::LogNormal { median, .. } => format!(
            "log-normal in the model, its median {median} per hop (netem has no log-normal distribution)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_model_latency_becomes_a_netem_delay() {
        assert_eq!(
            delay_args("replace", "eth0", Latency::Constant(ms(5)), Duration::ZERO).join(" "),
            "qdisc replace dev eth0 root netem delay 5000us"
        );
        assert_eq!(
            delay_args(
                "add",
                "eth0",
                Latency::Uniform(ms(1), ms(15)),
                Duration::ZERO
            )
            .join(" "),
            "qdisc add dev eth0 root netem delay 8000us 7000us"
        );
        assert_eq!(
            delay_args(
                "add",
                "eth0",
                Latency::Uniform(ms(1), ms(4)),
                Duration::ZERO
            )
            .join(" "),
            "qdisc add dev eth0 root netem delay 2500us 1500us"
        );
        assert_eq!(
            delay_args(
                "add",
                "eth0",
                Latency::Uniform(ms(3), ms(3)),
                Duration::ZERO
            )
            .join(" "),
            "qdisc add dev eth0 root netem delay 3000us"
        );
        let long = Latency::LogNormal {
            median: ms(8),
            sigma: 0.8,
            max: ms(400),
        };
        assert_eq!(
            delay_args("replace", "eth0", long, Duration::ZERO).join(" "),
            "qdisc replace dev eth0 root netem delay 8000us"
        );
    }

    #[test]
    fn a_spike_adds_its_extra_to_the_delay() {
        assert_eq!(
            delay_args("replace", "eth0", Latency::Constant(ms(5)), ms(200)).join(" "),
            "qdisc replace dev eth0 root netem delay 205000us"
        );
        assert_eq!(
            delay_args("replace", "v3", Latency::Uniform(ms(1), ms(15)), ms(50)).join(" "),
            "qdisc replace dev v3 root netem delay 58000us 7000us"
        );
        // The hub's side carries only the extra.
        assert_eq!(
            delay_args("replace", "v3", Latency::Constant(Duration::ZERO), ms(50)).join(" "),
            "qdisc replace dev v3 root netem delay 50000us"
        );
    }

    #[test]
    fn a_kernel_without_netem_is_recognised_by_tc_s_error() {
        assert!(unknown_qdisc("Error: Specified qdisc kind is unknown."));
        assert!(unknown_qdisc(
            "tc qdisc add dev eth0 root netem delay 1ms: Error: Specified qdisc kind is unknown."
        ));
        assert!(unknown_qdisc(
            "Unknown qdisc \"netem\", hence option \"delay\" is unparsable"
        ));
        assert!(!unknown_qdisc("Error: Cannot find device \"eth0\""));
        assert!(!unknown_qdisc("RTNETLINK answers: Operation not permitted"));
        assert!(!unknown_qdisc(""));
    }
}
