/**
 * Which broker permission each MQTT topic of the Cluster Manager needs, in
 * the words of a Factory+ installation. ACS brokers build their ACLs from
 * Auth grants of the MQTT permissions below (the *MQTT permission template*
 * app expands each into topic patterns for the grant's target), so a refusal
 * is fixed by a grant, and a message that names the grant saves the operator
 * from reading the broker's ACL.
 */

export interface MqttPermission {
  name: string;
  uuid: string;
  /** What the grant gives, and on which target. */
  scope: string;
}

export const MQTT_PERMISSIONS = {
  participateAsNode: {
    name: 'Participate as Node',
    uuid: 'a1314953-8226-44f4-8a3e-e87b09310579',
    scope:
      'on the account itself (Self; the Sparkplug Node role grants it): publish its own N* topics and subscribe to its NCMD',
  },
  representDevices: {
    name: 'Represent Devices',
    uuid: 'e82456b3-a7d9-4971-9d8c-fd0be4545ab4',
    scope:
      'on the account itself (Self; the Sparkplug Node role grants it): publish its D* topics and subscribe to its DCMD',
  },
  readAllStates: {
    name: 'Read all STATEs',
    uuid: '8790cf3d-b793-423c-b373-8cfcf9f63529',
    scope: 'subscribe to spBv1.0/STATE/#',
  },
  readNode: {
    name: 'Read Node',
    uuid: '046d6603-fa62-4208-9400-65d61f8b1ec4',
    scope: "on the Config Store's Sparkplug node: subscribe to its NBIRTH, NDATA and NDEATH",
  },
} as const satisfies Record<string, MqttPermission>;

/**
 * ACS grants the Cluster Manager its read of the Config Store's node through
 * this composite permission (Read node and the Rebirth command), on the
 * Config Store's device.
 */
export const EDGE_NODE_CONSUMER = { name: 'Edge Node consumer', uuid: '17a64293-b82d-4db4-af4d-63359bb62934' } as const;

/** The permission that lets the account use `topic` as the Cluster Manager does. */
export function permissionFor(topic: string): MqttPermission {
  const type = topic.split('/')[2] ?? '';
  if (topic.startsWith('spBv1.0/STATE/')) return MQTT_PERMISSIONS.readAllStates;
  if (type.startsWith('D')) return MQTT_PERMISSIONS.representDevices;
  return MQTT_PERMISSIONS.participateAsNode;
}

/** "grant Participate as Node (a1314953-…) on …" for a fix text. */
export function grantText(p: MqttPermission): string {
  return `grant the MQTT permission ${p.name} (${p.uuid}) ${p.scope}`;
}
