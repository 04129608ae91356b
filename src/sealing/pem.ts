/**
 * PEM blocks found as kubeseal finds them.
 *
 * kubeseal reads a certificate bundle with client-go's `ParseCertsPEM`,
 * which walks Go's `encoding/pem` decoder over the text. That decoder has
 * its own idea of what a block is, and it decides which bundles kubeseal
 * accepts, so the same rules are applied here rather than OpenSSL's (which
 * Node's X509Certificate follows and which differ at the edges):
 *
 * - A block starts at `-----BEGIN ` at the very start of the text or right
 *   after a newline; an indented BEGIN line is not a block.
 * - The BEGIN line must end in `-----` (trailing spaces and tabs are
 *   ignored). Lines of the form `key: value` right after it are headers.
 * - The END line must name the same type, and nothing but spaces or tabs
 *   may follow it on its line.
 * - The body is standard, padded base64; spaces, tabs, CR and LF in it are
 *   ignored, anything else makes the block undecodable.
 * - A candidate that breaks any of these rules is not an error: the search
 *   goes on from just past its BEGIN line (or its headers), so a later,
 *   well-formed block is still found. Only text ending inside the headers
 *   stops the search outright.
 */

export interface PemBlock {
  type: string;
  headers: Record<string, string>;
  bytes: Buffer;
}

const BEGIN = '-----BEGIN ';
const END = '-----END ';
const DASHES = '-----';

/** Every block of the text, in order. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  let rest = text;
  while (rest.length > 0) {
    const found = nextBlock(rest);
    if (!found) break;
    out.push(found.block);
    rest = found.rest;
  }
  return out;
}

/** One line without its LF (or CRLF) and without trailing spaces and tabs, and what follows it. */
function line(s: string): [string, string] {
  const nl = s.indexOf('\n');
  if (nl < 0) return [s.replace(/[ \t]+$/, ''), ''];
  const end = nl > 0 && s[nl - 1] === '\r' ? nl - 1 : nl;
  return [s.slice(0, end).replace(/[ \t]+$/, ''), s.slice(nl + 1)];
}

/** Go's `base64.StdEncoding` as the PEM body meets it: padding required, CR and LF skipped. */
function strictBase64(body: string): Buffer | undefined {
  const s = body.replace(/[ \t\r\n]/g, '');
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}

function nextBlock(data: string): { block: PemBlock; rest: string } | undefined {
  let rest = data;
  for (;;) {
    if (rest.startsWith(BEGIN)) rest = rest.slice(BEGIN.length);
    else {
      const at = rest.indexOf(`\n${BEGIN}`);
      if (at < 0) return undefined;
      rest = rest.slice(at + 1 + BEGIN.length);
    }
    let typeLine: string;
    [typeLine, rest] = line(rest);
    if (!typeLine.endsWith(DASHES)) continue;
    const type = typeLine.slice(0, -DASHES.length);

    const headers: Record<string, string> = {};
    let headerCount = 0;
    for (;;) {
      if (rest.length === 0) return undefined;
      const [l, next] = line(rest);
      const colon = l.indexOf(':');
      if (colon < 0) break;
      Object.defineProperty(headers, l.slice(0, colon).trim(), {
        value: l.slice(colon + 1).trim(),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      headerCount++;
      rest = next;
    }

    // Without headers the END line may follow at once; otherwise it is
    // looked for after a newline.
    let bodyEnd: number;
    let trailerAt: number;
    if (headerCount === 0 && rest.startsWith(END)) {
      bodyEnd = 0;
      trailerAt = END.length;
    } else {
      bodyEnd = rest.indexOf(`\n${END}`);
      trailerAt = bodyEnd + 1 + END.length;
    }
    if (bodyEnd < 0) continue;
    const closing = rest.slice(trailerAt, trailerAt + type.length + DASHES.length);
    if (closing !== `${type}${DASHES}`) continue;
    if (line(rest.slice(trailerAt + closing.length))[0] !== '') continue;

    const bytes = strictBase64(rest.slice(0, bodyEnd));
    if (!bytes) continue;
    const [, after] = line(rest.slice(trailerAt - END.length));
    return { block: { type, headers, bytes }, rest: after };
  }
}
