// The second factor after the face (or password) was accepted.
import { api, t, errorText, busy, say } from './common.js';

const form = document.getElementById('pin-form');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const pin = form.elements.pin.value.trim();
  if (!/^[0-9]{4,12}$/.test(pin)) {
    say('pin-error', t('form.pin_format'));
    form.elements.pin.focus();
    return;
  }
  say('pin-error', '');
  await busy(form, async () => {
    try {
      await api('POST', '/api/login/pin', { json: { pin } });
      location.assign('/profile');
    } catch (e) {
      say('pin-error', e.status === 401 && !e.code ? t('code.wrong_pin') : errorText(e));
      form.elements.pin.select();
    }
  });
});
