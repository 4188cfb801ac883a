// Client-side message security: what a producer seals, a consumer with the right keys opens to the
// original; every change to what was sealed is refused with its own code; keys rotate.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkProducerSecurity,
  openMessage,
  type SealableMessage,
  sealMessage,
} from '../../src/client/message-security.js';

const signer = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const k1 = randomBytes(32);
const k2 = randomBytes(32);

const original: SealableMessage = {
  topic: 'payments',
  key: Buffer.from('acct-7'),
  value: Buffer.from(JSON.stringify({ amount: 125, note: 'x'.repeat(500) })),
  headers: [{ key: 'source', value: Buffer.from('web') }],
};

const producer = {
  sign: { keyId: 'svc-1', privateKey: signer.privateKey },
  encrypt: { current: 'k1', keys: { k1 } },
};
const consumer = {
  verify: { publicKeys: { 'svc-1': signer.publicKey }, require: true },
  decrypt: { k1, k2 },
};

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
    return undefined;
  } catch (error) {
    return (error as { codeName?: string }).codeName;
  }
}

describe('message security', () => {
  it('seals (encrypt, then sign) and opens back to the original', () => {
    const sealed = sealMessage(original, producer);
    expect(sealed.key).toEqual(original.key); // keys stay clear: partitioning and streams work
    expect(sealed.value!.includes(Buffer.from('amount'))).toBe(false);
    expect(sealed.headers.map((h) => h.key)).toEqual(['source', 'ms-enc', 'ms-sig-key', 'ms-sig']);
    const opened = openMessage(sealed, consumer);
    expect(opened.value).toEqual(original.value);
    expect(opened.headers.map((h) => h.key)).toEqual(['source', 'ms-sig-key', 'ms-sig']);
    // Two seals of one message differ (random IV) and both open.
    expect(sealMessage(original, producer).value).not.toEqual(sealed.value);
  });

  it('compresses before it encrypts when asked', () => {
    const plain = sealMessage(original, { encrypt: producer.encrypt });
    const compressed = sealMessage(original, { encrypt: producer.encrypt, compression: 'gzip' });
    expect(compressed.value!.length).toBeLessThan(plain.value!.length / 2);
    expect(openMessage(compressed, { decrypt: { k1 } }).value).toEqual(original.value);
  });

  it('refuses every change to a sealed message', () => {
    const sealed = sealMessage(original, producer);
    const flipped = Buffer.from(sealed.value!);
    flipped[20]! ^= 1;
    expect(codeOf(() => openMessage({ ...sealed, value: flipped }, consumer))).toBe(
      'MESSAGE_SIGNATURE_INVALID',
    );
    expect(codeOf(() => openMessage({ ...sealed, key: Buffer.from('acct-8') }, consumer))).toBe(
      'MESSAGE_SIGNATURE_INVALID',
    );
    expect(codeOf(() => openMessage({ ...sealed, topic: 'refunds' }, consumer))).toBe(
      'MESSAGE_SIGNATURE_INVALID',
    );
    const headers = sealed.headers.map((h) =>
      h.key === 'source' ? { key: 'source', value: Buffer.from('api') } : h,
    );
    expect(codeOf(() => openMessage({ ...sealed, headers }, consumer))).toBe('MESSAGE_SIGNATURE_INVALID');
    // Without a signature, GCM itself refuses a changed value, key or topic.
    const encrypted = sealMessage(original, { encrypt: producer.encrypt });
    const changed = Buffer.from(encrypted.value!);
    changed[changed.length - 1]! ^= 1;
    expect(codeOf(() => openMessage({ ...encrypted, value: changed }, { decrypt: { k1 } }))).toBe(
      'MESSAGE_DECRYPTION_FAILED',
    );
    expect(codeOf(() => openMessage({ ...encrypted, key: Buffer.from('acct-8') }, { decrypt: { k1 } }))).toBe(
      'MESSAGE_DECRYPTION_FAILED',
    );
    expect(codeOf(() => openMessage(encrypted, { decrypt: { k1: k2 } }))).toBe('MESSAGE_DECRYPTION_FAILED');
  });

  it('refuses unsigned messages only when told to, and unknown keys always', () => {
    const unsigned = sealMessage(original, { encrypt: producer.encrypt });
    expect(codeOf(() => openMessage(unsigned, consumer))).toBe('MESSAGE_UNSIGNED');
    expect(
      openMessage(unsigned, { ...consumer, verify: { publicKeys: consumer.verify.publicKeys } }).value,
    ).toEqual(original.value);
    const byOther = sealMessage(original, { sign: { keyId: 'svc-2', privateKey: other.privateKey } });
    expect(codeOf(() => openMessage(byOther, consumer))).toBe('UNKNOWN_MESSAGE_KEY');
    // A key id the consumer knows, with the wrong key behind it: the signature fails.
    const impostor = sealMessage(original, { sign: { keyId: 'svc-1', privateKey: other.privateKey } });
    expect(codeOf(() => openMessage(impostor, consumer))).toBe('MESSAGE_SIGNATURE_INVALID');
    expect(codeOf(() => openMessage(sealMessage(original, producer), { decrypt: { k2 } }))).toBe(
      'UNKNOWN_MESSAGE_KEY',
    );
  });

  it('rotates keys: new messages use the current key, old ones still open', () => {
    const before = sealMessage(original, { encrypt: { current: 'k1', keys: { k1 } } });
    const after = sealMessage(original, { encrypt: { current: 'k2', keys: { k1, k2 } } });
    expect(after.headers.find((h) => h.key === 'ms-enc')!.value!.toString()).toBe('1:k2:none');
    for (const sealed of [before, after])
      expect(openMessage(sealed, { decrypt: { k1, k2 } }).value).toEqual(original.value);
  });

  it('passes messages through untouched for a consumer without keys, and tombstones stay null', () => {
    const sealed = sealMessage(original, producer);
    expect(openMessage(sealed, {})).toBe(sealed);
    const tombstone = sealMessage({ ...original, value: null }, producer);
    expect(tombstone.value).toBeNull();
    expect(openMessage(tombstone, { verify: consumer.verify }).value).toBeNull();
  });

  it('checks producer options up front', () => {
    expect(codeOf(() => checkProducerSecurity({ encrypt: { current: 'k9', keys: { k1 } } }))).toBe(
      'UNKNOWN_MESSAGE_KEY',
    );
    expect(
      codeOf(() => checkProducerSecurity({ encrypt: { current: 'k1', keys: { k1: k1.subarray(0, 16) } } })),
    ).toBe('INVALID_REQUEST');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(codeOf(() => checkProducerSecurity({ sign: { keyId: 'r', privateKey: rsa.privateKey } }))).toBe(
      'INVALID_REQUEST',
    );
    expect(
      codeOf(() => checkProducerSecurity({ sign: { keyId: 'bad id', privateKey: signer.privateKey } })),
    ).toBe('INVALID_REQUEST');
    expect(checkProducerSecurity(producer)).toBeUndefined();
  });
});
