// Offsets are bigints (as in storage); Math.min and Math.max do not take them.

export function minOffset(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

export function maxOffset(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
