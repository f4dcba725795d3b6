// Face login: camera preview, frames over the WebSocket, guidance per frame, then the PIN.
// The camera starts only when the person chooses face sign-in (or on a kiosk that opted in).
import { api, t, errorText, limitText, APIError } from './common.js';
import { cameraFor, cameraView, describeProblem, stopCamera, grabFrame, guidance } from './camera.js';

const FRAME_GAP_MS = 300;        // pause between an answer and the next frame (≈3 frames/s)
const ANSWER_TIMEOUT_MS = 10000; // the server must answer each frame within this
const OPEN_TIMEOUT_MS = 10000;   // the WebSocket must open within this
const ATTEMPT_TIMEOUT_MS = 45000; // one login attempt ends after this, with a message
const BUSY_RETRY_S = 2;          // wait before reconnecting when a busy server named no time
const NUDGE_MS = 4000;           // no face in view this long: point to the password sign-in

const root = document.getElementById('login');
const { video, guidanceEl, problemEl, canvas } = cameraView();
const retryBtn = document.getElementById('retry');
const takeoverBtn = document.getElementById('takeover');
const chooseEl = document.getElementById('choose');
const nudgeEl = document.getElementById('nudge');

let attempt = null; // the running attempt: {stream, ws, timers, done}

function setState(s) {
  root.dataset.state = s;
}

const guide = guidance(guidanceEl);

function showProblem(state, title, text, { retry = true, retryLabel, takeover = false } = {}) {
  stop();
  setState(state);
  guidanceEl.textContent = '';
  guidanceEl.dataset.code = state;
  describeProblem(title, text);
  chooseEl.hidden = true;
  nudgeEl.hidden = true;
  retryBtn.hidden = !retry;
  retryBtn.textContent = retryLabel || t('login.retry');
  takeoverBtn.hidden = !takeover;
  problemEl.hidden = false;
  root.classList.add('has-problem');
  (retry ? retryBtn : takeover ? takeoverBtn : document.getElementById('password-link')).focus();
}

function hideProblem() {
  problemEl.hidden = true;
  root.classList.remove('has-problem');
}

// stop ends the running attempt: timers, socket and camera.
function stop() {
  const a = attempt;
  attempt = null;
  if (!a) return;
  a.done = true;
  a.timers.forEach(clearTimeout);
  if (a.ws) {
    a.ws.onclose = null;
    a.ws.onmessage = null;
    a.ws.close(1000);
  }
  stopCamera(a.stream);
  video.srcObject = null;
}

// ---- another tab ----------------------------------------------------------------------
// Two tabs would fight over the camera and the session; the newer one asks first.

const channel = 'BroadcastChannel' in window ? new BroadcastChannel('facelogin-login') : null;
const tabId = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random());

if (channel) {
  channel.onmessage = (e) => {
    const m = e.data || {};
    if (m.from === tabId) return;
    if (m.type === 'hello' && attempt) channel.postMessage({ type: 'busy', from: tabId, to: m.from });
    if (m.type === 'takeover' && attempt) {
      showProblem('taken-over', t('tab.moved_title'), t('tab.moved_text'), { retryLabel: t('tab.use_here') });
    }
  };
}

function otherTabBusy() {
  if (!channel) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onMsg = (e) => {
      if (e.data && e.data.type === 'busy' && e.data.to === tabId) finish(true);
    };
    const timer = setTimeout(() => finish(false), 400);
    function finish(v) {
      clearTimeout(timer);
      channel.removeEventListener('message', onMsg);
      resolve(v);
    }
    channel.addEventListener('message', onMsg);
    channel.postMessage({ type: 'hello', from: tabId });
  });
}

// ---- the attempt ------------------------------------------------------------------------

