import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BootstrapTokens, loadOrCreateKey, MAX_TOKEN_LENGTH } from '../../src/bootstrap/token.js';

const CLUSTER = '0b9e2c1e-6a0f-4a8e-9d3c-2f4b5a6c7d8e';
const OTHER = '7f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('bootstrap tokens', () => {
  const key = randomBytes(32);
  let clock = Date.UTC(2025, 0, 1, 12, 0, 0);
  const now = () => clock;
  const tokens = new BootstrapTokens(key, { ttlSeconds: 3600, now });

  beforeEach(() => {
    clock = Date.UTC(2025, 0, 1, 12, 0, 0);
  });

  it('verifies a fresh token for its cluster throughout its lifetime', () => {
    const { token, expires } = tokens.issue(CLUSTER);
    expect(expires.getTime()).to.equal(clock + 3600_000);
    expect(token).to.match(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(tokens.verify(token, CLUSTER)).to.deep.equal({ ok: true, expires });
    clock += 3599_000;
    expect(tokens.verify(token, CLUSTER)).to.deep.equal({ ok: true, expires });
    // The UUID is compared as bytes, so its spelling does not matter.
    expect(tokens.verify(token, CLUSTER.toUpperCase()).ok).to.equal(true);
  });

  it('rejects a token once it has expired', () => {
    const { token } = tokens.issue(CLUSTER);
    clock += 3600_000;
    expect(tokens.verify(token, CLUSTER)).to.deep.equal({ ok: false, reason: 'expired' });
    clock += 86400_000;
    expect(tokens.verify(token, CLUSTER)).to.deep.equal({ ok: false, reason: 'expired' });
  });

  it('binds the token to its cluster', () => {
    const { token } = tokens.issue(CLUSTER);
    expect(tokens.verify(token, OTHER)).to.deep.equal({ ok: false, reason: 'wrong-cluster' });
    expect(tokens.verify(token, 'not-a-uuid')).to.deep.equal({ ok: false, reason: 'wrong-cluster' });
    expect(() => tokens.issue('not-a-uuid')).to.throw(TypeError, /not a UUID/);
  });

  it('gives a different token each time', () => {
    const a = tokens.issue(CLUSTER).token;
    const b = tokens.issue(CLUSTER).token;
    expect(a).to.not.equal(b);
    expect(tokens.verify(a, CLUSTER).ok && tokens.verify(b, CLUSTER).ok).to.equal(true);
  });

  it('rejects the token if any single character is changed', () => {
    const { token } = tokens.issue(CLUSTER);
    let tried = 0;
    for (let i = 0; i < token.length; i++) {
      const c = token[i];
      // The neighbouring alphabet characters differ only in the low bits, which
      // is where a lenient base64 decoder would ignore the change.
      const k = B64URL.indexOf(c);
      const subs = new Set([
        B64URL[(k + 1) % 64],
        B64URL[(k + 63) % 64],
        B64URL[(k + 32) % 64],
        '.',
        '=',
        '+',
        '/',
        ' ',
        '~',
      ]);
      subs.delete(c);
      for (const s of subs) {
        const bad = token.slice(0, i) + s + token.slice(i + 1);
        const r = tokens.verify(bad, CLUSTER);
        expect(r.ok, `position ${i}: ${JSON.stringify(c)} -> ${JSON.stringify(s)}`).to.equal(false);
        tried++;
      }
    }
    expect(tried).to.be.greaterThan(token.length * 8);
  });

  it('rejects the token if any single bit of its bytes is flipped', () => {
    const { token } = tokens.issue(CLUSTER);
    const [p, m] = token.split('.');
    for (const [part, other, first] of [
      [p, m, true],
      [m, p, false],
    ] as const) {
      const bytes = Buffer.from(part, 'base64url');
      for (let i = 0; i < bytes.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const flipped = Buffer.from(bytes);
          flipped[i] ^= 1 << bit;
          const enc = flipped.toString('base64url');
          const bad = first ? `${enc}.${other}` : `${other}.${enc}`;
          expect(tokens.verify(bad, CLUSTER).ok, `${first ? 'payload' : 'mac'} byte ${i} bit ${bit}`).to.equal(false);
        }
      }
    }
  });

  it('calls truncated, garbage, empty and oversized tokens malformed', () => {
    const { token } = tokens.issue(CLUSTER);
    const cases = [
      '',
      '.',
      'x',
      'abc.def',
      token.slice(0, -1),
      token.slice(1),
      token.split('.')[0],
      `${token}.`,
      `.${token}`,
      `${token}=`,
      token.replace('.', '..'),
      token.replace('.', ''),
      `${token} `,
      `${token}\n`,
      // right shape, but version byte 0
      'A'.repeat(44) + '.' + 'A'.repeat(43),
      '!!!!.????',
      `${token.slice(0, 10)}\u00e9${token.slice(11)}`,
      token + 'A'.repeat(MAX_TOKEN_LENGTH),
      'A'.repeat(10_000_000),
    ];
    for (const t of cases) {
      const r = tokens.verify(t, CLUSTER);
      expect(r, JSON.stringify(t.slice(0, 60))).to.deep.equal({ ok: false, reason: 'malformed' });
    }
    // The right shape with a made-up MAC is a bad signature.
    const payload = token.split('.')[0];
    expect(tokens.verify(`${payload}.${'A'.repeat(42)}E`, CLUSTER)).to.deep.equal({
      ok: false,
      reason: 'bad-signature',
    });
    expect(tokens.verify(undefined as unknown as string, CLUSTER)).to.deep.equal({ ok: false, reason: 'malformed' });
  });

  it('does not accept tokens signed with a different key', () => {
    const other = new BootstrapTokens(randomBytes(32), { ttlSeconds: 3600, now });
    const a = tokens.issue(CLUSTER).token;
    const b = other.issue(CLUSTER).token;
    expect(other.verify(a, CLUSTER)).to.deep.equal({ ok: false, reason: 'bad-signature' });
    expect(tokens.verify(b, CLUSTER)).to.deep.equal({ ok: false, reason: 'bad-signature' });
    expect(other.verify(b, CLUSTER).ok).to.equal(true);
  });

  it('refuses a nonsensical lifetime or key', () => {
    expect(() => new BootstrapTokens(key, { ttlSeconds: 0 })).to.throw(/lifetime/);
    expect(() => new BootstrapTokens(key, { ttlSeconds: 1.5 })).to.throw(/lifetime/);
    expect(() => new BootstrapTokens(Buffer.alloc(4), { ttlSeconds: 60 })).to.throw(/key/);
  });
});

