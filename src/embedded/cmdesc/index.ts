/**
 * The embedded Command Escalation service: `POST /v1/address/:group/:node`
 * (and `/:device`) with `{name, type?, value}` publishes that metric in an
 * NCMD (DCMD) on the caller's behalf, as ACS's acs-cmdesc does. ACS clients
 * (`ServiceClient.CmdEsc.rebirth`, which sparkplug-app calls when it has not
 * seen a birth) use it to ask a node or device to birth again.
 *
 * Authorisation as ACS decides it: the root principal may send anything it
 * gives a type for; anyone else needs a grant of a permission that has a
 * Command definition entry (the metric names and types it allows) on the
 * target's UUID (its Sparkplug address entry) or on the wildcard. A node
 * target also covers its devices.
 */
import Router from '@koa/router';
import type Koa from 'koa';
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { readJsonBody } from '../../lib/body.js';
import { HttpError } from '../../lib/http-errors.js';
import {
  encodePayload,
  isScalarType,
  topic,
  type ScalarTypeName,
  type SparkplugMetric,
} from '../../lib/sparkplug/index.js';
import { WILDCARD } from '../../lib/uuid.js';
import type { AuthModel } from '../auth/model.js';
import { mountRouter } from '../auth/router-kit.js';
import type { ConfigStore } from '../configdb/store.js';
import { Known } from '../seed/local-uuids.js';
import { createServiceApp, principalOf, type Ctx, type State, type TokenStore } from '../http-kit.js';

export const CMDESC_SERVICE = Known.cmdesc.service;
/** App: Command definition; entries map a permission to the metrics it lets a principal set. */
const COMMAND_DEFINITION_APP = Known.cmdesc.commandDefinitionApp;

interface Address {
  group: string;
  node: string;
  device?: string;
}

interface Tag {
  name: string;
  type?: string;
}

export interface CmdEscDeps {
  auth: AuthModel;
  store: ConfigStore;
  tokens: TokenStore;
  log: Logger;
  /** App holding Sparkplug address entries. */
  sparkplugAddressApp: string;
  /** The client commands are published with; undefined while MQTT is not up. */
  mqtt: () => MqttClient | undefined;
}

/** `a` covers `to` when it is the same address, or the node `to` is a device of. */
function covers(a: { group_id?: unknown; node_id?: unknown; device_id?: unknown }, to: Address): boolean {
  if (a.group_id !== to.group || a.node_id !== to.node) return false;
  return a.device_id === undefined || a.device_id === null || a.device_id === to.device;
}

export function createCmdEscApp(deps: CmdEscDeps): Koa {
  const app = createServiceApp({
    serviceUuid: CMDESC_SERVICE,
    version: '1.0.0',
    application: 'embedded-cmdesc',
    auth: deps.auth,
    tokens: deps.tokens,
    log: deps.log,
  });
  const router = new Router<State>();

  /** The metrics the caller may set on `to`, from its grants of permissions with a Command definition. */
  const allowedTags = (principal: string, to: Address): Tag[] => {
    const tags: Tag[] = [];
    for (const e of deps.auth.acl(principal)) {
      const def = deps.store.get(COMMAND_DEFINITION_APP, e.permission)?.json;
      if (!Array.isArray(def)) continue;
      const addr = deps.store.get(deps.sparkplugAddressApp, e.target)?.json as Record<string, unknown> | undefined;
      if (e.target !== WILDCARD && !(addr && covers(addr, to))) continue;
      for (const t of def as unknown[])
        if (t && typeof t === 'object' && typeof (t as Tag).name === 'string') tags.push(t as Tag);
    }
    return tags;
  };

  const command = async (ctx: Ctx, to: Address): Promise<void> => {
    if (!ctx.is('application/json')) throw new HttpError(415, 'the body must be JSON');
    const body = (await readJsonBody(ctx)) as { name?: unknown; type?: unknown; value?: unknown } | null;
    if (!body || typeof body.name !== 'string' || body.value === undefined) {
      throw new HttpError(422, 'the body must be {"name": string, "type"?: string, "value": ...}');
    }
    if (body.type !== undefined && (typeof body.type !== 'string' || !isScalarType(body.type))) {
      throw new HttpError(422, `unknown Sparkplug type ${String(body.type)}`);
    }
    const caller = principalOf(ctx);
    let type = body.type as ScalarTypeName | undefined;
    // As ACS: root rights only with an explicit type, since nothing else says which type to send.
    if (!(caller.root && type !== undefined)) {
      const tag = allowedTags(caller.uuid, to).find(
        (t) => t.name === body.name && (type === undefined || t.type === undefined || t.type === type),
      );
      if (!tag) throw new HttpError(403, `not permitted to set ${body.name} on ${Object.values(to).join('/')}`);
      if (type === undefined) type = (tag.type ?? 'Boolean') as ScalarTypeName;
      else if (tag.type !== undefined && tag.type !== type)
        throw new HttpError(409, `${body.name} is of type ${tag.type}`);
    }
    const client = deps.mqtt();
    if (!client?.connected) throw new HttpError(503, 'MQTT is not connected');
    const now = Date.now();
    const metric = { name: body.name, type, value: body.value, timestamp: now } as SparkplugMetric;
    let payload: Uint8Array;
    try {
      payload = encodePayload({ timestamp: now, metrics: [metric] });
    } catch (e) {
      throw new HttpError(409, `cannot send ${body.name} as ${type}: ${(e as Error).message}`);
    }
    const t = to.device === undefined ? topic(to.group, 'NCMD', to.node) : topic(to.group, 'DCMD', to.node, to.device);
    await client.publishAsync(t, Buffer.from(payload), { qos: 0 });
    deps.log.info({ from: caller.uuid, to: t, metric: body.name }, 'command sent');
    ctx.status = 200;
  };

  const address = (p: Record<string, string | undefined>): Address => {
    const a: Address = { group: p.group!, node: p.node! };
    if (p.device !== undefined) a.device = p.device;
    try {
      topic(a.group, a.device === undefined ? 'NCMD' : 'DCMD', a.node, a.device);
    } catch {
      throw new HttpError(410, 'not a valid Sparkplug address');
    }
    return a;
  };
  router.post('/v1/address/:group/:node', (ctx) => command(ctx, address(ctx.params)));
  router.post('/v1/address/:group/:node/:device', (ctx) => command(ctx, address(ctx.params)));

  mountRouter(app, router);
  return app;
}
