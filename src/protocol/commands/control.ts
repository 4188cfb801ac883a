// Control payloads: handshake, ping, goaway, throttle, credit and error. Layouts (little-endian):
//
// HANDSHAKE request   minVersion u8 | maxVersion u8 | features u32 | clientId string(u16 len)
// HANDSHAKE response  version u8 | features u32 | serverId string | maxPayloadBytes u32 |
//                     maxControlPayloadBytes u32
// PING request        empty; response empty (the header timestamp carries the time)
// GOAWAY (push)       reasonCode u16 | deadlineMs u32 | message string
// THROTTLE (push)     throttleMs u32 | reason string
// CREDIT request      channel id in the header; bytes u32 (added to the channel's credit)
// ERROR response      message string; the code is in the header's errorCode, flags RESPONSE|ERROR

import { BinaryReader } from '../codec/binary-reader.js';
import { BinaryWriter } from '../codec/binary-writer.js';
import { Opcode } from '../opcodes.js';
import { defineCommand } from './command.js';

/** Feature bits a peer may announce in the handshake. */
export const Features = {
  PUSH_SUBSCRIPTIONS: 1 << 0,
  COMPRESSION: 1 << 1,
  IDEMPOTENCE: 1 << 2,
  STREAMS: 1 << 3,
} as const;
export const ALL_FEATURES =
  Features.PUSH_SUBSCRIPTIONS | Features.COMPRESSION | Features.IDEMPOTENCE | Features.STREAMS;

export interface HandshakeRequest {
  minVersion: number;
  maxVersion: number;
  features: number;
  clientId: string;
}

export interface HandshakeResponse {
  version: number;
  features: number;
  serverId: string;
  maxPayloadBytes: number;
  maxControlPayloadBytes: number;
}

export const handshakeCommand = defineCommand<HandshakeRequest, HandshakeResponse>({
  opcode: Opcode.HANDSHAKE,
  encodeRequest: (w, r) => w.u8(r.minVersion).u8(r.maxVersion).u32(r.features).string(r.clientId),
  decodeRequest: (r) => ({ minVersion: r.u8(), maxVersion: r.u8(), features: r.u32(), clientId: r.string() }),
  encodeResponse: (w, r) =>
    w.u8(r.version).u32(r.features).string(r.serverId).u32(r.maxPayloadBytes).u32(r.maxControlPayloadBytes),
  decodeResponse: (r) => ({
    version: r.u8(),
    features: r.u32(),
    serverId: r.string(),
    maxPayloadBytes: r.u32(),
    maxControlPayloadBytes: r.u32(),
  }),
});

export const pingCommand = defineCommand<Record<string, never>, Record<string, never>>({
  opcode: Opcode.PING,
  encodeRequest: () => undefined,
  decodeRequest: () => ({}),
  encodeResponse: () => undefined,
  decodeResponse: () => ({}),
});

export interface Goaway {
  reasonCode: number;
  deadlineMs: number;
  message: string;
}

export function encodeGoaway(goaway: Goaway): Buffer {
  return new BinaryWriter(64).u16(goaway.reasonCode).u32(goaway.deadlineMs).string(goaway.message).finish();
}

export function decodeGoaway(payload: Buffer): Goaway {
  const r = new BinaryReader(payload);
  const goaway = { reasonCode: r.u16(), deadlineMs: r.u32(), message: r.string() };
  r.end();
  return goaway;
}

export interface Throttle {
  throttleMs: number;
  reason: string;
}

export function encodeThrottle(throttle: Throttle): Buffer {
  return new BinaryWriter(64).u32(throttle.throttleMs).string(throttle.reason).finish();
}

export function decodeThrottle(payload: Buffer): Throttle {
  const r = new BinaryReader(payload);
  const throttle = { throttleMs: r.u32(), reason: r.string() };
  r.end();
  return throttle;
}

export function encodeCredit(bytes: number): Buffer {
  return new BinaryWriter(4).u32(bytes).finish();
}

export function decodeCredit(payload: Buffer): number {
  const r = new BinaryReader(payload);
  const bytes = r.u32();
  r.end();
  return bytes;
}

export function encodeErrorPayload(message: string): Buffer {
  const limited = message.length > 4000 ? `${message.slice(0, 4000)}…` : message;
  return new BinaryWriter(64).string(limited).finish();
}

export function decodeErrorPayload(payload: Buffer): string {
  if (payload.length === 0) return '';
  return new BinaryReader(payload).string();
}
