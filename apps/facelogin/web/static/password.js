// Sign-in without biometrics: e-mail and password, then the PIN when the server wants it.
// When this address is past its failure limit, the page asks for the PIN with the password
// and sends both together, which the server still checks (docs/security.md).
import { api, t, errorText, limitText, busy, say } from './common.js';
import { rememberFailedPINs } from './notice.js';

const form = document.getElementById('password-form');
const { email: emailField, password: passwordField, pin: pinField } = form.elements;
const together = document.getElementById('together');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const email = emailField.value.trim();
  const password = passwordField.value;
  const pin = together.hidden ? '' : pinField.value;
  if (!email || !password || (!together.hidden && !pin)) {
    const missing = [!email && emailField, !password && passwordField, !together.hidden && !pin && pinField].filter(Boolean);
    say('password-error', t('form.required'), missing);
    missing[0].focus();
    return;
  }
  say('password-error', '');
  await busy(form, async () => {
    try {
      const json = pin ? { email, password, pin } : { email, password };
      const res = (await api('POST', '/api/login/password', { json })) || {};
      const pending = res.next === 'pin' || res.stage === 'pending';
      rememberFailedPINs(res);
      location.assign(pending ? '/login/pin?via=password' : '/profile');
    } catch (e) {
      if (e.status === 429 && e.details && e.details.scope === 'client' && together.hidden) {
        together.hidden = false;
        say('password-error', limitText(e, 'pin'));
        pinField.focus();
        return;
      }
      if (e.code === 'bad_password_or_pin') {
        say('password-error', t('code.bad_password_or_pin'), [emailField, passwordField, pinField]);
        pinField.value = '';
        passwordField.select();
        return;
      }
      const wrong = e.status === 401;
      say('password-error', wrong && !e.code ? t('code.bad_credentials') : errorText(e, 'face'),
        wrong ? [emailField, passwordField] : []);
      passwordField.select();
    }
  });
});
