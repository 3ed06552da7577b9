// The stewards' page (upload, report, submit) and the reviewers' queue, on the stewards' API
// (/api, docs/stewards.md). The token stays in this tab's sessionStorage, never in a URL.
import { initI18n, t } from "./i18n.js";
import { el } from "./util.js";

const data = JSON.parse(document.getElementById("portal-data").textContent);
initI18n(data.strings, data.language);
const page = document.querySelector("main").dataset.page;
const TOKEN_KEY = "taza-token";
let user = null;

async function api(method, path, { body, type } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` };
  if (type) headers["Content-Type"] = type;
  const response = await fetch(path, { method, headers, body });
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
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

// --- sign in ----------------------------------------------------------------------------------

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  const answer = await api("GET", "/api/me");
  if (!answer.ok) {
    sessionStorage.removeItem(TOKEN_KEY);
    say("signin-status", problem(answer), true);
    return;
  }
  user = answer.body;
  const org = user.organisation ? `, ${user.organisation}` : "";
  document.getElementById("who-text").textContent = t("st.signed_in", { name: user.name, role: user.role, org });
  document.getElementById("signin").hidden = true;
  document.getElementById("who").hidden = false;
  say("signin-status", "");
  if (page === "st") await showDatasets();
  else await showQueue();
}

document.getElementById("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn(document.getElementById("token").value.trim());
});
document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});

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
       el("button", { type: "button", class: "secondary publish", onclick: () => act("publish") }, t("rv.publish"))),
    status);
}

if (sessionStorage.getItem(TOKEN_KEY)) signIn(sessionStorage.getItem(TOKEN_KEY));
