// The controller's decisions for one partition, given which brokers are alive: who leads, at which
// epoch, with which in-sync replicas. Pure, so every rule is tested with plain values:
//
// - A partition without state, or whose leader is gone, gets as leader the first replica in
//   assignment order that is alive and in the ISR (clean election), and a new leader epoch.
// - Dead brokers leave the ISR. The last member of an ISR is never removed: if it is dead the
//   partition goes offline (leader -1) and keeps it, so that it can lead again when it returns
//   (its log holds everything acknowledged; no other replica's log is known to). Going offline
//   bumps the leader epoch too, so a leader that was only cut off is fenced by its followers.
// - Unclean election (a live replica outside the ISR takes over, acknowledged writes may be lost)
//   happens only when the topic allows it, and says so in its result for the metrics.
// - Drained brokers (broker drain) are passed over: a drained leader hands leadership to another
//   live ISR member, and an election picks a drained broker only when no other can lead.
// - A partition whose state needs no change yields null: the controller writes nothing.

import { NO_LEADER, type PartitionState } from '../control-plane/metadata-records.js';
import { faultSwitchOn } from '../test-switches.js';

export interface ElectionInput {
  readonly replicas: readonly number[];
  /** Current state, or undefined for a partition that never had a leader. */
  readonly state: PartitionState | undefined;
  readonly live: ReadonlySet<number>;
  readonly uncleanElectionAllowed: boolean;
  /** Brokers to choose as leader only when nobody else can (drained before a planned stop). */
  readonly drained?: ReadonlySet<number>;
}

export interface ElectionResult {
  readonly state: PartitionState;
  readonly unclean: boolean;
}

export function decidePartition(input: ElectionInput): ElectionResult | null {
  const { replicas, live } = input;
  const drained = input.drained ?? new Set<number>();
  const current: PartitionState = input.state ?? { leader: NO_LEADER, leaderEpoch: -1, isr: [...replicas] };
  const liveIsr = current.isr.filter((id) => live.has(id));

  if (current.leader !== NO_LEADER && live.has(current.leader) && drained.has(current.leader)) {
    // A drained leader hands over to a live in-sync replica that is not drained, if there is one.
    const successor = replicas.find((id) => liveIsr.includes(id) && !drained.has(id));
    if (successor !== undefined)
      return {
        state: { leader: successor, leaderEpoch: current.leaderEpoch + 1, isr: liveIsr },
        unclean: false,
      };
  }

  if (current.leader !== NO_LEADER && live.has(current.leader)) {
    // The leader stays; only dead followers leave the ISR.
    if (liveIsr.length === current.isr.length)
      return input.state === undefined ? { state: current, unclean: false } : null;
    return { state: { ...current, isr: liveIsr }, unclean: false };
  }

  // Deliberately broken, for the fault battery only (test-switches.ts): any live replica may lead.
  const electable = faultSwitchOn('elect-outside-isr') ? replicas.filter((id) => live.has(id)) : liveIsr;
  const clean =
    replicas.find((id) => electable.includes(id) && !drained.has(id)) ??
    replicas.find((id) => electable.includes(id));
  if (clean !== undefined)
    return {
      state: {
        leader: clean,
        leaderEpoch: current.leaderEpoch + 1,
        isr: orderLike(replicas, [...liveIsr, clean]),
      },
      unclean: false,
    };

  if (input.uncleanElectionAllowed) {
    const firstLive =
      replicas.find((id) => live.has(id) && !drained.has(id)) ?? replicas.find((id) => live.has(id));
    if (firstLive !== undefined)
      return {
        state: { leader: firstLive, leaderEpoch: current.leaderEpoch + 1, isr: [firstLive] },
        unclean: true,
      };
  }

  // Offline: keep the last ISR member(s), so the partition can come back with its data.
  const offline: PartitionState = {
    leader: NO_LEADER,
    leaderEpoch: current.leader !== NO_LEADER ? current.leaderEpoch + 1 : Math.max(current.leaderEpoch, 0),
    isr: current.isr.length > 0 ? [...current.isr] : [...replicas],
  };
  const unchanged =
    input.state !== undefined && current.leader === NO_LEADER && sameMembers(current.isr, offline.isr);
  return unchanged ? null : { state: offline, unclean: false };
}

/**
 * Preferred-leader election: leadership back to the first replica when it is live, in the ISR and
 * not drained, and does not lead already. Null when nothing changes.
 */
export function electPreferred(
  replicas: readonly number[],
  state: PartitionState | undefined,
  live: ReadonlySet<number>,
  drained: ReadonlySet<number>,
): PartitionState | null {
  const preferred = replicas[0];
  if (state === undefined || preferred === undefined || state.leader === preferred) return null;
  if (!live.has(preferred) || !state.isr.includes(preferred) || drained.has(preferred)) return null;
  return { leader: preferred, leaderEpoch: state.leaderEpoch + 1, isr: [...state.isr] };
}

function orderLike(order: readonly number[], members: readonly number[]): number[] {
  return order.filter((id) => members.includes(id));
}

function sameMembers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}
