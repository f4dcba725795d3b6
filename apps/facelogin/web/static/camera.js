// The camera: start it with clear failure reasons, and grab JPEG frames from it.
import { withTimeout, t, has } from './common.js';

/** CameraError.reason is "denied", "missing", "busy", "unsupported" or "timeout". */
export class CameraError extends Error {
  constructor(reason, cause) {
    super(reason);
    this.reason = reason;
    this.cause = cause;
  }
}

/**
 * startCamera shows the user-facing camera in video. onWaiting is called when the browser is
 * still asking for permission after a moment, so the page can explain the prompt.
 */
export async function startCamera(video, { onWaiting, timeout = 45000 } = {}) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new CameraError(window.isSecureContext ? 'unsupported' : 'insecure');
  }
  const waiting = onWaiting ? setTimeout(onWaiting, 1500) : 0;
  let stream;
  try {
    stream = await withTimeout(navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: 'user', width: { ideal: 640 }, height: { ideal: 480 } },
    }), timeout, 'TimeoutError');
  } catch (e) {
    throw new CameraError(reasonOf(e), e);
  } finally {
    clearTimeout(waiting);
  }
  video.srcObject = stream;
  try {
    await withTimeout(new Promise((resolve) => {
      if (video.readyState >= 2 && video.videoWidth > 0) resolve();
      else video.addEventListener('loadeddata', resolve, { once: true });
    }), 10000, 'TimeoutError');
    await video.play().catch(() => {});
  } catch (e) {
    stopCamera(stream);
    throw new CameraError('timeout', e);
  }
  return stream;
}

function reasonOf(e) {
  switch (e && e.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'denied';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'missing';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'busy';
    case 'TimeoutError':
      return 'timeout';
  }
  return 'unsupported';
}

/** stopCamera releases the camera (the light goes off). */
export function stopCamera(stream) {
  if (stream) stream.getTracks().forEach((t) => t.stop());
}

/** grabFrame encodes the current video picture as JPEG, at most 640 px wide. */
export function grabFrame(video, canvas, quality = 0.85) {
  const scale = Math.min(1, 640 / (video.videoWidth || 640));
  canvas.width = Math.round((video.videoWidth || 640) * scale);
  canvas.height = Math.round((video.videoHeight || 480) * scale);
  canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) => {
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('encode failed'))), 'image/jpeg', quality);
  });
}

/**
 * cameraFor starts the camera for a run that may end while the browser asks (run.done): then
 * the camera is released again. It returns the stream, or null when the run ended or the
 * camera failed; a failure's reason goes to fail. onWaiting is as for startCamera.
 */
export async function cameraFor(run, video, { onWaiting, fail }) {
  let stream;
  try {
    stream = await startCamera(video, { onWaiting: () => { if (!run.done) onWaiting(); } });
  } catch (e) {
    if (!run.done) fail(e instanceof CameraError ? e.reason : 'unsupported');
    return null;
  }
  if (run.done) {
    stopCamera(stream);
    return null;
  }
  return stream;
}

/** GUIDE_GAP_MS is the least time between two announcements of the guidance live region. */
const GUIDE_GAP_MS = 1500;

/**
 * guidance returns guide(code, vars), which shows the text for a guidance code in the live
 * region el (a neutral "checking" for a code the page has no text for: the server's words are
 * English). Screen readers announce every change of a live region, so the text changes only
 * when it differs, and at most once per GUIDE_GAP_MS: a change within that time waits, and
 * only the newest waiting text is shown. data-code always follows at once.
 */
export function guidance(el) {
  let shownAt = 0;
  let timer = 0;
  return (code, vars = {}) => {
    const text = has(`guide.${code}`) ? t(`guide.${code}`, vars) : t('guide.unknown_code');
    el.dataset.code = code;
    clearTimeout(timer);
    if (el.textContent === text) return;
    const show = () => {
      el.textContent = text;
      shownAt = Date.now();
    };
    const wait = shownAt + GUIDE_GAP_MS - Date.now();
    if (wait <= 0) show();
    else timer = setTimeout(show, wait);
  };
}

/**
 * cameraView finds what both camera pages (login and capture) show: the preview video, the
 * guidance live region and the problem box; canvas is an off-screen one for frames.
 */
export function cameraView() {
  return {
    video: document.getElementById('preview'),
    guidanceEl: document.getElementById('guidance'),
    problemEl: document.getElementById('problem'),
    canvas: document.createElement('canvas'),
  };
}

/** describeProblem fills the problem box's title and text. */
export function describeProblem(title, text) {
  document.getElementById('problem-title').textContent = title;
  document.getElementById('problem-text').textContent = text;
}
