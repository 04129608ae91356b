import type { Socket } from 'node:net';

/**
 * Limits on MQTT packet sizes, read from each packet's fixed header before
 * the broker sees its body. aedes' parser (mqtt-packet) keeps a packet's
 * bytes until the whole packet has arrived and has no limit of its own: a
 * CONNECT claiming 200 MiB would be held whole, before any credential.
 */
export interface PacketLimits {
  /** Largest packet, and most bytes in all, before the client is authenticated (its CONNECT). */
  beforeAuth: number;
  /** Largest packet (in practice a PUBLISH) afterwards. */
  afterAuth: number;
}

export interface PacketGuard {
  /** The client's credentials were accepted: the larger limit applies from now on. */
  authenticated(): void;
}

/**
 * Watches the bytes aedes reads from `socket` (it reads with `read()` when
 * the socket is readable, so the socket never holds more than its
 * high-water mark) and destroys the socket, calling `onViolation`, as soon
 * as a packet's remaining length is over the limit or malformed.
 */
export function guardPacketSizes(
  socket: Socket,
  limits: PacketLimits,
  onViolation: (why: string) => void,
): PacketGuard {
  let authed = false;
  let before = 0;
  // Fixed header state: 'type' expects the first byte; 'length' reads the
  // variable-length remaining length; then `skip` body bytes follow.
  let state: 'type' | 'length' = 'type';
  let length = 0;
  let multiplier = 1;
  let lengthBytes = 0;
  let skip = 0;

  const violation = (why: string): false => {
    onViolation(why);
    socket.destroy();
    return false;
  };
  const inspect = (buf: Buffer): boolean => {
    if (!authed) {
      before += buf.length;
      if (before > limits.beforeAuth) return violation(`more than ${limits.beforeAuth} bytes before authentication`);
    }
    let i = 0;
    while (i < buf.length) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length - i);
        skip -= n;
        i += n;
        continue;
      }
      const b = buf[i++]!;
      if (state === 'type') {
        state = 'length';
        length = 0;
        multiplier = 1;
        lengthBytes = 0;
        continue;
      }
      length += (b & 0x7f) * multiplier;
      multiplier *= 128;
      lengthBytes++;
      if (b & 0x80) {
        if (lengthBytes === 4) return violation('malformed remaining length');
        continue;
      }
      const max = authed ? limits.afterAuth : limits.beforeAuth;
      if (length > max)
        return violation(
          `a packet of ${length} bytes, over the limit of ${max}${authed ? '' : ' before authentication'}`,
        );
      skip = length;
      state = 'type';
    }
    return true;
  };

  const read = socket.read.bind(socket);
  socket.read = ((size?: number) => {
    const buf = read(size) as Buffer | string | null;
    if (buf !== null && typeof buf !== 'string' && !inspect(buf)) return null;
    return buf;
  }) as Socket['read'];
  return {
    authenticated: () => {
      authed = true;
    },
  };
}
