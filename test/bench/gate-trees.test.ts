// The regression gate measures each commit's src/ and package.json: two commits that hold the same
// ones (a change to documents or tests only) measure the same code, and the gate passes them
// without measuring; commits whose code differs are measured.
import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { sameMeasuredTrees } from '../../bench/ab/rounds.js';

it('tells commits with the same src/ and package.json from commits whose code differs', () => {
  expect(sameMeasuredTrees('HEAD', 'HEAD')).toBe(true);
  const first = execFileSync('git', ['rev-list', '--max-parents=0', 'HEAD'], { encoding: 'utf8' })
    .trim()
    .split('\n')[0]!;
  expect(sameMeasuredTrees(first, 'HEAD')).toBe(false);
  expect(() => sameMeasuredTrees('no-such-commit', 'HEAD')).toThrow(/not a commit/);
});
