// The stewards' page (upload, report, submit) and the reviewers' queue, on the stewards' API
// (/api, docs/stewards.md). Sign-in with name and password opens a server-side session held in
// an HttpOnly cookie this script never sees; writes carry the session's CSRF token in a header.
// A one-time link (#set-password=CODE) sets the password; the code leaves the address bar at
// once and goes to the server only in a request body.
import { formatDate, initI18n, problemText, t } from "./i18n.js";
import { buildForm, checkDates, fillForm, idProblem, readForm } from "./steward-form.js";
import { extentText, previewNode } from "./steward-preview.js";
import { el, formatNumber } from "./util.js";

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

// A refusal in the page's language from its messageCode and params (strings.yml
// `problem.<code>`); the server's English description only for a code the page does not know.
function problem(answer) {
  const body = answer.body && typeof answer.body === "object" ? answer.body : {};
  return problemText(body) || body.message || body.error || `HTTP ${answer.status}`;
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
  document.getElementById("who-text").textContent = t("st.signed_in", { name: user.name, role: t(`steward_account_${user.role}`), org });
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
    else if (answer.body?.messageCode === "password_link_invalid") say("signin-status", t("st.link_invalid"), true);
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

function reportNode(report, datasetId) {
  if (!report || !report.summary) return el("p", { class: "status" }, "—");
  const summary = report.summary;
  const verdict = el("p", { id: "report-verdict", class: summary.publishable ? "ok" : "status error",
                            "data-publishable": String(summary.publishable) },
                     el("strong", {}, summary.publishable ? t("st.publishable") : t("st.not_publishable")));
  const rows = (report.findings || []).map((f) =>
    el("tr", { class: `finding finding-${f.status}` }, el("td", {}, t(`steward_status_${f.status}`)),
       el("td", {}, findingPlace(f)), el("td", { class: "finding-text" }, findingText(f))));
  const table = rows.length
    ? el("table", {}, el("tbody", {}, rows))
    : el("p", {}, t("st.no_findings"));
  const repairable = (report.findings || []).some((f) => f.status === "blocking"
    && (f.code === "invalid_geometry" || REPAIRABLE.test(f.message)));
  const drawable = datasetId && report.source && report.source.facts && report.source.facts.extent;
  return el("div", {}, verdict, factsNode(report.source), drawable ? previewNode(datasetId, data) : null, table,
    repairable && page === "st" ? el("button", { type: "button", id: "repair", class: "busy-lock",
                                                 onclick: () => startUpload({ repair: true }) }, t("steward_repair")) : null,
    datasetId ? el("p", {}, el("a", { href: `/api/datasets/${datasetId}/draft/report?f=html&lang=${data.language}`, target: "_blank",
                                      rel: "noopener" }, t("steward_open_report"))) : null);
}

// The server names the repair where one exists; the page offers it as a button instead.
const REPAIRABLE = /\s*\(upload with repair=geometry[^)]*\)/;

