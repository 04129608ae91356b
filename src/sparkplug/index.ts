/**
 * The Cluster Manager's Sparkplug B edge node: one Sparkplug device per edge
 * cluster, plus service-level metrics on the node. See `node.ts`.
 */
export {
  SparkplugNode,
  SubscriptionRefusedError,
  type SparkplugNodeEvents,
  type SparkplugNodeOptions,
  type SparkplugNodeStatus,
} from './node.js';
export {
  CLUSTER_DEVICE_SCHEMA_UUID,
  CLUSTER_MANAGER_SERVICE_UUID,
  DEVICE_REBIRTH_METRIC,
  CLUSTER_PHASES,
  FACTORYPLUS_PAYLOAD_UUID,
  REBIRTH_METRIC,
  SERVICE_SCHEMA_UUID,
  type ClusterCounts,
  type ClusterDeviceState,
  type ClusterPhase,
  type DeviceInfo,
  type NodeMetricsUpdate,
} from './model.js';
