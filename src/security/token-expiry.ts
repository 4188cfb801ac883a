// Closes a connection authenticated by a bearer token when the token expires. MemoryStreamer has
// no re-authentication on an open connection, so a session lives exactly as long as its token (as
// Kafka does with connections.max.reauth.ms when a client does not re-authenticate): the broker
// closes the connection at `exp` with TOKEN_EXPIRED, a retriable error, and the client connects
// again with a fresh token (a token function is called on every connection).

/** setTimeout's largest delay (about 24.8 days); a later expiry is reached in several steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ExpiryTimer {
  cancel(): void;
}

/** Calls `onExpired` once, at `expiresAt` (epoch ms), unless cancelled first. */
export function atExpiry(
  expiresAt: number,
  onExpired: () => void,
  now: () => number = Date.now,
): ExpiryTimer {
  let timer: NodeJS.Timeout | null = null;
  const arm = () => {
    const left = expiresAt - now();
    if (left <= 0) {
      timer = null;
      onExpired();
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    // An open connection keeps the process alive, not its expiry.
    timer.unref();
  };
  arm();
  return {
    cancel() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
  };
}
