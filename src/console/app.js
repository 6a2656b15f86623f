// The Stowage web console: browse a storage by folder, search by prefix, upload with tus
// (resumable, with progress), preview, inspect, share and delete objects, and see the
// quotas of a folder. It talks to the service's own API with the identity it logged in
// with (an API key or JWT kept in this tab's session storage, sent as a bearer token,
// never a cookie), and so sees exactly what that identity may see. Every name and value
// from the storage is rendered as text (textContent), never as HTML.

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const PAGE = 50;
const state = { token: sessionStorage.getItem('stowage-token') ?? '', prefix: '', cursor: undefined, key: undefined, objectUrl: undefined, listing: 0 };

/** A key or prefix as a URL path: each segment percent-encoded. */
const pathOf = (key) => key.split('/').map(encodeURIComponent).join('/');

/** Sizes as people read them. */
function formatSize(bytes) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A call to the API with the identity logged in; 401 shows the login. */
async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  if (state.token) headers.set('Authorization', `Bearer ${state.token}`);
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) {
    showLogin('Log in to continue.');
    throw new Error('not logged in');
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(body?.error?.message ?? `The service answered ${res.status}.`);
  }
  return res;
}

/** Makes an element with text (never HTML) and attributes. */
function el(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function showLogin(message = '') {
  $('login').hidden = false;
  $('browser').hidden = true;
  $('details').hidden = true;
  $('logout').hidden = true;
  $('login-error').textContent = message;
  $('token').focus();
}

function showBrowser() {
  $('login').hidden = true;
  $('details').hidden = true;
  $('browser').hidden = false;
  $('logout').hidden = state.token === '';
}

/** The breadcrumbs of the current folder, each a link to it. */
function renderCrumbs() {
  const crumbs = $('crumbs');
  crumbs.replaceChildren();
  const parts = state.prefix.split('/').filter(Boolean);
  const link = (label, prefix) => {
    const a = el('a', label, { href: `#${encodeURIComponent(prefix)}` });
    if (prefix === state.prefix) a.setAttribute('aria-current', 'page');
    return a;
  };
  crumbs.append(link('All objects', ''));
  parts.forEach((part, i) => crumbs.append(el('span', '/', { 'aria-hidden': 'true' }), link(part, `${parts.slice(0, i + 1).join('/')}/`)));
}

/** Lists the folder (or the search's prefix in it), a page at a time; only the latest listing is shown. */
async function list(more = false) {
  const status = $('status');
  status.textContent = '';
  const prefix = state.prefix + $('search').value;
  const query = new URLSearchParams({ prefix, delimiter: '/', limit: String(PAGE) });
  if (more && state.cursor) query.set('cursor', state.cursor);
  const listing = (state.listing += 1);
  try {
    const page = await (await api(`/api/objects?${query}`)).json();
    if (listing !== state.listing) return; // a later listing (another upload finished, a new search) wins
    const rows = [];
    for (const folder of page.prefixes ?? []) {
      const cell = el('td');
      cell.append(el('a', `${folder.slice(state.prefix.length)}`, { href: `#${encodeURIComponent(folder)}`, class: 'folder' }));
      const row = el('tr');
      row.append(cell, el('td', '—'), el('td', 'folder'), el('td', ''));
      rows.push(row);
    }
    for (const object of page.objects ?? []) {
      const cell = el('td');
      const open = el('button', object.key.slice(state.prefix.length), { type: 'button', class: 'object' });
      open.addEventListener('click', () => void showDetails(object));
      cell.append(open);
      const row = el('tr');
      row.append(cell, el('td', formatSize(object.size)), el('td', object.contentType), el('td', new Date(object.lastModified).toLocaleString()));
      rows.push(row);
    }
    if (more) $('rows').append(...rows);
    else $('rows').replaceChildren(...rows);
    state.cursor = page.cursor;
    $('more').hidden = page.cursor === undefined;
    $('empty').hidden = $('rows').children.length > 0;
  } catch (err) {
    if (listing === state.listing) status.textContent = err.message;
  }
  void usage();
}

/** The quotas the folder lies in, used against allowed. */
async function usage() {
  const out = $('usage');
  out.textContent = '';
  try {
    const { quotas } = await (await api(`/api/usage?${new URLSearchParams({ prefix: state.prefix })}`)).json();
    out.textContent = quotas.map((q) => `${q.prefix}: ${formatSize(q.usedBytes)}${q.maxBytes ? ` of ${formatSize(q.maxBytes)}` : ''}${q.maxObjects ? `, ${q.usedObjects} of ${q.maxObjects} objects` : ''} (${q.level})`).join('; ');
  } catch {
    // Not everyone may see usage: the listing still works.
  }
}

/** A URL a media element can load with ranges: the object's own without auth, else a signed link. */
async function mediaUrl(key) {
  if (!state.token) return `/api/objects/${pathOf(key)}`;
  const res = await api('/api/presign', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key, method: 'GET', expiresIn: 3600 }) });
  return (await res.json()).url;
}

