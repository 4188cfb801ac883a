// Where the access control entries live. One interface: a cluster keeps them in etcd
// (etcd-acl-store.ts); one node in a file of its data directory, changed by the broker (over the wire) and by
// `memorystreamer acl --data-dir` offline. Every change re-reads the file first (read, change,
// write), so offline and broker changes do not undo each other; the broker reads it again when it
// changed (refresh).
//
// Layout of <dataDir>/acls.json (mode 0600), written to acls.json.<pid>.tmp, fsynced, renamed over
// the old file, then the directory fsynced:
//   { "version": 1,
//     "acls": [ { "principal": "User:alice" | "*", "resourceType": "topic", "resourceName": "orders",
//                 "pattern": "literal" | "prefix", "operation": "write", "permission": "allow" } ] }

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorOf } from '../protocol/error-codes.js';
import { type AclEntry, aclKey, checkAclEntry } from './acl.js';
import { fileStamp, replaceFileDurably } from './durable-file.js';

export const ACLS_FILE = 'acls.json';

export type AclChange = { kind: 'add' | 'remove'; entries: readonly AclEntry[] };

export interface AclStore {
  /** Where the entries are kept, for messages. */
  readonly location: string;
  /** The command that adds an entry to this store offline (for the message of a refused start). */
  readonly addCommand: string;
  /** The entries as last read or written. */
  list(): readonly AclEntry[];
  /**
   * Adds entries (those already there are kept once) or removes them (ACL_NOT_FOUND when none of
   * them is there); durable when it resolves. Returns how many entries changed.
   */
  change(change: AclChange): Promise<number>;
  /** Reads the entries again if they changed elsewhere; true when they did. */
  refresh(): Promise<boolean>;
  /**
   * Calls `listener` whenever the entries changed (a store that learns of changes by itself, as
   * etcd's watch does); returns what stops it. A store without it is asked with refresh().
   */
  onChange?(listener: () => void): () => void;
  /** Lets go of what the store holds open (an etcd connection). */
  close(): Promise<void>;
}

function fileProblem(path: string, detail: string) {
  return errorOf('INVALID_CONFIG', `ACL file ${path}: ${detail}`);
}

function parse(path: string, text: string): AclEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw fileProblem(path, `not JSON (${(error as Error).message})`);
  }
  const root = json as { version?: unknown; acls?: unknown };
  if (root === null || typeof root !== 'object' || root.version !== 1 || !Array.isArray(root.acls))
    throw fileProblem(path, 'expected {"version": 1, "acls": [...]}');
  return root.acls.map((raw, i) => {
    try {
      return checkAclEntry(raw as AclEntry);
    } catch (error) {
      throw fileProblem(path, `entry ${i}: ${(error as Error).message}`);
    }
  });
}

export class FileAclStore implements AclStore {
  readonly location: string;
  readonly addCommand: string;
  private entries: readonly AclEntry[];
  /** mtime, size and inode of the file read (null: no file). */
  private stamp: string | null;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(dataDir: string, entries: readonly AclEntry[], stamp: string | null) {
    this.location = join(dataDir, ACLS_FILE);
    this.addCommand = `memorystreamer acl add --principal User:alice --topic orders --operation write --data-dir ${dataDir}`;
    this.entries = entries;
    this.stamp = stamp;
  }

  /** The entries of a data directory (none when the file does not exist). */
  static async open(dataDir: string): Promise<FileAclStore> {
    const path = join(dataDir, ACLS_FILE);
    const { entries, stamp } = await FileAclStore.read(path);
    return new FileAclStore(dataDir, entries, stamp);
  }

  private static async read(path: string): Promise<{ entries: AclEntry[]; stamp: string | null }> {
    const stamp = await fileStamp(path, (detail) => fileProblem(path, detail));
    if (stamp === null) return { entries: [], stamp };
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      throw fileProblem(path, (error as Error).message);
    }
    return { entries: parse(path, text), stamp };
  }

  list(): readonly AclEntry[] {
    return this.entries;
  }

  async refresh(): Promise<boolean> {
    const stamp = await fileStamp(this.location, (detail) => fileProblem(this.location, detail));
    if (stamp === this.stamp) return false;
    const read = await FileAclStore.read(this.location);
    this.entries = read.entries;
    this.stamp = read.stamp;
    return true;
  }

  /** Nothing is held open between reads and writes. */
  async close(): Promise<void> {}

  change(change: AclChange): Promise<number> {
    const run = this.queue.then(() => this.apply(change));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async apply(change: AclChange): Promise<number> {
    const wanted = change.entries.map(checkAclEntry);
    if (wanted.length === 0) throw errorOf('INVALID_ACL', 'no entry given');
    const current = (await FileAclStore.read(this.location)).entries;
    const byKey = new Map(current.map((e) => [aclKey(e), e]));
    let changed = 0;
    for (const entry of wanted) {
      const key = aclKey(entry);
      if (change.kind === 'add' && !byKey.has(key)) {
        byKey.set(key, entry);
        changed++;
      } else if (change.kind === 'remove' && byKey.delete(key)) changed++;
    }
    if (change.kind === 'remove' && changed === 0)
      throw errorOf('ACL_NOT_FOUND', `none of the ${wanted.length} entries given is in ${this.location}`);
    const next = [...byKey.values()];
    await replaceFileDurably(this.location, `${JSON.stringify({ version: 1, acls: next }, null, 2)}\n`);
    this.entries = next;
    this.stamp = await fileStamp(this.location, (detail) => fileProblem(this.location, detail));
    return changed;
  }
}
