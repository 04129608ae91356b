import type { Uuids } from '../../config/types.js';
import type { Json } from '../../lib/merge-patch.js';
import { Known, Local } from './local-uuids.js';
import { MqttPerm } from '../broker/topic-acl.js';
import { appSchemas } from './schemas.js';
import { bootstrapTemplate, clusterChartTemplate, fluxTemplate, helmReleaseTemplate } from './templates.js';

export interface SeedObject {
  uuid: string;
  /** Primary class. */
  class: string;
  name?: string;
  memberOf?: string[];
  subclassOf?: string[];
}

export interface SeedGrant {
  principal: string;
  permission: string;
  target: string;
  plural: boolean;
}

export interface SeedPlan {
  /** Principals with local passwords: which credential belongs to which object. */
  accounts: { admin: string; clusterManager: string; configdb: string };
  objects: SeedObject[];
  configs: Array<{ app: string; object: string; value: Json }>;
  grants: SeedGrant[];
}

export interface SeedContext {
  uuids: Uuids;
  organisation: string;
  realm: string;
  domain: string;
  /** The Directory URL edge clusters are given. */
  directoryUrl: string;
}

/**
 * What a fresh embedded core contains: the class structure, apps, schemas,
 * templates, ServiceConfig and grants that a Factory+ installation's
 * service-setup creates for the Cluster Manager, in dependency order.
 */
