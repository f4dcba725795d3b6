// Admin: invite people (send an invitation again, revoke it), delete a person or their face
// data. The open-invitations list is read again after every change to it and every few
// seconds, so an invitation closed by the person joining leaves it.
import { api, t, errorText, busy, say } from './common.js';

const form = document.getElementById('invite-form');
const result = document.getElementById('invite-result');
const link = document.getElementById('invite-link');
const inviteList = document.getElementById('invite-list');

function localTime(iso) {
  const d = new Date(iso);
  return new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}

/** showInvitation fills the result panel: for whom, until when, and the link (shown once). */
function showInvitation(res) {
  link.value = new URL(res.url || `/enroll/${encodeURIComponent(res.token)}`, location.origin).href;
  say('invite-for', t('admin.invite_for', { name: res.name, email: res.email, until: localTime(res.expires_at) }));
  result.hidden = false;
  say('invite-hint', t('admin.invite_hint'));
  link.focus();
  link.select();
}

function inviteItem(inv) {
  const li = document.createElement('li');
  li.dataset.email = inv.email;
  const name = document.createElement('strong');
  name.textContent = inv.name;
  const about = document.createElement('span');
  about.className = 'muted';
  about.textContent = ` · ${inv.email} · ${t(`role.${inv.role}`)}`;
  const until = document.createElement('span');
  until.className = 'hint';
  const time = document.createElement('time');
  time.dateTime = inv.expires_at;
  time.textContent = localTime(inv.expires_at);
  until.append(`${t('admin.expires')} `, time);
  const actions = document.createElement('div');
  actions.className = 'row-actions';
  for (const [action, label, cls] of [['resend-invite', 'admin.resend', 'small'], ['revoke-invite', 'admin.revoke', 'small danger']]) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    b.dataset.action = action;
    b.dataset.email = inv.email;
    b.dataset.name = inv.name;
    b.textContent = t(label);
    actions.append(b);
  }
  li.append(name, ' ', about, document.createElement('br'), until, actions);
  return li;
}

/** listKey identifies what the open-invitations list shows, to redraw it only on a change. */
const listKey = (list) => JSON.stringify(list.map((i) => [i.email, i.name, i.role, i.expires_at]));
let shownKey = null;

/**
 * refreshInvites reads the open invitations again and shows them. With announce (the
 * periodic read), invitations that closed meanwhile (the person joined, another admin
 * revoked it, it expired) are named in the status line.
 */
async function refreshInvites({ announce = false } = {}) {
  try {
    const res = (await api('GET', '/api/admin/invites')) || {};
    const list = res.invites || [];
    const key = listKey(list);
    if (key === shownKey) return;
    if (announce) {
      const open = new Set(list.map((i) => i.email));
      const closed = [...inviteList.querySelectorAll('li[data-email]')].filter((li) => !open.has(li.dataset.email));
      for (const li of closed) say('invites-status', t('admin.invite_closed', { name: li.querySelector('strong').textContent }));
    }
    shownKey = key;
    inviteList.replaceChildren(...list.map(inviteItem));
    inviteList.hidden = list.length === 0;
    document.getElementById('no-invites').hidden = list.length > 0;
    say('invites-error', '');
  } catch (e) {
    if (!announce) say('invites-error', errorText(e));
  }
}

// Invitations also close away from this page: the list is read again every few seconds
// while the page is in view, and when it comes back into view.
const inviteRefresh = 5000;
setInterval(() => { if (!document.hidden) refreshInvites({ announce: true }); }, inviteRefresh);
document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshInvites({ announce: true }); });
refreshInvites();

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = form.elements.name.value.trim();
  const email = form.elements.email.value.trim();
  const role = form.elements.role.value;
  if (!name || !email) {
    say('invite-error', t('form.required'));
    (name ? form.elements.email : form.elements.name).focus();
    return;
  }
  say('invite-error', '');
  await busy(form, async () => {
    try {
      const res = (await api('POST', '/api/admin/invites', { json: { name, email, role } })) || {};
      form.reset();
      showInvitation(res);
      await refreshInvites();
    } catch (e) {
      say('invite-error', errorText(e));
    }
  });
});

