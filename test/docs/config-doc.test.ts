import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderConfigDoc } from '../../scripts/config-doc-render.js';

describe('docs/configuration.md', () => {
  it('matches the settings table', () => {
    expect(readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')).toBe(
      renderConfigDoc(),
    );
  });
});
