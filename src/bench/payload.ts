// Message values: the intended send time (float64, little-endian, monotonic ms) in the first 8
// bytes, then filler. The filler is random lowercase letters, fixed per run: compressible about as
// much as text, so --compression shows a realistic effect (all-zero values would flatter it).

/** Bytes of the timestamp at the start of every value. */
export const STAMP_BYTES = 8;

export function fillerFor(size: number): Buffer {
  const filler = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) filler[i] = 0x61 + Math.floor(Math.random() * 26);
  return filler;
}

/** A new value (the producer may hold it until a batch is built, so it is never reused). */
export function stampedValue(filler: Buffer, intendedMs: number): Buffer {
  const value = Buffer.allocUnsafe(filler.length);
  filler.copy(value, STAMP_BYTES, STAMP_BYTES);
  value.writeDoubleLE(intendedMs, 0);
  return value;
}

/** The intended send time of a value, or null when it is not one of ours (too short). */
export function intendedTimeOf(value: Buffer | null): number | null {
  return value === null || value.length < STAMP_BYTES ? null : value.readDoubleLE(0);
}
