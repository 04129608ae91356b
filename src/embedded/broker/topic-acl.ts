import { WILDCARD } from '../../lib/uuid.js';
import type { AuthModel, Principal } from '../auth/model.js';

/**
 * Factory+ MQTT permissions (service-setup's ACS.Perm.MQTT), as the
 * embedded broker applies them to Sparkplug topics. A node's address is the
 * Sparkplug address entry of the principal that owns it.
 */
export const MqttPerm = {
  /** Subscribe to a node's topics (target: the node's principal). */
  readNode: '046d6603-fa62-4208-9400-65d61f8b1ec4',
  /** Subscribe to anything, `$SYS/#` included. */
  readWholeNamespace: '81833dbb-1150-4078-b1db-978c646ba73e',
  /** Subscribe to every primary host's STATE. */
  readAllStates: '8790cf3d-b793-423c-b373-8cfcf9f63529',
  /** Publish NCMD/DCMD to a node (target: the node's principal). */
  issueCommands: '50f1e694-7e18-4930-aa59-97cc90a6a1ec',
  /** Publish a primary host STATE. */
  updateOwnState: 'bdc96a3e-d6fb-48ed-b790-0aa95cf826f0',
} as const;

const NS = 'spBv1.0';
const OWN_TYPES = new Set(['NBIRTH', 'NDATA', 'NDEATH', 'DBIRTH', 'DDATA', 'DDEATH']);
const COMMAND_TYPES = new Set(['NCMD', 'DCMD']);
const wild = (level: string | undefined) => level === undefined || level === '+' || level === '#';

export interface TopicAcl {
  mayPublish(who: Principal, topic: string): boolean;
  maySubscribe(who: Principal, filter: string): boolean;
}

/**
 * Decides publishing and subscribing by Sparkplug address:
 * - a node's births, data and deaths (N and D types) only by the principal whose address it is;
 * - NCMD/DCMD to a node with Issue commands on it;
 * - STATE with Update own state;
 * - subscribing to one's own node freely, another's with Read node on it,
 *   STATE with Read all states (or to a principal that is a node itself),
 *   anything wider (other groups or nodes by wildcard, other namespaces,
 *   `$SYS/#`) with Read whole namespace.
 * Anything outside the Sparkplug namespace is published by the root principal only.
 * A node address nobody has a Sparkplug address entry for is not protected
 * (a Cluster Manager configured with another address, in Factory+ mode,
 * must still be able to run its node); an address becomes its principal's
 * once the entry exists.
 * `ownerOf` maps a group and node id to the principal whose address it is.
 */
export function topicAcl(
  auth: AuthModel,
  ownerOf: (group: string, node: string) => string | undefined,
  isNode: (principal: string) => boolean,
): TopicAcl {
  // These permissions are granted on the wildcard (a `null` target in a Factory+ dump).
  const any = (who: Principal, perm: string) => auth.check(who, perm, WILDCARD);
  const whole = (who: Principal) => any(who, MqttPerm.readWholeNamespace);
  return {
    mayPublish(who, topic) {
      if (who.root) return true;
      const [ns, group, type, node, ...rest] = topic.split('/');
      if (ns !== NS || group === undefined || type === undefined) return false;
      if (group === 'STATE') return node === undefined && any(who, MqttPerm.updateOwnState);
      if (node === undefined || rest.length > 1) return false;
      const owner = ownerOf(group, node);
      if (owner === undefined) return OWN_TYPES.has(type) || COMMAND_TYPES.has(type);
      if (OWN_TYPES.has(type)) return owner === who.uuid;
      if (COMMAND_TYPES.has(type)) return auth.check(who, MqttPerm.issueCommands, owner, false);
      return false;
    },
    maySubscribe(who, filter) {
      if (who.root || whole(who)) return true;
      const [ns, group, type, node] = filter.split('/');
      if (ns !== NS || wild(group)) return false;
      if (group === 'STATE') return any(who, MqttPerm.readAllStates) || isNode(who.uuid);
      if (type === '#' || wild(node)) return false;
      const owner = ownerOf(group!, node!);
      if (owner === undefined) return true;
      return owner === who.uuid || auth.check(who, MqttPerm.readNode, owner, false);
    },
  };
}
