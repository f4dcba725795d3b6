// Sign-in without biometrics: e-mail and password, then the PIN when the server wants it.
import { api, t, errorText, busy, say } from './common.js';

const form = document.getElementById('password-form');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  if (!email || !password) {
    say('password-error', t('form.required'));
    (email ? form.elements.password : form.elements.email).focus();
    return;
  }
  say('password-error', '');
  await busy(form, async () => {
    try {
      const res = (await api('POST', '/api/login/password', { json: { email, password } })) || {};
      const pending = res.next === 'pin' || res.stage === 'pending';
      try { sessionStorage.setItem('facelogin.name', res.name || ''); } catch { /* private mode */ }
      location.assign(pending ? '/login/pin' : '/profile');
    } catch (e) {
      say('password-error', e.status === 401 && !e.code ? t('code.bad_credentials') : errorText(e));
      form.elements.password.select();
    }
  });
});