async function preview(object) {
  const box = $('preview');
  box.replaceChildren();
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.objectUrl = undefined;
  const type = object.contentType;
  try {
    if (type.startsWith('image/')) {
      const blob = await (await api(`/api/objects/${pathOf(object.key)}?variant=thumb`)).blob();
      state.objectUrl = URL.createObjectURL(blob);
      box.append(el('img', undefined, { src: state.objectUrl, alt: `Thumbnail of ${object.key}`, class: 'thumb' }));
    } else if (type.startsWith('audio/') || type.startsWith('video/')) {
      const media = el(type.startsWith('audio/') ? 'audio' : 'video', undefined, { controls: '', preload: 'metadata', 'aria-label': `Play ${object.key}` });
      media.setAttribute('src', await mediaUrl(object.key));
      box.append(media);
    } else if (type.startsWith('text/') || type === 'application/json') {
      const text = await (await api(`/api/objects/${pathOf(object.key)}`, { headers: { range: 'bytes=0-8191' } })).text();
      box.append(el('pre', text, { class: 'text' }));
    } else {
      box.append(el('p', 'No preview for this type.', { class: 'hint' }));
    }
  } catch (err) {
    box.append(el('p', `No preview: ${err.message}`, { class: 'hint' }));
  }
}

async function showDetails(object) {
  state.key = object.key;
  $('browser').hidden = true;
  $('details').hidden = false;
  $('details-title').textContent = object.key;
  $('share-link').textContent = '';
  $('copy').hidden = true;
  const facts = $('facts');
  facts.replaceChildren();
  const fact = (name, value) => facts.append(el('dt', name), el('dd', value));
  fact('Size', `${formatSize(object.size)} (${object.size} bytes)`);
  fact('Type', object.contentType);
  fact('SHA-256', object.sha256 ?? 'not recorded');
  fact('Modified', new Date(object.lastModified).toLocaleString());
  fact('ETag', object.etag);
  for (const [name, value] of Object.entries(object.metadata ?? {})) fact(`Metadata: ${name}`, value);
  $('close-details').focus();
  await preview(object);
}

function closeDetails() {
  showBrowser();
  void list();
}

async function share() {
  const out = $('share-link');
  try {
    const res = await api('/api/presign', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: state.key, method: 'GET', expiresIn: Number($('expiry').value) }) });
    const { url, expiresAt } = await res.json();
    out.textContent = url;
    out.title = `valid until ${new Date(expiresAt).toLocaleString()}`;
    $('copy').hidden = false;
  } catch (err) {
    out.textContent = `No link: ${err.message}`;
  }
}

async function remove() {
  const dialog = /** @type {HTMLDialogElement} */ ($('confirm'));
  $('confirm-key').textContent = state.key;
  dialog.showModal();
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'delete') return;
    try {
      await api(`/api/objects/${pathOf(state.key)}`, { method: 'DELETE' });
      closeDetails();
    } catch (err) {
      $('share-link').textContent = `Not deleted: ${err.message}`;
    }
  }, { once: true });
}

/** Uploads a file with tus, resuming an upload of the same file this browser started. */
async function upload(file) {
  const item = el('li');
  const name = el('span', file.name, { class: 'name' });
  const bar = el('progress', undefined, { max: '100', value: '0', 'aria-label': `Upload of ${file.name}` });
  const note = el('span', 'starting', { class: 'note' });
  item.append(name, bar, note);
  $('uploads').append(item);
  const template = $('template').value.trim();
  const task = new window.tus.Upload(file, {
    endpoint: `/api/tus/${template ? `?${new URLSearchParams({ template })}` : ''}`,
    headers: state.token ? { Authorization: `Bearer ${state.token}` } : {},
    chunkSize: 5 * 1024 * 1024,
    retryDelays: [0, 1000, 2000, 3000, 5000, 8000, 13000, 21000],
    removeFingerprintOnSuccess: true,
    metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
    onProgress: (sent, total) => {
      const percent = Math.floor((100 * sent) / total);
      bar.value = percent;
      note.textContent = `${percent}%`;
    },
    onSuccess: ({ lastResponse }) => {
      bar.value = 100;
      note.textContent = `stored as ${lastResponse.getHeader('Stowage-Object-Key') ?? '(queued)'}`;
      item.classList.add('done');
      void list();
    },
    onError: (err) => {
      note.textContent = `failed: ${err.message}`;
      item.classList.add('failed');
    },
  });
  const previous = await task.findPreviousUploads();
  if (previous.length > 0) {
    task.resumeFromPreviousUpload(previous[0]);
    note.textContent = 'resuming';
  }
  task.start();
}

function uploadAll(files) {
  for (const file of files) void upload(file);
}

/** The folder named by the location's hash. */
function route() {
  state.prefix = decodeURIComponent(location.hash.slice(1));
  state.cursor = undefined;
  $('search').value = '';
  renderCrumbs();
  showBrowser();
  void list();
}

async function login(event) {
  event.preventDefault();
  state.token = $('token').value.trim();
  sessionStorage.setItem('stowage-token', state.token);
  $('token').value = '';
  route();
}

function logout() {
  state.token = '';
  sessionStorage.removeItem('stowage-token');
  showLogin();
}

$('login-form').addEventListener('submit', (event) => void login(event));
$('logout').addEventListener('click', logout);
$('more').addEventListener('click', () => void list(true));
$('search').addEventListener('input', () => void list());
$('close-details').addEventListener('click', closeDetails);
$('share').addEventListener('click', () => void share());
$('delete').addEventListener('click', () => void remove());
$('copy').addEventListener('click', () => void navigator.clipboard?.writeText($('share-link').textContent ?? ''));
$('files').addEventListener('change', (event) => uploadAll(event.target.files));
const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  uploadAll(event.dataTransfer?.files ?? []);
});
drop.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    $('files').click();
  }
});
window.addEventListener('hashchange', route);
route();
