// The Cluster Manager's status page: plain DOM code in modules of this
// origin, so the Content-Security-Policy can forbid inline script and every
// other origin. Nothing is kept beyond the page: the token lives in memory
// and a reload asks for the login again.
import { readEvents, StreamError } from './events.js';

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  /** uuid -> the cluster as the event stream last sent it */
  clusters: new Map(),
  synced: false,
  /**
   * uuid -> its conditions history: `stored`, as GET /v1/cluster/{uuid} last
   * gave it (oldest first) when the live sequence number was `since`, and
   * `live`, the transitions seen on the event stream, each numbered
   */
  history: new Map(),
  abort: null,
  retryMs: 1000,
};

/** An element with text children only: data from the API never becomes markup. */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ''));
  return e;
}

function showError(message) {
  const e = $('error');
  e.textContent = message;
  e.hidden = !message;
}

function setConn(stateName, text) {
  const c = $('conn');
  c.dataset.state = stateName;
  c.textContent = text;
}

/** "3 min ago", "in 12 s": how long from now, in the largest whole unit. */
function relative(iso) {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((t - Date.now()) / 1000);
  const a = Math.abs(s);
  if (a < 2) return 'just now';
  const text =
    a < 60
      ? `${a} s`
      : a < 3600
        ? `${Math.floor(a / 60)} min`
        : a < 86400
          ? `${Math.floor(a / 3600)} h`
          : `${Math.floor(a / 86400)} d`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

/** The step that is failing: a False condition other than Ready, with its attempts. */
function failing(c) {
  return (
    c.conditions.find((x) => x.status === 'False' && x.type !== 'Ready') ??
    c.conditions.find((x) => x.type === 'Ready' && x.status === 'False')
  );
}

function edgeText(edge) {
  if (!edge || !edge.reported) return 'not reported';
  const versions = edge.kubernetesVersions.length ? `, ${edge.kubernetesVersions.join(' ')}` : '';
  const cert = edge.sealingCertificate ? '' : ', no sealing certificate';
  return `${edge.readyHosts}/${edge.hosts} hosts ready${versions}${cert}`;
}

const shortHead = (head) => (head ? head.slice(0, 12) : '');

function renderList() {
  const rows = [...state.clusters.values()].sort(
    (a, b) => String(a.name).localeCompare(String(b.name)) || a.uuid.localeCompare(b.uuid),
  );
  const tbody = $('clusters').tBodies[0];
  tbody.replaceChildren(
    ...rows.map((c) => {
      const f = failing(c);
      return el(
        'tr',
        {
          'data-uuid': c.uuid,
          'data-phase': c.phase,
          'data-ready': String(c.ready),
          class: c.ready ? 'ready' : c.phase === 'failed' ? 'failed' : '',
        },
        el('td', {}, el('a', { href: `#/cluster/${c.uuid}` }, c.name ?? c.uuid)),
        el('td', { class: 'phase' }, c.phase),
        el('td', { class: 'ready' }, c.ready ? 'True' : c.reason ? `False: ${c.reason}` : 'False'),
        el('td', { class: 'message' }, c.message ?? ''),
        el('td', {}, f?.attempts ? String(f.attempts) : ''),
        el('td', {}, f?.nextAttempt ? relative(f.nextAttempt) : ''),
        el('td', { class: 'mono', title: c.repo.head ?? '' }, shortHead(c.repo.head)),
        el('td', { class: 'secrets' }, String(c.secrets.count)),
        el('td', {}, String(c.bootstrap.fetches)),
        el('td', {}, edgeText(c.edge)),
      );
    }),
  );
  const ready = rows.filter((c) => c.ready).length;
  $('summary').textContent = state.synced
    ? rows.length
      ? `${rows.length} cluster${rows.length === 1 ? '' : 's'}, ${ready} ready`
      : 'No clusters you may manage.'
    : 'Loading…';
}

/** The cluster the location names (#/cluster/UUID), if any. */
function detailUuid() {
  const m = /^#\/cluster\/([0-9a-f-]{36})$/.exec(location.hash);
  return m ? m[1] : null;
}

let shownSecrets = null;

function renderDetail() {
  const uuid = detailUuid();
  const c = uuid && state.clusters.get(uuid);
  if (!c) {
    $('detail-name').textContent = state.synced ? 'No such cluster among those you may manage' : 'Loading…';
    $('detail-facts').replaceChildren();
    $('conditions').tBodies[0].replaceChildren();
    $('bootstrap').disabled = true;
    return;
  }
  $('detail-name').textContent = c.name ?? c.uuid;
  const facts = [
    ['UUID', c.uuid],
    ['Phase', c.phase],
    ['Ready', c.ready ? 'True' : `False${c.reason ? `: ${c.reason}` : ''}`],
    ['Repo head', c.repo.head ?? '—'],
    ['Secrets', String(c.secrets.count)],
    [
      'Bootstrap fetches',
      `${c.bootstrap.fetches}${c.bootstrap.lastFetch ? `, last ${relative(c.bootstrap.lastFetch)}` : ''}`,
    ],
    ['Edge', edgeText(c.edge)],
  ];
  if (c.edge?.sealingCertificate)
    facts.push([
      'Sealing certificate',
      `${c.edge.sealingCertificate.fingerprint} (until ${c.edge.sealingCertificate.notAfter})`,
    ]);
  $('detail-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  $('conditions').tBodies[0].replaceChildren(
    ...c.conditions.map((x) =>
      el(
        'tr',
        { 'data-type': x.type, class: x.status === 'True' ? 'ready' : x.status === 'False' ? 'failed' : '' },
        el('td', {}, x.type),
        el('td', {}, x.status),
        el('td', {}, x.reason),
        el('td', { class: 'message' }, x.message),
        el('td', { title: x.lastTransitionTime }, relative(x.lastTransitionTime)),
        el('td', {}, x.attempts ? String(x.attempts) : ''),
        el('td', { title: x.nextAttempt ?? '' }, relative(x.nextAttempt)),
      ),
    ),
  );
  const h = historyOf(c.uuid);
  if (!h.asked) void loadHistory(c.uuid);
  const log = mergedHistory(h);
  $('history-note').textContent = log.length ? '' : h.stored ? 'No transitions recorded.' : 'Loading…';
  $('history').tBodies[0].replaceChildren(
    ...log.map((h) =>
      el(
        'tr',
        {},
        el('td', { title: h.at }, relative(h.at)),
        el('td', {}, h.type),
        el('td', {}, h.status),
        el('td', {}, h.reason),
        el('td', { class: 'message' }, h.message),
      ),
    ),
  );
  $('bootstrap').disabled = !c.ready;
  // The inventory is read again when the count of sealed keys changes.
  const key = `${c.uuid} ${c.secrets.count} ${c.repo.head}`;
  if (shownSecrets !== key) {
    shownSecrets = key;
    void loadSecrets(c.uuid);
  }
}

/** A call to the API with the token; errors carry the service's message. */
async function api(method, path) {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${state.token}` },
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await res.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {}
  if (!res.ok) throw new StreamError(res.status, body?.message || `${method} ${path} answered ${res.status}`);
  return { body, res };
}

async function loadSecrets(uuid) {
  const note = $('secrets-note');
  const tbody = $('secrets').tBodies[0];
  try {
    const { body } = await api('GET', `/v1/cluster/${uuid}/secret`);
    if (detailUuid() !== uuid) return;
    note.textContent = body.length ? '' : 'Nothing is sealed for this cluster.';
    tbody.replaceChildren(
      ...body.map((s) =>
        el(
          'tr',
          {},
          el('td', {}, s.namespace),
          el('td', {}, s.name),
          el('td', {}, s.scope),
          el('td', {}, s.keys.join(', ')),
          el('td', { class: 'mono' }, [...new Set(Object.values(s.certFingerprints))].join(', ')),
        ),
      ),
    );
  } catch (e) {
    if (detailUuid() !== uuid) return;
    tbody.replaceChildren();
    // Not being allowed to see secrets, or a repo not written yet, is a state, not a failure of the page.
    if (e.status === 403) note.textContent = 'You may not see the secrets of this cluster (Manage secrets).';
    else if (e.status === 409 || e.status === 404) note.textContent = e.message;
    else showError(`Secrets: ${e.message}`);
  }
}

async function makeBootstrapUrl() {
  const uuid = detailUuid();
  const out = $('bootstrap-out');
  try {
    const { body, res } = await api('POST', `/v1/cluster/${uuid}/bootstrap-url`);
    const expires = res.headers.get('Expires');
    out.replaceChildren(
      el('a', { href: body }, body),
      el('br'),
      `expires ${expires ? new Date(expires).toLocaleString() : 'soon'}`,
    );
    out.hidden = false;
    showError('');
  } catch (e) {
    showError(`Bootstrap URL: ${e.message}`);
  }
}

const HISTORY = 50;
let liveSeq = 0;

function historyOf(uuid) {
  let h = state.history.get(uuid);
  if (!h) state.history.set(uuid, (h = { stored: null, since: -1, asked: false, live: [] }));
  return h;
}

/**
 * Reads the history the service keeps in the setup status, which holds the
 * transitions made before this page loaded. Live transitions numbered up to
 * the moment of asking are in the answer; later ones are shown beside it.
 */
async function loadHistory(uuid) {
  const h = historyOf(uuid);
  h.asked = true;
  const since = liveSeq;
  try {
    const { body } = await api('GET', `/v1/cluster/${uuid}`);
    // Answers can cross: the one asked for last wins.
    if (since < h.since) return;
    h.stored = body.history;
    h.since = since;
    if (detailUuid() === uuid) scheduleRender();
  } catch (e) {
    // Not asked again at every render: the next live transition, or opening the cluster again, asks again.
    if (detailUuid() !== uuid || e.status === 404) return;
    showError(`History: ${e.message}`);
  }
}

let historyReload = null;

/**
 * The stored history followed by the live transitions that came after it was
 * read, newest first. A live one that the stored history already ends with
 * for its condition (read while the event was on its way) is not repeated.
 */
function mergedHistory(h) {
  const merged = h.stored ? [...h.stored] : [];
  for (const x of h.live) {
    if (x.seq <= h.since) continue;
    const last = merged.findLast((y) => y.type === x.type);
    if (last && last.status === x.status && last.reason === x.reason) continue;
    merged.push(x);
  }
  return merged.reverse();
}

/**
 * Records each transition between two states of a cluster, by the service's
 * rule: a condition that appears, changes status or reason, or is cleared.
 */
function noteTransitions(before, after) {
  if (!before) return;
  const at = new Date().toISOString();
  const old = new Map(before.conditions.map((c) => [c.type, c]));
  const now = new Set(after.conditions.map((c) => c.type));
  const seen = [];
  for (const c of after.conditions) {
    const o = old.get(c.type);
    if (o && o.status === c.status && o.reason === c.reason) continue;
    seen.push({ at, type: c.type, status: c.status, reason: c.reason, message: c.message });
  }
  for (const type of old.keys())
    if (!now.has(type)) seen.push({ at, type, status: 'Cleared', reason: '', message: '' });
  if (!seen.length) return;
  const h = historyOf(after.uuid);
  for (const x of seen) h.live.push({ ...x, seq: ++liveSeq });
  h.live.splice(0, h.live.length - HISTORY);
  // The open cluster's stored history is read again, shortly, so the page ends with what the service keeps.
  if (detailUuid() === after.uuid && !historyReload) {
    historyReload = setTimeout(() => {
      historyReload = null;
      if (detailUuid() === after.uuid && state.token) void loadHistory(after.uuid);
    }, 500);
  }
}

let renderQueued = false;

/**
 * Renders once per frame however many events arrived: a snapshot of many
 * clusters or a burst of changes costs one pass over the table, not one each.
 */
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  const uuid = detailUuid();
  $('list').hidden = !state.token || !!uuid;
  $('detail').hidden = !state.token || !uuid;
  if (!state.token) return;
  if (uuid) renderDetail();
  else renderList();
}

/** Follows the event stream until logout, reconnecting with backoff. */
async function follow() {
  while (state.token) {
    const abort = new AbortController();
    state.abort = abort;
    const seen = new Set();
    state.synced = false;
    setConn('connecting', 'connecting…');
    try {
      await readEvents(
        state.token,
        (type, data) => {
          const v = JSON.parse(data);
          if (type === 'cluster') {
            seen.add(v.uuid);
            noteTransitions(state.clusters.get(v.uuid), v);
            state.clusters.set(v.uuid, v);
          } else if (type === 'removed') {
            state.clusters.delete(v.uuid);
          } else if (type === 'synced') {
            // A new stream starts with a full snapshot: what it did not send is gone.
            for (const id of state.clusters.keys()) if (!seen.has(id)) state.clusters.delete(id);
            state.synced = true;
            state.retryMs = 1000;
            setConn('live', 'live');
          }
          scheduleRender();
        },
        abort.signal,
      );
      setConn('connecting', 'stream ended, reconnecting…');
    } catch (e) {
      if (abort.signal.aborted) return;
      if (e instanceof StreamError && e.status === 401) {
        logout('Your session has ended; log in again.');
        return;
      }
      setConn('down', `disconnected (${e.message}), retrying…`);
    }
    await new Promise((r) => setTimeout(r, state.retryMs));
    state.retryMs = Math.min(state.retryMs * 2, 30_000);
  }
}

function logout(message = '') {
  state.token = null;
  state.abort?.abort();
  state.clusters.clear();
  state.history.clear();
  state.synced = false;
  setConn('off', 'not connected');
  $('logout').hidden = true;
  $('login').hidden = false;
  showError(message);
  render();
}

function basic(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

async function login(ev) {
  ev.preventDefault();
  const f = ev.target;
  const token = f.token.value.trim();
  const auth = token ? `Bearer ${token}` : basic(f.username.value, f.password.value);
  try {
    // Our own token, so the password (or the OIDC token) is sent once and not kept.
    const res = await fetch('/token', {
      method: 'POST',
      headers: { Authorization: auth },
      credentials: 'omit',
      cache: 'no-store',
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || `POST /token answered ${res.status}`);
    state.token = body.token;
  } catch (e) {
    showError(`Login failed: ${e.message}`);
    return;
  } finally {
    f.password.value = '';
    f.token.value = '';
  }
  showError('');
  $('login').hidden = true;
  $('logout').hidden = false;
  render();
  void follow();
}

$('login-form').addEventListener('submit', login);
$('logout').addEventListener('click', () => logout());
$('bootstrap').addEventListener('click', makeBootstrapUrl);
addEventListener('hashchange', () => {
  $('bootstrap-out').hidden = true;
  shownSecrets = null;
  // A cluster opened again reads its stored history again.
  if (detailUuid()) historyOf(detailUuid()).asked = false;
  render();
});
// Relative times ("in 12 s") move on without events.
setInterval(() => state.token && scheduleRender(), 5000);
$('login').hidden = false;
render();
