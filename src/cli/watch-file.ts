// Watches one file for changes. inotify (fs.watch) is preferred because it is immediate, but it
// is not always there: containers exhaust `fs.inotify.max_user_watches` (ENOSPC), some network and
// overlay file systems never deliver events, and an editor that replaces the file ends the watch.
// In each of those cases this falls back to polling the file's mtime and size, so a configuration
// reload on file change keeps working, only later.
import { type FSWatcher, type Stats, type StatWatcher, unwatchFile, watch, watchFile } from 'node:fs';

export interface FileWatch {
  /** 'inotify' while fs.watch delivers events, 'polling' after falling back. */
  readonly mode: 'inotify' | 'polling';
  close(): void;
}

export interface WatchFileOptions {
  /** How often the fallback polls, in milliseconds. */
  pollIntervalMs?: number;
  /** Told once when inotify is not usable and polling takes over. */
  onFallback?: (reason: string) => void;
  /** Tests set this to start with polling. */
  forcePolling?: boolean;
}

export function watchFileChanges(
  path: string,
  onChange: () => void,
  options: WatchFileOptions = {},
): FileWatch {
  const interval = options.pollIntervalMs ?? 1000;
  let watcher: FSWatcher | null = null;
  let poller: StatWatcher | null = null;
  let closed = false;
  let mode: 'inotify' | 'polling' = 'inotify';

  const listener = (now: Stats, before: Stats) => {
    if (now.mtimeMs !== before.mtimeMs || now.size !== before.size) onChange();
  };
  const poll = (reason: string) => {
    if (closed || poller !== null) return;
    watcher?.close();
    watcher = null;
    mode = 'polling';
    options.onFallback?.(reason);
    poller = watchFile(path, { interval, persistent: false }, listener);
  };

  if (options.forcePolling === true) poll('polling requested');
  else {
    try {
      watcher = watch(path, { persistent: false }, (event) => {
        onChange();
        // A rename means the file was replaced (editors write a new file and move it into
        // place); this watch follows the old inode, so keep watching by path from now on.
        if (event === 'rename') poll('the file was replaced');
      });
      watcher.on('error', (error) => poll(error.message));
    } catch (error) {
      poll((error as Error).message);
    }
  }

  return {
    get mode() {
      return mode;
    },
    close() {
      closed = true;
      watcher?.close();
      // With the listener: other watchers of the same path in this process keep theirs.
      if (poller !== null) unwatchFile(path, listener);
    },
  };
}
