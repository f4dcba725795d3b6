// What a person is told after signing in about wrong PINs given for their account since
// their previous sign-in (the API's failed_pins): kept for the next page, shown there once.

const KEY = 'facelogin.failed_pins';

/** rememberFailedPINs keeps a sign-in answer's failed_pins for the profile page. */
export function rememberFailedPINs(res) {
  const f = res && res.failed_pins;
  try {
    if (f && f.count > 0) sessionStorage.setItem(KEY, JSON.stringify(f));
    else sessionStorage.removeItem(KEY);
  } catch { /* private mode: the history on the profile still lists them */ }
}

/** takeFailedPINs returns the remembered failed_pins once, or null. */
export function takeFailedPINs() {
  try {
    const v = sessionStorage.getItem(KEY);
    sessionStorage.removeItem(KEY);
    return v ? JSON.parse(v) : null;
  } catch {
    return null;
  }
}
