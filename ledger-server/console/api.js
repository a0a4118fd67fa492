// The console's calls to the server: the admin token (memory only, never
// in storage, cookies or the DOM), one JSON call, errors in words.

/** The admin token: memory only. Set by `setToken` (app.js). */
export let token = null;
/** Everything that lives for one signed-in session. */
export let session = null;
let onExpired = () => {};

export function setToken(value) { token = value; }
export function setSession(value) { session = value; }
/** What ends the session when the server stops taking the token (app.js). */
export function setOnExpired(fn) { onExpired = fn; }
/** Ends the session with `message` (a 401 or 403 from the server). */
export function expire(message) { onExpired(message); }

// --- errors and the API -------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class NetworkError extends Error {}

/** What went wrong, in words a person can act on. */
export function describe(err) {
  if (err instanceof ApiError) return `${err.message} (${err.code}, HTTP ${err.status})`;
  if (err instanceof NetworkError) return err.message;
  return `Something went wrong in the page: ${err && err.message ? err.message : String(err)}`;
}

export function isAbort(err) {
  return err && err.name === 'AbortError';
}

/** A JSON call with the admin token; a 401 ends the session. */
export async function api(path, { method = 'GET', body, signal, bearer = token } = {}) {
  const headers = { Authorization: `Bearer ${bearer}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  let text;
  try {
    resp = await fetch(path, {
      method, headers, signal, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    text = await resp.text();
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new NetworkError(`The ledger server did not answer: ${e.message}`);
  }
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const detail = json && json.error ? json.error : {};
    const err = new ApiError(resp.status, detail.code || `http_${resp.status}`,
      detail.message || text.slice(0, 200) || resp.statusText);
    if (resp.status === 401 && bearer === token && session) {
      expire('The server refused the token (unauthorized): sign in again.');
    }
    throw err;
  }
  if (json === null) throw new ApiError(resp.status, 'not_json', 'The server answered with something that is not JSON.');
  return json;
}

export const agentPath = (id) => encodeURIComponent(id);
