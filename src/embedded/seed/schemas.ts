import type { Json } from '../../lib/merge-patch.js';

/** Schemas of the apps the Cluster Manager uses, as the Config Store validates them. */
export function appSchemas(apps: {
  clusterConfig: string;
  setupStatus: string;
  fluxTemplate: string;
  bootstrapTemplate: string;
  gitRepoConfig: string;
  helmChartTemplate: string;
  k8sTemplate: string;
  info: string;
  sparkplugAddress: string;
}): Record<string, Json> {
  return {
    [apps.clusterConfig]: {
      title: 'Edge cluster configuration',
      type: 'object',
      required: ['name', 'namespace'],
      additionalProperties: false,
      properties: {
        name: { type: 'string', description: 'Cluster name; used in Sparkplug groups, repo paths and account names.' },
        namespace: { type: 'string', description: 'Kubernetes namespace the edge components run in.' },
        chart: { type: 'string', format: 'uuid', description: 'Helm chart template of the cluster deployment.' },
        bare: { type: 'boolean', default: false, description: 'Leave Flux itself unmanaged.' },
        values: {
          type: 'object',
          additionalProperties: true,
          description: 'Helm values merged over the chart defaults.',
        },
      },
    },
    [apps.setupStatus]: {
      title: 'Edge cluster setup status (private to the Cluster Manager)',
      type: 'object',
      additionalProperties: true,
    },
    [apps.fluxTemplate]: {
      title: 'Edge cluster Flux template',
      description: 'File name -> list of manifest templates; strings are expanded as {{templates}}.',
      type: 'object',
      required: ['self-link.yaml'],
      additionalProperties: {
        type: 'array',
        items: {
          oneOf: [
            { type: 'object', required: ['apiVersion', 'kind'] },
            { type: 'string', pattern: '^\\{\\{.*\\}\\}$' },
          ],
        },
      },
    },
    [apps.bootstrapTemplate]: {
      title: 'Edge cluster bootstrap script template',
      type: 'object',
      required: ['files', 'wrapper'],
      additionalProperties: false,
      properties: {
        files: { type: 'object', additionalProperties: { type: 'string' } },
        wrapper: {
          type: 'string',
          description: 'Shell wrapper; {{files}} becomes the commands that unpack the files.',
        },
      },
    },
    [apps.gitRepoConfig]: {
      title: 'Git repository configuration',
      type: 'object',
      required: ['path'],
      additionalProperties: false,
      properties: {
        path: { type: 'string', pattern: '^[^/]+/[^/]+$' },
        pull: { type: 'object' },
        hooks: { type: 'object' },
      },
    },
    [apps.helmChartTemplate]: {
      title: 'Helm chart template',
      type: 'object',
      required: ['chart'],
      properties: {
        chart: { type: 'string' },
        prefix: { type: 'string' },
        source: { type: 'string' },
        values: { type: 'object' },
      },
    },
    [apps.k8sTemplate]: {
      title: 'Kubernetes resource template',
      type: 'object',
      required: ['template'],
      properties: {
        resources: { type: 'array', items: { type: 'object', required: ['apiVersion', 'kind'] } },
        template: { type: 'object' },
      },
    },
    [apps.info]: {
      title: 'General information',
      type: 'object',
      properties: { name: { type: 'string' }, deleted: { type: 'boolean' } },
    },
    [apps.sparkplugAddress]: {
      title: 'Sparkplug address',
      type: 'object',
      required: ['group_id'],
      additionalProperties: false,
      properties: {
        group_id: { type: 'string', pattern: '^[^/#+]+$' },
        node_id: { type: 'string', pattern: '^[^/#+]+$' },
        device_id: { type: 'string', pattern: '^[^/#+]+$' },
      },
    },
  };
}
