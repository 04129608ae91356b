import { SizedLru } from '../lib/lru.js';
import type { FileSet } from '../repo/writer.js';
import type { SealingCertificate } from './certificate.js';
import {
  describeSealedSecret,
  removeSealedKey,
  sealedSecretPath,
  upsertSealedKey,
  type SealedSecretSummary,
} from './manifest.js';
import { scopeLabel, sealValue, type SealingScope } from './seal.js';

const SECRETS_DIR = 'edo/secrets';

export interface SecretAddress {
  namespace: string;
  name: string;
  key: string;
}

export interface SealedSecretListing extends SealedSecretSummary {
  path: string;
}

// Descriptions by blob id: a blob never changes, and every write counts the
// keys of every file, most of them unchanged since the last write.
const described = new SizedLru<string, SealedSecretSummary | null>(4096, () => 1);

/** Fingerprints: one string each, however many keys and versions name it. */
const fingerprints = new Map<string, string>();
function intern(fp: string): string {
  let known = fingerprints.get(fp);
  if (known === undefined) {
    if (fingerprints.size >= 1024) fingerprints.clear();
    known = structuredClone(fp);
    fingerprints.set(known, known);
  }
  return known;
}

/**
 * A summary of its own: strings cut from the parsed text would keep the
 * whole text alive, and every key names the same few fingerprints.
 */
function compact(d: SealedSecretSummary): SealedSecretSummary {
  const c = structuredClone(d);
  for (const k of Object.keys(c.certFingerprints)) c.certFingerprints[k] = intern(c.certFingerprints[k]);
  return c;
}

/** A file's summary, from the cache by its blob id, else read and parsed (and then cached). */
async function describe(
  oid: string | undefined,
  read: () => Promise<string | undefined>,
): Promise<SealedSecretSummary | null> {
  const hit = oid === undefined ? undefined : described.get(oid);
  if (hit !== undefined) return hit;
  const text = await read();
  let d: SealedSecretSummary | null = null;
  try {
    d = text === undefined ? null : (describeSealedSecret(text) ?? null);
  } catch {
    // A file someone broke by hand is not ours to describe; it is skipped.
  }
  if (oid !== undefined) described.set(oid, d && compact(d));
  return d;
}

/** Every SealedSecret of a repo, without ciphertext. */
export async function listSealed(files: FileSet): Promise<SealedSecretListing[]> {
  const out: SealedSecretListing[] = [];
  for (const path of files.list(SECRETS_DIR)) {
    if (!path.endsWith('.yaml')) continue;
    const d = await describe(files.oid(path), () => files.read(path));
    if (d) out.push({ path, ...d });
  }
  return out;
}

function countKeys(list: SealedSecretListing[]): number {
  return list.reduce((n, s) => n + s.keys.length, 0);
}

/** The manifest text a PUT would commit, for a dry run, and the edit that commits it. */
export function sealEdit(
  a: SecretAddress,
  value: Buffer,
  cert: SealingCertificate,
  scope: SealingScope,
  onCount: (n: number) => void,
) {
  const ciphertext = sealValue(cert.publicKey, value, scopeLabel(scope, a.namespace, a.name));
  const path = sealedSecretPath(a.namespace, a.name);
  const render = (existing: string | undefined) =>
    upsertSealedKey(existing, { ...a, ciphertext, scope, certFingerprint: cert.fingerprint });
  return {
    path,
    render,
    edit: {
      message: `Updated sealed secret ${a.namespace}/${a.name}/${a.key}`,
      apply: async (files: FileSet) => {
        await files.write(path, render(await files.read(path)));
        onCount(countKeys(await listSealed(files)));
      },
    },
  };
}

export function removeEdit(a: SecretAddress, onCount: (n: number) => void) {
  const path = sealedSecretPath(a.namespace, a.name);
  const render = (existing: string | undefined) => removeSealedKey(existing, a.key);
  return {
    path,
    render,
    edit: {
      message: `Remove sealed secret ${a.namespace}/${a.name}/${a.key}.`,
      apply: async (files: FileSet) => {
        const r = render(await files.read(path));
        if (r.changed) {
          if (r.text === undefined) files.remove(path);
          else await files.write(path, r.text);
        }
        onCount(countKeys(await listSealed(files)));
      },
    },
  };
}
