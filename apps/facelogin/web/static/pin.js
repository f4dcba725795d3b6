// The second factor after the face (or password) was accepted.
import { api, t, errorText, busy, say } from './common.js';

const form = document.getElementById('pin-form');
const hello = document.getElementById('pin-hello');
let name = '';
try { name = sessionStorage.getItem('facelogin.name') || ''; } catch { /* private mode */ }
if (name) hello.textContent = t('pin.hello', { name });

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
      try { sessionStorage.removeItem('facelogin.name'); } catch { /* private mode */ }
      location.assign('/profile');
    } catch (e) {
      say('pin-error', e.status === 401 && !e.code ? t('code.wrong_pin') : errorText(e));
      form.elements.pin.select();
    }
  });
});
