// The service's API as the Studio calls it. The key lives in this tab's sessionStorage and
// travels only in the x-api-key header: never in a URL, the page or a log.

const KEY_SLOT = "chamelaion.apiKey";
const API = "/api/v1";

export const storedKey = () => sessionStorage.getItem(KEY_SLOT);
export const keepKey = (key) => sessionStorage.setItem(KEY_SLOT, key);
export const forgetKey = () => sessionStorage.removeItem(KEY_SLOT);

/** A refused or failed call; `message` is the API's own error string where it sent one. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function errorText(status, body) {
  if (body && typeof body.error === "string") return body.error;
  return status ? `HTTP ${status}` : "the service cannot be reached";
}

/** GET (or POST `json`) an API path; resolves to the parsed body, rejects with ApiError. */
export async function call(path, { json, key = storedKey() } = {}) {
  const headers = { "x-api-key": key ?? "" };
  const init = { headers, cache: "no-store" };
  if (json !== undefined) {
    init.method = "POST";
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch {
    throw new ApiError(0, errorText(0));
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, errorText(response.status, body));
  return body;
}

/**
 * POST a multipart form to generate-with-media, reporting the fraction sent. XMLHttpRequest
 * because fetch reports no upload progress; the browser streams the chosen files from disk.
 */
export function upload(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${API}/lipsync/generate-with-media`);
    xhr.setRequestHeader("x-api-key", storedKey() ?? "");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 200) resolve(xhr.response);
      else reject(new ApiError(xhr.status, errorText(xhr.status, xhr.response)));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the upload was interrupted")));
    xhr.send(form);
  });
}