// A finding with a code is said in the page's language (catalog/sources/finding_texts.yml,
// filled from its params); one without keeps the server's English words, with any server
// path cut to the file's name and internal flags left out.
function findingText(finding) {
  const texts = data.findingTexts[finding.code];
  if (texts) {
    const params = finding.params || {};
    return (texts[data.language] || texts.en).replace(/\{(\w+)\}/g, (whole, name) =>
      (name in params ? (typeof params[name] === "number" ? formatNumber(params[name], data.language) : params[name]) : whole));
  }
  return finding.message.replace(REPAIRABLE, "").replace(/(\/[^\s'"]+)+\/([^\s/'"]+)/g, "$2").replace(/,?\s*flags=\d+/g, "");
}

// Where a finding is, in the page's words: the manifest's field, or the file's row, feature,
// archive member, layer, band, variable and field.
function findingPlace(finding) {
  const where = finding.where || {};
  if (where.file === "manifest") return t("steward_where_manifest", { field: where.field || "" });
  const parts = [];
  if (where.row != null) parts.push(t(where.line != null ? "steward_where_row_line" : "steward_where_row", where));
  if (where.feature != null) parts.push(t("steward_where_feature", { feature: where.feature }));
  if (where.id != null) parts.push(`${where.id_field || "id"} = ${where.id}`);
  for (const key of ["member", "layer", "band", "variable", "field"]) {
    if (where[key] != null) parts.push(t(`steward_where_${key}`, where));
  }
  if (!parts.length && where.file) parts.push(t("steward_where_file"));
  return parts.join(", ");
}

function factsNode(source) {
  const facts = source && source.facts;
  if (!facts) return null;
  const language = data.language;
  const rows = [["steward_fact_format", source.format]];
  if (facts.feature_count != null) rows.push(["steward_fact_count", formatNumber(facts.feature_count, language)]);
  if (facts.geometry_types) {
    rows.push(["steward_fact_geometry", Object.entries(facts.geometry_types)
      .map(([type, count]) => `${type}: ${formatNumber(count, language)}`).join(", ")]);
  }
  if (facts.width != null) rows.push(["steward_fact_size", t("steward_fact_size_value", facts)]);
  rows.push(["steward_fact_crs", facts.crs || t("steward_no_crs")]);
  if (facts.extent) rows.push(["steward_fact_extent", extentText(facts.extent, language).join(" · ")]);
  if (facts.fields) {
    rows.push(["steward_fact_fields", Object.entries(facts.fields).map(([name, type]) => `${name} (${type})`).join(", ")]);
  }
  return el("dl", { class: "facts", id: "report-facts" }, ...rows.flatMap(([key, value]) =>
    [el("dt", {}, t(key)), el("dd", { "data-fact": key }, value)]));
}

// --- stewards: datasets, draft, upload, submit -------------------------------------------------

let current = null;
let dataset = null; // GET /api/datasets/{id}: its draft, versions, whether it has a manifest
let listing = [];
let loadedManifest = null; // the manifest the form was filled from (fields it hides are kept)
const schema = data.manifestSchema;
const EDITOR_ROLES = ["steward", "admin"];

if (page === "st") buildForm(document.getElementById("manifest-fields"), schema, data.themes, data.language);

function stateWords(state) {
  return state ? t(`steward_state_${state}`) : t("steward_state_none");
}

async function showDatasets() {
  document.getElementById("datasets-box").hidden = false;
  const answer = await api("GET", "/api/datasets");
  const list = document.getElementById("datasets");
  if (!answer.ok) { say("datasets-status", problem(answer), true); return; }
  // Only what this person may act on: their organisation's datasets (others are public pages).
  listing = answer.body.datasets.filter((d) => d.organisation && (user.role === "admin" || d.organisation === user.organisation));
  const details = await Promise.all(listing.map((d) => api("GET", `/api/datasets/${d.id}`)));
  list.replaceChildren(...listing.map((d, index) => {
    const title = details[index].ok && details[index].body.title;
    return el("li", { "data-dataset": d.id },
      el("strong", {}, title ? (title[data.language] || title.en) : d.id), " ",
      el("span", { class: "meta" }, [d.id, d.draft ? stateWords(d.draft.state) : null,
        d.live_version ? t("steward_live_version", { version: d.live_version }) : t("steward_not_live")]
        .filter(Boolean).join(" · ")), " ",
      el("button", { type: "button", class: "secondary", onclick: () => openDraft(d.id) }, t("st.open")));
  }));
}

document.getElementById("new-id")?.addEventListener("input", (event) => {
  const id = event.target.value.trim();
  say("datasets-status", id ? idProblem(schema, id) : "", true);
});

document.getElementById("new-dataset")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = document.getElementById("new-id").value.trim();
  const refused = idProblem(schema, id);
  if (refused) { say("datasets-status", refused, true); return; }
  const answer = await api("POST", "/api/datasets", { body: JSON.stringify({ id }), type: "application/json" });
  if (!answer.ok) { say("datasets-status", problem(answer), true); return; }
  say("datasets-status", t("st.done"));
  await showDatasets();
  await openDraft(id);
});

async function openDraft(id) {
  current = id;
  document.getElementById("draft-box").hidden = false;
  document.getElementById("draft-title").textContent = "";
  setBusy(true);
  const canEdit = EDITOR_ROLES.includes(user.role);
  for (const form of ["manifest-form", "yaml-box", "source-form", "submit-draft"]) show(form, canEdit);
  await refreshDataset();
  await loadManifest();
  await refreshDraft();
  setBusy(false);
  // The title last: it tells the steward (and the tests) the draft is ready to edit.
  document.getElementById("draft-title").textContent = t("st.draft", { id });
}

async function refreshDataset() {
  const answer = await api("GET", `/api/datasets/${current}`);
  dataset = answer.ok ? answer.body : { released_versions: [] };
}

// The form and the YAML box show the draft's manifest or, without a draft, the last published one.
async function loadManifest() {
  const form = document.getElementById("manifest-form");
  if (!dataset.manifest) {
    document.getElementById("manifest").value = "";
    loadedManifest = { id: current };
    fillForm(form, schema, loadedManifest);
    show("form-origin", false);
    return;
  }
  const [fields, text] = await Promise.all([
    api("GET", `/api/datasets/${current}/draft/manifest`),
    fetch(`/api/datasets/${current}/draft/manifest`, { headers: { Accept: "application/yaml" } })]);
  document.getElementById("manifest").value = text.ok ? await text.text() : "";
  loadedManifest = fields.ok ? fields.body : { id: current };
  fillForm(form, schema, loadedManifest);
  show("form-origin", fields.ok && !dataset.draft);
  if (fields.status === 422) {
    document.getElementById("yaml-box").open = true;
    say("draft-status", t("steward_yaml_only"), true);
  }
}

async function refreshDraft() {
  await refreshDataset();
  const draft = dataset.draft ? await api("GET", `/api/datasets/${current}/draft`) : { ok: false };
  document.getElementById("draft-state").textContent = stateWords(draft.ok ? draft.body.state : null);
  show("publish-draft", draft.ok && draft.body.state === "approved");
  const report = draft.ok ? await api("GET", `/api/datasets/${current}/draft/report`) : null;
  document.getElementById("report").replaceChildren(reportNode(report && report.ok ? report.body : null,
                                                               draft.ok ? current : null));
  await showVersions();
}

async function saveManifest(body, type) {
  setBusy(true);
  const answer = await api("PUT", `/api/datasets/${current}/draft/manifest`, { body, type });
  setBusy(false);
  say("draft-status", answer.ok ? t("st.done") : answer.status === 422 ? t("st.not_publishable") : problem(answer),
      !answer.ok);
  await refreshDataset();
  if (answer.ok || answer.status === 422) await loadManifest();
  await refreshDraft(); // last: the report is what the steward waits for
}

document.getElementById("manifest-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!checkDates(event.target)) {
    say("draft-status", t("date.invalid_form"), true);
    event.target.querySelector("[aria-invalid=true]").focus();
    return;
  }
  const manifest = readForm(event.target, loadedManifest);
  manifest.id = manifest.id || current;
  await saveManifest(JSON.stringify(manifest), "application/json");
});

