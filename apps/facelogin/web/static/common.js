// Shared by every page: texts, calls to the API with timeouts, sign-out, local times.

const texts = JSON.parse(document.getElementById('texts')?.textContent || '{}');

/** t returns the text for key in the page language, with {name} placeholders filled in. */
export function t(key, vars = {}) {
  let s = texts[key] ?? key;
  for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

/** has reports whether a text exists for key. */
export function has(key) {
  return Object.hasOwn(texts, key);
}

/**
 * APIError is a failed API call. kind: "network", "timeout", "down" (5xx) or "http" (4xx).
 * retryAfter is the answer's Retry-After in seconds (0 if none); details holds the answer's
 * machine-readable fields (retry_after, tries_left, min_length …).
 */
export class APIError extends Error {
  constructor(kind, status = 0, code = '', message = '', retryAfter = 0, details = {}) {
    super(message || `${kind} ${status} ${code}`);
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.serverMessage = message;
    this.retryAfter = retryAfter;
    this.details = details;
  }
}

/**
 * api calls the recognition API. json is sent as application/json (the API's CSRF defence);
 * body is sent as is with its own type. Every call gives up after timeout ms.
 */
export async function api(method, path, { json, body, contentType, timeout = 15000 } = {}) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeout);
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' }, signal: ctrl.signal };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    if (contentType) init.headers['Content-Type'] = contentType;
    init.body = body;
  }
  let res, text;
  try {
    res = await fetch(path, init);
    text = await res.text();
  } catch (e) {
    throw new APIError(ctrl.signal.aborted ? 'timeout' : 'network');
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { /* not JSON: a proxy's error page */ }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const retryAfter = parseInt(res.headers.get('Retry-After') || '', 10) || 0;
    throw new APIError(res.status >= 500 ? 'down' : 'http', res.status, e.code || '', e.message || '', retryAfter, e);
  }
  return data;
}

/** errorText turns a failed call into one sentence for the page, in the page language: the
 * server's own (English) words are never shown. other names the other way in ("face" or
 * "password") that a limit message offers. */
export function errorText(err, other = '') {
  if (!(err instanceof APIError)) return t('error.generic');
  if (err.code === 'busy') return t('code.busy_wait', { wait: waitText(retrySeconds(err) || 2) });
  if (err.status === 429 || err.code === 'rate_limited') return limitText(err, other);
  switch (err.kind) {
    case 'timeout': return t('error.timeout');
    case 'network':
    case 'down': return t('error.down');
  }
  if (err.code && has(`code.${err.code}`)) return t(`code.${err.code}`, err.details);
  if (err.status === 401) return t('code.unauthorized');
  return t('error.generic');
}

/** retrySeconds is how long a refused call asks to wait: Retry-After, else retry_after. */
export function retrySeconds(err) {
  return err.retryAfter || parseInt(err.details && err.details.retry_after, 10) || 0;
}

/** waitText says how long seconds are ("45 s", "about 12 min", "about 2 h"). */
export function waitText(seconds) {
  if (seconds < 90) return t('wait.seconds', { n: Math.max(1, Math.round(seconds)) });
  if (seconds < 90 * 60) return t('wait.minutes', { n: Math.round(seconds / 60) });
  return t('wait.hours', { n: Math.round(seconds / 3600) });
}

/**
 * limitText says when a refused attempt may be tried again and the way in that stays open:
 * other, or, when the whole client is limited, the password and PIN given together ("pin"
 * on the password page, which then asks for the PIN too); none when that is limited too.
 */
export function limitText(err, other = '') {
  const scope = err.details && err.details.scope;
  if (scope === 'client') other = other === 'pin' ? 'pin' : 'together';
  if (scope === 'all') other = '';
  const secs = retrySeconds(err);
  const at = new Intl.DateTimeFormat(document.documentElement.lang, { hour: '2-digit', minute: '2-digit' })
    .format(new Date(Date.now() + secs * 1000));
  const when = secs > 0 ? t('limit.when', { time: at, wait: waitText(secs) }) : t('limit.later');
  return [t('limit.title'), when, other ? t(`limit.other_${other}`) : ''].filter(Boolean).join(' ');
}

/** delay resolves after ms. */
export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** withTimeout rejects with an Error named name when p does not settle in ms. */
export function withTimeout(p, ms, name) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => { const e = new Error(name); e.name = name; reject(e); }, ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** busy disables a form's submit button while fn runs. */
export async function busy(form, fn) {
  const buttons = form.querySelectorAll('button');
  buttons.forEach((b) => { b.disabled = true; });
  form.setAttribute('aria-busy', 'true');
  try {
    return await fn();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    form.removeAttribute('aria-busy');
  }
}

/**
 * say puts a message into an element (role=alert/status regions announce it). With a field,
 * the field is marked invalid and described by the message; an empty message clears every
 * field it described.
 */
export function say(id, text, field) {
  const el = document.getElementById(id);
  if (!el) return;
  el.textContent = text;
  for (const f of document.querySelectorAll('[aria-invalid="true"]')) {
    if ((f.getAttribute('aria-describedby') || '').split(' ').includes(id)) f.removeAttribute('aria-invalid');
  }
  if (!text || !field) return;
  const fields = Array.isArray(field) ? field : [field];
  for (const f of fields) {
    const ids = (f.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    if (!ids.includes(id)) f.setAttribute('aria-describedby', [...ids, id].join(' '));
    f.setAttribute('aria-invalid', 'true');
  }
}

/** digitsOnly keeps only digits in the PIN fields (inputs with data-digits) as they are typed. */
function digitsOnly() {
  for (const f of document.querySelectorAll('input[data-digits]')) {
    f.addEventListener('input', () => {
      const v = f.value.replace(/[^0-9]/g, '');
      if (v !== f.value) f.value = v;
    });
  }
}

function localTimes() {
  const fmt = new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: 'medium', timeStyle: 'short' });
  for (const el of document.querySelectorAll('time[datetime]')) {
    const d = new Date(el.getAttribute('datetime'));
    if (!Number.isNaN(d.getTime())) {
      el.title = el.textContent;
      el.textContent = fmt.format(d);
    }
  }
}

function wireLogout() {
  const btn = document.getElementById('logout');
  if (!btn) return;
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try {
      await api('POST', '/api/logout', { json: {} });
    } catch {
      // Signed out or not: the page says so, and the camera stays off.
    }
    location.assign('/signed-out');
  });
}

localTimes();
wireLogout();
digitsOnly();
