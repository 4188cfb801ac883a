// The controller's view of which brokers are alive, from their direct heartbeats (BROKER_HEARTBEAT,
// tens of milliseconds apart) rather than from their etcd leases (a second or more): a registered
// broker not heard from for the fencing time is fenced, that is, treated as not live for
// leadership and the ISR, until it heartbeats again. Sans-IO: fed with times, it keeps no timers.
//
// Every broker starts with a grace of one fencing time from when the controller first knew of it
// (its term began, or the broker's registration appeared), so that a new controller does not
// fence brokers that simply had not found it yet. A broker that announces a controlled shutdown
// is remembered as such until its registration goes or it heartbeats without the announcement:
// the controller passes it over for leadership like a drained broker.
//
// A controller that was itself stalled (a long pause of its event loop, a stopped process) has
// not read the heartbeats that arrived meanwhile: a check that comes long after the one before
// it gives every broker half a fencing time more, so that the heartbeats waiting in its sockets
// are read before anyone is fenced. Fencing later than the broker's own self-fencing is the safe
// direction (self-fence.ts).

export interface LivenessChange {
  /** Brokers fenced by this check (silent for the fencing time). */
  readonly fenced: readonly number[];
  /** Brokers that were fenced and have been heard from since. */
  readonly unfenced: readonly number[];
}

interface BrokerEntry {
  /** The registration this entry is about (a broker restarted under its id is a new one). */
  startedAtMs: number;
  lastHeardMs: number;
  fenced: boolean;
  shuttingDown: boolean;
}

export class BrokerLiveness {
  private readonly brokers = new Map<number, BrokerEntry>();
  /** Fenced or unfenced since the last check(): what the next check reports. */
  private unfencedSinceCheck = new Set<number>();
  private lastCheckMs: number | null = null;

  constructor(
    readonly fencingTimeMs: number,
    /** The controller itself: never fenced by its own view. */
    private readonly selfId: number,
  ) {
    if (!(fencingTimeMs > 0)) throw new RangeError(`fencing time ${fencingTimeMs} ms: expected > 0`);
  }

  /**
   * The registered brokers as the metadata shows them now: new ones (or ones registered again)
   * get a grace from `nowMs`; ones whose registration went are forgotten.
   */
  sync(registered: ReadonlyArray<{ brokerId: number; startedAtMs: number }>, nowMs: number): void {
    const ids = new Set<number>();
    for (const { brokerId, startedAtMs } of registered) {
      ids.add(brokerId);
      const known = this.brokers.get(brokerId);
      if (known !== undefined && known.startedAtMs === startedAtMs) continue;
      this.brokers.set(brokerId, { startedAtMs, lastHeardMs: nowMs, fenced: false, shuttingDown: false });
    }
    for (const id of [...this.brokers.keys()]) if (!ids.has(id)) this.brokers.delete(id);
  }

  /**
   * A heartbeat from `brokerId` with the registration it runs under. False when that is not the
   * registration the controller knows (a stale process, or one the metadata has not shown yet).
   */
  heard(brokerId: number, startedAtMs: number, nowMs: number, shuttingDown = false): boolean {
    const entry = this.brokers.get(brokerId);
    if (entry === undefined || entry.startedAtMs !== startedAtMs) return false;
    if (nowMs > entry.lastHeardMs) entry.lastHeardMs = nowMs;
    entry.shuttingDown = shuttingDown;
    if (entry.fenced) {
      entry.fenced = false;
      this.unfencedSinceCheck.add(brokerId);
    }
    return true;
  }

  /** Fences the brokers silent for the fencing time; reports what changed since the last check. */
  check(nowMs: number): LivenessChange {
    const stalled = this.lastCheckMs !== null && nowMs - this.lastCheckMs > this.fencingTimeMs / 2;
    this.lastCheckMs = nowMs;
    if (stalled) {
      const floor = nowMs - this.fencingTimeMs / 2;
      for (const entry of this.brokers.values()) if (entry.lastHeardMs < floor) entry.lastHeardMs = floor;
    }
    const fenced: number[] = [];
    for (const [id, entry] of this.brokers) {
      if (id === this.selfId || entry.fenced) continue;
      if (nowMs - entry.lastHeardMs >= this.fencingTimeMs) {
        entry.fenced = true;
        fenced.push(id);
      }
    }
    const unfenced = [...this.unfencedSinceCheck].filter((id) => this.brokers.get(id)?.fenced === false);
    this.unfencedSinceCheck = new Set();
    return { fenced, unfenced };
  }

  /** The brokers fenced now. */
  fenced(): ReadonlySet<number> {
    const ids = new Set<number>();
    for (const [id, entry] of this.brokers) if (entry.fenced) ids.add(id);
    return ids;
  }

  /** The brokers that announced a controlled shutdown (passed over for leadership). */
  shuttingDown(): ReadonlySet<number> {
    const ids = new Set<number>();
    for (const [id, entry] of this.brokers) if (entry.shuttingDown) ids.add(id);
    return ids;
  }

  /** Marks the controller's own broker as shutting down (it sends itself no heartbeat). */
  setShuttingDown(brokerId: number, shuttingDown: boolean): void {
    const entry = this.brokers.get(brokerId);
    if (entry !== undefined) entry.shuttingDown = shuttingDown;
  }

  /** When the next broker would be fenced if nobody is heard from (null: nobody to fence). */
  nextDeadlineMs(): number | null {
    let next: number | null = null;
    for (const [id, entry] of this.brokers) {
      if (id === this.selfId || entry.fenced) continue;
      const deadline = entry.lastHeardMs + this.fencingTimeMs;
      if (next === null || deadline < next) next = deadline;
    }
    return next;
  }
}
