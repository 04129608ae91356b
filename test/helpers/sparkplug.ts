import type { ClusterDeviceState } from '../../src/sparkplug/model.js';

/** The metrics of a cluster device's birth certificate, by name and Sparkplug type, in the order they are sent. */
export const DEVICE_METRICS: [string, string][] = [
  ['Device Control/Rebirth', 'Boolean'],
  ['Schema_UUID', 'UUID'],
  ['Instance_UUID', 'UUID'],
  ['Name', 'String'],
  ['Cluster_UUID', 'UUID'],
  ['Phase', 'String'],
  ['Ready', 'Boolean'],
  ['Conditions', 'String'],
  ['Repo_Head', 'String'],
  ['Sealed_Secrets', 'UInt64'],
  ['Bootstrap_Fetches', 'UInt64'],
  ['Failure_Reason', 'String'],
  ['Failure_Message', 'String'],
  ['Edge/Reported', 'Boolean'],
  ['Edge/Hosts', 'UInt64'],
  ['Edge/Ready_Hosts', 'UInt64'],
  ['Edge/Kubernetes_Versions', 'String'],
];

/** A cluster device's state: a pending cluster with nothing done yet, changed by `over`. */
export function clusterState(over: Partial<ClusterDeviceState> = {}): ClusterDeviceState {
  return {
    name: 'Line 1/Cell #2',
    phase: 'pending',
    ready: false,
    conditions: [],
    repoHead: null,
    sealedSecrets: 0,
    bootstrapFetches: 0,
    edgeReported: false,
    edgeHosts: 0,
    edgeReadyHosts: 0,
    edgeKubernetesVersions: [],
    ...over,
  };
}
