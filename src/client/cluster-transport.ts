// The client in a cluster: one TCP transport per broker it needs, requests routed by the cluster's
// metadata (METADATA, answered by any broker). A partition's produce, fetch, offsets and
// subscriptions go to its leader; a stream read to the leader of the key's partition; topic
// changes to the controller; a topic's description to the leader of its first partition (a broker
// that holds a copy); a group's requests to its coordinator (FIND_COORDINATOR, remembered per
// group); the list of groups to every broker (each lists the groups it coordinates); everything
// else to the broker the client bootstrapped from. On NOT_LEADER, LEADER_NOT_AVAILABLE,
// NOT_CONTROLLER, NOT_COORDINATOR, FENCED_LEADER_EPOCH, UNKNOWN_TOPIC or a lost connection the
// metadata (and the group's coordinator) is read again and the request goes once more to where it
// now says (the producer's own retries keep a partition's batches in order on top of that). On
// REQUEST_TIMEOUT the metadata is read again too, but the request is not repeated here: it may
// have been applied.
//
// A broker without a cluster answers METADATA with no cluster id: then every request goes to it,
// as before.

import { MemoryStreamerError } from '../common/errors.js';
import type { CommandCodec } from '../protocol/commands/command.js';
import type { MetadataResponse, SubscribeRequest } from '../protocol/commands/data-types.js';
import type { RequestOf, ResponseOf } from '../protocol/commands/registry.js';
import { errorOf } from '../protocol/error-codes.js';
import { partitionForKey } from '../protocol/partitioner.js';
import { type BrokerAddress, TcpTransport, type TcpTransportOptions } from './tcp-transport.js';
import type {
  ClientCommand,
  PushHandlers,
  RemoteSubscription,
  RequestOptions,
  Transport,
} from './transport.js';

/** Errors after which the metadata may say another broker now serves the request. */
const REROUTE = new Set([
  'NOT_LEADER',
  'LEADER_NOT_AVAILABLE',
  'NOT_CONTROLLER',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
  'FENCED_LEADER_EPOCH',
  'CONNECTION_CLOSED',
  'BROKER_NOT_AVAILABLE',
  // A topic created a moment ago may not have reached every broker's metadata yet.
  'UNKNOWN_TOPIC',
]);

const METADATA_TIMEOUT_MS = 5_000;

/** Requests about one consumer group: served by its coordinator. */
const GROUP_COMMANDS: ReadonlySet<ClientCommand> = new Set<ClientCommand>([
  'joinGroup',
  'heartbeat',
  'leaveGroup',
  'commitOffsets',
  'fetchOffsets',
  'describeGroup',
]);

function timedOut(error: unknown): boolean {
  return error instanceof MemoryStreamerError && error.codeName === 'REQUEST_TIMEOUT';
}

function reroutes(error: unknown): boolean {
  return error instanceof MemoryStreamerError && REROUTE.has(error.codeName);
}

export class ClusterTransport implements Transport {
  private readonly links = new Map<number, { address: string; transport: TcpTransport }>();
  private metadata: MetadataResponse | null = null;
  /** Each group's coordinator, as FIND_COORDINATOR last said. */
  private readonly coordinators = new Map<string, number>();
  private refreshing: Promise<void> | null = null;
  private closed = false;

  private constructor(
    private readonly bootstrap: TcpTransport,
    private readonly options: Omit<TcpTransportOptions, 'brokers'>,
  ) {}

  /** Connects to one of `brokers` and reads the cluster's metadata. */
  static async connect(options: TcpTransportOptions): Promise<ClusterTransport> {
    const bootstrap = new TcpTransport(options);
    const { brokers: _brokers, ...rest } = options;
    const transport = new ClusterTransport(bootstrap, rest);
    try {
      await bootstrap.connect();
      await transport.refresh();
    } catch (error) {
      await transport.close();
      throw error;
    }
    return transport;
  }

  /** True when the brokers form a cluster (requests are routed); false for a broker alone. */
  get routed(): boolean {
    return this.metadata !== null && this.metadata.clusterId !== null;
  }

