// The Analysis tab: site screening and coverage statistics through the OGC API Processes
// (/ogc/processes, docs/processes.md). Pick the whole country, a region or an area drawn on the
// map, set the criteria, run; results go on the map and into a list with downloads.
/* global maplibregl */
import * as amap from "./analysis-map.js";
import * as views from "./analysis-results.js";
import { createDraw } from "./draw.js";
import { problemText, t } from "./i18n.js";
import { describe, execute } from "./processes.js";
import { el } from "./util.js";

const PROCESSES = { screening: "site-screening", coverage: "coverage-statistics" };
const SCREENING_INPUTS = ["max_slope_deg", "min_elevation_m", "max_elevation_m", "coverage",
  "max_settlement_distance_km", "min_settlement_population", "max_airport_distance_km",
  "min_area_km2", "limit"];
// Screening over more DEM cells (15 arc-seconds: 240 a degree) than this, counted over the
// area's bbox, runs as an asynchronous job; the whole country is about 2.6 million.
const JOB_CELLS = 1_000_000;
const COUNTRY_BOUNDS = [[69.2, 39.15], [80.3, 43.3]];
const MAX_URL_CORNERS = 100; // a drawn area with more corners is not written into the URL
const PHONE = "(max-width: 760px)";

const byId = (id) => document.getElementById(id);

/** The inputs of the area: {} (whole country), {region} or {area: polygon}. */
function areaInputs(area) {
  if (area.kind === "region") return { region: area.region };
  if (area.kind === "drawn") return { area: area.geometry };
  return {};
}

function cellsIn([[west, south], [east, north]]) {
  return (east - west) * 240 * (north - south) * 240;
}

class LocalError extends Error {
  constructor(message, field) {
    super(message);
    this.field = field;
  }
}

