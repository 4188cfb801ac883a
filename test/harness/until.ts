// Waits for a condition that real processes reach in their own time: `attempt` is tried every
// `intervalMs` until it returns a value (not null); its errors count as "not yet". Fails with the
// last error once `timeoutMs` has passed.

export async function until<T>(
  attempt: () => Promise<T | null>,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await attempt();
      if (value !== null) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms${last === null ? '' : `: ${String(last)}`}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
