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

/** errorText turns a failed call into one sentence for the page. */
export function errorText(err) {
  if (!(err instanceof APIError)) return t('error.generic');
  if (err.code === 'busy') return t('code.busy');
  switch (err.kind) {
    case 'timeout': return t('error.timeout');
    case 'network':
    case 'down': return t('error.down');
  }
  if (err.code && has(`code.${err.code}`)) return t(`code.${err.code}`, err.details);
  if (err.status === 401) return t('code.unauthorized');
  if (err.status === 429) return t('code.rate_limited');
  return err.serverMessage || t('error.generic');
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

/** say puts a message into an element (role=alert/status regions announce it). */
export function say(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
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
      // Signed out or not: the sign-in page is where the person wants to be.
    }
    location.assign('/login');
  });
}

localTimes();
wireLogout();