async function begin({ checkTabs = true, takeover = false } = {}) {
  stop();
  hideProblem();
  chooseEl.hidden = true;
  nudgeEl.hidden = true;
  setState('starting');
  guide('starting');
  if (takeover && channel) channel.postMessage({ type: 'takeover', from: tabId });
  if (checkTabs && await otherTabBusy()) {
    showProblem('second-tab', t('tab.title'), t('tab.text'), { retry: false, takeover: true });
    return;
  }
  const a = { stream: null, ws: null, timers: [], done: false, waiting: false, retryAfter: 0 };
  attempt = a;

  try {
    await api('POST', '/api/session', { json: {}, timeout: 10000 });
  } catch (e) {
    if (a.done) return;
    if (e instanceof APIError && (e.code === 'busy' || e.status === 429)) {
      showProblem(e.code === 'busy' ? 'busy' : 'rate-limited', t(e.code === 'busy' ? 'busy.title' : 'limit.client_title'), errorText(e, 'password'));
    } else if (e instanceof APIError && (e.kind === 'network' || e.kind === 'down' || e.kind === 'timeout')) {
      showProblem('backend-down', t('down.title'), t('down.text'));
    } else {
      showProblem('error', t('error.title'), errorText(e));
    }
    return;
  }

  a.stream = await cameraFor(a, video, {
    onWaiting: () => guide('permission'),
    fail: (reason) => showProblem(`camera-${reason}`, t(`camera.${reason}_title`), t(`camera.${reason}_text`)),
  });
  if (a.stream) connect(a);
}

function later(a, ms, fn) {
  a.timers.push(setTimeout(() => { if (!a.done) fn(); }, ms));
}

