// Whether a topic this broker does not know exists in the cluster all the same. A broker learns of
// a new topic through its etcd watch, which can lag the controller's write by a moment (longer on
// a loaded machine); a client that created a topic through one broker and writes at once through
// another must not hear UNKNOWN_TOPIC, which it would take as final. So before a broker answers
// UNKNOWN_TOPIC in a cluster it asks etcd: a topic etcd holds is only news that has not arrived
// here yet (the caller answers a retriable LEADER_NOT_AVAILABLE); one etcd lacks is unknown.
//
// Each lookup is one etcd read. Lookups of one name at the same time share a read, and at most
// `maxConcurrent` names are looked up at once, so a client writing to many made-up names cannot
// queue unbounded reads on etcd. When etcd cannot answer, or every lookup slot is taken (a hanging
// etcd holds them until the call times out), the caller answers a retriable
// CONTROL_PLANE_UNAVAILABLE: whether the topic exists is not known.

export interface TopicPresenceOptions {
  /** Reads etcd: does the cluster's metadata hold `topic`? Throws when etcd cannot answer. */
  readonly stored: (topic: string) => Promise<boolean>;
  /** Distinct names looked up in etcd at once (default 8). */
  readonly maxConcurrent?: number;
}

/**
 * 'stored': etcd holds the topic; 'absent': it does not; 'failed': etcd could not answer;
 * 'unchecked': no lookup was made (too many names at once).
 */
export type TopicPresence = 'stored' | 'absent' | 'failed' | 'unchecked';

export class TopicPresenceCheck {
  private readonly inFlight = new Map<string, Promise<TopicPresence>>();
  private readonly maxConcurrent: number;

  constructor(private readonly options: TopicPresenceOptions) {
    this.maxConcurrent = options.maxConcurrent ?? 8;
  }

  /** Asks etcd about `topic`. */
  check(topic: string): Promise<TopicPresence> {
    const pending = this.inFlight.get(topic);
    if (pending !== undefined) return pending;
    if (this.inFlight.size >= this.maxConcurrent) return Promise.resolve('unchecked');
    const lookup = this.options
      .stored(topic)
      .then(
        (stored): TopicPresence => (stored ? 'stored' : 'absent'),
        (): TopicPresence => 'failed',
      )
      .finally(() => this.inFlight.delete(topic));
    this.inFlight.set(topic, lookup);
    return lookup;
  }
}
