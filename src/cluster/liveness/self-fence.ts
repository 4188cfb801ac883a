// A broker's own half of fencing: it may act as a partition leader only while the controller
// answers its heartbeats. The controller fences a broker it has not heard from for the fencing
// time, measured from the last heartbeat it received; a heartbeat is received no earlier than it
// was sent, so a broker that counts the fencing time from the *sending* time of its last answered
// heartbeat stops leading no later than the controller may elect another leader in its place.
// Sans-IO: fed with times.
//
// The controller's own broker is answered by itself while it holds its term (`confirm`). A
// broker that starts has a grace of one fencing time (the controller gives it the same).

export class SelfFence {
  private lastConfirmedSentMs: number;
  private fencedAt: number | null = null;

  constructor(
    readonly fencingTimeMs: number,
    startedAtMs: number,
  ) {
    if (!(fencingTimeMs > 0)) throw new RangeError(`fencing time ${fencingTimeMs} ms: expected > 0`);
    this.lastConfirmedSentMs = startedAtMs;
  }

  /** A heartbeat sent at `sentAtMs` was answered by the controller (or this broker is it). */
  confirm(sentAtMs: number): void {
    if (sentAtMs > this.lastConfirmedSentMs) this.lastConfirmedSentMs = sentAtMs;
  }

  /** True when this broker must not act as a leader now. */
  isFenced(nowMs: number): boolean {
    return nowMs - this.lastConfirmedSentMs >= this.fencingTimeMs;
  }

  /**
   * Whether the fenced state changed since the last call (for the log): 'fenced', 'unfenced' or
   * null.
   */
  transition(nowMs: number): 'fenced' | 'unfenced' | null {
    const fenced = this.isFenced(nowMs);
    if (fenced && this.fencedAt === null) {
      this.fencedAt = nowMs;
      return 'fenced';
    }
    if (!fenced && this.fencedAt !== null) {
      this.fencedAt = null;
      return 'unfenced';
    }
    return null;
  }

  /** How long ago the controller last confirmed this broker. */
  silentForMs(nowMs: number): number {
    return Math.max(0, nowMs - this.lastConfirmedSentMs);
  }
}
