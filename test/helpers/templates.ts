import { clusterChartTemplate, fluxTemplate, helmReleaseTemplate } from '../../src/embedded/seed/templates.js';

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