describe('bootstrap token key', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'bootstrap-key-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('is created once, private, and reused on the next start', () => {
    const a = loadOrCreateKey(dir);
    expect(a).to.have.length(32);
    const st = statSync(join(dir, 'bootstrap-key'));
    expect(st.mode & 0o777).to.equal(0o600);
    const b = loadOrCreateKey(dir);
    expect(b.equals(a)).to.equal(true);
    // No temporary files are left behind.
    expect(readdirSync(dir)).to.deep.equal(['bootstrap-key']);

    // Tokens issued before a "restart" verify after it.
    const token = new BootstrapTokens(a, { ttlSeconds: 60 }).issue(CLUSTER).token;
    expect(new BootstrapTokens(b, { ttlSeconds: 60 }).verify(token, CLUSTER).ok).to.equal(true);
  });

  it('creates the data directory if needed', () => {
    const nested = join(dir, 'a', 'b');
    expect(loadOrCreateKey(nested)).to.have.length(32);
    expect(statSync(join(nested, 'bootstrap-key')).mode & 0o777).to.equal(0o600);
  });

  it('refuses a corrupt key file instead of replacing it', () => {
    writeFileSync(join(dir, 'bootstrap-key'), Buffer.alloc(7));
    expect(() => loadOrCreateKey(dir)).to.throw(/bootstrap-key is corrupt: it holds 7 bytes, not 32/);
    writeFileSync(join(dir, 'bootstrap-key'), Buffer.alloc(0));
    expect(() => loadOrCreateKey(dir)).to.throw(/corrupt/);
    writeFileSync(join(dir, 'bootstrap-key'), Buffer.alloc(33));
    expect(() => loadOrCreateKey(dir)).to.throw(/corrupt/);
  });
});
