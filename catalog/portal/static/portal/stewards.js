// The stewards' page (upload, report, submit) and the reviewers' queue, on the stewards' API
// (/api, docs/stewards.md). Sign-in with name and password opens a server-side session held in
// an HttpOnly cookie this script never sees; writes carry the session's CSRF token in a header.
// A one-time link (#set-password=CODE) sets the password; the code leaves the address bar at
// once and goes to the server only in a request body.
import { initI18n, t } from "./i18n.js";
import { el } from "./util.js";

const data = JSON.parse(document.getElementById("portal-data").textContent);
initI18n(data.strings, data.language);
const page = document.querySelector("main").dataset.page;
const LINK_PREFIX = "#set-password=";
let user = null;
let csrfToken = null;

async function api(method, path, { body, type } = {}) {
  const headers = { Accept: "application/json" };
  if (type) headers["Content-Type"] = type;
  if (csrfToken && method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  if (response.status === 401 && user) sessionEnded();
  return { ok: response.ok, status: response.status, body: parsed };
}

function problem(answer) {
  const body = answer.body || {};
  return body.description || body.detail || body.message || body.error || `HTTP ${answer.status}`;
}

function say(id, text, isError = false) {
  const node = document.getElementById(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

function show(id, visible) {
  const node = document.getElementById(id);
  if (node) node.hidden = !visible;
}

// --- sign in, sign out, set a password ---------------------------------------------------------

function showSignIn(message = "", isError = false, name = "") {
  user = null;
  csrfToken = null;
  show("signin", true);
  show("set-password", false);
  show("who", false);
  for (const id of ["datasets-box", "draft-box", "queue-box"]) show(id, false);
  if (name) document.getElementById("signin-name").value = name;
  document.getElementById("signin-password").value = "";
  say("signin-status", message, isError);
}

function sessionEnded() {
  showSignIn(t("st.session_ended"), true);
}

async function signedIn(session) {
  user = session.user;
  csrfToken = session.csrf_token;
  const org = user.organisation ? `, ${user.organisation}` : "";
  document.getElementById("who-text").textContent = t("st.signed_in", { name: user.name, role: user.role, org });
  show("signin", false);
  show("set-password", false);
  show("who", true);
  say("signin-status", "");
  if (page === "st") await showDatasets();
  else await showQueue();
}

document.getElementById("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = document.getElementById("signin-name").value.trim();
  const password = document.getElementById("signin-password").value;
  const answer = await api("POST", "/api/session",
                           { body: JSON.stringify({ name, password }), type: "application/json" });
  document.getElementById("signin-password").value = "";
  if (answer.ok) { await signedIn(answer.body); return; }
  if (answer.status === 401) say("signin-status", t("st.signin_failed"), true);
  else if (answer.status === 429) say("signin-status", t("st.too_many", { seconds: answer.body.retry_after }), true);
  else say("signin-status", problem(answer), true);
});

document.getElementById("signout").addEventListener("click", async () => {
  await api("DELETE", "/api/session");
  showSignIn();
});

function showSetPassword(code) {
  show("signin", false);
  show("set-password", true);
  document.getElementById("set-password").addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = document.getElementById("new-password").value;
    if (password !== document.getElementById("repeat-password").value) {
      say("signin-status", t("st.password_mismatch"), true);
      return;
    }
    const answer = await api("POST", "/api/password",
                             { body: JSON.stringify({ code, password }), type: "application/json" });
    if (answer.ok) showSignIn(t("st.password_set"), false, answer.body.name);
    else if (answer.status === 400 && /link/.test(problem(answer))) say("signin-status", t("st.link_invalid"), true);
    else say("signin-status", problem(answer), true);
  });
}

async function start() {
  if (location.hash.startsWith(LINK_PREFIX)) {
    const code = decodeURIComponent(location.hash.slice(LINK_PREFIX.length));
    // The code must not stay in the address bar or the history.
    history.replaceState(null, "", location.pathname + location.search);
    showSetPassword(code);
    return;
  }
  const session = await api("GET", "/api/session");
  if (session.ok && session.body.signed_in) await signedIn(session.body);
  else if (session.ok && session.body.ended) showSignIn(t("st.session_ended"), true);
  else showSignIn();
}

