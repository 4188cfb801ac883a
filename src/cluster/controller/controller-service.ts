// What every cluster member runs: a metadata cache kept current (one snapshot, then the watch), a
// campaign for the controller role whenever nobody holds it, and, while this broker is the
// controller, a reconcile after every change. Reconciles never overlap: changes that arrive while
// one runs are folded into one more run after it.

import { MemoryStreamerError } from '../../common/errors.js';
import { errorOf } from '../../protocol/error-codes.js';
import type { BrokerSession, ControlPlane } from '../control-plane/control-plane.js';
import { type ControllerInfo, MetadataCache, type MetadataEvent } from '../control-plane/metadata-cache.js';
import type { TopicRecord } from '../control-plane/metadata-records.js';
import { Controller, type NewTopic, type ReconcileResult } from './controller.js';

export interface ControllerServiceEvents {
  /** This broker won a controller term. */
  onTerm?(term: ControllerInfo): void;
  /** This broker's term ended (lease lost, or another controller was found in its place). */
  onTermEnd?(term: ControllerInfo, reason: string): void;
  onReconcile?(result: ReconcileResult): void;
  /** Metadata changed (the cache is current as of these events). */
  onMetadata?(cache: MetadataCache, events: readonly MetadataEvent[]): void;
  /** A failure the service recovers from by itself (it keeps running). */
  onError?(error: Error): void;
}

export class ControllerService {
  readonly cache = new MetadataCache();
  private readonly plane: ControlPlane;
  private readonly session: BrokerSession;
  private readonly events: ControllerServiceEvents;
  private controller: Controller | null = null;
  private stopWatch: (() => Promise<void>) | null = null;
  private reconciling: Promise<void> | null = null;
  private dirty = false;
  private campaigning = false;
  private stopped = false;

  private constructor(plane: ControlPlane, session: BrokerSession, events: ControllerServiceEvents) {
    this.plane = plane;
    this.session = session;
    this.events = events;
  }

  static async start(
    plane: ControlPlane,
    session: BrokerSession,
    events: ControllerServiceEvents = {},
  ): Promise<ControllerService> {
    const service = new ControllerService(plane, session, events);
    await service.resync();
    session.onLost((error) => service.endTerm(`lease lost: ${error.message}`));
    return service;
  }

  /** The term this broker holds, or null. */
  get term(): ControllerInfo | null {
    return this.controller?.term ?? null;
  }

  /** Creates a topic; only the controller can (NOT_CONTROLLER elsewhere: ask the controller). */
  async createTopic(topic: NewTopic): Promise<TopicRecord> {
    const controller = this.controller;
    if (controller === null)
      throw errorOf('NOT_CONTROLLER', `broker ${this.session.brokerId} is not the controller`);
    const record = await this.guard(controller, () => controller.createTopic(this.cache, topic));
    this.scheduleReconcile();
    return record;
  }

  /** Alters a topic (configuration, partition growth); only the controller can. */
  async alterTopic(
    name: string,
    change: { partitions?: number; config?: Readonly<Record<string, unknown>> },
  ): Promise<TopicRecord> {
    const controller = this.requireController();
    const record = await this.guard(controller, () => controller.alterTopic(this.cache, name, change));
    this.scheduleReconcile();
    return record;
  }

  /** Deletes a topic from the cluster; only the controller can. */
  async deleteTopic(name: string): Promise<void> {
    const controller = this.requireController();
    await this.guard(controller, () => controller.deleteTopic(name));
  }

  private requireController(): Controller {
    const controller = this.controller;
    if (controller === null)
      throw errorOf('NOT_CONTROLLER', `broker ${this.session.brokerId} is not the controller`);
    return controller;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.stopWatch?.();
    this.stopWatch = null;
    await this.reconciling;
    const term = this.term;
    this.controller = null;
    if (term !== null) await this.plane.resign(term).catch(() => undefined);
  }

  /** Loads a fresh snapshot and watches from it (at start, and when a watch cannot continue). */
  private async resync(): Promise<void> {
    await this.stopWatch?.();
    const snapshot = await this.plane.snapshot();
    this.cache.load(snapshot.events, snapshot.revision);
    this.stopWatch = await this.plane.watch(
      this.cache.revision,
      (events) => this.onEvents(events),
      (error) => {
        this.events.onError?.(error);
        if (!this.stopped) void this.resync().catch((failure: Error) => this.events.onError?.(failure));
      },
    );
    this.events.onMetadata?.(this.cache, snapshot.events);
    await this.afterChange();
  }

  private onEvents(events: MetadataEvent[]): void {
    this.cache.apply(events);
    this.events.onMetadata?.(this.cache, events);
    void this.afterChange();
  }

  private async afterChange(): Promise<void> {
    if (this.stopped) return;
    const current = this.cache.controller;
    const mine = this.controller;
    if (mine !== null && (current === null || current.epoch !== mine.term.epoch))
      this.endTerm(current === null ? 'controller key gone' : `broker ${current.brokerId} is controller now`);
    if (current === null && !this.campaigning && !this.session.lost) {
      this.campaigning = true;
      try {
        const term = await this.plane.campaign(this.session);
        if (term !== null && !this.stopped) {
          this.controller = new Controller(this.plane, term);
          this.events.onTerm?.(term);
        }
      } catch (error) {
        this.events.onError?.(error as Error);
      } finally {
        this.campaigning = false;
      }
    }
    this.scheduleReconcile();
  }

  private scheduleReconcile(): void {
    if (this.controller === null || this.stopped) return;
    if (this.reconciling !== null) {
      this.dirty = true;
      return;
    }
    this.reconciling = (async () => {
      do {
        this.dirty = false;
        const controller = this.controller;
        if (controller === null) break;
        try {
          const result = await this.guard(controller, () => controller.reconcile(this.cache));
          this.events.onReconcile?.(result);
        } catch (error) {
          if (!(error instanceof MemoryStreamerError && error.codeName === 'NOT_CONTROLLER'))
            this.events.onError?.(error as Error);
        }
      } while (this.dirty && !this.stopped);
      this.reconciling = null;
    })();
  }

  /** Runs a controller write; NOT_CONTROLLER ends the term here before it is rethrown. */
  private async guard<T>(controller: Controller, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (
        error instanceof MemoryStreamerError &&
        error.codeName === 'NOT_CONTROLLER' &&
        this.controller === controller
      )
        this.endTerm(error.message);
      throw error;
    }
  }

  private endTerm(reason: string): void {
    const controller = this.controller;
    if (controller === null) return;
    this.controller = null;
    this.events.onTermEnd?.(controller.term, reason);
  }
}
