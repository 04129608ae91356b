import type { Logger } from 'pino';
import type { BootstrapTokens } from '../bootstrap/token.js';
import type { Manager } from '../manager.js';
import type { Authenticator } from './authn.js';
import type { AclChecker } from './authz.js';
import type { EventHub, EventStreamOptions } from './events.js';
import type { Metrics } from './metrics.js';
import type { TokenStore } from '../lib/tokens.js';

/** What the HTTP routes work with. */
export interface ApiDeps {
  manager: Manager;
  authn: Authenticator;
  acl: AclChecker;
  tokens: TokenStore;
  bootstrapTokens: BootstrapTokens;
  metrics: Metrics;
  /** Base URL clients use to reach this service (bootstrap URLs are built on it). */
  externalUrl: () => string;
  version: string;
  log: Logger;
  now?: () => Date;
  /** Timings of `GET /v1/events` other than its cap (defaults: heartbeat and ACL recheck every 15 s). */
  eventStream?: Omit<EventStreamOptions, 'maxStreams'>;
  /** The live feed, set by createApp: closing it ends every stream. */
  events?: EventHub;
}
