/** The OpenAPI 3.1 description of every route and answer, served at `/openapi.json`. */
export function openApiDocument(version: string): Record<string, unknown> {
  const err = (description: string) => ({
    description,
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  });
  const common = {
    400: err('Malformed UUID or parameter'),
    401: err('No or bad credentials'),
    403: err('No ACL entry for this cluster'),
    503: err('A Factory+ service the request needs cannot be reached'),
  };
  const uuid = {
    name: 'uuid',
    in: 'path',
    required: true,
    schema: { type: 'string', format: 'uuid' },
    description: 'Edge cluster UUID',
  };
  const secretPath = [
    uuid,
    {
      name: 'namespace',
      in: 'path',
      required: true,
      schema: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
    },
    { name: 'name', in: 'path', required: true, schema: { type: 'string', maxLength: 253 } },
    { name: 'key', in: 'path', required: true, schema: { type: 'string', pattern: '^[-._a-zA-Z0-9]+$' } },
  ];
  const dryrun = {
    name: 'dryrun',
    in: 'query',
    required: false,
    allowEmptyValue: true,
    schema: { type: 'string' },
    description: 'Present at all: show, write nothing',
  };
  const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
  return {
    openapi: '3.1.0',
    info: { title: 'Factory+ Cluster Manager', version },
    security: [{ basic: [] }, { bearer: [] }],
    components: {
      securitySchemes: { basic: { type: 'http', scheme: 'basic' }, bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: { error: { type: 'string' }, message: { type: 'string' } },
        },
        Status: {
          type: 'object',
          description: 'Edge cluster setup status',
          properties: {
            spec: { type: 'object' },
            ready: { type: 'boolean' },
            phase: { enum: ['pending', 'address', 'accounts', 'repo', 'ready', 'deleting', 'failed'] },
            conditions: { type: 'array' },
            history: {
              type: 'array',
              items: { $ref: '#/components/schemas/HistoryEntry' },
              description: 'Condition transitions, oldest first (absent in a status written before it was kept)',
            },
            fluxVersion: { type: 'string' },
            self_link: { type: 'string' },
            repo: { type: 'object' },
            flux: { type: 'object' },
            krbkeys: { type: 'object' },
            specHash: { type: 'string' },
            bootstrap: {
              type: 'object',
              properties: { fetches: { type: 'integer' }, lastFetch: { type: 'string', format: 'date-time' } },
            },
            secrets: { type: 'object', properties: { count: { type: 'integer' } } },
            edge: { $ref: '#/components/schemas/EdgeHealth' },
          },
        },
        ClusterSummary: {
          type: 'object',
          properties: {
            uuid: { type: 'string' },
            name: { type: ['string', 'null'] },
            phase: { type: 'string' },
            ready: { type: 'boolean' },
            reason: {
              type: ['string', 'null'],
              description: "Why the cluster is not ready: its Ready condition's reason",
            },
            message: { type: ['string', 'null'] },
            edge: { oneOf: [{ $ref: '#/components/schemas/EdgeHealth' }, { type: 'null' }] },
          },
        },
        ClusterEvent: {
          description: 'The data of a `cluster` event: the summary GET /v1/cluster gives, and more',
          allOf: [
            { $ref: '#/components/schemas/ClusterSummary' },
            {
              type: 'object',
              properties: {
                conditions: { type: 'array', items: { $ref: '#/components/schemas/Condition' } },
                repo: { type: 'object', properties: { head: { type: ['string', 'null'] } } },
                secrets: { type: 'object', properties: { count: { type: 'integer' } } },
                bootstrap: {
                  type: 'object',
                  properties: {
                    fetches: { type: 'integer' },
                    lastFetch: { type: ['string', 'null'], format: 'date-time' },
                  },
                },
              },
            },
          ],
        },
        Cluster: {
          description:
            'One cluster: what a `cluster` event carries, and its condition history (not in the list or the event stream, to keep them small)',
          allOf: [
            { $ref: '#/components/schemas/ClusterEvent' },
            {
              type: 'object',
              properties: { history: { type: 'array', items: { $ref: '#/components/schemas/HistoryEntry' } } },
            },
          ],
        },
        HistoryEntry: {
          type: 'object',
          description:
            'A condition transition: it appeared, its status or reason changed, or it was cleared (status `Cleared`). Kept in the setup status, oldest first, at most 20 per cluster, the message cut to 160 characters; a retry that fails the same way again is not one',
          required: ['type', 'status', 'reason', 'message', 'at'],
          properties: {
            type: { type: 'string' },
            status: { enum: ['True', 'False', 'Unknown', 'Cleared'] },
            reason: { type: 'string' },
            message: { type: 'string' },
            at: { type: 'string', format: 'date-time' },
          },
        },
        Condition: {
          type: 'object',
          required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'],
          properties: {
            type: { type: 'string' },
            status: { enum: ['True', 'False', 'Unknown'] },
            reason: { type: 'string' },
            message: { type: 'string' },
            lastTransitionTime: { type: 'string', format: 'date-time' },
            attempts: { type: 'integer', description: 'Consecutive failed attempts of a failing step' },
            lastAttempt: { type: 'string', format: 'date-time' },
            nextAttempt: { type: 'string', format: 'date-time' },
          },
        },
        EdgeHealth: {
          type: 'object',
          description:
            'What Edge Sync reported of the cluster; `sealingCertificate` and `lastChange` are absent (null in listings) when there is none',
          properties: {
            reported: { type: 'boolean' },
            hosts: { type: 'integer' },
            readyHosts: { type: 'integer' },
            kubernetesVersions: { type: 'array', items: { type: 'string' } },
            sealingCertificate: {
              type: ['object', 'null'],
              properties: { fingerprint: { type: 'string' }, notAfter: { type: 'string', format: 'date-time' } },
            },
            lastChange: { type: ['string', 'null'], format: 'date-time' },
          },
        },
        SealedSecret: {
          type: 'object',
          properties: {
            path: { type: 'string' },
            namespace: { type: 'string' },
            name: { type: 'string' },
            scope: { enum: ['strict', 'namespace-wide', 'cluster-wide'] },
            keys: { type: 'array', items: { type: 'string' } },
            certFingerprints: { type: 'object' },
            sealingCertificate: {
              oneOf: [{ $ref: '#/components/schemas/Certificate' }, { type: 'null' }],
              description: 'The certificate a seal would use now; null if none usable is reported',
            },
          },
        },
        Certificate: {
          type: 'object',
          properties: {
            fingerprint: { type: 'string' },
            subject: { type: 'string', description: "Empty for the controller's default certificate" },
            notBefore: { type: 'string', format: 'date-time' },
            notAfter: { type: 'string', format: 'date-time' },
            notYetValid: {
              type: 'boolean',
              description: "notBefore is ahead of this server's clock (accepted, as kubeseal does)",
            },
          },
        },
      },
    },
    paths: {
      '/ping': {
        get: {
          summary: 'Factory+ service ping',
          responses: { 200: json({ type: 'object' }, 'Service identity'), 401: common[401] },
        },
      },
      '/token': {
        post: {
          summary: 'Exchange a credential for a bearer token',
          responses: {
            200: json(
              { type: 'object', properties: { token: { type: 'string' }, expiry: { type: 'integer' } } },
              'Token and expiry (ms)',
            ),
            401: common[401],
          },
        },
      },
      '/health': {
        get: {
          summary: 'Liveness and readiness (public)',
          security: [],
          responses: {
            200: json({ type: 'object' }, 'Ready'),
            503: json({ type: 'object' }, 'Live, not ready: no resync finished yet'),
          },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          responses: { 200: { description: 'Text exposition format' }, 401: common[401] },
        },
      },
      '/openapi.json': {
        get: { summary: 'This document', responses: { 200: json({ type: 'object' }, 'OpenAPI'), 401: common[401] } },
      },
      '/v1/cluster': {
        get: {
          summary: 'Clusters the caller may manage',
          responses: {
            200: json(
              {
                type: 'array',
                items: { $ref: '#/components/schemas/ClusterSummary' },
              },
              'Clusters',
            ),
            401: common[401],
            503: common[503],
          },
        },
      },
      '/v1/events': {
        get: {
          summary: 'Server-sent events: the clusters the caller may manage, live',
          description:
            'A `text/event-stream`: a `cluster` event (ClusterEvent) for each cluster the caller holds Manage clusters on, then `synced` (`{clusters}`), then a `cluster` event whenever one changes (changes within 50 ms are sent as one) and `removed` (`{uuid}`) when one is deleted or the ACL no longer covers it. The ACL is read again every 15 s; a comment line every 15 s keeps the stream open; the stream ends when the credential expires or the client reads too slowly. Events carry no `id`: every stream, a reconnection too, starts with the full snapshot (the `retry` field says how long a client waits before it reconnects). Authenticate with the Authorization header (EventSource cannot send one: read it with fetch).',
          responses: {
            200: { description: 'The stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            401: common[401],
            429: err(
              'The caller (its principal, whatever the credential) has MAX_EVENT_STREAMS_PER_CALLER streams open (Retry-After)',
            ),
            503: err('The ACL cannot be read, or MAX_EVENT_STREAMS streams are open'),
          },
        },
      },
      '/': {
        get: {
          summary: 'The status page (public: it holds no data; it reads the API with the token it logs in for)',
          security: [],
          responses: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
      '/ui/': {
        get: {
          summary: 'The status page, as at /',
          security: [],
          responses: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
      '/ui/{file}': {
        get: {
          summary: "The status page's scripts and style sheet",
          security: [],
          parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 200: { description: 'JavaScript module or CSS' }, 404: err('No such file') },
        },
      },
      '/v1/cluster/redeploy': {
        post: {
          summary: 'Redeploy every cluster the caller may manage, through the work queue',
          responses: {
            202: json({ type: 'object', properties: { queued: { type: 'integer' } } }, 'Queued'),
            401: common[401],
            503: common[503],
          },
        },
      },
      '/v1/cluster/{uuid}/redeploy': {
        post: {
          summary: 'Render the managed files afresh and push them, even if nothing changed',
          parameters: [uuid],
          responses: {
            200: json(
              { type: 'object', properties: { head: { type: ['string', 'null'] } } },
              'Pushed (or unchanged) head',
            ),
            ...common,
            404: err('Unknown cluster'),
            409: err('The cluster cannot be commissioned (see its conditions)'),
          },
        },
      },
      '/v1/cluster/{uuid}': {
        get: {
          summary: 'One cluster: its summary, conditions and condition history',
          parameters: [uuid],
          responses: {
            200: json({ $ref: '#/components/schemas/Cluster' }, 'The cluster'),
            ...common,
            404: err('Unknown cluster'),
          },
        },
      },
      '/v1/cluster/{uuid}/status': {
        get: {
          summary: 'Setup status of a cluster',
          parameters: [uuid],
          responses: {
            200: json({ $ref: '#/components/schemas/Status' }, 'Status'),
            ...common,
            404: err('Unknown cluster'),
          },
        },
      },
      '/v1/cluster/{uuid}/bootstrap-url': {
        post: {
          summary: 'A bootstrap URL with a signed, expiring token',
          parameters: [uuid],
          responses: {
            200: json({ type: 'string', format: 'uri' }, 'URL (JSON string)'),
            ...common,
            404: err('Unknown cluster'),
            409: err('Cluster not ready; `phase` says where it is'),
          },
        },
      },
      '/v1/cluster/{uuid}/bootstrap': {
        get: {
          summary: 'The bootstrap script (public; the token is the credential)',
          security: [],
          parameters: [uuid, { name: 'token', in: 'query', required: true, schema: { type: 'string' } }],
          responses: {
            200: { description: 'POSIX sh script', content: { 'text/plain': { schema: { type: 'string' } } } },
            400: common[400],
            401: err('Token missing, invalid, expired or for another cluster'),
            404: err('Unknown cluster'),
            409: err('Cluster not ready'),
            503: common[503],
          },
        },
      },
      '/v1/cluster/{uuid}/secret': {
        get: {
          summary: 'Sealed secrets of a cluster (no values)',
          parameters: [uuid],
          responses: {
            200: json({ type: 'array', items: { $ref: '#/components/schemas/SealedSecret' } }, 'Listing'),
            ...common,
            404: err('Unknown cluster'),
            409: err('Repo not populated yet'),
          },
        },
      },
      '/v1/cluster/{uuid}/secret/{namespace}/{name}': {
        get: {
          summary: 'One sealed secret (no values)',
          parameters: secretPath.slice(0, 3),
          responses: {
            200: json({ $ref: '#/components/schemas/SealedSecret' }, 'Secret'),
            ...common,
            404: err('No such secret'),
          },
        },
      },
      '/v1/cluster/{uuid}/secret/{namespace}/{name}/{key}': {
        put: {
          summary: 'Seal a value into the cluster repo',
          parameters: [
            ...secretPath,
            dryrun,
            { name: 'scope', in: 'query', schema: { enum: ['strict', 'namespace-wide', 'cluster-wide'] } },
          ],
          requestBody: {
            required: true,
            content: { '*/*': { schema: { type: 'string', format: 'binary', maxLength: 1048576 } } },
          },
          responses: {
            204: { description: 'Sealed and pushed' },
            200: {
              description: 'Dry run: the manifest that would be committed',
              content: { 'application/yaml': { schema: { type: 'string' } } },
            },
            ...common,
            404: err('Unknown cluster or no Edge cluster status'),
            409: err('Repo not populated, or scope conflicts with other keys'),
            413: err(
              "Value over 1 MiB, the secret's values over 1 MiB in total, or too many keys; `reason` says which",
            ),
            422: err('The reported certificate cannot be used (not RSA, expired, unparseable); `reason` says which'),
            429: err('Too many changes are waiting to be written (Retry-After)'),
            503: err(
              'No certificate reported yet, the push failed, or the change waited too long for its turn (Retry-After)',
            ),
          },
        },
        delete: {
          summary: 'Remove a sealed key (204 also when absent)',
          parameters: [...secretPath, dryrun],
          responses: {
            204: { description: 'Removed (or was absent)' },
            200: json({ type: 'object' }, 'Dry run result'),
            ...common,
            404: err('Unknown cluster or no Edge cluster status'),
            409: err('Repo not populated'),
            429: err('Too many changes are waiting to be written (Retry-After)'),
            503: err('The push failed, or the change waited too long for its turn (Retry-After)'),
          },
        },
      },
      '/v1/cluster/{uuid}/secret-reseal': {
        post: {
          summary: 'Which sealed values predate the current certificate',
          parameters: [uuid],
          responses: { 200: json({ type: 'object' }, 'Stale keys; values must be PUT again'), ...common },
        },
      },
    },
  };
}