document.getElementById("yaml-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  await saveManifest(document.getElementById("manifest").value, "application/yaml");
});

// Every button that changes the draft is disabled while a request runs.
function setBusy(busy) {
  document.querySelectorAll(".busy-lock").forEach((button) => { button.disabled = busy; });
}

// --- upload: XMLHttpRequest (for its progress events), in pieces with Content-Range, so a
// cut upload resumes where the server says it stopped (catalog/stewards/resume.py) ----------

const PIECE_BYTES = 8 << 20;
const FINGERPRINT_BLOCK = 8 << 20; // resume.py BLOCK_BYTES

// The file's fingerprint, named by every piece so a resume can only go on with the same file:
// the SHA-256 of the SHA-256 digests of its 8 MiB blocks (crypto.subtle cannot hash a file in
// a stream, and a whole 2 GB file does not fit in memory). Null where crypto.subtle is missing
// (a page not served over HTTPS or loopback): the file then goes whole, in one request.
async function fingerprintOf(file) {
  if (!globalThis.crypto?.subtle) return null;
  const digests = new Uint8Array(32 * Math.ceil(file.size / FINGERPRINT_BLOCK));
  for (let at = 0; at < file.size; at += FINGERPRINT_BLOCK) {
    const block = await file.slice(at, at + FINGERPRINT_BLOCK).arrayBuffer();
    digests.set(new Uint8Array(await crypto.subtle.digest("SHA-256", block)), (32 * at) / FINGERPRINT_BLOCK);
  }
  const whole = new Uint8Array(await crypto.subtle.digest("SHA-256", digests));
  return `sha256-blocks:${Array.from(whole, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

async function startUpload({ repair = false, resume = false } = {}) {
  const file = document.getElementById("source").files[0];
  if (!file) {
    say("upload-status", t("steward_file_missing"), true);
    return;
  }
  const bar = document.getElementById("upload-progress");
  const retry = document.getElementById("upload-retry");
  const query = new URLSearchParams({ filename: file.name });
  if (repair) query.set("repair", "geometry");
  setBusy(true);
  retry.hidden = true;
  bar.hidden = false;
  bar.dataset.state = "uploading";
  say("upload-status", t("steward_fingerprinting"));
  const fingerprint = file.size ? await fingerprintOf(file).catch(() => null) : null;
  if (fingerprint) query.set("fingerprint", fingerprint);
  let offset = 0;
  if (resume && fingerprint) { // go on from the bytes the server kept of this same file
    const progress = await api("GET", `/api/datasets/${current}/draft/source/resume`);
    const upload = progress.ok ? progress.body.upload : null;
    if (upload && upload.filename === file.name && upload.total === file.size
        && upload.fingerprint === fingerprint) offset = upload.received;
  }
  bar.dataset.resumedFrom = String(offset);
  const show = (sent) => {
    const percent = file.size ? Math.round((100 * sent) / file.size) : 100;
    bar.value = percent;
    say("upload-status", percent < 100 ? t("steward_uploading", { percent }) : t("steward_checking"));
  };
  const finish = async (ok, reason) => {
    setBusy(false);
    bar.dataset.state = ok ? "done" : "failed";
    retry.hidden = ok;
    say("upload-status", ok ? t("steward_upload_done") : t("steward_upload_failed", { reason }), !ok);
    await refreshDraft();
  };
  const send = (from) => {
    const end = fingerprint ? Math.min(from + PIECE_BYTES, file.size) - 1 : file.size - 1;
    const request = new XMLHttpRequest();
    request.open("PUT", `/api/datasets/${current}/draft/source?${query}`);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRF-Token", csrfToken);
    // An empty file has no range to name, and a file without a fingerprint may not be sent in
    // pieces: both go whole (and the check refuses an empty file).
    if (fingerprint) request.setRequestHeader("Content-Range", `bytes ${from}-${end}/${file.size}`);
    request.upload.addEventListener("progress", (event) => show(from + event.loaded));
    request.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(request.responseText); } catch { body = null; }
      if (request.status === 401) { sessionEnded(); return; }
      if (request.status === 202) { send(body.upload.received); return; }
      // 422: the file arrived and was checked; the report says what to fix.
      const checked = request.status === 201 || request.status === 422;
      finish(checked, checked ? "" : problem({ body, status: request.status }));
    });
    request.addEventListener("error", () => finish(false, t("steward_upload_network")));
    request.addEventListener("abort", () => finish(false, t("steward_upload_network")));
    request.send(fingerprint ? file.slice(from, end + 1) : file);
  };
  show(offset);
  send(offset);
}

// The chosen file's name beside our "choose a file" button (the native input is hidden).
document.getElementById("source")?.addEventListener("change", (event) => {
  const file = event.target.files[0];
  document.getElementById("source-name").textContent = file ? file.name : t("steward_no_file");
});

document.getElementById("source-form")?.addEventListener("submit", (event) => {
  event.preventDefault();
  startUpload();
});
document.getElementById("upload-retry")?.addEventListener("click", () => startUpload({ resume: true }));

document.getElementById("publish-draft")?.addEventListener("click", async () => {
  show("publish-draft", false);
  await publishWithProgress(current, document.getElementById("publish-box"));
  await refreshDraft();
  await showDatasets();
});

document.getElementById("submit-draft")?.addEventListener("click", async () => {
  setBusy(true);
  const answer = await api("POST", `/api/datasets/${current}/draft/submit`);
  setBusy(false);
  say("draft-status", answer.ok ? t("st.done") : problem(answer), !answer.ok);
  await refreshDraft();
});

// --- versions: roll back, withdraw ----------------------------------------------------------

async function showVersions() {
  const list = document.getElementById("versions");
  if (!dataset.released_versions.length) { list.replaceChildren(); say("versions-status", t("steward_not_live")); return; }
  const answer = await api("GET", `/api/datasets/${current}/versions`);
  if (!answer.ok) { list.replaceChildren(); say("versions-status", problem(answer), true); return; }
  say("versions-status", "");
  list.replaceChildren(...answer.body.versions.slice().reverse().map((v) => el("li", { "data-version": String(v.version) },
    el("strong", {}, t("steward_version", { version: v.version })),
    v.live ? el("span", { class: "badge live" }, ` · ${t("steward_version_live")}`) : null, " ",
    el("span", { class: "meta published-by" }, t("steward_published_by",
      { name: v.published_by || "—", date: v.published_at ? formatDate(v.published_at) : "—" })), " ",
    v.live
      ? el("button", { type: "button", class: "secondary withdraw busy-lock", onclick: () => release("withdraw", {}) }, t("steward_withdraw"))
      : el("button", { type: "button", class: "secondary rollback busy-lock",
                       onclick: () => release("rollback", { version: v.version }) }, t("steward_rollback")))));
}

async function release(step, body) {
  setBusy(true);
  const answer = await api("POST", `/api/datasets/${current}/${step}`,
                           { body: JSON.stringify(body), type: "application/json" });
  setBusy(false);
  await refreshDataset();
  await showVersions();
  await showDatasets();
  say("versions-status", !answer.ok ? problem(answer)
    : step === "rollback" ? t("steward_rolled_back", { version: body.version }) : t("steward_withdrawn"), !answer.ok);
}


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
    status.textContent = answer.ok ? `${t("st.done")}: ${stateWords(answer.body.state)}` : problem(answer);
    status.classList.toggle("error", !answer.ok);
  };
  const manifest = el("pre", { class: "manifest-text" });
  api("GET", draft.report).then((r) => reportBox.replaceChildren(reportNode(r.ok ? r.body : null, draft.dataset_id)));
  fetch(`/api/datasets/${draft.dataset_id}/draft/manifest`, { headers: { Accept: "application/yaml" } })
    .then(async (r) => { manifest.textContent = r.ok ? await r.text() : `HTTP ${r.status}`; });
  const updated = formatDate(draft.updated_at);
  return el("li", { "data-dataset": draft.dataset_id },
    el("h3", {}, draft.dataset_id),
    el("p", { class: "meta" }, `${t("rv.author")}: ${draft.author} · ${updated}`),
    el("details", { class: "manifest-box" }, el("summary", {}, t("steward_reviewed_manifest")), manifest),
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
                         el("a", { href: `/datasets/${job.dataset}?lang=${data.language}` }, t("steward_view_published")));
  } else if (job.state === "failed") {
    // What failed (a raster without bands, a limit of the reader...), each problem in the
    // page's language from its code and params (catalog/sources/finding_texts.yml).
    const problems = Array.isArray(job.error.problems) ? job.error.problems : [];
    text.replaceChildren(t("pb.failed", { reason: problem({ body: job.error, status: job.error.status }) }),
                         ...problems.flatMap((p) => [el("br"), el("span", { class: "publish-problem" }, findingText(p))]));
  } else if (job.state === "queued") {
    text.textContent = t("pb.queued");
  } else {
    text.textContent = t("pb.running", { step: t(`pb.${job.step || "validating"}`), percent: job.progress });
  }
}

start();