export function createAnalysis({ map, onChange, onDrawStart = () => {} }) {
  const form = byId("analysis-form");
  const status = byId("analysis-status");
  const output = byId("analysis-results");
  const regionSelect = byId("analysis-region");
  const drawBar = byId("draw-bar");
  let drawn = null; // the polygon drawn last
  let regions = new Map(); // code -> {row, feature} from coverage-statistics of the whole country
  let result = null; // {tool, area, inputs, body} of the run shown
  let popups = null;
  let runs = 0;
  let started = null;

  const tool = () => form.elements.tool.value;
  const areaKind = () => form.elements["area-kind"].value;

  function currentArea() {
    const kind = areaKind();
    if (kind === "region") return { kind, region: regionSelect.value };
    if (kind === "drawn") return { kind, geometry: drawn };
    return { kind: "country" };
  }

  function areaBounds(area) {
    if (area.kind === "drawn" && area.geometry) return amap.boundsOf(area.geometry);
    const info = area.kind === "region" && regions.get(area.region);
    return info && info.feature ? amap.boundsOf(info.feature.geometry) : COUNTRY_BOUNDS;
  }

  // --- the form --------------------------------------------------------------------------

  function showTool() {
    const screening = tool() === "screening";
    byId("screening-criteria").hidden = !screening;
    byId("screening-intro").hidden = !screening;
    byId("coverage-intro").hidden = screening;
  }

  /** Limits and defaults from the process description's JSON schemas. */
  function applySchemas(description) {
    for (const [name, input] of Object.entries(description.inputs)) {
      const field = form.elements[name];
      const schema = input.schema || {};
      if (!field || field.tagName !== "INPUT") continue;
      if (schema.minimum != null) field.min = schema.minimum;
      if (schema.maximum != null) field.max = schema.maximum;
      if (schema.type === "integer") field.step = "1";
      if (schema.default != null && field.value === "") field.value = schema.default;
      if (schema.default != null) field.dataset.default = schema.default;
      field.title = input.description || input.title || "";
    }
  }

  function fillRegions(codes) {
    const chosen = regionSelect.value;
    regionSelect.replaceChildren(
      el("option", { value: "" }, t("an.choose_region")),
      ...codes.map((code) => {
        const info = regions.get(code);
        return el("option", { value: code }, info ? views.regionName(info.row) : code);
      }));
    regionSelect.value = chosen;
  }

  async function loadRegions() {
    const body = await execute(PROCESSES.coverage, {});
    const features = new Map(body.features.features.filter((f) => f.properties.region)
      .map((f) => [f.properties.region, f]));
    regions = new Map(body.table.regions.map((row) => [row.region, { row, feature: features.get(row.region) }]));
  }

  function criteria() {
    const inputs = {};
    for (const name of SCREENING_INPUTS) {
      const field = form.elements[name];
      if (field.tagName === "SELECT") { inputs[name] = field.value; continue; }
      if (field.validity.badInput) {
        throw new LocalError(t("an.bad_number", { field: field.labels[0].textContent.trim() }), name);
      }
      if (field.value.trim() !== "") inputs[name] = Number(field.value);
    }
    return inputs;
  }

  function buildInputs() {
    const area = currentArea();
    if (area.kind === "drawn" && !area.geometry) throw new LocalError(t("an.no_area"), "area-kind");
    if (area.kind === "region" && !area.region) throw new LocalError(t("an.no_region"), "analysis-region");
    const inputs = tool() === "screening" ? { ...areaInputs(area), ...criteria() }
      : { ...areaInputs(area), include_regions: true };
    return { area, inputs };
  }

  // --- status and errors -------------------------------------------------------------------

  function say(text, kind = "") {
    status.className = `status ${kind}`.trim();
    status.textContent = text;
    if (text && !byId("pane-analysis").hidden) status.scrollIntoView({ block: "nearest" });
  }

  function markInvalid(message) {
    const names = [...SCREENING_INPUTS, "area", "region"];
    const named = names.filter((n) => new RegExp(`\\b${n}\\b`).test(message));
    for (const name of named) {
      const field = name === "region" ? regionSelect : form.elements[name];
      if (field && field.setAttribute) field.setAttribute("aria-invalid", "true");
    }
  }

  function clearInvalid() {
    form.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
  }

  /** An input's label on the form ("Minimum elevation, m"), its name when it has none. */
  function inputLabel(name) {
    const field = form.elements[name];
    return (field && field.labels && field.labels[0]) ? field.labels[0].textContent.trim() : name;
  }

  function showError(prefixKey, error) {
    const text = error.problem ? problemText(error.problem, inputLabel) : error.message;
    say(`${t(prefixKey)}: ${text}`, "error");
    status.dataset.error = text;
    // the English description names the inputs as the API does
    markInvalid(error.problem ? error.problem.description || error.problem.message || "" : error.message);
  }

  function progress(job) {
    if (!job || !job.jobID) return;
    const seconds = Math.round((Date.now() - started) / 1000);
    const known = ["accepted", "running"].includes(job.status);
    say(t("an.job", { id: job.jobID.slice(0, 8), status: known ? t(`an.status_${job.status}`) : job.status, s: seconds }));
    status.dataset.job = job.jobID;
  }

  // --- running ----------------------------------------------------------------------------

  async function run(event, { fit = true } = {}) {
    if (event) event.preventDefault();
    clearInvalid();
    delete status.dataset.error;
    delete status.dataset.job;
    let request;
    try {
      request = buildInputs();
    } catch (error) {
      if (!(error instanceof LocalError)) throw error;
      say(error.message, "error");
      const field = form.elements[error.field] || byId(error.field);
      const target = field instanceof RadioNodeList ? field[0] : field;
      if (target) target.focus();
      return;
    }
    const token = ++runs;
    const chosenTool = tool();
    const asJob = chosenTool === "screening" && cellsIn(areaBounds(request.area)) > JOB_CELLS;
    started = Date.now();
    form.setAttribute("aria-busy", "true");
    byId("analysis-run").disabled = true;
    say(t("an.running"));
    try {
      const body = await execute(PROCESSES[chosenTool], request.inputs, { asJob, onProgress: progress });
      if (token !== runs) return;
      result = { tool: chosenTool, area: request.area, inputs: request.inputs, body, asJob };
      render(fit);
      say(t(asJob ? "an.done_job" : "an.done", { s: ((Date.now() - started) / 1000).toFixed(1) }));
      if (!byId("pane-analysis").hidden) status.scrollIntoView({ block: "start" }); // the results follow it
      onChange();
    } catch (error) {
      if (token === runs) showError(error.job ? "an.failed" : "an.error", error);
    } finally {
      if (token === runs) {
        form.removeAttribute("aria-busy");
        byId("analysis-run").disabled = false;
      }
    }
  }

  function render(fit = false) {
    views.releaseDownloads();
    amap.clearResults(map);
    if (!result) { output.replaceChildren(); return; }
    if (result.tool === "screening") renderScreening(fit);
    else renderCoverage(fit);
    byId("analysis-clear").hidden = false;
  }

  function renderScreening(fit) {
    const collection = result.body;
    const [low, high] = views.scoreRange(collection);
    amap.showCandidates(map, collection, low, high);
    output.replaceChildren(...views.screeningView(collection, pickCandidate));
    if (fit && collection.features.length) {
      map.fitBounds(amap.boundsOf({ coordinates: collection.features.map((f) => f.geometry.coordinates) }),
                    { padding: 40, maxZoom: 11 });
    }
  }

  function renderCoverage(fit) {
    const features = result.body.features.features;
    amap.showRegions(map, { type: "FeatureCollection", features: features.filter((f) => f.properties.region) });
    const area = features.find((f) => f.properties.role === "area");
    amap.showArea(map, area && result.area.kind !== "country" ? area.geometry : null);
    output.replaceChildren(...views.coverageView(result.body, result.area, pickRegion).flat());
    if (fit && result.area.kind !== "country") map.fitBounds(areaBounds(result.area), { padding: 40, maxZoom: 11 });
  }

  function pickCandidate(feature) {
    const p = feature.properties;
    amap.selectCandidate(map, p.rank);
    for (const item of output.querySelectorAll("#screening-results > li")) {
      const selected = Number(item.dataset.rank) === p.rank;
      item.classList.toggle("selected", selected);
      item.querySelector("button.candidate").setAttribute("aria-expanded", String(selected));
    }
    map.fitBounds(amap.boundsOf(feature.geometry), { padding: 80, maxZoom: 12 });
    openPopup([p.site_lon, p.site_lat], views.candidatePopup(p));
  }

  function pickRegion(code) {
    const info = regions.get(code);
    const feature = result && result.body.features.features.find((f) => f.properties.region === code);
    const shape = feature || (info && info.feature);
    if (!shape) return;
    map.fitBounds(amap.boundsOf(shape.geometry), { padding: 40, maxZoom: 10 });
  }

  function openPopup(lngLat, content) {
    const popup = popups ? popups.popup : new maplibregl.Popup({ maxWidth: "22rem" });
    popup.setLngLat(lngLat).setDOMContent(el("div", { class: "popup" }, content)).addTo(map);
  }

  function clear() {
    runs += 1;
    result = null;
    render();
    amap.showArea(map, areaKind() === "country" ? null : (currentArea().geometry || null));
    say("");
    byId("analysis-clear").hidden = true;
    onChange();
  }

  // --- the area ---------------------------------------------------------------------------

  function showChosenArea() {
    const area = currentArea();
    if (area.kind === "drawn") amap.showArea(map, drawn);
    else if (area.kind === "region") {
      const info = regions.get(area.region);
      amap.showArea(map, info && info.feature ? info.feature.geometry : null);
      if (info && info.feature) map.fitBounds(areaBounds(area), { padding: 40, maxZoom: 10 });
    } else amap.showArea(map, null);
  }

  function drawHelp(mode, corners) {
    drawBar.hidden = !mode;
    byId("draw-finish").hidden = mode !== "polygon";
    byId("draw-finish").disabled = corners < 3;
    if (mode) byId("draw-help").textContent = t(mode === "rectangle" ? "an.help_rectangle" : "an.help_polygon");
    // On a phone the panel covers half the map: put it away while drawing.
    if (window.matchMedia(PHONE).matches) {
      byId("panel").classList.toggle("collapsed", Boolean(mode));
      document.querySelector(".panel-toggle").setAttribute("aria-expanded", String(!mode));
    }
  }

  function setDrawn(polygon) {
    drawn = polygon;
    form.elements["area-kind"].value = "drawn";
    byId("drawn-note").textContent = t("an.drawn_corners", { n: polygon.coordinates[0].length - 1 });
    showChosenArea();
    onChange();
  }

  const draw = createDraw(map, { onDone: setDrawn, onState: drawHelp });

  function startDrawing(mode) {
    form.elements["area-kind"].value = "drawn";
    amap.showArea(map, null);
    onDrawStart();
    draw.start(mode);
    map.getCanvas().focus();
  }

  function useView() {
    const b = map.getBounds();
    const inside = (value, low, high) => Math.min(high, Math.max(low, value));
    const west = inside(b.getWest(), -180, 180);
    const east = inside(b.getEast(), -180, 180);
    const south = inside(b.getSouth(), -85, 85);
    const north = inside(b.getNorth(), -85, 85);
    setDrawn({ type: "Polygon", coordinates: [[[west, south], [east, south], [east, north], [west, north], [west, south]]
      .map(([x, y]) => [Math.round(x * 1e5) / 1e5, Math.round(y * 1e5) / 1e5])] });
  }

  // --- URL state --------------------------------------------------------------------------

  /** [key, value] pairs for the URL: the run shown, so a link reproduces it. */
  function urlState() {
    if (!result) return [];
    const area = result.area;
    let areaValue = area.kind === "region" ? area.region : "country";
    if (area.kind === "drawn") {
      const ring = area.geometry.coordinates[0].slice(0, -1);
      if (ring.length > MAX_URL_CORNERS) return [];
      areaValue = `poly:${ring.map(([x, y]) => `${x},${y}`).join(";")}`;
    }
    const pairs = [["analysis", result.tool], ["area", areaValue]];
    if (result.tool === "screening") {
      for (const name of SCREENING_INPUTS) {
        if (result.inputs[name] != null) pairs.push([name, String(result.inputs[name])]);
      }
    }
    return pairs;
  }

  function restore(params) {
    const chosenTool = params.get("analysis");
    if (!PROCESSES[chosenTool]) return false;
    form.elements.tool.value = chosenTool;
    const area = params.get("area") || "country";
    if (area.startsWith("poly:")) {
      const corners = area.slice(5).split(";").map((pair) => pair.split(",").map(Number));
      if (corners.length >= 3 && corners.flat().every(Number.isFinite)) {
        setDrawn({ type: "Polygon", coordinates: [[...corners, corners[0]]] });
      }
    } else if (area !== "country") {
      form.elements["area-kind"].value = "region";
      regionSelect.value = area;
    }
    for (const name of SCREENING_INPUTS) {
      if (params.has(name)) form.elements[name].value = params.get(name);
    }
    showTool();
    return true;
  }

  // --- start ------------------------------------------------------------------------------

  async function init() {
    let descriptions;
    try {
      descriptions = await Promise.all([describe(PROCESSES.screening), describe(PROCESSES.coverage)]);
    } catch (error) {
      byId("analysis-unavailable").hidden = false;
      return false;
    }
    applySchemas(descriptions[0]);
    const codes = descriptions[0].inputs.region.schema.enum || [];
    fillRegions(codes);
    try {
      await loadRegions();
    } catch (error) {
      showError("an.error", error);
    }
    fillRegions(codes);
    regionSelect.dataset.codes = codes.join(",");
    form.hidden = false;
    return true;
  }

  function wire() {
    form.addEventListener("submit", run);
    form.addEventListener("change", (event) => {
      if (event.target.name === "tool") showTool();
      if (event.target.name === "area-kind") showChosenArea();
    });
    regionSelect.addEventListener("change", () => {
      form.elements["area-kind"].value = "region";
      showChosenArea();
    });
    byId("draw-rectangle").addEventListener("click", () => startDrawing("rectangle"));
    byId("draw-polygon").addEventListener("click", () => startDrawing("polygon"));
    byId("draw-view").addEventListener("click", useView);
    byId("draw-finish").addEventListener("click", () => draw.finish());
    byId("draw-cancel").addEventListener("click", () => draw.cancel());
    byId("analysis-clear").addEventListener("click", clear);
  }

  amap.addAnalysisLayers(map);
  wire();
  showTool();
  // The descriptions and region outlines are fetched when the tab is first shown.
  const pane = byId("pane-analysis");
  let ready = null;
  const ensureReady = () => { ready = ready || init(); return ready; };
  new MutationObserver(() => { if (!pane.hidden) ensureReady(); })
    .observe(pane, { attributes: true, attributeFilter: ["hidden"] });
  if (!pane.hidden) ensureReady();

  return {
    /** Restore a run from the URL's parameters and run it (keeping the URL's map view). */
    async restoreAndRun(params) {
      if (!params.get("analysis") || !(await ensureReady())) return;
      if (restore(params)) await run(null, { fit: false });
    },
    urlState,
    attachPopups: (handle) => { popups = handle; },
    drawing: () => draw.active(),
    cancelDrawing: () => { if (draw.active()) draw.cancel(); },
    /** Popup sections for analysis features under a click (candidates, regions). */
    popupSections(point) {
      const box = [[point.x - 4, point.y - 4], [point.x + 4, point.y + 4]];
      const hits = map.queryRenderedFeatures(box, { layers: [...amap.CANDIDATE_LAYERS, ...amap.REGION_LAYERS] });
      const sections = [];
      const seen = new Set();
      for (const hit of hits) {
        const key = hit.properties.rank != null ? `c${hit.properties.rank}` : `r${hit.properties.region}`;
        if (seen.has(key)) continue;
        seen.add(key);
        sections.push(hit.properties.rank != null ? views.candidatePopup(hit.properties) : views.regionPopup(hit.properties));
      }
      return sections.slice(0, 3);
    },
    hoverLayers: () => [...amap.CANDIDATE_LAYERS, ...amap.REGION_LAYERS],
  };
}