  /** Reads the metadata again (one read at a time; concurrent callers share it). */
  refresh(): Promise<void> {
    this.refreshing ??= this.bootstrap
      .request('metadata', {}, { timeoutMs: METADATA_TIMEOUT_MS })
      .then(
        (metadata) => {
          this.metadata = metadata;
        },
        (error: unknown) => {
          // A broker that predates METADATA is a broker alone: every request goes to it.
          if (error instanceof MemoryStreamerError && error.codeName === 'UNKNOWN_OPCODE')
            this.metadata = null;
          else throw error;
        },
      )
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  async request<K extends ClientCommand>(
    name: K,
    request: RequestOf<K>,
    options: RequestOptions,
  ): Promise<ResponseOf<K>> {
    this.throwIfClosed();
    if (!this.routed) return this.bootstrap.request(name, request, options);
    if (name === 'listGroups') return (await this.listGroupsEverywhere(options)) as ResponseOf<K>;
    const groupId = GROUP_COMMANDS.has(name) ? (request as { groupId: string }).groupId : null;
    try {
      const target =
        groupId !== null ? await this.coordinatorOf(groupId, options) : this.route(name, request);
      this.throwIfClosed();
      return await target.request(name, request, options);
    } catch (error) {
      if (this.closed) throw error;
      if (timedOut(error)) {
        // The broker did not answer in time: frozen, cut off, or replaced while its connection
        // stays open. The request may have been applied, so it is not sent again here (the
        // producer's idempotent retries do that); the metadata is read again so that the next
        // attempt goes where it now says.
        if (groupId !== null) this.coordinators.delete(groupId);
        void this.refresh().catch(() => undefined);
        throw error;
      }
      if (!reroutes(error)) throw error;
      if (groupId !== null) this.coordinators.delete(groupId);
      await this.refresh();
      this.throwIfClosed();
      const target =
        groupId !== null ? await this.coordinatorOf(groupId, options) : this.route(name, request);
      this.throwIfClosed();
      return target.request(name, request, options);
    }
  }

  /**
   * Nothing is routed after close(): it would open a connection to a broker (a transport in
   * `links` made anew) that nothing closes any more.
   */
  private throwIfClosed(): void {
    if (this.closed) throw errorOf('CONNECTION_CLOSED', 'transport is closed');
  }

  /** The connection to `groupId`'s coordinator, found through any broker when not known. */
  private async coordinatorOf(groupId: string, options: RequestOptions): Promise<Transport> {
    const known = this.coordinators.get(groupId);
    const link = known === undefined ? null : this.broker(known);
    if (link !== null) return link;
    const found = await this.request('findCoordinator', { groupId }, options);
    this.throwIfClosed();
    this.coordinators.set(groupId, found.brokerId);
    return this.link(found.brokerId, { host: found.host, port: found.port });
  }

  /** Every broker lists the groups it coordinates: together, the cluster's groups. */
  private async listGroupsEverywhere(options: RequestOptions): Promise<ResponseOf<'listGroups'>> {
    const brokers = (this.metadata?.brokers ?? []).map((view) => this.broker(view.id) ?? this.bootstrap);
    const answers = await Promise.allSettled(
      brokers.map((transport) => transport.request('listGroups', {}, options)),
    );
    const listed = answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : []));
    const failed = answers.find((answer): answer is PromiseRejectedResult => answer.status === 'rejected');
    // A broker that cannot answer now coordinates nothing: its groups move to another one.
    if (listed.length === 0 && failed !== undefined) throw failed.reason;
    const groups = listed
      .flatMap((answer) => answer.groups)
      .sort((a, b) => a.groupId.localeCompare(b.groupId));
    return { groups };
  }

  async subscribe(
    request: SubscribeRequest,
    handlers: PushHandlers,
    options: RequestOptions,
  ): Promise<RemoteSubscription> {
    this.throwIfClosed();
    if (!this.routed) return this.bootstrap.subscribe(request, handlers, options);
    const leaderHandlers: PushHandlers = {
      onBatches: (chunks, highWatermark) => handlers.onBatches(chunks, highWatermark),
      onError: (error) => {
        // The consumer subscribes again; the metadata should say where by then.
        if (reroutes(error)) void this.refresh().catch(() => undefined);
        handlers.onError(error);
      },
    };
    try {
      return await this.leaderOf(request.topic, request.partition).subscribe(
        request,
        leaderHandlers,
        options,
      );
    } catch (error) {
      if (!reroutes(error) || this.closed) throw error;
      await this.refresh();
      this.throwIfClosed();
      return this.leaderOf(request.topic, request.partition).subscribe(request, leaderHandlers, options);
    }
  }

  maxRequestPayloadBytes(name: ClientCommand): number | undefined {
    return this.bootstrap.maxRequestPayloadBytes(name);
  }

  /** A request outside the command registry (ACLs, tenants): answered by the bootstrap broker. */
  call<Request, Response>(
    command: CommandCodec<Request, Response>,
    request: Request,
    options: RequestOptions,
  ): Promise<Response> {
    return this.bootstrap.call(command, request, options);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.bootstrap.close();
    for (const { transport } of this.links.values()) await transport.close();
    this.links.clear();
  }

  /** Where a request goes by what it is about. */
  private route<K extends ClientCommand>(name: K, request: RequestOf<K>): Transport {
    switch (name) {
      case 'produce':
      case 'fetch':
      case 'listOffsets': {
        const { topic, partition } = request as { topic: string; partition: number };
        return this.leaderOf(topic, partition);
      }
      case 'readStream': {
        const { topic, key } = request as RequestOf<'readStream'>;
        const partitions = this.topic(topic)?.partitions.length;
        return partitions === undefined
          ? this.bootstrap
          : this.leaderOf(topic, partitionForKey(key, partitions));
      }
      case 'describeTopic': {
        // A broker holding a copy describes it with its offsets: the leader of its first partition.
        const { name: topic } = request as RequestOf<'describeTopic'>;
        return this.leaderOf(topic, 0);
      }
      case 'createTopic':
      case 'alterTopic':
      case 'deleteTopic':
      // A rollback to a topic's version alters the topic, which the controller does.
      case 'configRollback':
      // The controller creates the offsets topic when the cluster has none yet.
      case 'findCoordinator':
        return this.broker(this.metadata!.controllerId) ?? this.bootstrap;
      default:
        return this.bootstrap;
    }
  }

  private topic(name: string) {
    return this.metadata?.topics.find((topic) => topic.name === name && topic.error === null);
  }

  /**
   * The transport to a partition's leader. A topic the metadata does not know yet (created since)
   * goes to the bootstrap broker, whose answer (NOT_LEADER naming the leader) brings a refresh.
   */
  private leaderOf(topic: string, partition: number): Transport {
    const leader = this.topic(topic)?.partitions[partition]?.leader;
    if (leader === undefined) return this.bootstrap;
    if (leader < 0) throw errorOf('LEADER_NOT_AVAILABLE', `${topic}/${partition}`);
    return this.broker(leader) ?? this.bootstrap;
  }

  private broker(id: number): TcpTransport | null {
    const view = this.metadata?.brokers.find((broker) => broker.id === id);
    if (view === undefined || view.port === 0) return null;
    return this.link(id, { host: view.host, port: view.port });
  }

  /** The one connection to broker `id`, at `address` (a new one when the broker moved). */
  private link(id: number, address: BrokerAddress): TcpTransport {
    // The last guard: close() has closed every transport in `links`, and would miss a new one.
    this.throwIfClosed();
    const where = `${address.host}:${address.port}`;
    const known = this.links.get(id);
    if (known !== undefined && known.address === where) return known.transport;
    void known?.transport.close();
    const transport = new TcpTransport({ ...this.options, brokers: [address] });
    this.links.set(id, { address: where, transport });
    return transport;
  }
}
