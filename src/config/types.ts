export type UuidProfile = 'seed' | 'acs';

/** Where change notifications come from: Sparkplug over MQTT, the Config Store's notify/v2, or MQTT falling back to notify/v2. */
export type ChangeFeedMode = 'mqtt' | 'notify' | 'auto';

export interface Uuids {
  service: { clusterManager: string; configdb: string; directory: string; auth: string; git: string; mqtt: string };
  app: {
    clusterConfig: string;
    setupStatus: string;
    edgeStatus: string;
    fluxTemplate: string;
    bootstrapTemplate: string;
    helmChartTemplate: string;
    k8sTemplate: string;
    gitRepoConfig: string;
    sparkplugAddress: string;
    info: string;
    serviceConfig: string;
    registration: string;
    configSchema: string;
  };
  class: { edgeCluster: string; edgeAccount: string };
  resource: { helmRelease: string; gitRepository: string };
  perm: { manageClusters: string; manageSecrets: string; gitPull: string; gitPush: string };
  special: { wildcard: string; factoryplus: string; serviceSchema: string; configdbDevice: string };
}

export interface EmbeddedPorts {
  directory: number;
  configdb: number;
  auth: number;
  git: number;
  mqtt: number;
  cmdesc: number;
}

export interface Config {
  profile: UuidProfile;
  dataDir: string;
  log: { level: string; pretty: boolean | null };
  http: {
    host: string;
    port: number;
    externalUrl: string | null;
    /** A second listener with only GET /metrics and no authentication, for Prometheus; null: none. */
    metricsPort?: number | null;
    tokenTtlSeconds: number;
    aclCacheSeconds: number;
    bootstrapTtlSeconds: number;
    /** Concurrent `GET /v1/events` streams (MAX_EVENT_STREAMS). */
    maxEventStreams: number;
    /** Concurrent `GET /v1/events` streams of one principal (MAX_EVENT_STREAMS_PER_CALLER). */
    maxEventStreamsPerCaller: number;
    oidc: { discoveryUrl: string | null; jwksUrl: string | null; issuer: string | null; audience: string | null };
  };
  factoryplus: {
    directoryUrl: string | null;
    username: string | null;
    password: string | null;
    mqttUrl: string | null;
    /** Service URLs that bypass the Directory lookup. */
    configdbUrl: string | null;
    authUrl: string | null;
    gitUrl: string | null;
    /** MQTT protocol level: 5, or 4 (3.1.1) for brokers without MQTT 5 such as the embedded one. */
    mqttProtocol: 4 | 5;
    organisation: string;
    realm: string;
    externalDomain: string;
    gitEmail: string;
    krbkeysImage: string;
  };
  sparkplug: { address: string | null; primaryHost: string | null; instanceUuid: string | null };
  changeFeed: ChangeFeedMode;
  reconcile: {
    resyncSeconds: number;
    /** Time a drift check may take after each resync, in seconds; 0: no drift check. */
    driftCheckSeconds: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    concurrency: number;
    /** Bounds on a configuration entry's Helm values (MAX_VALUES_DEPTH, MAX_VALUES_BYTES). */
    maxValuesDepth: number;
    maxValuesBytes: number;
  };
  embedded: {
    host: string;
    ports: EmbeddedPorts;
    adminUsername: string;
    /** MQTT packet size limits of the embedded broker, in bytes: before authentication (in all) and per packet after. */
    mqttLimits: { beforeAuth: number; afterAuth: number };
  };
  /** Failed password checks allowed per user name and per client address in a window (Basic auth, MQTT CONNECT). */
  passwordLimits: {
    failuresPerUser: number;
    failuresPerAddress: number;
    windowSeconds: number;
    refusalDelayMs: number;
  };
  uuids: Uuids;
}