function connect(a) {
  setState('connecting');
  guide('connecting');
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/ws/login`);
  ws.binaryType = 'arraybuffer';
  a.ws = ws;
  let answerTimer = 0;

  const openTimer = setTimeout(() => {
    if (!a.done) showProblem('ws-timeout', t('ws.timeout_title'), t('ws.timeout_text'));
  }, OPEN_TIMEOUT_MS);
  a.timers.push(openTimer);
  if (!a.deadline) {
    a.deadline = true;
    later(a, ATTEMPT_TIMEOUT_MS, () => {
      showProblem('attempt-timeout', t('attempt.timeout_title'), t('attempt.timeout_text'));
    });
  }

  const sendFrame = async () => {
    if (a.done || ws.readyState !== WebSocket.OPEN) return;
    let blob;
    try {
      blob = await grabFrame(video, canvas);
    } catch {
      later(a, FRAME_GAP_MS, sendFrame);
      return;
    }
    if (a.done || ws.readyState !== WebSocket.OPEN) return;
    ws.send(await blob.arrayBuffer());
    clearTimeout(answerTimer);
    answerTimer = setTimeout(() => {
      if (!a.done) showProblem('slow', t('slow.title'), t('slow.text'));
    }, ANSWER_TIMEOUT_MS);
    a.timers.push(answerTimer);
  };

  ws.onopen = () => {
    clearTimeout(openTimer);
    setState('scanning');
    guide('look');
    a.noFaceSince = 0;
    sendFrame();
  };

  ws.onmessage = (ev) => {
    clearTimeout(answerTimer);
    let m;
    try {
      m = JSON.parse(typeof ev.data === 'string' ? ev.data : new TextDecoder().decode(ev.data));
    } catch {
      return;
    }
    if (m.type === 'challenge') {
      // Liveness: the server drew the way to turn; the frames keep going as they are.
      a.turn = m.direction === 'right' ? 'right' : 'left';
      guide(`turn_${a.turn}`);
    } else if (m.type === 'guidance' && a.turn && ['turn_head', 'hold_still', 'checking'].includes(m.code)) {
      // The challenge stays on screen while the face is found and followed.
      guide(`turn_${a.turn}`);
      later(a, FRAME_GAP_MS, sendFrame);
    } else if (m.type === 'guidance' && m.code === 'busy') {
      // The server looked at no frame and closes with 1013; onclose reconnects.
      a.retryAfter = m.retry_after || BUSY_RETRY_S;
    } else if (m.type === 'guidance') {
      // The server's own words are English: only codes the page has a text for are shown.
      guide(m.code);
      nudge(a, m.code);
      later(a, FRAME_GAP_MS, sendFrame);
    } else if (m.type === 'result') {
      a.done = true;
      if (m.status === 'recognized') {
        recognized(m);
      } else if (m.status === 'not_live') {
        attempt = a;
        showProblem('not-live', t('not_live.title'), t('not_live.text'));
      } else if (m.status === 'paused') {
        attempt = a;
        showProblem('paused', t('paused.title'), t('paused.text'), { retry: false });
      } else if (m.status === 'no_face') {
        attempt = a;
        showProblem('no-face', t('noface.title'), t('noface.text'));
      } else {
        attempt = a;
        showProblem('unknown', t('unknown.title'), t('unknown.text'));
      }
    } else if (m.type === 'error') {
      a.done = true;
      attempt = a;
      const e = new APIError('http', m.code === 'rate_limited' ? 429 : 0, m.code || '', '', m.retry_after || 0, m);
      if (m.code === 'rate_limited') {
        const face = m.scope === 'face';
        // Trying again before the time named would only be refused again.
        showProblem('rate-limited', t(face ? 'limit.face_title' : 'limit.client_title'), limitText(e, face ? 'password' : ''), { retry: false });
      } else {
        showProblem('error', t('error.title'), errorText(e, 'password'));
      }
    }
  };

  ws.onclose = (ev) => {
    if (a.done) return;
    if (ev.code === 1013) {
      // Try Again Later: every recognizer was busy. Wait as told (spread a little, so the
      // people told the same time do not all come back at once), then reconnect.
      const secs = a.retryAfter || BUSY_RETRY_S;
      a.retryAfter = 0;
      clearTimeout(answerTimer);
      setState('waiting');
      guide('busy', { seconds: secs });
      later(a, secs * 1000 + Math.random() * 500, () => connect(a));
      return;
    }
    // The close reason is the server's English: the page says it in its own words.
    if (ev.code === 1008 || ev.code === 4401 || ev.code === 4403) {
      showProblem('ws-refused', t('ws.refused_title'), t('ws.refused_text'));
    } else if (ev.code === 1001) {
      showProblem('ws-closed', t('ws.restart_title'), t('ws.restart_text'));
    } else if (ev.code === 1011) {
      showProblem('error', t('error.title'), t('error.generic'));
    } else {
      showProblem('ws-closed', t('ws.closed_title'), t('ws.closed_text'));
    }
  };
}

function recognized(m) {
  const a = attempt;
  attempt = null;
  if (a) {
    a.timers.forEach(clearTimeout);
    if (a.ws) { a.ws.onclose = null; a.ws.close(1000); }
    // Keep the recognised picture on screen until the next page; the camera goes off then.
    video.pause();
    window.addEventListener('pagehide', () => stopCamera(a.stream));
    setTimeout(() => stopCamera(a.stream), 5000);
  }
  setState('recognized');
  guidanceEl.dataset.code = 'recognized';
  // Nobody is named before the PIN: a look-alike must not learn whom they resemble.
  guidanceEl.textContent = t('guide.recognized');
  setTimeout(() => location.assign(m.next === 'pin' ? '/login/pin?via=face' : '/profile'), 600);
}

// nudge points to the password sign-in once no face has been in view for NUDGE_MS.
function nudge(a, code) {
  if (code !== 'no_face') {
    a.noFaceSince = 0;
    return;
  }
  const now = Date.now();
  if (!a.noFaceSince) a.noFaceSince = now;
  if (now - a.noFaceSince >= NUDGE_MS) nudgeEl.hidden = false;
}

retryBtn.addEventListener('click', () => begin({ takeover: root.dataset.state === 'taken-over', checkTabs: root.dataset.state !== 'taken-over' }));
takeoverBtn.addEventListener('click', () => begin({ checkTabs: false, takeover: true }));
document.getElementById('face-start').addEventListener('click', () => begin());
window.addEventListener('pagehide', stop);

if (root.dataset.autostart === 'true' || new URLSearchParams(location.search).get('start') === 'face') {
  begin();
} else {
  chooseEl.hidden = false;
}
