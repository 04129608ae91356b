import { loadConfig } from '../../src/config/index.js';
import { appSchemas } from '../../src/embedded/seed/schemas.js';
import { clusterChartTemplate, fluxTemplate, helmReleaseTemplate } from '../../src/embedded/seed/templates.js';
import type { Json } from '../../src/lib/merge-patch.js';

/** The embedded default templates, as a fresh embedded core seeds them, for a made-up installation. */
export function embeddedTemplates() {
  return {
    flux: fluxTemplate,
    helmRelease: helmReleaseTemplate,
    chart: clusterChartTemplate({
      realm: 'R.LOCAL',
      domain: 'd.local',
      directoryUrl: 'http://dir',
      edgeAccountClass: 'a',
      edgeSyncRole: 'b',
      edgeMonitorRole: 'c',
    }),
  };
}

/** The Edge cluster configuration schema the embedded core seeds. */
export function seededClusterConfigSchema(): Json {
  const { app } = loadConfig({ env: {} }).uuids;
  return appSchemas(app)[app.clusterConfig]!;
}
