// The second factor after the face (or password) was accepted. Each wrong PIN says how many
// tries are left; after the last one the form closes and one button starts over.
import { api, t, errorText, busy, say } from './common.js';
import { rememberFailedPINs } from './notice.js';

const form = document.getElementById('pin-form');
const field = form.elements.pin;
const via = document.getElementById('pin-step').dataset.via;

function ended(text) {
  form.hidden = true;
  const box = document.getElementById('pin-ended');
  document.getElementById('pin-ended-text').textContent = text;
  box.hidden = false;
  document.getElementById('pin-start-over').focus();
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const pin = field.value.trim();
  if (!/^[0-9]{4,12}$/.test(pin)) {
    say('pin-error', t('form.pin_format'), field);
    field.focus();
    return;
  }
  say('pin-error', '');
  await busy(form, async () => {
    try {
      const res = await api('POST', '/api/login/pin', { json: { pin } });
      rememberFailedPINs(res);
      location.assign('/profile');
    } catch (e) {
      const left = e.details && e.details.tries_left;
      if (e.status === 401 && left === 0) {
        ended(t('pin.ended'));
        return;
      }
      if (e.status === 401 && e.code === 'unauthorized') {
        ended(t('code.unauthorized'));
        return;
      }
      if (e.code === 'face_paused') {
        ended(t('code.face_paused'));
        return;
      }
      let msg = errorText(e, via === 'password' ? 'face' : 'password');
      if (e.code === 'wrong_pin' || (e.status === 401 && !e.code)) {
        msg = typeof left === 'number' ? t(left === 1 ? 'pin.one_left' : 'pin.tries_left', { n: left }) : t('code.wrong_pin');
      }
      say('pin-error', msg, field);
      field.select();
    }
  });
});
