// Writes docs/configuration.md from the settings table. Run: npx tsx scripts/config-doc.ts
import { writeFileSync } from 'node:fs';
import { renderConfigDoc } from './config-doc-render.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigDoc());