// --- findings report (shared) ---------------------------------------------------------------

function reportNode(report) {
  if (!report || !report.summary) return el("p", { class: "status" }, "—");
  const summary = report.summary;
  const verdict = el("p", { id: "report-verdict", class: summary.publishable ? "ok" : "status error",
                            "data-publishable": String(summary.publishable) },
                     el("strong", {}, summary.publishable ? t("st.publishable") : t("st.not_publishable")),
                     ` · ${Object.entries(summary).filter(([k]) => k !== "publishable").map(([k, v]) => `${k}: ${v}`).join(", ")}`);
  const rows = (report.findings || []).map((f) =>
    el("tr", { class: `finding finding-${f.status}` }, el("td", {}, f.status), el("td", {}, f.location || ""),
       el("td", {}, f.message)));
  const table = rows.length
    ? el("table", {}, el("tbody", {}, rows))
    : el("p", {}, t("st.no_findings"));
  return el("div", {}, verdict, table);
}

// --- stewards: datasets, draft, upload, submit -------------------------------------------------

let current = null;
let hasDraft = false; // a new dataset has no draft until its first manifest or upload
let listing = [];

async function showDatasets() {
  document.getElementById("datasets-box").hidden = false;
  const answer = await api("GET", "/api/datasets");
  const list = document.getElementById("datasets");
  if (!answer.ok) { say("datasets-status", problem(answer), true); return; }
  listing = answer.body.datasets;
  list.replaceChildren(...answer.body.datasets.map((d) => el("li", {},
    el("strong", {}, d.id), " ", d.draft ? `(${d.draft.state || d.draft})` : "",
    " ", el("button", { type: "button", class: "secondary", onclick: () => openDraft(d.id) }, t("st.open")))));
}

document.getElementById("new-dataset")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = document.getElementById("new-id").value.trim();
  const answer = await api("POST", "/api/datasets", { body: JSON.stringify({ id }), type: "application/json" });
  if (!answer.ok) { say("datasets-status", problem(answer), true); return; }
  say("datasets-status", t("st.done"));
  await showDatasets();
  await openDraft(id);
});

async function openDraft(id) {
  current = id;
  document.getElementById("draft-box").hidden = false;
  document.getElementById("draft-title").textContent = t("st.draft", { id });
  const entry = listing.find((d) => d.id === id);
  hasDraft = Boolean(entry && entry.draft);
  document.getElementById("manifest").value = "";
  if (hasDraft) {
    const manifest = await api("GET", `/api/datasets/${id}/draft/manifest`);
    if (manifest.ok) document.getElementById("manifest").value = manifest.body;
  }
  await refreshDraft();
}

async function refreshDraft() {
  if (!hasDraft) {
    document.getElementById("draft-state").textContent = "—";
    document.getElementById("report").replaceChildren(reportNode(null));
    return;
  }
  const draft = await api("GET", `/api/datasets/${current}/draft`);
  document.getElementById("draft-state").textContent = draft.ok ? draft.body.state : "—";
  show("publish-draft", draft.ok && draft.body.state === "approved");
  const report = await api("GET", `/api/datasets/${current}/draft/report`);
  document.getElementById("report").replaceChildren(reportNode(report.ok ? report.body : null));
}

document.getElementById("manifest-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const answer = await api("PUT", `/api/datasets/${current}/draft/manifest`,
                           { body: document.getElementById("manifest").value, type: "application/yaml" });
  hasDraft = hasDraft || answer.ok || answer.status === 422;
  say("draft-status", answer.ok ? t("st.done") : problem(answer), !answer.ok && answer.status !== 422);
  await refreshDraft();
});

document.getElementById("source-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = document.getElementById("source").files[0];
  if (!file) return;
  say("draft-status", "…");
  const answer = await api("PUT", `/api/datasets/${current}/draft/source?filename=${encodeURIComponent(file.name)}`,
                           { body: file, type: "application/octet-stream" });
  hasDraft = hasDraft || answer.ok || answer.status === 422;
  say("draft-status", answer.ok ? t("st.done") : problem(answer), !answer.ok && answer.status !== 422);
  await refreshDraft();
});