export function seedPlan(ctx: SeedContext): SeedPlan {
  const { uuids: u } = ctx;
  const K = Known;
  const objects: SeedObject[] = [];
  const add = (uuid: string, cls: string, name?: string, extra: Partial<SeedObject> = {}) =>
    objects.push({ uuid, class: cls, name, ...extra });

  // Rank-2 classes (classes of classes).
  for (const [uuid, name] of [
    [K.class.serviceRole, 'Service role'],
    [K.class.edgeRole, 'Edge role'],
    [K.class.servicePermSet, 'Service permission set'],
    [K.class.gitRepoGroup, 'Git repository group'],
    [K.class.k8sResourceKind, 'K8s resource kind'],
    [K.class.clusterGroups, 'Clusters-managed group'],
  ] as const)
    add(uuid, K.class.r2, name);

  // Rank-1 classes.
  add(K.class.principal, K.class.r1, 'Principal');
  for (const [uuid, name] of [
    [K.class.humanUser, 'Human user'],
    [K.class.centralService, 'Central service'],
    [K.class.edgeService, 'Edge service'],
  ] as const)
    add(uuid, K.class.r1, name, { subclassOf: [K.class.principal] });
  for (const [uuid, name] of [
    [K.class.permission, 'Permission'],
    [K.class.application, 'Application'],
    [K.class.gitRepo, 'Git repository'],
    [K.class.helmChart, 'Helm chart'],
    [u.class.edgeCluster, 'Edge cluster'],
    [K.class.serviceFunction, 'Service function'],
  ] as const)
    add(uuid, K.class.r1, name);

  add(K.role.clusterManager, K.class.serviceRole, 'Cluster manager', { subclassOf: [K.class.centralService] });
  add(K.permGroup.clusters, K.class.servicePermSet, 'Cluster manager permission', { subclassOf: [K.class.permission] });
  add(Local.role.edgeFlux, K.class.edgeRole, 'Edge flux', {
    memberOf: [K.class.clusterGroups],
    subclassOf: [K.class.edgeService],
  });
  add(Local.role.edgeKrbkeys, K.class.edgeRole, 'Edge krbkeys', {
    memberOf: [K.class.clusterGroups],
    subclassOf: [K.class.edgeService],
  });
  add(Local.role.edgeSync, K.class.edgeRole, 'Edge sync', { subclassOf: [K.class.edgeService] });
  add(Local.role.edgeMonitor, K.class.edgeRole, 'Edge monitor', { subclassOf: [K.class.edgeService] });
  add(Local.repoGroup.cluster, K.class.gitRepoGroup, 'Edge cluster repo', {
    memberOf: [K.class.clusterGroups],
    subclassOf: [K.class.gitRepo],
  });
  add(Local.repoGroup.shared, K.class.gitRepoGroup, 'Shared repo', { subclassOf: [K.class.gitRepo] });
  add(u.resource.helmRelease, K.class.k8sResourceKind, 'HelmRelease');
  add(u.resource.gitRepository, K.class.k8sResourceKind, 'GitRepository');

  // Individuals: apps, permissions, services, accounts, repos, charts.
  const apps: Array<[string, string]> = [
    [u.app.clusterConfig, 'Edge cluster configuration'],
    [u.app.setupStatus, 'Edge cluster setup status'],
    [u.app.edgeStatus, 'Edge cluster status'],
    [u.app.fluxTemplate, 'Flux template'],
    [u.app.bootstrapTemplate, 'Bootstrap script'],
    [u.app.helmChartTemplate, 'Helm chart template'],
    [u.app.k8sTemplate, 'K8s resource template'],
    [u.app.gitRepoConfig, 'Git repository configuration'],
    [u.app.sparkplugAddress, 'Sparkplug address'],
    [u.app.info, 'General information'],
    [u.app.serviceConfig, 'Service setup'],
    [u.app.registration, 'Object registration'],
    [u.app.configSchema, 'Application config schema'],
    [K.cmdesc.commandDefinitionApp, 'Command definition'],
  ];
  for (const [uuid, name] of apps) add(uuid, K.class.application, name);

  add(u.perm.manageClusters, K.permGroup.clusters, 'Manage clusters');
  add(u.perm.manageSecrets, K.permGroup.clusters, 'Manage secrets');
  for (const [uuid, name] of [
    [u.perm.gitPull, 'Git: Pull from repo'],
    [u.perm.gitPush, 'Git: Push to repo'],
    [K.perm.readAcl, 'Auth: Read ACL'],
    [K.perm.manageAcl, 'Auth: Manage ACL'],
    [K.perm.manageKerberos, 'Auth: Manage Kerberos mappings'],
    [K.perm.readConfig, 'ConfigDB: Read config'],
    [K.perm.writeConfig, 'ConfigDB: Write config'],
    [K.perm.createObject, 'ConfigDB: Create object'],
    [K.perm.createSpecificObject, 'ConfigDB: Create specific object'],
    [K.perm.writeMembers, 'ConfigDB: Write members'],
    [K.perm.writeMemberships, 'ConfigDB: Write memberships'],
    [K.perm.deleteObject, 'ConfigDB: Delete object'],
    [K.perm.readMembers, 'ConfigDB: Read members'],
    [K.cmdesc.rebirth, 'CmdEsc: Rebirth'],
  ] as const)
    add(uuid, K.class.permission, name);

  for (const [uuid, name] of [
    [u.service.clusterManager, 'Cluster Manager'],
    [u.service.configdb, 'Config Store'],
    [u.service.directory, 'Directory'],
    [u.service.auth, 'Auth'],
    [u.service.git, 'Git server'],
    [u.service.mqtt, 'MQTT'],
    [K.serviceConfigManager, 'Manager'],
    [K.cmdesc.service, 'Command Escalation'],
  ] as const)
    add(uuid, K.class.serviceFunction, name);

  add(Local.account.admin, K.class.humanUser, 'Administrator');
  add(Local.account.clusterManager, K.class.centralService, 'Cluster Manager', { memberOf: [K.role.clusterManager] });
  add(u.special.configdbDevice, K.class.centralService, 'Config Store');
  add(Local.repo.helmCharts, Local.repoGroup.shared, 'Edge Helm charts');
  add(Local.chart.cluster, K.class.helmChart, 'Edge cluster');

  const configs: SeedPlan['configs'] = [];
  const put = (app: string, object: string, value: Json) => configs.push({ app, object, value });
  for (const [app, schema] of Object.entries(appSchemas(u.app))) put(u.app.configSchema, app, schema);
  for (const o of objects) if (o.name) put(u.app.info, o.uuid, { name: o.name });
  put(u.app.gitRepoConfig, Local.repo.helmCharts, { path: 'shared/helm' });
  put(u.app.fluxTemplate, u.app.fluxTemplate, fluxTemplate);
  put(u.app.bootstrapTemplate, u.app.bootstrapTemplate, bootstrapTemplate);
  put(u.app.k8sTemplate, u.resource.helmRelease, helmReleaseTemplate);
  put(
    u.app.helmChartTemplate,
    Local.chart.cluster,
    clusterChartTemplate({
      realm: ctx.realm,
      domain: ctx.domain,
      directoryUrl: ctx.directoryUrl,
      edgeAccountClass: K.class.edgeService,
      edgeSyncRole: Local.role.edgeSync,
      edgeMonitorRole: Local.role.edgeMonitor,
    }),
  );
  put(u.app.serviceConfig, u.service.clusterManager, {
    group: {
      cluster: { path: 'cluster', uuid: Local.repoGroup.cluster },
      flux: { uuid: Local.role.edgeFlux },
      krbkeys: { uuid: Local.role.edgeKrbkeys },
      shared: { uuid: Local.repoGroup.shared },
    },
    helm: { cluster: Local.chart.cluster },
    repo: { helm: { uuid: Local.repo.helmCharts } },
  });
  put(u.app.serviceConfig, K.serviceConfigManager, { helm: { cluster: Local.chart.cluster } });
  // What the Rebirth permission lets its holders ask for through Command Escalation, as ACS defines it.
  put(K.cmdesc.commandDefinitionApp, K.cmdesc.rebirth, [
    { name: 'Node Control/Rebirth', type: 'Boolean' },
    { name: 'Device Control/Rebirth', type: 'Boolean' },
  ]);
  const serviceGroup = `${ctx.organisation}-Service-Core`;
  put(u.app.sparkplugAddress, u.special.configdbDevice, { group_id: serviceGroup, node_id: 'Config_DB' });
  put(u.app.sparkplugAddress, Local.account.clusterManager, { group_id: serviceGroup, node_id: 'Cluster_Manager' });

  // The Cluster Manager's role gets what a Factory+ installation grants it,
  // plus Delete object on what it owns so that deleting a cluster can remove
  // the accounts it created, and Create specific object on the account class
  // so that an account's UUID is recorded before the account exists and a
  // crash can never leave an unrecorded account behind.
  const role = K.role.clusterManager;
  const grants: SeedGrant[] = [];
  const grant = (principal: string, permission: string, target: string, plural = false) =>
    grants.push({ principal, permission, target, plural });
  grant(role, K.perm.readAcl, K.permGroup.clusters, true);
  grant(role, K.perm.manageKerberos, K.special.wildcard);
  grant(role, K.perm.manageAcl, u.perm.gitPull);
  for (const app of [
    u.app.info,
    u.app.serviceConfig,
    u.app.clusterConfig,
    u.app.setupStatus,
    u.app.edgeStatus,
    u.app.fluxTemplate,
    u.app.helmChartTemplate,
    u.app.k8sTemplate,
    u.app.bootstrapTemplate,
    u.app.sparkplugAddress,
    u.app.gitRepoConfig,
    u.app.registration,
  ])
    grant(role, K.perm.readConfig, app);
  for (const app of [u.app.info, u.app.setupStatus, u.app.gitRepoConfig, u.app.sparkplugAddress])
    grant(role, K.perm.writeConfig, app);
  grant(role, K.perm.createObject, u.class.edgeAccount);
  grant(role, K.perm.createSpecificObject, u.class.edgeAccount);
  grant(role, K.perm.writeMemberships, K.special.mine);
  grant(role, K.perm.writeMemberships, u.class.edgeCluster, true);
  grant(role, K.perm.writeMembers, K.class.clusterGroups, true);
  grant(role, K.perm.deleteObject, K.special.mine);
  grant(role, u.perm.gitPull, Local.repoGroup.shared, true);
  grant(role, u.perm.gitPull, Local.repoGroup.cluster, true);
  grant(role, u.perm.gitPush, Local.repoGroup.cluster, true);
  // The change feed listens to the Config Store's node (embedded broker topic permissions).
  grant(role, MqttPerm.readNode, u.special.configdbDevice);
  grant(Local.role.edgeFlux, u.perm.gitPull, Local.repoGroup.shared, true);
  // The administrator may manage every cluster and its secrets.
  grant(Local.account.admin, K.permGroup.clusters, K.special.wildcard);

  return {
    accounts: {
      admin: Local.account.admin,
      clusterManager: Local.account.clusterManager,
      configdb: u.special.configdbDevice,
    },
    objects,
    configs,
    grants,
  };
}
