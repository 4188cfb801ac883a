// Which topics exist, with their partition counts and configuration, persisted one file per topic.
// It owns the topic directories' names and lifecycle; what is inside a partition directory belongs
// to the storage layer.
//
// Layout under the data directory:
//   topics/<name>/topic.json      TopicDescription as JSON, written to a temporary file, fsynced,
//                                 renamed over the old one, then the directory is fsynced
//   topics/<name>/<partition>/    one directory per partition (storage/partition-log); none for a
//                                 memory topic, whose partitions live in process memory (their
//                                 paths name them there) and start empty at every open
//   trash/<name>.<id>/            a deleted topic, renamed here atomically, then removed
// A topic is created by writing its topic.json last, so a crash mid-create leaves a directory with
// no topic.json, which open() ignores and removes. Creation is all-or-nothing also without a crash:
// the caller's `open` step (the broker opens every partition) runs before topic.json is written,
// and a failure there removes the directory, so the registry never lists a topic that is not fully
// open. A topic whose topic.json cannot be read at start is set aside in `damaged` (the broker
// reports it offline) instead of stopping every other topic from opening.

import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorOf } from '../../protocol/error-codes.js';
import {
  checkReplication,
  checkStorage,
  DEFAULT_TOPIC_CONFIG,
  memoryTopicBase,
  resolveTopicConfig,
  type TopicConfig,
  type TopicDescription,
  type TopicStorage,
  validatePartitionCount,
  validateReplicationFactor,
  validateStorage,
  validateTopicName,
} from './topic-config.js';

const TOPIC_FILE = 'topic.json';

export interface CreateTopicInput {
  name: string;
  partitions?: number;
  /** Copies of each partition (default 1); fixed for the topic's life. */
  replicationFactor?: number;
  /** Where its partitions keep their log (default 'disk'); fixed for the topic's life. */
  storage?: TopicStorage;
  config?: Partial<Record<keyof TopicConfig, unknown>>;
}

/** Opens what a new or grown topic needs (partitions from `from` on) before it is committed. */
export type OpenTopicStep = (topic: TopicDescription, from: number) => Promise<void>;

export interface AlterTopicInput {
  name: string;
  /** New partition count; may only grow (keys would otherwise move between partitions). */
  partitions?: number;
  config?: Partial<Record<keyof TopicConfig, unknown>>;
}

