// The console's only way to the server: the public JSON API of this same origin, with the API
// key the person signed in with. The key lives in this tab's sessionStorage (gone when the tab
// closes) and travels only in the Authorization header: no cookie, so no cross-site request
// can use it.

const STORE = 'plexe.console.key';
const BASE = '/v1';

export const session = {
  key: () => sessionStorage.getItem(STORE),
  signIn: (key) => sessionStorage.setItem(STORE, key),
  signOut: () => sessionStorage.removeItem(STORE),
};

/** An error answer of the API: `{"error": {code, message, status, request_id, details}}`. */
export class ApiError extends Error {
  constructor(status, envelope, fallback) {
    const e = envelope && envelope.error;
    super((e && e.message) || fallback || `The server answered ${status} without an explanation.`);
    this.status = status;
    this.code = (e && e.code) || (status ? 'http_error' : 'network_error');
    this.details = (e && e.details) || {};
    this.requestId = (e && e.request_id) || null;
  }
}

function unauthorized(err) {
  window.dispatchEvent(new CustomEvent('plexe:unauthorized', { detail: err }));
}

async function failure(res, explicitKey) {
  let envelope = null;
  try {
    envelope = await res.json();
  } catch {
    // Not JSON: the status alone says it.
  }
  const err = new ApiError(res.status, envelope);
  if (res.status === 401 && !explicitKey) unauthorized(err);
  return err;
}

/**
 * One API call. `json` is sent as JSON; `body` as is with `type`. `key` overrides the signed-in
 * key (signing in checks a key before keeping it). Resolves to the Response; rejects with
 * an ApiError.
 */
export async function request(method, path, { json, body, type, key, signal } = {}) {
  const headers = { Authorization: `Bearer ${key || session.key() || ''}` };
  let payload = body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(json);
  } else if (type) {
    headers['Content-Type'] = type;
  }
  let res;
  try {
    res = await fetch(BASE + path, { method, headers, body: payload, signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, null, `The server could not be reached (${e.message}).`);
  }
  if (!res.ok) throw await failure(res, key);
  return res;
}

export const get = async (path, opts) => (await request('GET', path, opts)).json();
export const post = async (path, json, opts) => (await request('POST', path, { json, ...opts })).json();
export const del = async (path, opts) => (await request('DELETE', path, opts)).json();

/** `encodeURIComponent` for path segments. */
export const seg = encodeURIComponent;

/**
 * Sends `file` with XMLHttpRequest, which reports upload progress (fetch does not):
 * `onProgress(share)` from 0 to 1. `auth` adds the key (not for a signed upload URL).
 */
export function send({ method, url, file, type, auth, onProgress }) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(method, url);
    if (auth) x.setRequestHeader('Authorization', `Bearer ${session.key() || ''}`);
    if (type) x.setRequestHeader('Content-Type', type);
    x.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    });
    x.addEventListener('load', () => {
      let json = null;
      try {
        json = JSON.parse(x.responseText);
      } catch {
        // An empty or non-JSON body.
      }
      if (x.status >= 200 && x.status < 300) return resolve(json);
      const err = new ApiError(x.status, json);
      if (x.status === 401 && auth) unauthorized(err);
      return reject(err);
    });
    x.addEventListener('error', () => reject(new ApiError(0, null, 'The upload failed: the server could not be reached, or refused the request.')));
    x.addEventListener('abort', () => reject(new ApiError(0, null, 'The upload was cancelled.')));
    x.send(file);
  });
}

export { BASE };
