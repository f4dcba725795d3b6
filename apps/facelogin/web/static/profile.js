// Profile: change PIN and password, erase the face data.
import { api, t, errorText, busy, say } from './common.js';
import { takeFailedPINs } from './notice.js';

// Wrong PINs given for this account since the previous sign-in: told once, right after it.
const failed = takeFailedPINs();
if (failed) {
  const fmt = new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: 'medium', timeStyle: 'short' });
  document.getElementById('failed-pins-text').textContent =
    t(failed.count === 1 ? 'notice.failed_pins_one' : 'notice.failed_pins', { n: failed.count });
  const list = document.getElementById('failed-pins-list');
  for (const e of failed.last || []) {
    const li = document.createElement('li');
    const when = document.createElement('time');
    when.dateTime = e.at;
    when.textContent = fmt.format(new Date(e.at));
    li.append(when, ` · ${e.client || ''}`);
    list.append(li);
  }
  document.getElementById('failed-pins').hidden = false;
}

function wire(formId, prefix, path, body) {
  const form = document.getElementById(formId);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    say(`${prefix}-error`, '');
    say(`${prefix}-ok`, '');
    const payload = body(form);
    if (typeof payload === 'string') {
      say(`${prefix}-error`, payload, form.querySelector(`#${prefix}-new`));
      return;
    }
    await busy(form, async () => {
      try {
        await api('PUT', path, { json: payload });
        form.reset();
        say(`${prefix}-ok`, t(`profile.${prefix}_saved`));
      } catch (e) {
        const field = e.code && e.code.startsWith('wrong_') ? `#${prefix}-current` : `#${prefix}-new`;
        say(`${prefix}-error`, errorText(e), form.querySelector(field));
      }
    });
  });
}

wire('pin-form', 'pin', '/api/me/pin', (f) => {
  const current = f.querySelector('#pin-current').value;
  const pin = f.querySelector('#pin-new').value.trim();
  if (!current || !pin) return t('form.required');
  const min = f.querySelector('#pin-new').minLength;
  if (!/^[0-9]+$/.test(pin) || pin.length < min || pin.length > 12) return t('form.new_pin_format', { min_length: min });
  return { current, pin };
});

wire('password-form', 'password', '/api/me/password', (f) => {
  const current = f.querySelector('#password-current').value;
  const password = f.querySelector('#password-new').value;
  if (!current || !password) return t('form.required');
  return { current, password };
});

const dialog = document.getElementById('confirm-delete');
const deleteBtn = document.getElementById('delete-face');
deleteBtn.addEventListener('click', () => dialog.showModal());
dialog.addEventListener('close', async () => {
  if (dialog.returnValue !== 'confirm') {
    deleteBtn.focus();
    return;
  }
  deleteBtn.disabled = true;
  try {
    await api('DELETE', '/api/me/face');
    location.reload();
  } catch (e) {
    deleteBtn.disabled = false;
    say('delete-error', errorText(e));
    deleteBtn.focus();
  }
});
