import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderErrorsDoc } from '../../scripts/errors-doc-render.js';
import { ERROR_TABLE, errorFromWire } from '../../src/protocol/error-codes.js';

describe('docs/errors.md', () => {
  it('lists exactly the codes of the error table', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    expect(doc).toBe(renderErrorsDoc());
    for (const [name, entry] of Object.entries(ERROR_TABLE)) {
      expect(doc).toContain(`| ${entry.code} | \`${name}\` | ${entry.retriable ? 'yes' : 'no'} |`);
      // The client maps every documented code back to the same name.
      expect(errorFromWire(entry.code).codeName).toBe(name);
    }
  });
});
