// Enrollment: consent and secrets first, then a guided capture of face samples. The capture
// part also serves /profile/face (set up or renew face sign-in). The capture streams camera
// frames over the enrolment WebSocket: the server keeps the frames that differ as samples and,
// with liveness on, first asks for a head turn the way it drew.
import { api, t, errorText, busy, say } from './common.js';
import { cameraFor, cameraView, describeProblem, stopCamera, grabFrame, guidance } from './camera.js';

const SAMPLES = 5;               // the API keeps 3–5
const FRAME_GAP_MS = 250;        // pause between an answer and the next frame
const ANSWER_TIMEOUT_MS = 15000; // the server must answer each frame within this
const CAPTURE_TIMEOUT_MS = 55000; // under the server's 60 s for one enrolment
const BUSY_RETRY_S = 2;

const consent = document.getElementById('enroll-consent');
const form = document.getElementById('enroll-form');
const capture = document.getElementById('capture');
const { video, guidanceEl, problemEl, canvas } = cameraView();
const progressEl = document.getElementById('progress');
const samplesEl = document.getElementById('samples');
const startBtn = document.getElementById('capture-start');
const restartBtn = document.getElementById('capture-restart');

// ---- step 1: consent, PIN and password -----------------------------------------------

if (form) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const accept = form.querySelector('#accept').checked;
    const pin = form.querySelector('#new-pin').value.trim();
    const pin2 = form.querySelector('#new-pin2').value.trim();
    const password = form.querySelector('#new-password').value;
    const password2 = form.querySelector('#new-password2').value;
    const fail = (key, field) => {
      say('enroll-error', t(key), form.querySelector(field));
      form.querySelector(field).focus();
    };
    if (!accept) return fail('form.consent_needed', '#accept');
    const min = form.querySelector('#new-pin').minLength;
    if (!/^[0-9]+$/.test(pin) || pin.length < min || pin.length > 12) {
      say('enroll-error', t('form.new_pin_format', { min_length: min }), form.querySelector('#new-pin'));
      form.querySelector('#new-pin').focus();
      return;
    }
    if (pin !== pin2) return fail('form.pin_mismatch', '#new-pin2');
    if (!password) return fail('form.required', '#new-password');
    if (password !== password2) return fail('form.password_mismatch', '#new-password2');
    const body = {
      token: consent.dataset.token, consent_version: form.dataset.consentVersion, consent_lang: form.dataset.consentLang,
      accept: true, pin, password,
    };
    const nameField = form.querySelector('#new-name');
    if (nameField) {
      // The bootstrap invitation names nobody: the first admin says who they are.
      body.name = nameField.value.trim();
      body.email = form.querySelector('#new-email').value.trim();
      if (!body.name) return fail('form.required', '#new-name');
      if (!body.email) return fail('form.required', '#new-email');
    }
    say('enroll-error', '');
    await busy(form, async () => {
      try {
        await api('POST', '/api/enroll', { json: body });
      } catch (e) {
        say('enroll-error', errorText(e));
        return;
      }
      consent.hidden = true;
      capture.hidden = false;
      document.getElementById('capture-title').focus();
      startCapture();
    });
  });
}
// On /profile/face the person agrees again before the camera starts (they may have
// withdrawn by deleting their face data); the enrollment page asked in step 1.

// ---- step 2: samples --------------------------------------------------------------------

let run = null; // {stream, ws, done, samples: Blob[], timers, turn, lastCode}

function setState(s) {
  capture.dataset.state = s;
}

const guide = guidance(guidanceEl);

function problem(state, title, text) {
  stopRun();
  setState(state);
  describeProblem(title, text);
  problemEl.hidden = false;
  capture.classList.add('has-problem');
  guidanceEl.textContent = '';
  startBtn.hidden = true;
  restartBtn.hidden = false;
  restartBtn.focus();
}

function stopRun() {
  if (!run) return;
  run.done = true;
  run.timers.forEach(clearTimeout);
  if (run.ws) { run.ws.onclose = null; run.ws.close(1000); }
  stopCamera(run.stream);
  video.srcObject = null;
  run = null;
}

function later(r, ms, fn) {
  r.timers.push(setTimeout(() => { if (!r.done) fn(); }, ms));
}

function showSamples(samples) {
  samplesEl.replaceChildren(...samples.map((b, i) => {
    const li = document.createElement('li');
    const img = document.createElement('img');
    img.src = URL.createObjectURL(b);
    img.alt = t('capture.sample_alt', { n: i + 1 });
    li.append(img);
    return li;
  }));
  progressEl.textContent = t('capture.progress', { n: samples.length, total: SAMPLES });
}

async function startCapture() {
  stopRun();
  problemEl.hidden = true;
  capture.classList.remove('has-problem');
  startBtn.hidden = true;
  restartBtn.hidden = true;
  delete capture.dataset.turn; // the direction of an earlier capture no longer holds
  const r = { stream: null, ws: null, done: false, samples: [], timers: [], turn: '', lastCode: '' };
  run = r;
  showSamples([]);
  setState('starting');
  guide('starting');
  r.stream = await cameraFor(r, video, {
    onWaiting: () => guide('permission'),
    fail: (reason) => problem(`camera-${reason}`, t(`camera.${reason}_title`), t(`camera.${reason}_text`)),
  });
  if (!r.stream) return;
  later(r, CAPTURE_TIMEOUT_MS, () => timedOut(r));
  connect(r);
}

