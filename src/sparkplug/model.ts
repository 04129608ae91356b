/**
 * What the Cluster Manager's Sparkplug node reports, independent of MQTT:
 * the node's metrics, one device per edge cluster, and the aliases that
 * DATA messages use instead of names.
 *
 * The model only holds current values. What subscribers have already been
 * told is tracked per MQTT session (see `node.ts`), so births always carry
 * the latest state and DATA messages carry only real differences.
 */
import type { ScalarTypeName, ScalarValue, SparkplugMetric } from '../lib/sparkplug/index.js';

/** Payload `uuid` marking a Factory+ service birth certificate. */
export const FACTORYPLUS_PAYLOAD_UUID = '11ad7b32-1d32-4c4a-b0c9-fa049208939a';
/** `Schema_UUID` of a Factory+ service node. */
export const SERVICE_SCHEMA_UUID = '05688a03-730e-4cda-9932-172e2c62e45c';
/** The Cluster Manager service function, the usual `Service_UUID`. */
export const CLUSTER_MANAGER_SERVICE_UUID = '2706aa43-a826-441e-9cec-cd3d4ce623c2';

/**
 * `Schema_UUID` of an edge cluster device of this node. Factory+ consumers
 * (the ACS Directory, sparkplug-app) identify a device by its
 * `Schema_UUID`/`Instance_UUID` pair; this schema is the Cluster Manager's
 * own: the device metrics listed in the README.
 */
export const CLUSTER_DEVICE_SCHEMA_UUID = '6c1e8d5a-3f0b-4b8e-9a4d-2e7c5b1f9d30';

export const REBIRTH_METRIC = 'Node Control/Rebirth';
/** Asks for one device's DBIRTH again (DCMD). */
export const DEVICE_REBIRTH_METRIC = 'Device Control/Rebirth';
export const BDSEQ_METRIC = 'bdSeq';

/** Cluster phases counted in `Clusters/<phase>`; the same set the reconciler uses. */
export const CLUSTER_PHASES = ['pending', 'address', 'accounts', 'repo', 'ready', 'deleting', 'failed'] as const;
export type ClusterPhase = (typeof CLUSTER_PHASES)[number];

export type ClusterCounts = Record<ClusterPhase | 'total', number>;

/** Node metrics the service updates while running. */
export interface NodeMetricsUpdate {
  clusters?: Partial<ClusterCounts>;
  /** Text of the last reconcile error; "" when there is none. */
  lastError?: string;
}

/** One edge cluster as published in its device's metrics. */
export interface ClusterDeviceState {
  name: string;
  phase: string;
  ready: boolean;
  conditions: unknown[];
  repoHead: string | null;
  sealedSecrets: number;
  bootstrapFetches: number;
  /** Why the cluster is not ready (the Ready condition's reason), "" when it is or nothing failed. */
  failureReason?: string;
  /** The cause in words, "" likewise. */
  failureMessage?: string;
  /** What Edge Sync reported of the cluster (see reconcile/edge-health.ts). */
  edgeReported: boolean;
  edgeHosts: number;
  edgeReadyHosts: number;
  edgeKubernetesVersions: string[];
}

export interface DeviceInfo {
  manufacturer?: string;
  model?: string;
  serial?: string;
}

interface MetricDef {
  name: string;
  type: ScalarTypeName;
}

/** A metric as the model keeps it: definition, alias and current value. */
interface Slot extends MetricDef {
  alias: bigint;
  value: ScalarValue;
}

/** Values as last published, by metric name. */
export type Published = Map<string, ScalarValue>;

// Counts are UInt64 rather than UInt32: the `sparkplug-payload` decoder
// used by Factory+ consumers reads UInt32 only from the 64-bit value field,
// while the Sparkplug 3.0 encoding (and our codec) puts it in the 32-bit
// one, so a UInt32 would arrive as null there.
const COUNT_TYPE: ScalarTypeName = 'UInt64';

