// Sign-in without biometrics: e-mail and password, then the PIN when the server wants it.
import { api, t, errorText, busy, say } from './common.js';
import { rememberFailedPINs } from './notice.js';

const form = document.getElementById('password-form');
const { email: emailField, password: passwordField } = form.elements;

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const email = emailField.value.trim();
  const password = passwordField.value;
  if (!email || !password) {
    const missing = [!email && emailField, !password && passwordField].filter(Boolean);
    say('password-error', t('form.required'), missing);
    missing[0].focus();
    return;
  }
  say('password-error', '');
  await busy(form, async () => {
    try {
      const res = (await api('POST', '/api/login/password', { json: { email, password } })) || {};
      const pending = res.next === 'pin' || res.stage === 'pending';
      rememberFailedPINs(res);
      location.assign(pending ? '/login/pin?via=password' : '/profile');
    } catch (e) {
      const wrong = e.status === 401;
      say('password-error', wrong && !e.code ? t('code.bad_credentials') : errorText(e, 'face'),
        wrong ? [emailField, passwordField] : []);
      passwordField.select();
    }
  });
});
