// Runs log compaction over the partitions of `cleanup: compact` topics: on the broker's maintenance
// timer for partitions whose dirty ratio reached the threshold, or on demand (all of them). One run
// at a time; partitions one after another, so compaction's disk and CPU use stays one partition's.
// The work itself is PartitionLog.compact (src/storage/log-cleaner.ts).

import type { BrokerMetrics } from '../metrics/broker-metrics.js';
import type { BrokerLogger } from '../metrics/logger.js';
import type { CompactionReport } from '../storage/log-cleaner.js';
import type { Partition } from './partitions/partition.js';

export interface CompactionSettings {
  /** Compact a partition once this share of its sealed bytes is not yet cleaned (0..1). */
  minCleanableDirtyRatio: number;
  /** Tombstones older than this (record timestamp, ms) are dropped. */
  deleteRetentionMs: number;
  /** Sealed segments holding a record newer than this (ms) wait. */
  minCompactionLagMs: number;
  /** Keys in one pass's offset map (memory bound). */
  maxMapEntries: number;
}

export const DEFAULT_COMPACTION_SETTINGS: CompactionSettings = {
  minCleanableDirtyRatio: 0.5,
  deleteRetentionMs: 24 * 3600 * 1000,
  minCompactionLagMs: 0,
  maxMapEntries: 1_000_000,
};

export interface PartitionCompaction extends CompactionReport {
  topic: string;
  partition: number;
}

export class CompactionScheduler {
  private running: Promise<PartitionCompaction[]> | null = null;

  constructor(
    private readonly deps: {
      settings: CompactionSettings;
      maxDecompressedBytes: number;
      /** Partitions of compacted topics (or of `topic` only), now. */
      compactedPartitions: (topic?: string) => Partition[];
      metrics: BrokerMetrics;
      logger: BrokerLogger;
    },
  ) {}

  /**
   * Compacts the partitions that are due (dirty ratio ≥ minCleanableDirtyRatio), or every
   * partition of compacted topics with `force`. A call while a run is going on waits for that run
   * and then starts its own.
   */
  async run(options: { topic?: string; force?: boolean } = {}): Promise<PartitionCompaction[]> {
    while (this.running !== null) await this.running.catch(() => undefined);
    this.running = this.compactAll(options).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async compactAll(options: { topic?: string; force?: boolean }): Promise<PartitionCompaction[]> {
    const { settings, logger, metrics } = this.deps;
    const reports: PartitionCompaction[] = [];
    for (const partition of this.deps.compactedPartitions(options.topic)) {
      const log = partition.log;
      if (log.state !== 'open') continue;
      if (!options.force && (log.segmentCount < 2 || log.dirtyRatio < settings.minCleanableDirtyRatio))
        continue;
      const where = { topic: partition.topic, partition: partition.index };
      try {
        const report = await log.compact({
          deleteRetentionMs: settings.deleteRetentionMs,
          minCompactionLagMs: settings.minCompactionLagMs,
          maxMapEntries: settings.maxMapEntries,
          maxDecompressedBytes: this.deps.maxDecompressedBytes,
        });
        metrics.recordCompaction(report.bytesBefore, report.bytesAfter, report.recordsRemoved);
        if (report.segmentsCleaned > 0)
          logger.info(
            {
              ...where,
              segments: report.segmentsCleaned,
              removedSegments: report.segmentsRemoved,
              bytesBefore: report.bytesBefore,
              bytesAfter: report.bytesAfter,
              records: report.recordsRemoved,
              tombstones: report.tombstonesRemoved,
            },
            'compacted',
          );
        reports.push({ ...report, ...where });
      } catch (error) {
        // A partition closed or deleted meanwhile, or a disk problem: the log is unchanged (every
        // swap is atomic) and the next run retries.
        logger.warn({ ...where, error: (error as Error).message }, 'compaction failed');
      }
    }
    return reports;
  }
}
