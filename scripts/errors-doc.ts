// Writes docs/errors.md from the error table (src/protocol/error-codes.ts). A test fails when the
// committed file differs from what this script produces, so table and docs cannot drift apart.
// Run: npx tsx scripts/errors-doc.ts
import { writeFileSync } from 'node:fs';
import { renderErrorsDoc } from './errors-doc-render.js';

writeFileSync(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
