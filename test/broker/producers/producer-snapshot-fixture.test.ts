// On-disk format fixture for producer snapshots: test/fixtures/producers/v1/ holds a snapshot file
// written once by scripts/producer-snapshot-fixture.ts. Every later version must read it to the same
// table, and the current encoder must still write the very same bytes, so that a format change is
// noticed and made deliberately (a new version and a new fixture).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_FILE, FIXTURE_SNAPSHOT } from '../../../scripts/producer-snapshot-fixture.js';
import { decodeSnapshot, encodeSnapshot } from '../../../src/broker/producers/producer-snapshot.js';

const fixturePath = join(import.meta.dirname, '..', '..', 'fixtures', 'producers', 'v1', FIXTURE_FILE);

describe('producer snapshot format fixture (v1)', () => {
  it('reads the committed file to the same table', async () => {
    expect(decodeSnapshot(await readFile(fixturePath))).toEqual(FIXTURE_SNAPSHOT);
  });

  it('still writes the very same bytes', async () => {
    expect(encodeSnapshot(FIXTURE_SNAPSHOT).equals(await readFile(fixturePath))).toBe(true);
  });
});
