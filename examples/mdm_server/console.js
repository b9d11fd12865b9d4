// The admin console: plain JavaScript over the admin API. Every value from the server is
// put into the page with textContent, never as HTML.
'use strict';

(() => {
  const KEY_STORAGE = 'onboarding-token-admin-key';
  const PAGE = 50;
  const REFRESH_MS = 3000;
  const $ = (id) => document.getElementById(id);

  let adminKey = sessionStorage.getItem(KEY_STORAGE);
  let pages = 1;
  let refreshTimer = null;
  let revoking = null; // the id whose revoke form is open: auto-refresh waits
  let loading = false;
  let filters = {};
  const objectUrls = {};

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // --- API ---------------------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + adminKey };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'The server cannot be reached.');
    }
    if (res.status === 401) {
      lock('The admin key was not accepted. Enter it again.');
      throw new ApiError(401, 'The admin key was not accepted.');
    }
    return res;
  }

  async function failure(res) {
    let message = res.statusText || ('HTTP ' + res.status);
    try {
      const data = await res.json();
      if (data && data.message) message = data.message;
    } catch (e) { /* not JSON */ }
    return new ApiError(res.status, message);
  }

  async function apiJson(method, path, body) {
    const res = await api(method, path, body);
    if (!res.ok) throw await failure(res);
    return res.json();
  }

  async function apiBlob(path) {
    const res = await api('GET', path);
    if (!res.ok) throw await failure(res);
    return res.blob();
  }

  function objectUrl(name, blob) {
    if (objectUrls[name]) URL.revokeObjectURL(objectUrls[name]);
    objectUrls[name] = URL.createObjectURL(blob);
    return objectUrls[name];
  }

  function showError(id, err) {
    $(id).textContent = err ? (err.message || String(err)) : '';
  }

  // --- Login -------------------------------------------------------------------------

  function lock(message) {
    adminKey = null;
    sessionStorage.removeItem(KEY_STORAGE);
    if (refreshTimer) clearInterval(refreshTimer);
    refreshTimer = null;
    for (const name of Object.keys(objectUrls)) {
      URL.revokeObjectURL(objectUrls[name]);
      delete objectUrls[name];
    }
    $('console').hidden = true;
    $('logout').hidden = true;
    $('created').hidden = true;
    $('batch-result').hidden = true;
    $('token-rows').replaceChildren();
    $('org-name').textContent = '';
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('admin-key').value = '';
    $('admin-key').focus();
  }

  async function unlock() {
    let info;
    try {
      info = await apiJson('GET', '/api/info');
    } catch (e) {
      if (e.status !== 401) {
        $('login').hidden = false;
        $('login-error').textContent = e.message;
      }
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, adminKey);
    $('login').hidden = true;
    $('console').hidden = false;
    $('logout').hidden = false;
    $('login-error').textContent = '';
    $('org-name').textContent = 'organization ' + info.organization;
    for (const select of [$('c-format'), $('b-format')]) {
      select.replaceChildren(option('token', 'bare token'));
      if (info.formats.includes('url')) select.append(option('url', 'enrollment link'));
      if (info.formats.includes('android')) select.append(option('android', 'Android setup (provisioning JSON)'));
    }
    await loadList();
    refreshTimer = setInterval(() => {
      if (document.visibilityState === 'visible' && revoking === null && !loading) loadList();
    }, REFRESH_MS);
  }

  function option(value, text) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    return o;
  }

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    adminKey = $('admin-key').value.trim();
    $('admin-key').value = '';
    unlock();
  });
  $('logout').addEventListener('click', () => lock(''));

  // --- Listing -----------------------------------------------------------------------

  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  function validityText(t) {
    const from = t.not_before ? fmtTime(t.not_before) : fmtTime(t.created_at);
    const until = t.expires_at ? fmtTime(t.expires_at) : 'no expiry';
    return from + ' → ' + until;
  }

  function limitText(t) {
    return t.limit === null ? 'unlimited' : (t.limit === 1 ? 'single use' : 'up to ' + t.limit + ' devices');
  }

  function cell(tr, label, cls) {
    const td = document.createElement('td');
    td.dataset.label = label;
    if (cls) td.className = cls;
    tr.append(td);
    return td;
  }

  function span(text, cls) {
    const s = document.createElement('span');
    s.textContent = text;
    if (cls) s.className = cls;
    return s;
  }

  function tokenRow(t) {
    const tr = document.createElement('tr');
    tr.dataset.id = t.id;
    tr.dataset.status = t.status;
    const status = cell(tr, 'Status', 'status');
    status.append(span(t.status, 'badge badge-' + t.status));
    if (t.revocation && t.revocation.reason) {
      status.append(span(t.revocation.reason, 'reason'));
    }
    cell(tr, 'Uses', 'uses').textContent = t.uses + ' / ' + (t.limit === null ? '∞' : t.limit);
    cell(tr, 'Group', 'group').textContent = t.group;
    cell(tr, 'Policies', 'policies').textContent = t.policies.length ? t.policies.join(', ') : '—';
    cell(tr, 'Valid', 'validity').textContent = validityText(t);
    const desc = cell(tr, 'Description', 'description');
    desc.append(span(t.description || '—'));
    desc.append(span(t.id.slice(0, 8) + (t.batch ? ' · batch ' + t.batch.slice(0, 8) : ''), 'mono muted small'));
    const actions = cell(tr, '', 'actions');
    if (t.status !== 'revoked') {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'revoke-btn danger';
      b.textContent = 'Revoke';
      b.addEventListener('click', () => openRevoke(tr, t));
      actions.append(b);
    }
    return tr;
  }

  function openRevoke(tr, t) {
    revoking = t.id;
    const actions = tr.querySelector('.actions');
    const form = document.createElement('form');
    form.className = 'revoke-form';
    const reason = document.createElement('input');
    reason.className = 'revoke-reason';
    reason.placeholder = 'Reason (for example: sheet lost)';
    reason.required = true;
    reason.maxLength = 1024;
    const ok = document.createElement('button');
    ok.type = 'submit';
    ok.className = 'revoke-confirm danger';
    ok.textContent = 'Confirm revoke';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'revoke-cancel secondary';
    cancel.textContent = 'Cancel';
    const err = span('', 'error');
    form.append(reason, ok, cancel, err);
    cancel.addEventListener('click', () => {
      revoking = null;
      tr.replaceWith(tokenRow(t));
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      ok.disabled = true;
      try {
        const res = await apiJson('POST', '/api/tokens/' + t.id + '/revoke', { reason: reason.value.trim() });
        revoking = null;
        tr.replaceWith(tokenRow(res.token));
        loadList();
      } catch (e) {
        ok.disabled = false;
        err.textContent = e.message;
      }
    });
    actions.replaceChildren(form);
    reason.focus();
  }

  async function loadList() {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(filters)) {
      if (value) params.set(name, value);
    }
    params.set('limit', String(Math.min(PAGE * pages, 1000)));
    loading = true;
    try {
      const data = await apiJson('GET', '/api/tokens?' + params.toString());
      if (revoking !== null) return; // the admin opened a revoke form meanwhile
      $('token-rows').replaceChildren(...data.tokens.map(tokenRow));
      $('load-more').hidden = !data.next_cursor;
      $('list-status').textContent = data.tokens.length + (data.tokens.length === 1 ? ' token' : ' tokens') +
        ', updated ' + new Date().toLocaleTimeString();
      showError('list-error', null);
    } catch (e) {
      if (e.status !== 401) showError('list-error', e);
    } finally {
      loading = false;
    }
  }

  // The filters in force: those of the last Filter click, not what is being typed.
  function applyFilters() {
    filters = {};
    for (const [name, id] of [['group', 'f-group'], ['policy', 'f-policy'], ['status', 'f-status'], ['batch', 'f-batch']]) {
      filters[name] = $(id).value.trim();
    }
    pages = 1;
    loadList();
  }

  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    applyFilters();
  });
  $('filters').addEventListener('reset', () => {
    setTimeout(applyFilters, 0); // after the form has cleared its fields
  });
  $('refresh').addEventListener('click', () => loadList());
  $('load-more').addEventListener('click', () => {
    pages += 1;
    loadList();
  });

  // --- Creating a token --------------------------------------------------------------

  function splitList(text) {
    return text.split(/[,;]/).map((s) => s.trim()).filter((s) => s.length > 0);
  }

  function parseMetadata(text) {
    const out = {};
    for (const piece of text.split(';').map((s) => s.trim()).filter((s) => s)) {
      const eq = piece.indexOf('=');
      if (eq <= 0) throw new Error('Metadata must be key=value pairs separated by ";".');
      out[piece.slice(0, eq).trim()] = piece.slice(eq + 1).trim();
    }
    return out;
  }

  function isoFromLocal(value) {
    const d = new Date(value);
    if (isNaN(d)) throw new Error('Not a valid date and time: ' + value);
    return d.toISOString();
  }

  $('c-unlimited').addEventListener('change', () => {
    $('c-max-uses').disabled = $('c-unlimited').checked;
  });
  $('c-expiry-mode').addEventListener('change', () => {
    const mode = $('c-expiry-mode').value;
    $('c-expires-in-label').hidden = mode !== 'in';
    $('c-expires-at-label').hidden = mode !== 'at';
  });

  let created = null;

  async function showQr() {
    if (!created) return;
    const format = $('c-format').value;
    const img = $('created-qr');
    try {
      const blob = await apiBlob('/api/tokens/' + created.id + '/qr.png?scale=10&format=' + encodeURIComponent(format));
      img.src = objectUrl('qr', blob);
      img.alt = 'QR code (' + format + ') of token ' + created.id.slice(0, 8);
      showError('c-error', null);
    } catch (e) {
      showError('c-error', e);
    }
  }

  $('c-format').addEventListener('change', showQr);

  $('create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('c-error', null);
    const body = {};
    try {
      body.group = $('c-group').value.trim();
      body.policies = splitList($('c-policies').value);
      body.max_uses = $('c-unlimited').checked ? null : Number($('c-max-uses').value);
      if ($('c-not-before').value) body.not_before = isoFromLocal($('c-not-before').value);
      const mode = $('c-expiry-mode').value;
      if (mode === 'in') body.expires_in = $('c-expires-in').value.trim();
      if (mode === 'at') body.expires_at = isoFromLocal($('c-expires-at').value);
      if (mode === 'never') body.never_expires = true;
      const description = $('c-description').value.trim();
      if (description) body.description = description;
      body.metadata = parseMetadata($('c-metadata').value);
    } catch (e) {
      showError('c-error', e);
      return;
    }
    $('c-submit').disabled = true;
    try {
      const res = await apiJson('POST', '/api/tokens', body);
      created = res;
      $('created-id').textContent = res.id.slice(0, 8);
      $('created-summary').textContent = res.record.group + ', ' + limitText(res.record) + ', ' +
        (res.record.expires_at ? 'until ' + fmtTime(res.record.expires_at) : 'no expiry');
      $('created-token').textContent = res.token;
      $('created-typed').textContent = res.typed;
      $('copy-status').textContent = '';
      $('created').hidden = false;
      await showQr();
      $('created').scrollIntoView({ block: 'start' });
      loadList();
    } catch (e) {
      showError('c-error', e);
    } finally {
      $('c-submit').disabled = false;
    }
  });

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (e) {
      const area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'offscreen';
      document.body.append(area);
      area.select();
      let ok = false;
      try {
        ok = document.execCommand('copy');
      } catch (e2) { /* unsupported */ }
      area.remove();
      return ok;
    }
  }

  $('copy-token').addEventListener('click', async () => {
    const ok = await copyText($('created-token').textContent);
    $('copy-status').textContent = ok ? 'Copied.' : 'Copy failed: select the text and copy it.';
  });

  // --- Batches -----------------------------------------------------------------------

  $('bulk-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError('b-error', null);
    const csv = $('b-csv').value.trim();
    let body;
    if (csv) {
      body = { spec_csv: csv };
    } else {
      body = {
        group: $('b-group').value.trim(),
        count: Number($('b-count').value),
        policies: splitList($('b-policies').value),
        max_uses: Number($('b-max-uses').value),
      };
      const expires = $('b-expires-in').value.trim();
      if (expires) body.expires_in = expires;
      const description = $('b-description').value.trim();
      if (description) body.description = description;
    }
    $('b-submit').disabled = true;
    try {
      const res = await apiJson('POST', '/api/batches', body);
      const query = '?paper=' + encodeURIComponent($('b-paper').value) + '&format=' + encodeURIComponent($('b-format').value);
      const sheet = await apiBlob(res.sheet + query);
      const sheetUrl = objectUrl('sheet', new Blob([sheet], { type: 'text/html' }));
      $('sheet-open').href = sheetUrl;
      $('sheet-download').href = sheetUrl;
      $('sheet-download').download = 'enrollment-sheet-' + res.batch.slice(0, 8) + '.html';
      $('manifest-download').href = objectUrl('manifest', new Blob([res.manifest_csv], { type: 'text/csv' }));
      $('manifest-download').download = 'manifest-' + res.batch.slice(0, 8) + '.csv';
      $('batch-info').textContent = 'Batch ' + res.batch + ': ' + res.count + (res.count === 1 ? ' token.' : ' tokens.');
      $('batch-result').hidden = false;
      loadList();
    } catch (e) {
      showError('b-error', e);
    } finally {
      $('b-submit').disabled = false;
    }
  });

  // --- Start -------------------------------------------------------------------------

  if (adminKey) {
    $('login').hidden = true;
    unlock();
  } else {
    lock('');
  }
})();
