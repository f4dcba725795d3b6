// Reset link: the person sets the new PIN and/or password an administrator's link allows;
// every session of theirs ends, and they sign in again.
import { api, t, errorText, busy, say } from './common.js';

const section = document.getElementById('reset');
const form = document.getElementById('reset-form');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const fail = (key, field, vars) => {
    say('reset-error', t(key, vars));
    form.querySelector(field).focus();
  };
  const body = { token: section.dataset.token };
  const pinField = form.querySelector('#reset-pin');
  if (pinField) {
    const pin = pinField.value.trim();
    const min = pinField.minLength;
    if (!/^[0-9]+$/.test(pin) || pin.length < min || pin.length > 12) return fail('form.new_pin_format', '#reset-pin', { min_length: min });
    if (pin !== form.querySelector('#reset-pin2').value.trim()) return fail('form.pin_mismatch', '#reset-pin2');
    body.pin = pin;
  }
  const pwField = form.querySelector('#reset-password');
  if (pwField) {
    if (!pwField.value) return fail('form.required', '#reset-password');
    if (pwField.value !== form.querySelector('#reset-password2').value) return fail('form.password_mismatch', '#reset-password2');
    body.password = pwField.value;
  }
  say('reset-error', '');
  await busy(form, async () => {
    try {
      await api('POST', '/api/reset', { json: body });
    } catch (e) {
      say('reset-error', errorText(e));
      return;
    }
    section.hidden = true;
    document.getElementById('reset-done').hidden = false;
    document.getElementById('reset-done-title').focus();
  });
});
