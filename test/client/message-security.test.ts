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
import { Broker } from '../../src/embedded/broker.js';
import { useTempDir } from '../harness/temp-dir.js';

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

const producer_ = {
  sign: { keyId: 'svc-1', privateKey: signer.privateKey },
  encrypt: { current: 'k1', keys: { k1 } },
};
const consumer_ = {
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
    const sealed = sealMessage(original, producer_);
    expect(sealed.key).toEqual(original.key); // keys stay clear: partitioning and streams work
    expect(sealed.value!.includes(Buffer.from('amount'))).toBe(false);
    expect(sealed.headers.map((h) => h.key)).toEqual(['source', 'ms-enc', 'ms-sig-key', 'ms-sig']);
    const opened = openMessage(sealed, consumer_);
    expect(opened.value).toEqual(original.value);
    expect(opened.headers.map((h) => h.key)).toEqual(['source', 'ms-sig-key', 'ms-sig']);
    // Two seals of one message differ (random IV) and both open.
    expect(sealMessage(original, producer_).value).not.toEqual(sealed.value);
  });

  it('compresses before it encrypts when asked', () => {
    const plain = sealMessage(original, { encrypt: producer_.encrypt });
    const compressed = sealMessage(original, { encrypt: producer_.encrypt, compression: 'gzip' });
    expect(compressed.value!.length).toBeLessThan(plain.value!.length / 2);
    expect(openMessage(compressed, { decrypt: { k1 } }).value).toEqual(original.value);
  });

  it('refuses every change to a sealed message', () => {
    const sealed = sealMessage(original, producer_);
    const flipped = Buffer.from(sealed.value!);
    flipped[20]! ^= 1;
    expect(codeOf(() => openMessage({ ...sealed, value: flipped }, consumer_))).toBe(
      'MESSAGE_SIGNATURE_INVALID',
    );
    expect(codeOf(() => openMessage({ ...sealed, key: Buffer.from('acct-8') }, consumer_))).toBe(
      'MESSAGE_SIGNATURE_INVALID',
    );
    expect(codeOf(() => openMessage({ ...sealed, topic: 'refunds' }, consumer_))).toBe(
      'MESSAGE_SIGNATURE_INVALID',
    );
    const headers = sealed.headers.map((h) =>
      h.key === 'source' ? { key: 'source', value: Buffer.from('api') } : h,
    );
    expect(codeOf(() => openMessage({ ...sealed, headers }, consumer_))).toBe('MESSAGE_SIGNATURE_INVALID');
    // Without a signature, GCM itself refuses a changed value, key or topic.
    const encrypted = sealMessage(original, { encrypt: producer_.encrypt });
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
    const unsigned = sealMessage(original, { encrypt: producer_.encrypt });
    expect(codeOf(() => openMessage(unsigned, consumer_))).toBe('MESSAGE_UNSIGNED');
    expect(
      openMessage(unsigned, { ...consumer_, verify: { publicKeys: consumer_.verify.publicKeys } }).value,
    ).toEqual(original.value);
    const byOther = sealMessage(original, { sign: { keyId: 'svc-2', privateKey: other.privateKey } });
    expect(codeOf(() => openMessage(byOther, consumer_))).toBe('UNKNOWN_MESSAGE_KEY');
    // A key id the consumer knows, with the wrong key behind it: the signature fails.
    const impostor = sealMessage(original, { sign: { keyId: 'svc-1', privateKey: other.privateKey } });
    expect(codeOf(() => openMessage(impostor, consumer_))).toBe('MESSAGE_SIGNATURE_INVALID');
    expect(codeOf(() => openMessage(sealMessage(original, producer_), { decrypt: { k2 } }))).toBe(
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
    const sealed = sealMessage(original, producer_);
    expect(openMessage(sealed, {})).toBe(sealed);
    const tombstone = sealMessage({ ...original, value: null }, producer_);
    expect(tombstone.value).toBeNull();
    expect(openMessage(tombstone, { verify: consumer_.verify }).value).toBeNull();
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
    expect(checkProducerSecurity(producer_)).toBeUndefined();
  });
});

describe('message security through a broker', () => {
  const dir = useTempDir('ms-msgsec-');

  it('a consumer with the keys reads the plaintext; the broker holds only ciphertext; tampered messages are skipped and reported', async () => {
    const broker = await Broker.start({ dataDir: dir.path });
    const client = broker.connect();
    try {
      await client.admin.createTopic({ name: 'payments', partitions: 1 });
      const producer = client.producer({ security: producer_, compression: 'lz4' });
      await producer.send({
        topic: 'payments',
        key: 'acct-7',
        value: 'secret-1',
        headers: { source: 'web' },
      });
      // An unsigned message written by someone without the keys: refused by a consumer that requires signatures.
      await client.producer().send({ topic: 'payments', key: 'acct-7', value: 'forged' });
      await producer.send({ topic: 'payments', key: 'acct-7', value: 'secret-2' });
      await producer.flush();

      // What the broker stores: no plaintext.
      const stored = await broker.core.partition('payments', 0).log.read(0n, 1 << 20);
      expect(stored.data.includes(Buffer.from('secret-1'))).toBe(false);

      const refused: string[] = [];
      const consumer = client.consumer({
        topics: ['payments'],
        security: consumer_,
        onRefusedMessage: (event) => refused.push(`${event.message.offset}:${event.error.codeName}`),
      });
      const values: string[] = [];
      while (values.length < 2) {
        const message = await consumer.next();
        if (message !== null) values.push(`${message.offset}:${message.value!.toString()}`);
      }
      await consumer.close();
      expect(values).toEqual(['0:secret-1', '2:secret-2']);
      expect(refused).toEqual(['1:MESSAGE_UNSIGNED']);
    } finally {
      await client.close();
      await broker.stop();
    }
  });
});
