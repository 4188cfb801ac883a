// The [auth] token_* settings of a broker configuration turned into TokenSettings (key files
// resolved like every path of the configuration: relative to its file), and the algorithms a token
// may be signed with (here, not in token-verifier.ts, so that the configuration schema can name
// them without loading jose).

import type { TokenSettings } from './token-verifier.js';

/** Every signature algorithm a token may use: asymmetric only (HMAC and `none` never are). */
export const TOKEN_ALGORITHMS = [
  'EdDSA',
  'Ed25519',
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
] as const;
export type TokenAlgorithm = (typeof TOKEN_ALGORITHMS)[number];

export function tokenSettingsFrom(
  values: Readonly<Record<string, unknown>>,
  resolvePath: (path: string) => string,
): TokenSettings {
  const text = (key: string) => String(values[key] ?? '');
  const path = (key: string) => (text(key) === '' ? undefined : resolvePath(text(key)));
  const pem = path('auth.token_public_key_file');
  const jwks = path('auth.token_jwks_file');
  const algorithms = text('auth.token_algorithms')
    .split(',')
    .filter((a) => a !== '');
  return {
    ...(pem !== undefined ? { publicKeyFile: pem } : {}),
    ...(jwks !== undefined ? { jwksFile: jwks } : {}),
    issuer: text('auth.token_issuer'),
    audience: text('auth.token_audience'),
    principalClaim: text('auth.token_principal_claim'),
    ...(algorithms.length > 0 ? { algorithms } : {}),
    clockToleranceMs: Number(values['auth.token_clock_tolerance'] ?? 0),
  };
}
