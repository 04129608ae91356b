/**
 * Evidence of the UUID profile an installation was written with. The two
 * profiles swap the setup status and Edge cluster status apps, and the two
 * kinds of entry differ in shape: a setup status holds what the Cluster
 * Manager records of its work (`spec`, `flux`, `ready`, `phase`, ...), an
 * Edge cluster status what Edge Sync reports (`hosts`, `kubeseal_cert`).
 * Entries of one kind under the other's app mean the profile is wrong.
 */
import type { Json } from '../lib/merge-patch.js';

/** How many entries of each app are read: enough to tell, bounded however many clusters exist. */
export const PROFILE_SAMPLE = 25;

/** Fields written to a setup status, by the original Cluster Manager or by this one. */
const SETUP_FIELDS = [
  'spec',
  'flux',
  'krbkeys',
  'self_link',
  'ready',
  'fluxVersion',
  'phase',
  'specHash',
  'conditions',
];
/** Fields Edge Sync writes to an Edge cluster status. */
const EDGE_FIELDS = ['hosts', 'kubeseal_cert'];

type Kind = 'setup' | 'edge' | 'unknown';

/** An entry with fields of one kind only is of that kind; anything else proves nothing. */
export function entryKind(v: Json | undefined): Kind {
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) return 'unknown';
  const setup = SETUP_FIELDS.some((f) => f in v);
  const edge = EDGE_FIELDS.some((f) => f in v);
  if (setup === edge) return 'unknown';
  return setup ? 'setup' : 'edge';
}

export interface ProfileEvidence {
  setupInSetupApp: number;
  edgeInEdgeApp: number;
  /** Setup status entries under the app this profile reads Edge cluster status from (the other profile's setup status app). */
  setupUnderEdgeApp: number;
  /** Edge cluster status entries under the app this profile keeps its setup status in. */
  edgeUnderSetupApp: number;
}

/** Counts each kind of entry under the two apps, as this profile names them. */
export function profileEvidence(setupApp: Array<Json | undefined>, edgeApp: Array<Json | undefined>): ProfileEvidence {
  const count = (list: Array<Json | undefined>, kind: Kind) => list.filter((v) => entryKind(v) === kind).length;
  return {
    setupInSetupApp: count(setupApp, 'setup'),
    edgeInEdgeApp: count(edgeApp, 'edge'),
    setupUnderEdgeApp: count(edgeApp, 'setup'),
    edgeUnderSetupApp: count(setupApp, 'edge'),
  };
}
