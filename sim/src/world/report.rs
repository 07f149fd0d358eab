//! Report assembly: the checks' verdicts, traffic figures by message kind
//! and purpose, latencies, table peaks and the misbehaving nodes' tally.

use super::World;
use crate::report::{EndTables, Figures, KindTraffic, MaxTables, Missing, Report};

impl World {
    /// The honest up nodes' member and stream tables now.
    fn end_tables(&self) -> EndTables {
        let mut e = EndTables::default();
        let mut members = 0;
        let facts = self.obs.facts();
        let live = self.procs.up.len();
        for slot in 0..self.procs.len() as u32 {
            let Some(n) = self.procs.up_node(slot) else {
                continue;
            };
            if self.obs.is_hostile(slot) {
                continue;
            }
            let t = n.table_sizes();
            e.live += 1;
            e.overlay_mends += n.stats().overlay_mends;
            e.overlay_dials += n.stats().overlay_dials;
            e.bridge_dials += n.stats().bridge_dials;
            e.ring_dials += n.stats().ring_dials;
            e.beacon_dials += n.stats().beacon_dials;
            e.shortcut_dials += n.stats().shortcut_dials;
            members += t.members;
            e.members_max = e.members_max.max(t.members);
            e.streams_max = e.streams_max.max(t.streams);
            let Some(life) = facts.current[slot as usize].map(|l| &facts.lives[l as usize]) else {
                continue;
            };
            if life.start_kind == crate::checks::Start::Joiner {
                // Members it may hold: the nodes up, and those that went
                // away since it started (retried while they may be back).
                let gone = facts
                    .downs
                    .iter()
                    .filter(|d| d.at >= life.start && d.gone != crate::checks::Gone::Pause)
                    .count();
                e.newcomers += 1;
                e.newcomer_old_members_max = e
                    .newcomer_old_members_max
                    .max(t.members.saturating_sub(live + gone));
            }
        }
        e.members_mean = members as f64 / e.live.max(1) as f64;
        e
    }

    /// The report of the run (after [`World::run`] has reached the end).
    pub(super) fn report(&mut self) -> Report {
        let end = self.end;
        let misbehave = (!self.attacks.is_empty()).then(|| {
            for slot in 0..self.procs.len() as u32 {
                self.count_stats(slot);
            }
            let mut tally = self.tally.clone();
            tally.hostile_nodes = self.attacks.keys().copied().collect();
            tally.invented_addresses = self.ghosts.len();
            tally.ghost_dials = self.obs.ghost_dials;
            (tally.ghost_dials_listed_max, tally.ghost_probes_max) = self.obs.ghost_dial_peaks();
            tally.ghosts_listed_at_end = self.obs.ghosts_listed();
            tally
        });
        let checks = self.obs.results(end);
        let passed = !checks.iter().any(|c| c.status.failed());
        let secs = self.obs.node_seconds(end).max(1e-9);
        let t = &self.obs.traffic;
        let total_msgs: u64 = t.kinds.iter().map(|k| k.1).sum();
        let total_bytes: u64 = t.kinds.iter().map(|k| k.2).sum();
        let (idle, repair) = (t.idle_bytes, t.repair_bytes);
        let mut kinds = t.kinds.clone();
        kinds.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
        let deliveries = self.obs.deliveries();
        let mt = self.obs.max_tables;

        let figures = Figures {
            msgs_per_node_s: Some(total_msgs as f64 / secs),
            bytes_per_node_s: total_bytes as f64 / secs,
            idle_bytes_per_node_s: Some(idle as f64 / secs),
            repair_bytes_per_node_s: Some(repair as f64 / secs),
            by_kind: Some(
                kinds
                    .iter()
                    .map(|k| KindTraffic {
                        kind: k.0.to_string(),
                        msgs_per_node_s: k.1 as f64 / secs,
                        bytes_per_node_s: k.2 as f64 / secs,
                    })
                    .collect(),
            ),
            copies_per_delivery: Some(if deliveries == 0 {
                0.0
            } else {
                t.chat_copies as f64 / deliveries as f64
            }),
            msgs_per_chat: Some(total_msgs as f64 / self.obs.msgs_sent().max(1) as f64),
            writes_per_chat: Some(t.writes as f64 / self.obs.msgs_sent().max(1) as f64),
            msgs_per_chat_flowing: t.flowing.and_then(|f| f.per_chat()).map(|p| p.0),
            writes_per_chat_flowing: t.flowing.and_then(|f| f.per_chat()).map(|p| p.1),
            last_hop: Some(self.obs.hops.last_hop()),
            chats_sent: self.obs.msgs_sent(),
            deliveries,
            delivery_ms: self.obs.delivery_pct(),
            detection_ms: self.obs.detection_pct(),
            leave_ms: self.obs.leave_pct(),
            join_ms: self.obs.join_pct(),
            max_tables: MaxTables {
                members: mt.members,
                connections: mt.connections,
                neighbours: mt.neighbours,
                streams: mt.streams,
                held: mt.held,
                history: mt.history,
                paused_queue: Some(self.obs.max_held),
            },
            max_queue: Some(self.obs.max_queue),
            end_tables: Some(self.end_tables()),
            repair_trend: self.obs.repair_minutes.trend(&self.obs.facts().lives, end),
            traffic_trend: self.obs.all_minutes.trend(&self.obs.facts().lives, end),
            missing: self.obs.facts().liveness_from.map(|_| {
                let (msgs, evicted) = self.obs.missing_msgs();
                Missing { msgs, evicted }
            }),
            misbehave,
        };
        let _ = self.trace.finish();
        Report {
            scenario: self.sc.name.clone(),
            file: self.sc.path.clone(),
            seed: self.seed,
            nodes: self.sc.nodes.count,
            slots: self.procs.len(),
            virtual_s: end.as_millis() as f64 / 1000.0,
            events: self.events,
            fingerprint: self.trace.fingerprint(),
            faults: self.schedule.clone(),
            checks,
            figures,
            wall_ms: None,
            passed,
        }
    }
}
