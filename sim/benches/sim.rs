//! Simulator throughput: virtual node-seconds per wall second of a settled
//! cluster (1 chat message per second, default config), at 100 and 1000
//! nodes. The start (every node joining) is setup, not measured.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use gossip_chat::Instant;
use gossip_sim::{random, scenario, world::World, Trace};

const SETTLE_S: u64 = 20;
const MEASURE_S: u64 = 10;

fn cluster(nodes: u32) -> scenario::Scenario {
    let text = format!(
        "duration = \"{}s\"\n[nodes]\ncount = {nodes}\nstagger = \"10ms\"\n[network]\nlatency = {{ dist = \"uniform\", min = \"1ms\", max = \"10ms\" }}\n[workload]\nrate = 1.0\nstart = \"1s\"\n",
        SETTLE_S + MEASURE_S + 1
    );
    scenario::parse("bench.toml", &text).expect("valid bench scenario")
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    for nodes in [100u32, 1000] {
        let sc = cluster(nodes);
        let faults = random::schedule(&sc, 1);
        g.throughput(Throughput::Elements(MEASURE_S * nodes as u64));
        g.bench_with_input(
            BenchmarkId::new("settled_node_seconds", nodes),
            &sc,
            |b, sc| {
                b.iter_batched(
                    || {
                        let mut w = World::new(sc, 1, &faults, Trace::new(None));
                        w.advance(Instant::from_millis(SETTLE_S * 1000), &mut |_| {});
                        w
                    },
                    |mut w| {
                        w.advance(
                            Instant::from_millis((SETTLE_S + MEASURE_S) * 1000),
                            &mut |_| {},
                        );
                        w
                    },
                    BatchSize::PerIteration,
                )
            },
        );
    }
    g.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
