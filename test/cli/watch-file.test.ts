import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { watchFileChanges } from '../../src/cli/watch-file.js';
import { useTempDir } from '../harness/temp-dir.js';
import { until } from '../harness/until.js';

describe('watchFileChanges', () => {
  const scratch = useTempDir('ms-watch-');
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = scratch.path;
    file = join(dir, 'config.toml');
    await writeFile(file, 'a = 1\n');
  });

  it('reports a write through inotify', async () => {
    let changes = 0;
    const watch = watchFileChanges(file, () => changes++);
    try {
      expect(watch.mode).toBe('inotify');
      await writeFile(file, 'a = 2\n');
      await until(() => changes > 0, { what: 'a change event' });
    } finally {
      watch.close();
    }
  });

  it('falls back to polling when told to, and still reports writes', async () => {
    let changes = 0;
    const reasons: string[] = [];
    const watch = watchFileChanges(file, () => changes++, {
      forcePolling: true,
      pollIntervalMs: 20,
      onFallback: (reason) => reasons.push(reason),
    });
    try {
      expect(watch.mode).toBe('polling');
      expect(reasons).toEqual(['polling requested']);
      await new Promise((r) => setTimeout(r, 60));
      await writeFile(file, 'a = 22222\n');
      await until(() => changes > 0, { what: 'a polled change' });
    } finally {
      watch.close();
    }
  });

  it('keeps following the path after an editor replaces the file', async () => {
    let changes = 0;
    const reasons: string[] = [];
    const watch = watchFileChanges(file, () => changes++, {
      pollIntervalMs: 20,
      onFallback: (reason) => reasons.push(reason),
    });
    try {
      const replacement = join(dir, 'config.toml.new');
      await writeFile(replacement, 'a = 3\n');
      await rename(replacement, file);
      await until(() => watch.mode === 'polling', { what: 'the switch to polling' });
      expect(reasons).toEqual(['the file was replaced']);
      const before = changes;
      await new Promise((r) => setTimeout(r, 60));
      await writeFile(file, 'a = 4444\n');
      await until(() => changes > before, { what: 'a change after the replacement' });
    } finally {
      watch.close();
    }
  });

  it('falls back to polling when the file cannot be watched yet', async () => {
    const missing = join(dir, 'later.toml');
    let changes = 0;
    const watch = watchFileChanges(missing, () => changes++, { pollIntervalMs: 20 });
    try {
      expect(watch.mode).toBe('polling');
      await new Promise((r) => setTimeout(r, 60));
      await writeFile(missing, 'b = 1\n');
      await until(() => changes > 0, { what: 'the file to appear' });
    } finally {
      watch.close();
    }
  });
});
