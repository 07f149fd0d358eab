//! Simulator throughput: virtual seconds of a whole cluster per wall second,
//! at 100 and 1000 nodes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gossip_sim::scenario;

fn cluster(nodes: u32, secs: u64) -> scenario::Scenario {
    let text = format!(
        "duration = \"{secs}s\"\n[nodes]\ncount = {nodes}\nstagger = \"1ms\"\n[workload]\nrate = 1.0\nstart = \"1s\"\n"
    );
    scenario::parse("bench.toml", &text).expect("valid bench scenario")
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    for (nodes, secs) in [(100u32, 30u64), (1000, 10)] {
        let sc = cluster(nodes, secs);
        g.throughput(Throughput::Elements(secs * nodes as u64));
        g.bench_with_input(BenchmarkId::new("node_seconds", nodes), &sc, |b, sc| {
            b.iter(|| gossip_sim::run(sc, 1, None))
        });
    }
    g.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
