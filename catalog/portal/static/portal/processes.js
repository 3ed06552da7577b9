// A small OGC API - Processes client: describe a process, execute it synchronously, or as a
// job (Prefer: respond-async) polled at /ogc/jobs/<id> until it ends (docs/processes.md).
import { problemText } from "./i18n.js";
import { getJson } from "./util.js";

const POLL_MS = [300, 500, 800, 1000]; // then every second
const JOB_DEADLINE_MS = 330_000; // the server's job budget is 300 s

export function describe(processId) {
  return getJson(`/ogc/processes/${encodeURIComponent(processId)}?f=json`);
}

async function failure(response) {
  const body = await response.json().catch(() => null);
  const error = new Error(problemText(body) || `HTTP ${response.status}`);
  error.status = response.status;
  error.problem = body; // messageCode and params: analysis.js says it with its own labels
  return error;
}

/** Location headers carry the server's public URL; follow only their path, on this origin. */
function samePath(url) {
  const parsed = new URL(url, location.href);
  return parsed.pathname;
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function waitForJob(jobPath, onProgress) {
  const started = Date.now();
  for (let attempt = 0; Date.now() - started < JOB_DEADLINE_MS; attempt += 1) {
    const job = await getJson(jobPath);
    onProgress(job);
    if (job.status === "successful") return getJson(`${jobPath}/results`);
    if (job.status === "failed" || job.status === "dismissed") {
      const error = new Error(problemText(job) || job.status);
      error.job = job;
      if (job.messageCode) error.problem = job; // why it failed, said with the page's labels
      throw error;
    }
    await sleep(POLL_MS[Math.min(attempt, POLL_MS.length - 1)]);
  }
  throw new Error(`${jobPath}: no result after ${JOB_DEADLINE_MS / 1000} s`);
}

/**
 * Run a process with `inputs`. With `asJob`, ask for an asynchronous job and poll it,
 * reporting each status to `onProgress(job)`. Resolves to the result (raw response);
 * rejects with an Error whose message is the server's description.
 */
export async function execute(processId, inputs, { asJob = false, onProgress = () => {} } = {}) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (asJob) headers.Prefer = "respond-async";
  const response = await fetch(`/ogc/processes/${encodeURIComponent(processId)}/execution`, {
    method: "POST", headers, body: JSON.stringify({ inputs }),
  });
  if (!response.ok) throw await failure(response);
  if (response.status === 201 && response.headers.get("Location")) {
    const accepted = await response.json().catch(() => ({}));
    onProgress(accepted);
    return waitForJob(samePath(response.headers.get("Location")), onProgress);
  }
  return response.json();
}