document.getElementById('invite-copy').addEventListener('click', async () => {
  link.select();
  try {
    await navigator.clipboard.writeText(link.value);
    say('invite-hint', t('admin.copied'));
  } catch {
    say('invite-hint', t('admin.copy_manually'));
  }
});

const resetForm = document.getElementById('reset-form');
resetForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const password = resetForm.elements.password.checked;
  const pin = resetForm.elements.pin.checked;
  if (!password && !pin) {
    say('reset-error', t('admin.reset_nothing'));
    resetForm.elements.pin.focus();
    return;
  }
  say('reset-error', '');
  await busy(resetForm, async () => {
    try {
      const id = encodeURIComponent(resetForm.elements.user.value);
      const res = (await api('POST', `/api/admin/users/${id}/reset`, { json: { password, pin } })) || {};
      const out = document.getElementById('reset-link');
      out.value = new URL(res.url || `/reset/${encodeURIComponent(res.token)}`, location.origin).href;
      const what = t(password && pin ? 'admin.reset_both' : (pin ? 'admin.reset_only_pin' : 'admin.reset_only_password'));
      say('reset-for', t('admin.reset_for', { name: res.name, email: res.email, what, until: localTime(res.expires_at) }));
      document.getElementById('reset-result').hidden = false;
      out.focus();
      out.select();
    } catch (e) {
      say('reset-error', errorText(e));
    }
  });
});

const dialog = document.getElementById('confirm');
let pending = null;

inviteList.addEventListener('click', async (ev) => {
  const btn = ev.target.closest('button[data-action]');
  if (!btn) return;
  if (btn.dataset.action === 'revoke-invite') {
    pending = btn;
    document.getElementById('confirm-title').textContent = t('admin.confirm_revoke_title', { name: btn.dataset.name });
    document.getElementById('confirm-text').textContent = t('admin.confirm_revoke_text', { email: btn.dataset.email });
    dialog.showModal();
    return;
  }
  btn.disabled = true;
  try {
    const res = (await api('POST', `/api/admin/invites/${encodeURIComponent(btn.dataset.email)}/resend`, { json: {} })) || {};
    await refreshInvites();
    showInvitation(res);
  } catch (e) {
    btn.disabled = false;
    say('invites-error', errorText(e));
  }
});

document.getElementById('people').addEventListener('click', (ev) => {
  const btn = ev.target.closest('button[data-action]');
  if (!btn) return;
  pending = btn;
  const key = btn.dataset.action === 'delete-user' ? 'user' : 'face';
  document.getElementById('confirm-title').textContent = t(`admin.confirm_${key}_title`, { name: btn.dataset.name });
  document.getElementById('confirm-text').textContent = t(`admin.confirm_${key}_text`, { name: btn.dataset.name });
  dialog.showModal();
});

dialog.addEventListener('close', async () => {
  const btn = pending;
  pending = null;
  if (!btn) return;
  if (dialog.returnValue !== 'confirm') {
    btn.focus();
    return;
  }
  if (btn.dataset.action === 'revoke-invite') {
    btn.disabled = true;
    try {
      await api('DELETE', `/api/admin/invites/${encodeURIComponent(btn.dataset.email)}`);
      say('invites-status', t('admin.revoked', { name: btn.dataset.name }));
      await refreshInvites();
      document.querySelector('#open-invites h2').focus();
    } catch (e) {
      btn.disabled = false;
      say('invites-error', errorText(e));
    }
    return;
  }
  const id = encodeURIComponent(btn.dataset.id);
  const path = btn.dataset.action === 'delete-user' ? `/api/admin/users/${id}` : `/api/admin/users/${id}/face`;
  btn.disabled = true;
  try {
    await api('DELETE', path);
    location.reload();
  } catch (e) {
    btn.disabled = false;
    say('people-error', errorText(e));
    btn.focus();
  }
});
