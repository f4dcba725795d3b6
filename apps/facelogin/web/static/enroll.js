// Enrollment: consent and secrets first, then a guided capture of face samples. The capture
// part also serves /profile/face (set up or renew face sign-in).
import { api, t, errorText, busy, say, delay } from './common.js';
import { cameraFor, cameraView, describeProblem, stopCamera, grabFrame, guidance } from './camera.js';

const SAMPLES = 5;             // the API takes 3–5
const SAMPLE_GAP_MS = 700;     // time to move a little between two samples
const CHECK_GAP_MS = 400;      // pause after a frame that was not good enough
const CAPTURE_TIMEOUT_MS = 90000;

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

let run = null; // {stream, done, samples: Blob[]}

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
  stopCamera(run.stream);
  video.srcObject = null;
  run = null;
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
  const r = { stream: null, done: false, samples: [] };
  run = r;
  showSamples([]);
  setState('starting');
  guide('starting');
  r.stream = await cameraFor(r, video, {
    onWaiting: () => guide('permission'),
    fail: (reason) => problem(`camera-${reason}`, t(`camera.${reason}_title`), t(`camera.${reason}_text`)),
  });
  if (!r.stream) return;
  setState('capturing');
  guide('look');
  const deadline = Date.now() + CAPTURE_TIMEOUT_MS;

  while (!r.done && r.samples.length < SAMPLES) {
    if (Date.now() > deadline) {
      problem('capture-timeout', t('capture.timeout_title'), t('capture.timeout_text'));
      return;
    }
    let frame;
    try {
      frame = await grabFrame(video, canvas);
    } catch {
      await delay(CHECK_GAP_MS);
      continue;
    }
    let answer;
    try {
      answer = (await api('POST', '/api/face/check', { body: frame, contentType: 'image/jpeg', timeout: 10000 })) || {};
    } catch (e) {
      if (r.done) return;
      if (e.code === 'busy') {
        // Every recognizer is busy: say so, wait as told, then check a new frame.
        const secs = e.retryAfter || 2;
        guidanceEl.dataset.code = 'busy';
        guidanceEl.textContent = t('guide.busy', { seconds: secs });
        await delay(secs * 1000);
        continue;
      }
      if (e.kind === 'http' && e.code && e.status !== 401 && e.status !== 403 && e.status !== 429) {
        answer = { ok: false, code: e.code, message: e.serverMessage }; // a quality answer sent as 4xx
      } else {
        problem('check-failed', t('error.title'), errorText(e));
        return;
      }
    }
    if (r.done) return;
    if (answer.ok) {
      r.samples.push(frame);
      showSamples(r.samples);
      guide(r.samples.length < SAMPLES ? 'sample_taken' : 'saving');
      await delay(SAMPLE_GAP_MS);
    } else {
      guide(answer.code || 'bad_image');
      await delay(CHECK_GAP_MS);
    }
  }
  if (r.done) return;
  stopCamera(r.stream);
  setState('saving');
  guide('saving');
  const body = new FormData();
  if (reconsent) {
    // /profile/face: the consent given on this page is recorded with the new samples.
    body.append('consent_version', reconsent.dataset.consentVersion);
    body.append('consent_lang', reconsent.dataset.consentLang);
  }
  r.samples.forEach((b, i) => body.append('sample', b, `sample${i + 1}.jpg`));
  try {
    await api('PUT', '/api/me/face', { body, timeout: 30000 });
  } catch (e) {
    if (r.done) return;
    problem('save-failed', t('capture.save_failed'), errorText(e));
    return;
  }
  run = null;
  setState('done');
  capture.hidden = true;
  const done = document.getElementById('capture-done');
  done.hidden = false;
  document.getElementById('done-title').focus();
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
