/**
 * Environment variables that override configuration values. Where the original
 * Cluster Manager had a variable for the same thing its name is accepted too.
 */
export interface EnvBinding {
  names: string[];
  path: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'nullable-string';
  description: string;
}

export const envBindings: EnvBinding[] = [
  {
    names: ['DATA_DIR'],
    path: 'dataDir',
    type: 'string',
    description: 'Directory for durable state (embedded core data, bdSeq, keys)',
  },
  { names: ['LOG_LEVEL'], path: 'log.level', type: 'string', description: 'fatal|error|warn|info|debug|trace|silent' },
  {
    names: ['LOG_PRETTY'],
    path: 'log.pretty',
    type: 'boolean',
    description: 'Readable logs (default: when stdout is a terminal)',
  },
  { names: ['HTTP_HOST'], path: 'http.host', type: 'string', description: 'HTTP listen address' },
  { names: ['PORT', 'HTTP_PORT'], path: 'http.port', type: 'integer', description: 'HTTP listen port' },
  {
    names: ['METRICS_PORT'],
    path: 'http.metricsPort',
    type: 'integer',
    description: 'Port of a second listener serving only GET /metrics, without authentication',
  },
  {
    names: ['EXTERNAL_URL'],
    path: 'http.externalUrl',
    type: 'nullable-string',
    description: 'Base URL clients use to reach this service (bootstrap URLs)',
  },
  {
    names: ['TOKEN_TTL_SECONDS'],
    path: 'http.tokenTtlSeconds',
    type: 'number',
    description: 'Lifetime of tokens from POST /token',
  },
  {
    names: ['ACL_CACHE_SECONDS'],
    path: 'http.aclCacheSeconds',
    type: 'number',
    description: "How long a caller's ACL is cached",
  },
  {
    names: ['BOOTSTRAP_URL_TTL_SECONDS'],
    path: 'http.bootstrapTtlSeconds',
    type: 'number',
    description: 'Lifetime of bootstrap URLs',
  },
  {
    names: ['MAX_EVENT_STREAMS'],
    path: 'http.maxEventStreams',
    type: 'integer',
    description: 'Concurrent GET /v1/events streams (0: the stream is off)',
  },
  {
    names: ['MAX_EVENT_STREAMS_PER_CALLER'],
    path: 'http.maxEventStreamsPerCaller',
    type: 'integer',
    description: 'Concurrent GET /v1/events streams of one principal',
  },
  {
    names: ['OIDC_DISCOVERY_URL'],
    path: 'http.oidc.discoveryUrl',
    type: 'nullable-string',
    description:
      'OIDC issuer (or its /.well-known/openid-configuration) whose JWTs are accepted as bearer tokens; gives the JWKS and issuer',
  },
  {
    names: ['OIDC_JWKS_URL'],
    path: 'http.oidc.jwksUrl',
    type: 'nullable-string',
    description: 'JWKS of an OIDC issuer whose JWTs are accepted as bearer tokens (wins over the discovery document)',
  },
  {
    names: ['OIDC_ISSUER'],
    path: 'http.oidc.issuer',
    type: 'nullable-string',
    description: 'Required iss of accepted JWTs (wins over the discovery document)',
  },
  {
    names: ['OIDC_AUDIENCE'],
    path: 'http.oidc.audience',
    type: 'nullable-string',
    description: 'Required aud of accepted JWTs',
  },
  {
    names: ['DIRECTORY_URL'],
    path: 'factoryplus.directoryUrl',
    type: 'nullable-string',
    description: 'Factory+ Directory; when set the embedded core is not started',
  },
  {
    names: ['SERVICE_USERNAME'],
    path: 'factoryplus.username',
    type: 'nullable-string',
    description: 'Service account for Factory+ services',
  },
  {
    names: ['SERVICE_PASSWORD'],
    path: 'factoryplus.password',
    type: 'nullable-string',
    description: 'Password of the service account',
  },
  {
    names: ['MQTT_URL'],
    path: 'factoryplus.mqttUrl',
    type: 'nullable-string',
    description: 'MQTT broker (default: from the Directory)',
  },
  {
    names: ['CONFIGDB_URL'],
    path: 'factoryplus.configdbUrl',
    type: 'nullable-string',
    description: 'Config Store URL (default: from the Directory)',
  },
  {
    names: ['AUTHN_URL', 'AUTH_URL'],
    path: 'factoryplus.authUrl',
    type: 'nullable-string',
    description: 'Auth service URL (default: from the Directory)',
  },
  {
    names: ['GIT_URL'],
    path: 'factoryplus.gitUrl',
    type: 'nullable-string',
    description: 'Git server URL (default: from the Directory)',
  },
  {
    names: ['MQTT_PROTOCOL'],
    path: 'factoryplus.mqttProtocol',
    type: 'integer',
    description: 'MQTT protocol level: 5, or 4 for an MQTT 3.1.1 broker',
  },
  {
    names: ['ORGANISATION_PREFIX'],
    path: 'factoryplus.organisation',
    type: 'string',
    description: 'Prefix of Sparkplug groups',
  },
  { names: ['REALM'], path: 'factoryplus.realm', type: 'string', description: 'Kerberos realm of account identities' },
  {
    names: ['EXTERNAL_DOMAIN'],
    path: 'factoryplus.externalDomain',
    type: 'string',
    description: 'Base domain of the installation',
  },
  { names: ['GIT_EMAIL'], path: 'factoryplus.gitEmail', type: 'string', description: 'Author e-mail of commits' },
  {
    names: ['KRBKEYS_IMAGE'],
    path: 'factoryplus.krbkeysImage',
    type: 'string',
    description: 'Image of the edge bootstrap pod',
  },
  {
    names: ['SPARKPLUG_ADDRESS'],
    path: 'sparkplug.address',
    type: 'nullable-string',
    description: 'Sparkplug group/node of this service',
  },
  {
    names: ['SPARKPLUG_PRIMARY_HOST'],
    path: 'sparkplug.primaryHost',
    type: 'nullable-string',
    description: 'Sparkplug primary host id to wait for before births',
  },
  {
    names: ['SPARKPLUG_INSTANCE_UUID'],
    path: 'sparkplug.instanceUuid',
    type: 'nullable-string',
    description:
      "Instance_UUID of the Sparkplug node (default: the service account's principal UUID, from Auth whoami)",
  },
  {
    names: ['CHANGE_FEED'],
    path: 'changeFeed',
    type: 'string',
    description:
      "Source of change notifications: mqtt, notify (the Config Store's notify/v2) or auto (MQTT, falling back to notify/v2)",
  },
  {
    names: ['RESYNC_SECONDS'],
    path: 'reconcile.resyncSeconds',
    type: 'number',
    description: 'Interval of the full resync',
  },
  {
    names: ['DRIFT_CHECK_SECONDS'],
    path: 'reconcile.driftCheckSeconds',
    type: 'number',
    description:
      'Time the drift check after each resync may take; repos not reached are checked first next time (0: no drift check)',
  },
  {
    names: ['MAX_VALUES_DEPTH'],
    path: 'reconcile.maxValuesDepth',
    type: 'integer',
    description: "Deepest nesting of a cluster's Helm values accepted (deeper: InvalidValues)",
  },
  {
    names: ['MAX_VALUES_BYTES'],
    path: 'reconcile.maxValuesBytes',
    type: 'integer',
    description: "Largest size of a cluster's Helm values as JSON, in bytes (larger: InvalidValues)",
  },
  {
    names: ['EMBEDDED_HOST'],
    path: 'embedded.host',
    type: 'string',
    description: 'Listen address of the embedded core',
  },
  {
    names: ['EMBEDDED_DIRECTORY_PORT'],
    path: 'embedded.ports.directory',
    type: 'integer',
    description: 'Embedded Directory port',
  },
  {
    names: ['EMBEDDED_CONFIGDB_PORT'],
    path: 'embedded.ports.configdb',
    type: 'integer',
    description: 'Embedded Config Store port',
  },
  { names: ['EMBEDDED_AUTH_PORT'], path: 'embedded.ports.auth', type: 'integer', description: 'Embedded Auth port' },
  {
    names: ['EMBEDDED_GIT_PORT'],
    path: 'embedded.ports.git',
    type: 'integer',
    description: 'Embedded Git server port',
  },
  {
    names: ['EMBEDDED_MQTT_PORT'],
    path: 'embedded.ports.mqtt',
    type: 'integer',
    description: 'Embedded MQTT broker port',
  },
  {
    names: ['EMBEDDED_CMDESC_PORT'],
    path: 'embedded.ports.cmdesc',
    type: 'integer',
    description: 'Embedded Command Escalation port',
  },
  {
    names: ['EMBEDDED_MQTT_MAX_CONNECT_BYTES'],
    path: 'embedded.mqttLimits.beforeAuth',
    type: 'integer',
    description: 'Embedded broker: bytes a client may send before it is authenticated',
  },
  {
    names: ['EMBEDDED_MQTT_MAX_PACKET_BYTES'],
    path: 'embedded.mqttLimits.afterAuth',
    type: 'integer',
    description: 'Embedded broker: largest packet (PUBLISH) of an authenticated client',
  },
  {
    names: ['PASSWORD_FAILURES_PER_USER'],
    path: 'passwordLimits.failuresPerUser',
    type: 'integer',
    description: 'Failed password checks per user name in a window before 429',
  },
  {
    names: ['PASSWORD_FAILURES_PER_ADDRESS'],
    path: 'passwordLimits.failuresPerAddress',
    type: 'integer',
    description: 'Failed password checks per client address in a window before 429',
  },
  {
    names: ['PASSWORD_FAILURE_WINDOW_SECONDS'],
    path: 'passwordLimits.windowSeconds',
    type: 'number',
    description: 'Window of the password failure limits',
  },
  {
    names: ['PASSWORD_REFUSAL_DELAY_MS'],
    path: 'passwordLimits.refusalDelayMs',
    type: 'integer',
    description: 'How long a refusal made without a check (locked, or a known wrong credential) is held',
  },
];
