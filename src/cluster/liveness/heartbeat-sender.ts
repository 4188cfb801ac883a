// A broker's heartbeats to the controller: one every interval (tens of milliseconds) over a
// connection of its own (replication traffic never delays them), several in flight when the
// controller answers slowly, and at once when the metadata names a new controller. Each answer
// confirms the broker's self-fence (self-fence.ts) from the time its heartbeat was *sent*; an
// answer naming a metadata revision this broker has not reached yet confirms it only once the
// watch has brought it there (a broker fenced meanwhile first learns who leads in its place).
// The controller's own broker is answered by itself while it holds its term.

import { type ClientTlsOptions, TcpTransport } from '../../client/tcp-transport.js';
import type { ControllerService } from '../controller/controller-service.js';
import type { SelfFence } from './self-fence.js';

/** A heartbeat this often, by default. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 50;
/** At most this many heartbeats wait for an answer at once. */
const MAX_IN_FLIGHT = 8;

export interface HeartbeatSenderOptions {
  readonly brokerId: number;
  /** The registration this broker runs under (its startedAtMs); a new one after a rejoin (`reregistered`). */
  readonly startedAtMs: number;
  readonly intervalMs: number;
  readonly fence: SelfFence;
  readonly service: ControllerService;
  /** The broker started or stopped acting as a leader on its own (for the log). */
  readonly onTransition?: (state: 'fenced' | 'unfenced', silentForMs: number) => void;
  /** A heartbeat that failed, other than by timeout or a lost connection (for the log). */
  readonly onError?: (error: Error) => void;
  /** TLS of the connection to the controller, read at each new one (as for replica fetches); none: plain. */
  readonly tls?: () => ClientTlsOptions | undefined;
}

interface ControllerLink {
  readonly brokerId: number;
  readonly advertise: string;
  readonly transport: TcpTransport;
  inFlight: number;
}

export class HeartbeatSender {
  private readonly options: HeartbeatSenderOptions;
  private timer: NodeJS.Timeout | null = null;
  private link: ControllerLink | null = null;
  /** An answer waiting for the metadata to reach its revision. */
  private pending: { sentAtMs: number; revision: bigint } | null = null;
  private shuttingDown = false;
  private stopped = false;
  private lastErrorLogMs = 0;
  private controllerEpoch: bigint | null = null;
  private startedAtMs: number;
  /** Heartbeats not answered yet (stop waits for them: a connection still opening is not closed by close()). */
  private readonly unanswered = new Set<Promise<void>>();

  constructor(options: HeartbeatSenderOptions) {
    this.options = options;
    this.startedAtMs = options.startedAtMs;
  }

  /**
   * The broker registered again (its lease was lost): heartbeats name the new registration, and one
   * goes at once. Until the controller has seen it, they are refused and the broker stays fenced.
   */
  reregistered(startedAtMs: number): void {
    this.startedAtMs = startedAtMs;
    this.beat();
  }

  start(): void {
    this.timer = setInterval(() => this.beat(), this.options.intervalMs);
    this.timer.unref();
    this.beat();
  }

  /** From now on every heartbeat says this broker is in a controlled shutdown; one goes at once. */
  beginShutdown(): void {
    this.shuttingDown = true;
    this.beat();
  }

  /** The metadata changed: a new controller gets a heartbeat at once, a pending answer may confirm. */
  onMetadata(): void {
    const epoch = this.options.service.cache.controller?.epoch ?? null;
    if (epoch !== this.controllerEpoch || this.pending !== null) {
      this.controllerEpoch = epoch;
      this.beat();
    }
  }

  /** Sends one heartbeat now (also called when the metadata changed: a new controller, a revision). */
  beat(): void {
    if (this.stopped) return;
    const now = Date.now();
    const { fence, service } = this.options;
    const pending = this.pending;
    if (pending !== null && service.cache.revision >= pending.revision) {
      fence.confirm(pending.sentAtMs);
      this.pending = null;
    }
    if (service.term !== null) fence.confirm(now);
    else this.send(now);
    const transition = fence.transition(now);
    if (transition !== null) this.options.onTransition?.(transition, fence.silentForMs(now));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    // Each ends within the fencing time (its request and connect timeouts).
    await Promise.allSettled([...this.unanswered]);
    await this.link?.transport.close();
    this.link = null;
  }

  private send(now: number): void {
    const { service, fence } = this.options;
    const controller = service.cache.controller;
    if (controller === null || controller.brokerId === this.options.brokerId) return;
    const registration = service.cache.broker(controller.brokerId);
    if (registration === undefined) return;
    const link = this.linkTo(controller.brokerId, registration.advertise);
    if (link.inFlight >= MAX_IN_FLIGHT) return;
    link.inFlight++;
    const sent = link.transport
      .request(
        'brokerHeartbeat',
        {
          brokerId: this.options.brokerId,
          startedAtMs: this.startedAtMs,
          controllerEpoch: controller.epoch,
          shuttingDown: this.shuttingDown,
        },
        { timeoutMs: fence.fencingTimeMs },
      )
      .then(
        (answer) => {
          if (this.stopped) return;
          if (service.cache.revision >= answer.metadataRevision) fence.confirm(now);
          else if (this.pending === null || now > this.pending.sentAtMs)
            this.pending = { sentAtMs: now, revision: answer.metadataRevision };
          const transition = fence.transition(Date.now());
          if (transition !== null) this.options.onTransition?.(transition, fence.silentForMs(Date.now()));
        },
        (error: unknown) => {
          // Timeouts and lost connections are what fencing is for; other failures are logged,
          // at most once a second.
          const code = (error as { codeName?: string }).codeName;
          const expected =
            code === 'REQUEST_TIMEOUT' ||
            code === 'CONNECTION_CLOSED' ||
            code === 'BROKER_NOT_AVAILABLE' ||
            code === 'NOT_CONTROLLER';
          if (!expected && !this.stopped && Date.now() - this.lastErrorLogMs > 1000) {
            this.lastErrorLogMs = Date.now();
            this.options.onError?.(error as Error);
          }
        },
      )
      .finally(() => {
        link.inFlight--;
        this.unanswered.delete(sent);
      });
    this.unanswered.add(sent);
  }

  /** The connection to the controller, opened again when the controller moves. */
  private linkTo(brokerId: number, advertise: string): ControllerLink {
    const known = this.link;
    if (known !== null && known.brokerId === brokerId && known.advertise === advertise) return known;
    if (known !== null) {
      // Closed once its heartbeats are answered or timed out (a connection still opening would
      // be left open by an earlier close).
      const pending = [...this.unanswered];
      void Promise.allSettled(pending).then(() => known.transport.close().catch(() => undefined));
    }
    const colon = advertise.lastIndexOf(':');
    const tls = this.options.tls?.();
    const transport = new TcpTransport({
      brokers: [
        { host: advertise.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(advertise.slice(colon + 1)) },
      ],
      clientId: `broker-${this.options.brokerId}-heartbeat`,
      connectTimeoutMs: this.options.fence.fencingTimeMs,
      ...(tls !== undefined ? { tls } : {}),
    });
    this.link = { brokerId, advertise, transport, inFlight: 0 };
    return this.link;
  }
}