// timedOut ends a capture that ran out of time or frames: when the last pictures were too
// much alike, the person is told to turn their head between them.
function timedOut(r) {
  if (r.lastCode === 'too_similar') problem('too-similar', t('capture.alike_title'), t('capture.alike_text'));
  else problem('capture-timeout', t('capture.timeout_title'), t('capture.timeout_text'));
}

// connect opens the enrolment WebSocket and sends a frame after every answer.
function connect(r) {
  setState('connecting');
  guide('connecting');
  r.samples = [];
  r.turn = '';
  delete capture.dataset.turn;
  showSamples([]);
  const q = new URLSearchParams();
  if (reconsent) {
    // /profile/face: the consent given on this page is recorded with the new samples.
    q.set('consent_version', reconsent.dataset.consentVersion);
    q.set('consent_lang', reconsent.dataset.consentLang);
  }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/ws/enroll${q.size ? `?${q}` : ''}`);
  ws.binaryType = 'arraybuffer';
  r.ws = ws;
  let sent = null; // the frame the next answer is about
  let answerTimer = 0;

  const sendFrame = async () => {
    if (r.done || ws.readyState !== WebSocket.OPEN) return;
    let blob;
    try {
      blob = await grabFrame(video, canvas);
    } catch {
      later(r, FRAME_GAP_MS, sendFrame);
      return;
    }
    if (r.done || ws.readyState !== WebSocket.OPEN) return;
    sent = blob;
    ws.send(await blob.arrayBuffer());
    clearTimeout(answerTimer);
    answerTimer = setTimeout(() => {
      if (!r.done) problem('slow', t('slow.title'), t('slow.text'));
    }, ANSWER_TIMEOUT_MS);
    r.timers.push(answerTimer);
  };

  ws.onopen = () => {
    setState('capturing');
    if (!r.turn) guide('look');
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
      // Liveness: the server drew the way to turn.
      r.turn = m.direction === 'right' ? 'right' : 'left';
      capture.dataset.turn = r.turn;
      guide(`enrol_turn_${r.turn}`);
      return;
    }
    if (sent && m.samples > r.samples.length && r.samples.length < SAMPLES) {
      // The server kept the frame this message answers.
      r.samples.push(sent);
      showSamples(r.samples);
    }
    sent = null;
    if (m.type === 'guidance' && m.code === 'busy') {
      // The server looked at no frame and closes with 1013; onclose reconnects.
      r.retryAfter = m.retry_after || BUSY_RETRY_S;
    } else if (m.type === 'guidance') {
      r.lastCode = m.code;
      // The turn stays asked for until the server saw it; the server's words are English.
      guide(m.code === 'turn_head' && r.turn ? `enrol_turn_${r.turn}` : m.code);
      later(r, FRAME_GAP_MS, sendFrame);
    } else if (m.type === 'result') {
      finish(r, m);
    }
  };

  ws.onclose = (ev) => {
    if (r.done) return;
    if (ev.code === 1013) {
      // Every recognizer was busy: wait as told, then start the capture over.
      const secs = r.retryAfter || BUSY_RETRY_S;
      r.retryAfter = 0;
      clearTimeout(answerTimer);
      setState('waiting');
      guide('busy', { seconds: secs });
      later(r, secs * 1000 + Math.random() * 500, () => connect(r));
      return;
    }
    if (ev.code === 1008) {
      timedOut(r); // the server's limit of frames or time for one enrolment
    } else if (ev.code === 1011) {
      problem('error', t('error.title'), t('error.generic'));
    } else {
      problem('ws-closed', t('ws.closed_title'), t('ws.closed_text'));
    }
  };
}

// finish shows the enrolment's result.
function finish(r, m) {
  switch (m.status) {
    case 'enrolled':
      stopRun();
      setState('done');
      capture.hidden = true;
      document.getElementById('capture-done').hidden = false;
      document.getElementById('done-title').focus();
      return;
    case 'not_live':
      problem('not-live', t('capture.not_live_title'), t('capture.not_live_text'));
      return;
    case 'samples_differ':
      problem('samples-differ', t('capture.save_failed'), t('code.samples_differ'));
      return;
    case 'duplicate':
      problem('duplicate', t('capture.save_failed'), t('guide.duplicate'));
      return;
  }
  problem('save-failed', t('capture.save_failed'), t('error.generic'));
}

const reconsent = document.getElementById('reconsent-box');

function startIfAgreed() {
  if (reconsent && !reconsent.checked) {
    say('reconsent-error', t('form.reconsent_needed'));
    reconsent.focus();
    return;
  }
  say('reconsent-error', '');
  if (reconsent) document.getElementById('reconsent').hidden = true;
  startCapture();
}

startBtn.addEventListener('click', startIfAgreed);
restartBtn.addEventListener('click', startIfAgreed);
window.addEventListener('pagehide', stopRun);
