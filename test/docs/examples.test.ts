import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { quickstart } from '../../examples/quickstart.js';

describe('documented examples', () => {
  it('runs the quickstart example and the docs show it verbatim', async () => {
    const seen = await quickstart();
    expect(seen).toEqual([
      'order-1 #0: 3',
      'order-1 #1: 4',
      'stream seq 0: {"total":3}',
      'stream seq 1: {"total":4}',
      'topics over TCP: orders',
      'first receipt at offset 0, sequence 0',
    ]);
    const source = readFileSync(new URL('../../examples/quickstart.ts', import.meta.url), 'utf8');
    const example = source.split('// --- example start ---\n')[1]!.split('  // --- example end ---')[0]!;
    const dedented = example
      .split('\n')
      .map((line) => line.replace(/^ {2}/, ''))
      .join('\n')
      .trim();
    const doc = readFileSync(new URL('../../docs/client.md', import.meta.url), 'utf8');
    expect(doc).toContain(dedented);
  });
});
