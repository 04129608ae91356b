/**
 * What the edge says of itself, summarised into the setup status.
 *
 * Edge Sync, running on each edge cluster, writes the cluster's *Edge
 * cluster status* entry: `hosts`, one object per Kubernetes node
 * (`{hostname, arch, k8s_version, control_plane, os_version, ready,
 * specialised}`, acs-edge-sync `lib/nodes.js`), and `kubeseal_cert`, the
 * Sealed Secrets controller's certificate (`lib/kubeseal.js`). Either may be
 * missing, and the entry is writable by more than Edge Sync, so every field
 * is checked and anything malformed counts as absent.
 */
import type { Json } from '../lib/merge-patch.js';
import { jsonEqual } from '../lib/merge-patch.js';
import { parseSealingCertificate } from '../sealing/certificate.js';
import type { Status } from './status.js';
import {
  getCondition,
  readStatus,
  setCondition,
  type Condition,
  type ConditionInput,
  type EdgeHealth,
} from './setup-status.js';

export const EDGE_CONDITION = 'EdgeReporting';

/** What the entry says now; when it last changed is the setup status's to keep. */
export type EdgeReport = Omit<EdgeHealth, 'lastChange'>;

export type EdgeCertificate = NonNullable<EdgeHealth['sealingCertificate']>;

export const NOT_REPORTED: EdgeReport = Object.freeze({
  reported: false,
  hosts: 0,
  readyHosts: 0,
  kubernetesVersions: [],
  sealingCertificate: null,
});

// Bounds on what one entry can make the status hold: a real cluster has a
// handful of kubelet versions of a few dozen characters, and a certificate
// PEM of about 2 KiB.
const MAX_VERSIONS = 16;
const MAX_VERSION_LENGTH = 64;
const MAX_CERT_LENGTH = 64 * 1024;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The certificate's fingerprint and expiry, or null when it is not a
 * usable sealing certificate. An expired one is still described (the
 * earliest possible clock is passed for the expiry check): its `notAfter`
 * is what tells the operator why sealing refuses it.
 */
export function describeEdgeCertificate(pem: unknown): EdgeCertificate | null {
  if (typeof pem !== 'string' || pem.length > MAX_CERT_LENGTH) return null;
  try {
    const cert = parseSealingCertificate(pem, new Date(-8.64e15));
    return { fingerprint: cert.fingerprint, notAfter: cert.notAfter.toISOString() };
  } catch {
    return null;
  }
}

/**
 * The summary of an Edge cluster status entry. `reported` means Edge Sync
 * has written a host list; hosts that are not objects are not counted, and
 * a host is ready only when it says `ready: true`.
 */
export function summariseEdge(
  entry: unknown,
  certificate: (pem: unknown) => EdgeCertificate | null = describeEdgeCertificate,
): EdgeReport {
  if (!isObject(entry)) return NOT_REPORTED;
  const list = Array.isArray(entry.hosts) ? entry.hosts.filter(isObject) : undefined;
  const versions = new Set<string>();
  for (const h of list ?? []) {
    const v = h.k8s_version;
    if (typeof v === 'string' && v !== '' && v.length <= MAX_VERSION_LENGTH) versions.add(v);
  }
  return {
    reported: list !== undefined,
    hosts: list?.length ?? 0,
    readyHosts: list?.filter((h) => h.ready === true).length ?? 0,
    kubernetesVersions: [...versions].sort().slice(0, MAX_VERSIONS),
    sealingCertificate: entry.kubeseal_cert === undefined ? null : certificate(entry.kubeseal_cert),
  };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * `EdgeReporting` for a report. Before any report the message says whether
 * the cluster was bootstrapped through this service, because the fix
 * differs: run the bootstrap script, or look at Flux and Edge Sync on the
 * edge.
 */
export function edgeCondition(report: EdgeReport, bootstrapFetches: number): ConditionInput {
  const base = { type: EDGE_CONDITION } as const;
  if (!report.reported) {
    return {
      ...base,
      status: 'False',
      reason: 'NotReported',
      message:
        bootstrapFetches > 0
          ? 'Edge Sync has not reported the hosts of the cluster since its bootstrap script was fetched; check Flux and Edge Sync on the edge cluster'
          : 'Edge Sync has not reported the hosts of the cluster; its bootstrap script has not been fetched yet',
    };
  }
  if (report.readyHosts === 0) {
    return {
      ...base,
      status: 'False',
      reason: 'NoReadyHosts',
      message:
        report.hosts === 0
          ? 'Edge Sync reports no hosts'
          : `Edge Sync reports ${plural(report.hosts, 'host')}, none of them ready`,
    };
  }
  return {
    ...base,
    status: 'True',
    reason: 'Reporting',
    message: `${report.readyHosts} of ${plural(report.hosts, 'host')} ready`,
  };
}

const sameReport = (a: EdgeHealth, b: EdgeReport): boolean =>
  a.reported === b.reported &&
  a.hosts === b.hosts &&
  a.readyHosts === b.readyHosts &&
  jsonEqual(a.kubernetesVersions, b.kubernetesVersions) &&
  jsonEqual(a.sealingCertificate, b.sealingCertificate);

/**
 * The merge patch that brings a setup status in line with the edge's
 * report, or undefined when it already is: a cluster whose edge has not
 * changed costs no write. A cluster gets a summary once it is commissioned
 * or once its edge has reported, whichever comes first; one being deleted
 * gets none (a write would bring its entry back).
 */
export function edgePatch(raw: Status, report: EdgeReport, now: Date): { [k: string]: Json } | undefined {
  const st = readStatus(raw);
  if (!st || st.phase === 'deleting') return undefined;
  if (!st.edge && !report.reported && st.phase !== 'ready') return undefined;
  const cond = edgeCondition(report, st.bootstrap?.fetches ?? 0);
  const old = getCondition(st, EDGE_CONDITION);
  const sameCond =
    old !== undefined && old.status === cond.status && old.reason === cond.reason && old.message === cond.message;
  const same = st.edge !== undefined && sameReport(st.edge, report);
  if (same && sameCond) return undefined;
  const patch: { [k: string]: Json } = {};
  if (!same) {
    const lastChange = st.edge || report.reported ? now.toISOString() : null;
    patch.edge = { ...report, kubernetesVersions: [...report.kubernetesVersions], lastChange } as unknown as Json;
  }
  if (!sameCond) {
    // The conditions as written, not as read: other parts' conditions pass through untouched.
    const conditions = (Array.isArray(raw.conditions) ? raw.conditions : []).filter(isObject) as unknown as Condition[];
    patch.conditions = setCondition(conditions, cond, now) as unknown as Json;
  }
  return patch;
}
