// Calls to our JSON API from every surface, on the page's own cookie (the phone's viewer cookie, the
// console's host session). One shape for what goes wrong: an ApiError with the server's code.

/** A refused or failed call, shaped like the server's error body ({code, message}); ``status`` is the
 * HTTP status (0 when no answer came: code "offline"). */
export class ApiError extends Error {
  constructor(code, message, status = 0) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

/**
 * One call; resolves with the JSON answer (null when there is none), rejects with an ApiError.
 * ``body``: sent as JSON, or as it is when it is a Blob or File (then ``type`` is its content type).
 */
export async function api(method, url, body = undefined, { type } = {}) {
  const raw = body instanceof Blob;
  const init = { method, credentials: "same-origin", cache: "no-store", headers: {} };
  if (body !== undefined) {
    init.body = raw ? body : JSON.stringify(body);
    init.headers["content-type"] = raw ? type || body.type : "application/json";
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError("offline");
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const err = data && data.error;
    if (err && err.code) throw new ApiError(err.code, err.message, response.status);
    throw new ApiError("generic", `HTTP ${response.status}`, response.status);
  }
  return data;
}