document.getElementById("publish-draft")?.addEventListener("click", async () => {
  show("publish-draft", false);
  const job = await publishWithProgress(current, document.getElementById("publish-box"));
  if (job && job.state === "succeeded") hasDraft = false;
  await refreshDraft();
});

document.getElementById("submit-draft")?.addEventListener("click", async () => {
  const answer = await api("POST", `/api/datasets/${current}/draft/submit`);
  say("draft-status", answer.ok ? t("st.done") : problem(answer), !answer.ok);
  await refreshDraft();
});

// --- reviewers: the queue ---------------------------------------------------------------------

async function showQueue() {
  document.getElementById("queue-box").hidden = false;
  const answer = await api("GET", "/api/reviews");
  const queue = document.getElementById("queue");
  if (!answer.ok) { say("queue-status", problem(answer), true); return; }
  say("queue-status", answer.body.drafts.length ? "" : t("rv.empty"));
  queue.replaceChildren(...answer.body.drafts.map(queueItem));
}

function queueItem(draft) {
  const reportBox = el("div", { class: "report" });
  const comment = el("textarea", { rows: "2", "aria-label": t("rv.comment"), class: "comment" });
  const status = el("p", { class: "status", role: "status" });
  const progress = el("div", { class: "publish-box" });
  const act = async (step, body) => {
    const answer = await api("POST", `/api/datasets/${draft.dataset_id}/draft/${step}`,
                             body ? { body: JSON.stringify(body), type: "application/json" } : {});
    status.textContent = answer.ok ? `${t("st.done")}: ${answer.body.state || step}` : problem(answer);
    status.classList.toggle("error", !answer.ok);
  };
  api("GET", draft.report).then((r) => reportBox.replaceChildren(reportNode(r.ok ? r.body : null)));
  return el("li", { "data-dataset": draft.dataset_id },
    el("h3", {}, draft.dataset_id),
    el("p", { class: "meta" }, `${t("rv.author")}: ${draft.author} · ${draft.updated_at}`),
    reportBox, el("label", {}, t("rv.comment"), comment),
    el("div", { class: "row" },
       el("button", { type: "button", class: "approve", onclick: () => act("approve") }, t("rv.approve")),
       el("button", { type: "button", class: "secondary reject",
                      onclick: () => act("reject", { comment: comment.value }) }, t("rv.reject")),
       el("button", { type: "button", class: "secondary publish",
                      onclick: () => publishWithProgress(draft.dataset_id, progress) }, t("rv.publish"))),
    status, progress);
}

// --- publishing: the API queues a job; a progress bar follows it to its end --------------------

const JOB_POLL_MS = 500;

async function publishWithProgress(datasetId, box) {
  const bar = el("progress", { class: "publish-progress", max: "100", value: "0",
                               "aria-label": t("pb.label") });
  const text = el("p", { class: "status publish-status", role: "status", "aria-live": "polite" },
                  t("pb.queued"));
  box.replaceChildren(bar, text);
  const answer = await api("POST", `/api/datasets/${datasetId}/draft/publish`);
  if (answer.status !== 202) {
    bar.remove();
    text.textContent = problem(answer);
    text.classList.add("error");
    return null;
  }
  let job = answer.body;
  const self = job.links.find((link) => link.rel === "self").href;
  showJob(job, bar, text);
  while (job.state === "queued" || job.state === "running") {
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
    const next = await api("GET", self);
    if (!next.ok) {
      text.textContent = problem(next);
      text.classList.add("error");
      return null;
    }
    job = next.body;
    showJob(job, bar, text);
  }
  return job;
}

function showJob(job, bar, text) {
  bar.value = job.progress;
  bar.dataset.state = job.state;
  text.classList.toggle("error", job.state === "failed");
  if (job.state === "succeeded") {
    text.replaceChildren(t("pb.succeeded", { version: job.result.version }), " ",
                         el("a", { href: `/datasets/${job.dataset}` }, job.dataset));
  } else if (job.state === "failed") {
    text.textContent = t("pb.failed", { reason: job.error.description });
  } else if (job.state === "queued") {
    text.textContent = t("pb.queued");
  } else {
    text.textContent = t("pb.running", { step: t(`pb.${job.step || "validating"}`), percent: job.progress });
  }
}

start();