async function writeFileDurably(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class TopicRegistry {
  readonly dataDir: string;
  private readonly topics = new Map<string, TopicDescription>();
  /** Names being created or deleted right now: a second request for one of them is refused. */
  private readonly busy = new Set<string>();
  /** Topic directories whose topic.json could not be read at open: name → reason. */
  readonly damaged = new Map<string, string>();
  private defaults: TopicConfig;
  private defaultPartitions: number;

  private constructor(dataDir: string, defaults: TopicConfig, defaultPartitions: number) {
    this.dataDir = dataDir;
    this.defaults = defaults;
    this.defaultPartitions = defaultPartitions;
  }

  static async open(
    dataDir: string,
    options: { defaults?: TopicConfig; defaultPartitions?: number } = {},
  ): Promise<TopicRegistry> {
    const registry = new TopicRegistry(
      dataDir,
      options.defaults ?? DEFAULT_TOPIC_CONFIG,
      options.defaultPartitions ?? 1,
    );
    await mkdir(join(dataDir, 'topics'), { recursive: true });
    await mkdir(join(dataDir, 'trash'), { recursive: true });
    // Finish deletions a crash interrupted.
    for (const entry of await readdir(join(dataDir, 'trash'))) {
      await rm(join(dataDir, 'trash', entry), { recursive: true, force: true });
    }
    for (const entry of await readdir(join(dataDir, 'topics'), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = join(dataDir, 'topics', entry.name);
      let text: string;
      try {
        text = await readFile(join(dir, TOPIC_FILE), 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          // A create that crashed before its topic.json was written: nothing was ever acknowledged.
          await rm(dir, { recursive: true, force: true });
          continue;
        }
        registry.damaged.set(
          entry.name,
          `topics/${entry.name}/${TOPIC_FILE} cannot be read: ${(error as Error).message}`,
        );
        continue;
      }
      try {
        const description = registry.parseDescription(text, entry.name);
        registry.topics.set(description.name, description);
      } catch (error) {
        registry.damaged.set(entry.name, (error as Error).message);
      }
    }
    return registry;
  }

  private parseDescription(text: string, dirName: string): TopicDescription {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (cause) {
      throw errorOf('CORRUPT_DATA', `topics/${dirName}/${TOPIC_FILE} is not valid JSON`, { cause });
    }
    const value = raw as Partial<TopicDescription>;
    if (value.name !== dirName || typeof value.id !== 'string' || typeof value.createdAt !== 'number') {
      throw errorOf('CORRUPT_DATA', `topics/${dirName}/${TOPIC_FILE} does not describe topic ${dirName}`);
    }
    // A topic.json written before topics had replicas describes one copy.
    const replicationFactor =
      value.replicationFactor === undefined ? 1 : validateReplicationFactor(value.replicationFactor);
    // A topic.json written before topics had a storage describes a disk topic.
    const storage = value.storage === undefined ? 'disk' : validateStorage(value.storage);
    const configInput = value.config as Partial<Record<keyof TopicConfig, unknown>>;
    const config = resolveTopicConfig(
      configInput,
      storage === 'memory' ? memoryTopicBase(this.defaults, configInput) : this.defaults,
    );
    checkReplication(replicationFactor, config);
    checkStorage(storage, config);
    return {
      name: validateTopicName(value.name, { allowInternal: true }),
      id: value.id,
      ...(value.idFromCluster === true ? { idFromCluster: true as const } : {}),
      partitions: validatePartitionCount(value.partitions),
      replicationFactor,
      createdAt: value.createdAt,
      storage,
      config,
    };
  }

  /** The settings a new topic gets where it names none. */
  get defaultConfig(): TopicConfig {
    return this.defaults;
  }

  /** New defaults for topics created from now on (configuration reload); existing topics keep theirs. */
  setDefaults(defaults: TopicConfig, defaultPartitions: number): void {
    this.defaults = defaults;
    this.defaultPartitions = defaultPartitions;
  }

  /** Partitions of a topic created without a count. */
  get defaultPartitionCount(): number {
    return this.defaultPartitions;
  }

  topicDir(name: string): string {
    return join(this.dataDir, 'topics', name);
  }

  partitionDir(name: string, partition: number): string {
    return join(this.topicDir(name), String(partition));
  }

  get(name: string): TopicDescription | undefined {
    return this.topics.get(name);
  }

  /** The topic, or UNKNOWN_TOPIC. */
  require(name: string): TopicDescription {
    const topic = this.topics.get(name);
    if (!topic) throw errorOf('UNKNOWN_TOPIC', JSON.stringify(name));
    return topic;
  }

  list(): TopicDescription[] {
    return [...this.topics.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * A creation request checked as `create` checks it (name, partitions, replication factor, storage,
   * configuration), nothing created: what a cluster's controller is asked for is checked the same way.
   */
  validateNew(
    input: CreateTopicInput,
    options: { internal?: boolean } = {},
  ): Pick<TopicDescription, 'name' | 'partitions' | 'replicationFactor' | 'storage' | 'config'> {
    const name = validateTopicName(input.name, { allowInternal: options.internal === true });
    const partitions = validatePartitionCount(input.partitions ?? this.defaultPartitions);
    const replicationFactor = validateReplicationFactor(input.replicationFactor ?? 1);
    const storage = validateStorage(input.storage ?? 'disk');
    const config = resolveTopicConfig(
      input.config,
      storage === 'memory' ? memoryTopicBase(this.defaults, input.config) : this.defaults,
    );
    checkReplication(replicationFactor, config);
    checkStorage(storage, config);
    return { name, partitions, replicationFactor, storage, config };
  }

  async create(
    input: CreateTopicInput,
    options: {
      internal?: boolean;
      open?: OpenTopicStep;
      /** The topic's id when it is given (a cluster's topic: the controller's); else a new UUID. */
      id?: string;
    } = {},
  ): Promise<TopicDescription> {
    const { name, partitions, replicationFactor, storage, config } = this.validateNew(input, options);
    if (this.topics.has(name) || this.busy.has(name) || this.damaged.has(name))
      throw errorOf('TOPIC_ALREADY_EXISTS', JSON.stringify(name));
    this.busy.add(name);
    const dir = this.topicDir(name);
    try {
      const description: TopicDescription = {
        name,
        id: options.id ?? randomUUID(),
        ...(options.id !== undefined ? { idFromCluster: true as const } : {}),
        partitions,
        replicationFactor,
        createdAt: Date.now(),
        storage,
        config,
      };
      await mkdir(dir, { recursive: true });
      if (storage === 'disk')
        for (let p = 0; p < partitions; p++) await mkdir(join(dir, String(p)), { recursive: true });
      await options.open?.(description, 0);
      await writeFileDurably(join(dir, TOPIC_FILE), `${JSON.stringify(description, null, 2)}\n`);
      await syncDirectory(dir);
      await syncDirectory(join(this.dataDir, 'topics'));
      this.topics.set(name, description);
      return description;
    } catch (error) {
      // Nothing of a failed create stays: the next open would remove a directory without
      // topic.json anyway, and the name must be free at once.
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw error;
    } finally {
      this.busy.delete(name);
    }
  }

  /**
   * The partitions and configuration `input` would give `current`, checked (configuration keys and
   * values, replication, storage; partitions only grow), nothing changed: a cluster checks an
   * alteration the same way before its controller writes it.
   */
  static validateAlteration(
    input: AlterTopicInput,
    current: Pick<TopicDescription, 'partitions' | 'replicationFactor' | 'storage' | 'config'>,
  ): { partitions: number; config: TopicConfig } {
    const config = resolveTopicConfig(input.config, current.config);
    checkReplication(current.replicationFactor, config);
    checkStorage(current.storage, config);
    let partitions = current.partitions;
    if (input.partitions !== undefined) {
      partitions = validatePartitionCount(input.partitions);
      if (partitions < current.partitions) {
        throw errorOf(
          'INVALID_PARTITION_COUNT',
          `partitions=${partitions}: can only grow (now ${current.partitions}); shrinking would move keys`,
        );
      }
    }
    return { partitions, config };
  }

  async alter(input: AlterTopicInput, options: { open?: OpenTopicStep } = {}): Promise<TopicDescription> {
    const current = this.require(input.name);
    if (this.busy.has(current.name))
      throw errorOf('INVALID_REQUEST', `topic ${current.name} is being changed`);
    const { partitions, config } = TopicRegistry.validateAlteration(input, current);
    this.busy.add(current.name);
    const dir = this.topicDir(current.name);
    try {
      if (current.storage === 'disk')
        for (let p = current.partitions; p < partitions; p++)
          await mkdir(join(dir, String(p)), { recursive: true });
      const next: TopicDescription = { ...current, partitions, config };
      await options.open?.(next, current.partitions);
      await writeFileDurably(join(dir, TOPIC_FILE), `${JSON.stringify(next, null, 2)}\n`);
      await syncDirectory(dir);
      this.topics.set(current.name, next);
      return next;
    } catch (error) {
      // The added partitions go again; the topic stays as it was.
      for (let p = current.partitions; p < partitions; p++)
        await rm(join(dir, String(p)), { recursive: true, force: true }).catch(() => undefined);
      throw error;
    } finally {
      this.busy.delete(current.name);
    }
  }

  /**
   * Removes the topic from the registry and moves its directory to trash/ in one rename, so a crash
   * never leaves half a topic behind. The caller closes the partition logs first.
   */
  async delete(name: string): Promise<TopicDescription | null> {
    if (!this.topics.has(name) && this.damaged.has(name) && !this.busy.has(name)) {
      // A topic set aside at open: its directory goes to trash like any other.
      this.busy.add(name);
      try {
        const trashDir = join(this.dataDir, 'trash', `${name}.${randomUUID()}`);
        await rename(this.topicDir(name), trashDir);
        await syncDirectory(join(this.dataDir, 'topics'));
        this.damaged.delete(name);
        await rm(trashDir, { recursive: true, force: true });
        return null;
      } finally {
        this.busy.delete(name);
      }
    }
    const current = this.require(name);
    if (this.busy.has(name)) throw errorOf('INVALID_REQUEST', `topic ${name} is being changed`);
    this.busy.add(name);
    try {
      // Unique: a cluster member's copy keeps the cluster's id, so the same topic can come and go
      // here more than once.
      const trashDir = join(this.dataDir, 'trash', `${name}.${current.id}.${randomUUID()}`);
      await rename(this.topicDir(name), trashDir);
      await syncDirectory(join(this.dataDir, 'topics'));
      this.topics.delete(name);
      await rm(trashDir, { recursive: true, force: true });
      return current;
    } finally {
      this.busy.delete(name);
    }
  }
}