const DEVICE_METRICS = {
  schemaUuid: { name: 'Schema_UUID', type: 'UUID' },
  instanceUuid: { name: 'Instance_UUID', type: 'UUID' },
  name: { name: 'Name', type: 'String' },
  uuid: { name: 'Cluster_UUID', type: 'UUID' },
  phase: { name: 'Phase', type: 'String' },
  ready: { name: 'Ready', type: 'Boolean' },
  conditions: { name: 'Conditions', type: 'String' },
  repoHead: { name: 'Repo_Head', type: 'String' },
  sealedSecrets: { name: 'Sealed_Secrets', type: COUNT_TYPE },
  bootstrapFetches: { name: 'Bootstrap_Fetches', type: COUNT_TYPE },
  failureReason: { name: 'Failure_Reason', type: 'String' },
  failureMessage: { name: 'Failure_Message', type: 'String' },
  edgeReported: { name: 'Edge/Reported', type: 'Boolean' },
  edgeHosts: { name: 'Edge/Hosts', type: COUNT_TYPE },
  edgeReadyHosts: { name: 'Edge/Ready_Hosts', type: COUNT_TYPE },
  edgeKubernetesVersions: { name: 'Edge/Kubernetes_Versions', type: 'String' },
} satisfies Record<keyof ClusterDeviceState | 'uuid' | 'schemaUuid' | 'instanceUuid', MetricDef>;

const clusterMetric = (key: ClusterPhase | 'total'): string => `Clusters/${key}`;
const LAST_ERROR = 'Last_Error';

function count(v: unknown, what: string): bigint {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new TypeError(`${what} must be a non-negative integer, got ${String(v)}`);
  }
  return BigInt(v);
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new TypeError(`${what} must be a string, got ${typeof v}`);
  return v;
}

/** A set of metrics with stable aliases and current values. */
class MetricSet {
  private readonly slots = new Map<string, Slot>();

  constructor(defs: (MetricDef & { value: ScalarValue })[], nextAlias: () => bigint) {
    for (const d of defs) this.slots.set(d.name, { ...d, alias: nextAlias() });
  }

  /** Returns whether the value changed. */
  set(name: string, value: ScalarValue): boolean {
    const slot = this.slots.get(name)!;
    if (slot.value === value) return false;
    slot.value = value;
    return true;
  }

  /** Birth form: name, alias, type and value of every metric. */
  birth(timestamp: number): SparkplugMetric[] {
    return [...this.slots.values()].map(({ name, alias, type, value }) => ({ name, alias, type, value, timestamp }));
  }

  /**
   * DATA form: metrics whose value differs from `published`, by alias only.
   * The data type is kept although Sparkplug 3.0 says it SHOULD NOT be sent
   * in DATA messages: our codec needs it, and Tahu's JS decoder (used by
   * Factory+ consumers) cannot read a value without it.
   */
  changes(published: Published, timestamp: number): SparkplugMetric[] {
    return [...this.slots.values()]
      .filter((s) => published.get(s.name) !== s.value)
      .map(({ alias, type, value }) => ({ alias, type, value, timestamp }));
  }

  snapshot(): Published {
    return new Map([...this.slots.values()].map((s) => [s.name, s.value]));
  }
}

/**
 * One device's metrics. A removed and re-added cluster gets a new entry
 * (and new aliases), which is how sessions tell a re-added device from an
 * unchanged one.
 */
export class DeviceEntry {
  readonly metrics: MetricSet;

  constructor(
    readonly uuid: string,
    state: ClusterDeviceState,
    nextAlias: () => bigint,
  ) {
    const v = DeviceEntry.values(uuid, state);
    this.metrics = new MetricSet(
      Object.entries(DEVICE_METRICS).map(([key, def]) => ({ ...def, value: v[key as keyof typeof v] })),
      nextAlias,
    );
  }

  /** Returns whether anything changed. */
  update(state: ClusterDeviceState): boolean {
    const v = DeviceEntry.values(this.uuid, state);
    let changed = false;
    for (const [key, def] of Object.entries(DEVICE_METRICS)) {
      if (this.metrics.set(def.name, v[key as keyof typeof v])) changed = true;
    }
    return changed;
  }

