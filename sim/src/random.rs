//! Random fault mode: each seed draws its own fault schedule within the
//! bounds the scenario declares (as TigerBeetle's VOPR does), so a sweep
//! over seeds explores many fault setups, and every drawn schedule is
//! printed so that a failing seed can be read before it is replayed.

use crate::scenario::{
    Fault, FaultKind, LossBurst, Misbehave, Mode, RandomSpec, Scenario, Shape, Slow, Target, Via,
};
use gossip_chat::Duration;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A uniform draw in `0..n` (`n` > 0): one `u64` from `rng`,
/// scaled by `n` (Lemire's multiply-shift, without rejection).
pub(crate) fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

fn between(rng: &mut ChaCha8Rng, a: Duration, b: Duration) -> Duration {
    Duration::from_millis(
        a.as_millis() + below(rng, (b.as_millis() - a.as_millis() + 1) as usize) as u64,
    )
}

/// Invented addresses per misbehaving node in random mode.
const RANDOM_ADDRESSES: u32 = 64;

/// The schedule a seed runs: the scenario's own faults, plus the drawn ones
/// in random mode, sorted by time.
pub fn schedule(sc: &Scenario, seed: u64) -> Vec<Fault> {
    let mut faults = sc.faults.clone();
    if let Some(spec) = &sc.random {
        faults.extend(draw(spec, sc.nodes.count, seed));
        faults.sort_by_key(|f| f.at);
    }
    faults
}

/// Draws one schedule; at most a third of the initial nodes are removed
/// for good (crash, kill, leave). Targets are drawn when each fault fires,
/// among the nodes it can apply to: a crash, kill, pause, leave, spike,
/// loss or misbehave hits a node that is up then, a restart one that is
/// down for good (or, when none is, one that is up).
pub fn draw(spec: &RandomSpec, nodes: u32, seed: u64) -> Vec<Fault> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7261_6e64_6f6d_2d66);
    let n = spec.faults.0 as usize + below(&mut rng, (spec.faults.1 - spec.faults.0) as usize + 1);
    let mut removals = 0;
    let mut out = Vec::new();
    for _ in 0..n {
        let mut kind = spec.kinds[below(&mut rng, spec.kinds.len())].as_str();
        if matches!(kind, "crash" | "kill" | "leave") {
            if removals + 1 > nodes / 3 {
                kind = "pause";
            } else {
                removals += 1;
            }
        }
        let at = between(&mut rng, spec.start, spec.end);
        let d = between(&mut rng, spec.durations.0, spec.durations.1);
        let one = Target::Random(1);
        let kind = match kind {
            "crash" => FaultKind::Crash(one),
            "kill" => FaultKind::Kill(one),
            "pause" => FaultKind::Pause(one, Some(d)),
            "restart" => FaultKind::Restart(Target::Down(1), Via::Random),
            "leave" => FaultKind::Leave(one),
            "join" => FaultKind::Join(1 + below(&mut rng, 3) as u32, Via::Random),
            "partition" | "oneway" => {
                let shapes = [
                    Shape::Halves,
                    Shape::Isolate(None),
                    Shape::Majority,
                    Shape::Bridge(None),
                ];
                let shape = shapes[below(&mut rng, shapes.len())].clone();
                FaultKind::Partition {
                    shape,
                    oneway: kind == "oneway",
                    duration: Some(d),
                }
            }
            "spike" => FaultKind::Spike(
                one,
                Duration::from_millis(50 + below(&mut rng, 451) as u64),
                d,
            ),
            "loss" => FaultKind::Loss(LossBurst {
                target: one,
                rate: 0.1 + below(&mut rng, 41) as f64 / 100.0,
                duration: d,
                inbound: false,
                excused: true,
            }),
            "misbehave" => FaultKind::Misbehave(Misbehave {
                target: one,
                duration: Some(d),
                rate: crate::scenario::MISBEHAVE_RATE,
                modes: Mode::INJECTING.to_vec(),
                addresses: RANDOM_ADDRESSES,
            }),
            "slow" => FaultKind::Slow(Slow {
                target: one,
                duration: d,
                delay: (Duration::from_secs(1), Duration::from_secs(3)),
            }),
            _ => FaultKind::Swizzle {
                count: 2 + below(&mut rng, 4) as u32,
                step: Duration::from_millis(200 + below(&mut rng, 801) as u64),
                hold: d,
            },
        };
        out.push(Fault { at, kind });
    }
    out.sort_by_key(|f| f.at);
    out
}
