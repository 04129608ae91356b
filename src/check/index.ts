/**
 * `cluster-manager check-config`: checks that the configuration, the
 * Factory+ services and the Config Store entries are what the Cluster
 * Manager needs, and says what to fix when they are not.
 *
 *     const results = await runChecks(config, { credentials, directoryUrl, log, timeoutMs });
 *     process.stdout.write(formatChecks(results));
 *     process.exitCode = results.every((r) => r.ok) ? 0 : 1;
 *
 * `runChecks(config, opts)` never throws for a failed check; it resolves with
 * one `CheckResult` per check, in this order (`CHECK_NAMES`):
 *
 *  1. Configuration   the loaded (already validated) configuration: profile,
 *                     mode (Factory+ when DIRECTORY_URL is set, else embedded),
 *                     and in Factory+ mode SERVICE_USERNAME/SERVICE_PASSWORD set.
 *     External URL    EXTERNAL_URL is set in Factory+ mode (bootstrap URLs use it).
 *  2. Directory       GET <DIRECTORY_URL>/ping answers (401 counts: something is
 *                     listening); unreachable is told apart from an HTTP error.
 *  3. Credentials     the Directory's POST /token accepts the credentials.
 *  4. Config Store    found through the Directory (or CONFIGDB_URL) and reads the
 *                     Cluster Manager's ServiceConfig entry with a token.
 *     Auth            found (or AUTHN_URL); GET v2/whoami/uuid with a token.
 *     Git             found (or GIT_URL); GET v1/status with a token.
 *     MQTT            found (or MQTT_URL); connects with the credentials at the
 *                     configured MQTT protocol level and disconnects.
 *     Notifications   the broker grants the subscription to the Config Store's
 *                     NBIRTH/NDATA/NDEATH (its node from the Directory), as the
 *                     change feed makes it.
 *     Sparkplug node  the broker grants the node's NCMD, DCMD (and primary host
 *                     STATE) subscriptions and takes a QoS 1 NDEATH whose bdSeq
 *                     no birth can carry; not published when the Directory shows
 *                     the node online. A refusal names the MQTT permission.
 *  5. ServiceConfig   `validateServiceConfig` (src/reconcile/service-config.ts):
 *                     group.cluster.path/uuid, group.flux.uuid,
 *                     group.krbkeys.uuid, helm.cluster and repo.helm.uuid.
 *  6. Flux template, HelmRelease template, Helm chart template (the
 *     ServiceConfig's helm.cluster), Bootstrap template: each entry exists and
 *     is well-formed, and the first three render a sample cluster with
 *     `renderClusterRepo`; a render error fails the entry it is about.
 *  7. App access      the account may list the Edge cluster configuration and
 *                     setup status apps (ReadConfig).
 *  8. UUID profile    no setup status entries under the other profile's setup
 *                     status app (this profile's Edge cluster status app) and no
 *                     Edge cluster status entries under this one's (at most 25
 *                     entries of each read).
 *
 * A check that needs one that failed is reported as skipped: `ok: false`,
 * `skipped: true`, detail `skipped: needs <name>`. Every failure has a `fix`.
 * Neither results nor formatted text contain the password.
 *
 * Options:
 *  - `credentials`: the service account (default SERVICE_USERNAME/SERVICE_PASSWORD).
 *  - `directoryUrl`: the Directory to check (default DIRECTORY_URL). In
 *    embedded mode (no DIRECTORY_URL) pass a running embedded core's Directory
 *    and `credentials.clusterManager` to check it; without them only the
 *    Configuration check runs and the rest are skipped. The embedded broker
 *    is spoken to with MQTT 3.1.1, as `serve` does; in Factory+ mode
 *    MQTT_PROTOCOL is used.
 *  - `log`: debug log of every result (default silent).
 *  - `timeoutMs`: limit of each request and of the MQTT connection (default 5000).
 *
 * `formatChecks(results)` gives exactly one line per result (`ok`, `FAIL` or
 * `skip`, the name, the detail, and ` — fix: …` on failures), each ending
 * with a newline.
 */
export { runChecks } from './run.js';
export { formatChecks } from './format.js';
export { CHECK_NAMES, type CheckName, type CheckOptions, type CheckResult } from './types.js';