  /** Validated metric values; throws TypeError so bad input fails at the caller, not in a later publish. */
  private static values(uuid: string, s: ClusterDeviceState): Record<keyof typeof DEVICE_METRICS, ScalarValue> {
    if (typeof s !== 'object' || s === null) throw new TypeError('Cluster device state must be an object');
    if (typeof s.ready !== 'boolean') throw new TypeError(`ready must be a boolean, got ${typeof s.ready}`);
    if (!Array.isArray(s.conditions)) throw new TypeError('conditions must be an array');
    if (s.repoHead !== null) str(s.repoHead, 'repoHead');
    if (typeof s.edgeReported !== 'boolean')
      throw new TypeError(`edgeReported must be a boolean, got ${typeof s.edgeReported}`);
    if (!Array.isArray(s.edgeKubernetesVersions)) throw new TypeError('edgeKubernetesVersions must be an array');
    return {
      schemaUuid: CLUSTER_DEVICE_SCHEMA_UUID,
      // The cluster's own object UUID: what the ACS Directory indexes the device by.
      instanceUuid: uuid,
      name: str(s.name, 'name'),
      uuid,
      phase: str(s.phase, 'phase'),
      ready: s.ready,
      conditions: JSON.stringify(s.conditions),
      repoHead: s.repoHead ?? '',
      sealedSecrets: count(s.sealedSecrets, 'sealedSecrets'),
      bootstrapFetches: count(s.bootstrapFetches, 'bootstrapFetches'),
      failureReason: str(s.failureReason ?? '', 'failureReason'),
      failureMessage: str(s.failureMessage ?? '', 'failureMessage'),
      edgeReported: s.edgeReported,
      edgeHosts: count(s.edgeHosts, 'edgeHosts'),
      edgeReadyHosts: count(s.edgeReadyHosts, 'edgeReadyHosts'),
      // Kubelet versions hold no commas ("v1.31.4+k3s1"), so a list reads plainly.
      edgeKubernetesVersions: s.edgeKubernetesVersions.map((v, i) => str(v, `edgeKubernetesVersions[${i}]`)).join(', '),
    };
  }
}

export interface NodeIdentity {
  instanceUuid: string;
  serviceUuid: string;
  /** `Service_URL`: where clients reach the service; the ACS Directory advertises it from the birth. */
  serviceUrl?: string;
  deviceInfo: Required<DeviceInfo>;
}

/** The node's metrics and devices. Aliases are unique across both for the life of the model. */
export class NodeModel {
  readonly node: MetricSet;
  readonly devices = new Map<string, DeviceEntry>();
  private alias = 0n;
  private readonly nextAlias = (): bigint => ++this.alias;

  constructor(id: NodeIdentity) {
    this.node = new MetricSet(
      [
        { name: 'Device_Information/Manufacturer', type: 'String', value: id.deviceInfo.manufacturer },
        { name: 'Device_Information/Model', type: 'String', value: id.deviceInfo.model },
        { name: 'Device_Information/Serial', type: 'String', value: id.deviceInfo.serial },
        { name: 'Schema_UUID', type: 'UUID', value: SERVICE_SCHEMA_UUID },
        { name: 'Instance_UUID', type: 'UUID', value: id.instanceUuid },
        { name: 'Service_UUID', type: 'UUID', value: id.serviceUuid },
        ...(id.serviceUrl ? [{ name: 'Service_URL', type: 'String' as const, value: id.serviceUrl }] : []),
        ...[...CLUSTER_PHASES, 'total' as const].map((k) => ({ name: clusterMetric(k), type: COUNT_TYPE, value: 0n })),
        { name: LAST_ERROR, type: 'String', value: '' },
      ],
      this.nextAlias,
    );
  }

  /** Returns whether anything changed. Validates everything before changing anything. */
  setNodeMetrics(u: NodeMetricsUpdate): boolean {
    const values: [string, ScalarValue][] = [];
    for (const [k, v] of Object.entries(u.clusters ?? {})) {
      if (k !== 'total' && !(CLUSTER_PHASES as readonly string[]).includes(k))
        throw new TypeError(`Unknown cluster count ${k}`);
      if (v !== undefined) values.push([clusterMetric(k as ClusterPhase), count(v, `clusters.${k}`)]);
    }
    if (u.lastError !== undefined) values.push([LAST_ERROR, str(u.lastError, 'lastError')]);
    let changed = false;
    for (const [name, v] of values) if (this.node.set(name, v)) changed = true;
    return changed;
  }

  /** Returns whether subscribers need telling: a new device or a changed value. */
  setDevice(uuid: string, state: ClusterDeviceState): boolean {
    const entry = this.devices.get(uuid);
    if (entry) return entry.update(state);
    this.devices.set(uuid, new DeviceEntry(uuid, state, this.nextAlias));
    return true;
  }

  /** Returns whether the device existed. */
  removeDevice(uuid: string): boolean {
    return this.devices.delete(uuid);
  }
}
