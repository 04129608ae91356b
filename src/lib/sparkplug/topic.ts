/** Sparkplug B topic names: `spBv1.0/<group>/<type>/<node>[/<device>]`. */

export const SPARKPLUG_NAMESPACE = 'spBv1.0';

const NODE_MESSAGE_TYPES = ['NBIRTH', 'NDEATH', 'NDATA', 'NCMD'] as const;
const DEVICE_MESSAGE_TYPES = ['DBIRTH', 'DDEATH', 'DDATA', 'DCMD'] as const;

export type NodeMessageType = (typeof NODE_MESSAGE_TYPES)[number];
export type DeviceMessageType = (typeof DEVICE_MESSAGE_TYPES)[number];
export type MessageType = NodeMessageType | DeviceMessageType;

export interface SparkplugTopic {
  group: string;
  type: MessageType;
  node: string;
  device?: string;
}

function isNodeType(t: string): t is NodeMessageType {
  return (NODE_MESSAGE_TYPES as readonly string[]).includes(t);
}

function isDeviceType(t: string): t is DeviceMessageType {
  return (DEVICE_MESSAGE_TYPES as readonly string[]).includes(t);
}

/** A valid topic level for an id: non-empty, no separators or wildcards. */
function validId(s: string): boolean {
  return s.length > 0 && !/[/+#]/.test(s);
}

/**
 * Parses an edge node or device topic. Returns undefined for anything else
 * (other namespaces, STATE topics, node types with a device or device types
 * without one, empty levels).
 */
export function parseTopic(t: string): SparkplugTopic | undefined {
  const parts = t.split('/');
  if (parts.length < 4 || parts.length > 5 || parts[0] !== SPARKPLUG_NAMESPACE) return undefined;
  const [, group, type, node, device] = parts;
  if (!validId(group) || !validId(node)) return undefined;
  if (device === undefined) {
    return isNodeType(type) ? { group, type, node } : undefined;
  }
  if (!isDeviceType(type) || !validId(device)) return undefined;
  return { group, type, node, device };
}

/** Builds a topic; throws if an id is empty or contains `/`, `+` or `#`, or the device does not fit the type. */
export function topic(group: string, type: MessageType, node: string, device?: string): string {
  for (const [what, id] of [
    ['group', group],
    ['node', node],
  ] as const) {
    if (!validId(id)) throw new Error(`Invalid Sparkplug ${what} id ${JSON.stringify(id)}`);
  }
  if (isNodeType(type)) {
    if (device !== undefined) throw new Error(`${type} topics have no device id`);
    return `${SPARKPLUG_NAMESPACE}/${group}/${type}/${node}`;
  }
  if (!isDeviceType(type)) throw new Error(`Unknown Sparkplug message type ${JSON.stringify(type)}`);
  if (device === undefined || !validId(device))
    throw new Error(`Invalid Sparkplug device id ${JSON.stringify(device)} for ${type}`);
  return `${SPARKPLUG_NAMESPACE}/${group}/${type}/${node}/${device}`;
}
