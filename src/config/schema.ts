const uuid = {
  type: 'string',
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
};
const port = { type: 'integer', minimum: 0, maximum: 65535 };
const url = { type: 'string', pattern: '^[a-z][a-z0-9+.-]*://[^\\s]+$' };
const nullableUrl = { anyOf: [url, { type: 'null' }] };
const nullableHttpUrl = { anyOf: [{ type: 'string', pattern: '^https?://[^\\s]+$' }, { type: 'null' }] };
const nullableString = { type: ['string', 'null'] };

function uuidGroup(keys: string[]) {
  return {
    type: 'object',
    required: keys,
    additionalProperties: false,
    properties: Object.fromEntries(keys.map((k) => [k, uuid])),
  };
}

/** JSON schema of the merged configuration; every value is checked before start. */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'profile',
    'dataDir',
    'log',
    'http',
    'factoryplus',
    'sparkplug',
    'changeFeed',
    'reconcile',
    'embedded',
    'passwordLimits',
    'uuids',
  ],
  properties: {
    profile: { enum: ['seed', 'acs'] },
    dataDir: { type: 'string', minLength: 1 },
    log: {
      type: 'object',
      additionalProperties: false,
      required: ['level', 'pretty'],
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
        pretty: { type: ['boolean', 'null'] },
      },
    },
    http: {
      type: 'object',
      additionalProperties: false,
      required: [
        'host',
        'port',
        'externalUrl',
        'tokenTtlSeconds',
        'aclCacheSeconds',
        'bootstrapTtlSeconds',
        'maxEventStreams',
        'maxEventStreamsPerCaller',
        'oidc',
      ],
      properties: {
        host: { type: 'string', minLength: 1 },
        port,
        externalUrl: nullableUrl,
        metricsPort: { anyOf: [port, { type: 'null' }] },
        tokenTtlSeconds: { type: 'number', minimum: 60 },
        aclCacheSeconds: { type: 'number', minimum: 0, maximum: 3600 },
        bootstrapTtlSeconds: { type: 'number', minimum: 10, maximum: 604800 },
        maxEventStreams: { type: 'integer', minimum: 0, maximum: 100000 },
        maxEventStreamsPerCaller: { type: 'integer', minimum: 1, maximum: 100000 },
        oidc: {
          type: 'object',
          additionalProperties: false,
          required: ['discoveryUrl', 'jwksUrl', 'issuer', 'audience'],
          properties: {
            discoveryUrl: nullableHttpUrl,
            jwksUrl: nullableHttpUrl,
            issuer: nullableString,
            audience: nullableString,
          },
        },
      },
    },
    factoryplus: {
      type: 'object',
      additionalProperties: false,
      required: [
        'directoryUrl',
        'username',
        'password',
        'mqttUrl',
        'mqttProtocol',
        'configdbUrl',
        'authUrl',
        'gitUrl',
        'organisation',
        'realm',
        'externalDomain',
        'gitEmail',
        'krbkeysImage',
      ],
      properties: {
        directoryUrl: nullableUrl,
        username: nullableString,
        password: nullableString,
        mqttUrl: nullableUrl,
        mqttProtocol: { enum: [4, 5] },
        configdbUrl: nullableUrl,
        authUrl: nullableUrl,
        gitUrl: nullableUrl,
        organisation: { type: 'string', pattern: '^[A-Za-z0-9_]+$' },
        realm: { type: 'string', pattern: '^[A-Za-z0-9.-]+$' },
        externalDomain: { type: 'string', pattern: '^[A-Za-z0-9.-]+(:[0-9]+)?$' },
        gitEmail: { type: 'string', pattern: '^[^@\\s]+@[^@\\s]+$' },
        krbkeysImage: { type: 'string', minLength: 1 },
      },
    },
    sparkplug: {
      type: 'object',
      additionalProperties: false,
      required: ['address', 'primaryHost', 'instanceUuid'],
      properties: {
        address: { anyOf: [{ type: 'string', pattern: '^[^/#+\\s]+/[^/#+\\s]+$' }, { type: 'null' }] },
        primaryHost: { anyOf: [{ type: 'string', pattern: '^[^/#+\\s]+$' }, { type: 'null' }] },
        instanceUuid: { anyOf: [uuid, { type: 'null' }] },
      },
    },
    changeFeed: { enum: ['mqtt', 'notify', 'auto'] },
    reconcile: {
      type: 'object',
      additionalProperties: false,
      required: [
        'resyncSeconds',
        'driftCheckSeconds',
        'backoffBaseMs',
        'backoffMaxMs',
        'concurrency',
        'maxValuesDepth',
        'maxValuesBytes',
      ],
      properties: {
        resyncSeconds: { type: 'number', exclusiveMinimum: 0 },
        // 0 turns the drift check off.
        driftCheckSeconds: { type: 'number', minimum: 0, maximum: 3600 },
        // Rendering recurses once per level: far beyond 256 the call stack is at risk.
        maxValuesDepth: { type: 'integer', minimum: 1, maximum: 256 },
        maxValuesBytes: { type: 'integer', minimum: 1024, maximum: 16 * 1024 * 1024 },
        backoffBaseMs: { type: 'integer', minimum: 1 },
        backoffMaxMs: { type: 'integer', minimum: 1 },
        concurrency: { type: 'integer', minimum: 1, maximum: 256 },
      },
    },
    embedded: {
      type: 'object',
      additionalProperties: false,
      required: ['host', 'ports', 'adminUsername', 'mqttLimits'],
      properties: {
        host: { type: 'string', minLength: 1 },
        ports: {
          type: 'object',
          additionalProperties: false,
          required: ['directory', 'configdb', 'auth', 'git', 'mqtt', 'cmdesc'],
          properties: { directory: port, configdb: port, auth: port, git: port, mqtt: port, cmdesc: port },
        },
        adminUsername: { type: 'string', pattern: '^[a-zA-Z0-9_.-]+$' },
        mqttLimits: {
          type: 'object',
          additionalProperties: false,
          required: ['beforeAuth', 'afterAuth'],
          properties: {
            beforeAuth: { type: 'integer', minimum: 1024, maximum: 268435455 },
            afterAuth: { type: 'integer', minimum: 1024, maximum: 268435455 },
          },
        },
      },
    },
    passwordLimits: {
      type: 'object',
      additionalProperties: false,
      required: ['failuresPerUser', 'failuresPerAddress', 'windowSeconds', 'refusalDelayMs'],
      properties: {
        failuresPerUser: { type: 'integer', minimum: 1 },
        failuresPerAddress: { type: 'integer', minimum: 1 },
        windowSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400 },
        refusalDelayMs: { type: 'integer', minimum: 0, maximum: 10000 },
      },
    },
    uuids: {
      type: 'object',
      additionalProperties: false,
      required: ['service', 'app', 'class', 'resource', 'perm', 'special'],
      properties: {
        service: uuidGroup(['clusterManager', 'configdb', 'directory', 'auth', 'git', 'mqtt']),
        app: uuidGroup([
          'clusterConfig',
          'setupStatus',
          'edgeStatus',
          'fluxTemplate',
          'bootstrapTemplate',
          'helmChartTemplate',
          'k8sTemplate',
          'gitRepoConfig',
          'sparkplugAddress',
          'info',
          'serviceConfig',
          'registration',
          'configSchema',
        ]),
        class: uuidGroup(['edgeCluster', 'edgeAccount']),
        resource: uuidGroup(['helmRelease', 'gitRepository']),
        perm: uuidGroup(['manageClusters', 'manageSecrets', 'gitPull', 'gitPush']),
        special: uuidGroup(['wildcard', 'factoryplus', 'serviceSchema', 'configdbDevice']),
      },
    },
  },
} as const;
