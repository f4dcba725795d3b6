// Admin: invite people, delete a person or their face data.
import { api, t, errorText, busy, say } from './common.js';

const form = document.getElementById('invite-form');
const result = document.getElementById('invite-result');
const link = document.getElementById('invite-link');

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
      link.value = new URL(res.url || `/enroll/${encodeURIComponent(res.token)}`, location.origin).href;
      result.hidden = false;
      say('invite-hint', t('admin.invite_hint'));
      form.reset();
      link.focus();
      link.select();
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

const dialog = document.getElementById('confirm');
let pending = null;

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
