// The one way this project opens a client to etcd (the control plane, and the users, ACLs and
// tenants a cluster keeps there): TLS from the `etcds://` files, a deadline on every request (not
// on watch streams, which stay open), and a reconnect delay for watch streams that lets the
// process exit as soon as the client is closed.
//
// Why the last one: etcd3 starts a referenced timer to reconnect whenever a watch stream ends,
// including the end that closing the client causes. Its default delay grows to 30 s while etcd is
// unreachable (a restart of etcd is enough) and is only reset by the next watch event, so a broker
// that had lived through an etcd restart stopped cleanly and then sat for up to 30 s before its
// process exited (long enough for a supervisor to kill it). Here the delay is 0 once the client
// is closed: the timer fires at once, finds no watcher and does nothing.

import { Etcd3, type IOptions } from 'etcd3';
import { type EtcdTlsFiles, etcdCredentials } from './etcd-credentials.js';

export interface EtcdEndpoints {
  /** etcd client endpoints, `http://host:port` (https with TLS). */
  readonly endpoints: readonly string[];
  /** PEM files of TLS to etcd (none given: the system CAs, no client certificate). */
  readonly tls?: EtcdTlsFiles;
}

/**
 * First reconnect delay of a watch stream, doubled per failed attempt up to the maximum. The
 * maximum is short because it is also how long a pending reconnect can hold up the exit of a
 * process that closed its client while etcd was down; a reconnect a second is nothing to etcd.
 */
const WATCH_RECONNECT_FIRST_MS = 100;
const WATCH_RECONNECT_MAX_MS = 1_000;
/**
 * After the client is closed: the first reconnect is immediate (it finds no watcher); should a
 * watcher still be attached (one whose creation had not been confirmed when the client closed),
 * later ones wait this long rather than spin.
 */
const WATCH_RECONNECT_AFTER_CLOSE_MS = 1_000;

/** Whether the client a backoff belongs to has been closed (shared by all its watch managers). */
interface ClientState {
  closed: boolean;
}

/**
 * etcd3's watch backoff (cockatiel's `IBackoff` shape): `duration` is read once per reconnect,
 * `next()` gives the one for the attempt after. Exponential with jitter (half to all of the cap).
 */
export class WatchReconnectBackoff {
  constructor(
    private readonly client: ClientState,
    private readonly attempt = 0,
    private readonly attemptsSinceClose = 0,
  ) {}

  get duration(): number {
    if (this.client.closed) return this.attemptsSinceClose === 0 ? 0 : WATCH_RECONNECT_AFTER_CLOSE_MS;
    const cap = Math.min(WATCH_RECONNECT_MAX_MS, WATCH_RECONNECT_FIRST_MS * 2 ** this.attempt);
    return Math.round(cap / 2 + (Math.random() * cap) / 2);
  }

  next(): WatchReconnectBackoff {
    return new WatchReconnectBackoff(
      this.client,
      Math.min(this.attempt + 1, 16),
      this.client.closed ? this.attemptsSinceClose + 1 : 0,
    );
  }
}

/** An etcd3 client whose `close()` also tells its watch backoff (see the top of this file). */
class ClosableEtcd3 extends Etcd3 {
  constructor(
    options: IOptions,
    private readonly state: ClientState,
  ) {
    super(options);
  }

  override close(): void {
    this.state.closed = true;
    super.close();
  }
}

/** A client to etcd whose requests have `callTimeoutMs` as deadline (default 2 s). */
export function etcdClient(location: EtcdEndpoints, callTimeoutMs = 2000): Etcd3 {
  const state: ClientState = { closed: false };
  return new ClosableEtcd3(
    {
      hosts: [...location.endpoints],
      ...etcdCredentials(location.tls),
      dialTimeout: callTimeoutMs,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
      faultHandling: { watchBackoff: new WatchReconnectBackoff(state) },
    },
    state,
  );
}
