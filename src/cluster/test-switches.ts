// Deliberately broken replication rules, for the fault battery only (scripts/chaos, docs/chaos.md):
// the battery proves its checks can fail by running brokers with one of these switched on and
// showing that it catches each. A broker never turns one on by itself: only the environment
// variable MS_FAULT_SWITCH does, read once when this module loads, and a broker with
// one on says so on stderr. (Not a MEMORYSTREAMER_* name: those are broker settings, and the
// configuration refuses one it does not know.) An unknown name is refused (INVALID_CONFIG) so a typo cannot pass for
// a correct build.

import { errorOf } from '../protocol/error-codes.js';

export const FAULT_SWITCH_ENV = 'MS_FAULT_SWITCH';

export const FAULT_SWITCHES = [
  /** The leader acknowledges an `acks: 'all'` produce as soon as it is in its own log. */
  'ack-before-isr',
  /** A follower truncates to its high watermark instead of where its epochs and the leader's part. */
  'truncate-to-high-watermark',
  /** The controller elects the first live replica, in the ISR or not, without calling it unclean. */
  'elect-outside-isr',
] as const;

export type FaultSwitch = (typeof FAULT_SWITCHES)[number];

function parse(value: string | undefined): FaultSwitch | null {
  if (value === undefined || value === '') return null;
  const known = FAULT_SWITCHES.find((name) => name === value);
  if (known === undefined)
    throw errorOf('INVALID_CONFIG', `${FAULT_SWITCH_ENV}=${value}: one of ${FAULT_SWITCHES.join(', ')}`);
  return known;
}

const active = parse(process.env[FAULT_SWITCH_ENV]);
if (active !== null)
  process.emitWarning(
    `${FAULT_SWITCH_ENV}=${active}: this broker is deliberately broken (fault battery only)`,
  );

/** Is this deliberately broken rule switched on in this process? */
export function faultSwitchOn(name: FaultSwitch): boolean {
  return active === name;
}
