/**
 * Per-installation objects of the embedded core. A real installation creates
 * these at install time with random UUIDs and lists them in its ServiceConfig;
 * the embedded core uses fixed ones so that its data is the same everywhere.
 */
export const Local = {
  repoGroup: {
    cluster: '18f5b912-a01d-40b3-a69f-278e5cb018e0',
    shared: 'd30badd3-b551-4587-95f2-137e6b1c6cce',
  },
  repo: { helmCharts: '4342a9a6-8d88-493a-9da9-98e344112674' },
  role: {
    edgeFlux: '193ffd7a-ec1f-4e6e-986f-f21c0baaa0a7',
    edgeKrbkeys: 'fc48fdbe-3e8c-48f8-b0ed-107cb663e52d',
    edgeSync: '138e19b9-f350-4619-9d88-38f024eceec0',
    edgeMonitor: '1df1a070-01b2-4d80-9c82-d23ea4a587c3',
  },
  chart: { cluster: 'f767facc-d996-48d9-926b-f7625defd8f5' },
  account: {
    admin: '988e8e5e-6d71-47bc-9a60-bbb8d20aa197',
    clusterManager: 'fef9052e-a8a0-4299-b0f0-c1f1791a0ff4',
  },
} as const;

/** Well-known Factory+ UUIDs the seed refers to (the same in every installation). */
export const Known = {
  class: {
    r1: '04a1c90d-2295-4cbe-b33a-74eded62cbf1',
    r2: '705888ce-53fa-434d-afee-274b331d4642',
    individual: '2494ae9b-cd87-4c01-98db-437a303b43e9',
    application: 'd319bd87-f42b-4b66-be4f-f82ff48b93f0',
    configEntry: '86d6f3d0-1c9c-11f1-9d4d-3b787922d771',
    principal: '11614546-b6d7-11ef-aebd-8fbb45451d7c',
    humanUser: '8b3e8f35-78e5-4f93-bf21-7238bcb2ba9d',
    centralService: 'e463b4ae-a322-46cc-8976-4ba76838e908',
    edgeService: '97756c9a-38e6-4238-b78c-3df6f227a6c9',
    serviceRole: 'b419cbc2-ab0f-4311-bd9e-f0591f7e88cb',
    edgeRole: '3ba1d68e-ccf5-11ef-82d9-ef32470538b1',
    permission: '8ae784bb-c4b5-4995-9bf6-799b3c7f21ad',
    servicePermSet: 'b7f0c2f4-ccf5-11ef-be77-777cd4e8cb41',
    gitRepo: 'd25f2afc-1ab8-4d27-b51b-d02314624e3e',
    gitRepoGroup: 'b03d4dfe-7e78-4252-8e62-af594cf316c9',
    helmChart: 'f9be0334-0ff7-43d3-9d8a-188d3e4d472b',
    k8sResourceKind: '487c20bc-d4d8-11f0-b591-7fa91b119c9d',
    clusterGroups: '979f7fd9-bbc7-4810-a774-6082c7394db6',
    serviceFunction: '265d481f-87a7-4f93-8fc6-53fa64dc11bb',
  },
  role: { clusterManager: '26d192cf-73c1-4c14-93cf-1e63743bab08' },
  permGroup: { clusters: '9e07fd33-6400-4662-92c4-4dff1f61f990' },
  perm: {
    readAcl: 'ba566181-0e8a-405b-b16e-3fb89130fbee',
    manageAcl: '3a41f5ce-fc08-4669-9762-ec9e71061168',
    manageKerberos: '327c4cc8-9c46-4e1e-bb6b-257ace37b0f6',
    readConfig: '4a339562-cd57-408d-9d1a-6529a383ea4b',
    writeConfig: '6c799ccb-d2ad-4715-a2a7-3c8728d6c0bf',
    createObject: 'ae09e2ba-50ef-11f0-ac03-1f9f5e6548be',
    createSpecificObject: 'e3491b9c-50f1-11f0-8e16-e75c8f93227b',
    writeMembers: 'c2759f6e-50ef-11f0-8730-ef0ba0514a0e',
    writeMemberships: 'e08d89bc-50ef-11f0-8352-83e3d3d35028',
    deleteObject: '6957174b-7b08-45ca-ac5c-c03ab6928a6e',
    readMembers: 'd4fd61da-50ef-11f0-ad24-335234e4c8a2',
  },
  special: {
    mine: '724c0316-4cfd-11f0-b355-0b70840faae8',
    wildcard: '00000000-0000-0000-0000-000000000000',
  },
  serviceConfigManager: '619eecab-742d-4824-8b97-bcae472e5c04',
  cmdesc: {
    service: '78ea7071-24ac-4916-8351-aa3e549d8ccd',
    commandDefinitionApp: '60e99f28-67fe-4344-a6ab-b1edb8b8e810',
    rebirth: 'fbb9c25d-386d-4966-a325-f16471d9f7be',
  },
} as const;
