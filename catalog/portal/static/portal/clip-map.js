// The map page's "Download a part" of a raster layer that is shown: a rectangle drawn on the map
// (draw.js) or a region, the size estimated by the server (/portal/clip/<id>/estimate) and shown
// before the download link (a COG, /portal/clip/<id>) is offered. The choice lives in the URL
// (&clip=<layer>&clip_bbox=w,s,e,n or &clip_region=<code>, &clip_step=<item> for a time series).
import { addDrawLayers, createDraw, rectangleOf } from "./draw.js";
import { currentLanguage, numberLocale, pick, t } from "./i18n.js";
import { formatNumber, getJson } from "./util.js";

const SOURCE = "clip-draw";
const COLOUR = "#1f5fbf";
const PHONE = "(max-width: 760px)";

const byId = (id) => document.getElementById(id);

/** [west, south, east, north] of four finite numbers in WGS 84 degrees, or null. */
export function parseBox(text) {
  const values = String(text || "").split(",").map(Number);
  if (values.length !== 4 || !values.every(Number.isFinite)) return null;
  const [west, south, east, north] = values;
  return west < east && south < north ? values : null;
}

/**
 * The clip panel. `layers` are the map's layers; `stepOf(layer)` gives the time step shown
 * ({id, label}, or null for a single raster); `showLayer(layer)` turns a layer on;
 * `onChange()` is told when the URL state changed; `onDrawStart()` before drawing starts.
 */
export function createClipPanel({ map, layers, regions, stepOf, showLayer, onChange, onDrawStart = () => {} }) {
  const panel = byId("clip-panel");
  const title = byId("clip-panel-title");
  const region = byId("clip-region");
  const drawnNote = byId("clip-drawn");
  const stepNote = byId("clip-step-note");
  const size = byId("clip-size");
  const download = byId("clip-download");
  const drawBar = byId("draw-bar");
  let layer = null; // the layer a part of which is wanted
  let box = null; // the drawn rectangle [west, south, east, north]
  let estimates = 0;

  addDrawLayers(map, COLOUR, SOURCE);

  function drawHelp(mode) {
    drawBar.hidden = !mode;
    byId("draw-finish").hidden = true;
    if (mode) byId("draw-help").textContent = t("an.help_rectangle");
    if (window.matchMedia(PHONE).matches) {
      byId("panel").classList.toggle("collapsed", Boolean(mode));
      document.querySelector(".panel-toggle").setAttribute("aria-expanded", String(!mode));
    }
  }

  function drawn(polygon) {
    const ring = polygon.coordinates[0];
    const xs = ring.map((c) => c[0]);
    const ys = ring.map((c) => c[1]);
    setBox([Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)]);
    estimate();
    onChange();
  }

  const draw = createDraw(map, { source: SOURCE, onDone: drawn, onState: drawHelp });

  function setBox(next) {
    box = next;
    if (box) region.value = "";
    showChoice();
  }

  /** The drawn box on the map and in words, or the region's name. */
  function showChoice() {
    const useBox = !region.value && box;
    draw.show(useBox ? rectangleOf([box[0], box[1]], [box[2], box[3]]) : null);
    // 4 decimals (about 10 m): finer than a pixel of the finest raster (15 arc-seconds)
    const degrees = new Intl.NumberFormat(numberLocale(currentLanguage()), { maximumFractionDigits: 4 });
    drawnNote.textContent = useBox ? t("clip.drawn", {
      west: degrees.format(box[0]), south: degrees.format(box[1]),
      east: degrees.format(box[2]), north: degrees.format(box[3]) }) : "";
    const step = layer && stepOf(layer);
    stepNote.textContent = step ? `${t("layers.time_step")}: ${step.label}` : "";
  }

  function query() {
    const params = new URLSearchParams();
    if (region.value) params.set("region", region.value);
    else if (box) params.set("bbox", box.join(","));
    else return null;
    const step = stepOf(layer);
    if (step) params.set("step", step.id);
    return params;
  }

  function megabytes(bytes) {
    return t("clip.mb", { n: formatNumber(Math.max(0.01, bytes / 1e6), currentLanguage()) });
  }

  function say(text, kind = "") {
    size.className = `status ${kind}`.trim();
    size.textContent = text;
  }

  async function estimate() {
    download.hidden = true;
    download.removeAttribute("href");
    delete size.dataset.state;
    if (!layer) return;
    const params = query();
    if (!params) { say(t("clip.no_area")); return; }
    const token = ++estimates;
    const href = `/portal/clip/${encodeURIComponent(layer.id)}`;
    say(t("clip.estimating"));
    try {
      const answer = await getJson(`${href}/estimate?${params}`);
      if (token !== estimates) return;
      if (!answer.allowed) {
        say(t("clip.too_large", { size: megabytes(answer.bytes), limit: megabytes(answer.limit_bytes) }), "error");
        size.dataset.state = "too-large";
        return;
      }
      const language = currentLanguage();
      say(t("clip.size", { w: formatNumber(answer.width, language), h: formatNumber(answer.height, language),
                           size: megabytes(answer.bytes) }));
      size.dataset.state = "ready";
      download.href = `${href}?${params}`;
      download.download = answer.file;
      download.hidden = false;
    } catch (error) {
      if (token !== estimates) return;
      say(error.message, "error");
      size.dataset.state = "refused";
    }
  }

  function open(next, { restoring = false } = {}) {
    if (layer !== next) { box = null; region.value = ""; }
    layer = next;
    panel.hidden = false;
    title.textContent = t("clip.part_title", { layer: pick(layer.title) });
    showChoice();
    estimate();
    if (!restoring) {
      panel.scrollIntoView({ block: "nearest" });
      onChange();
    }
  }

  function close() {
    if (draw.active()) draw.cancel();
    layer = null;
    box = null;
    region.value = "";
    estimates += 1;
    showChoice();
    say("");
    download.hidden = true;
    panel.hidden = true;
    onChange();
  }

  function startDrawing() {
    if (!layer) return;
    onDrawStart(); // one drawing at a time: the Analysis tab's is put away
    draw.start("rectangle");
    map.getCanvas().focus();
  }

  function wire() {
    for (const button of document.querySelectorAll(".layer-clip")) {
      button.addEventListener("click", () => {
        const chosen = layers.find((l) => l.id === button.dataset.layer);
        if (chosen) open(chosen);
      });
    }
    byId("clip-draw").addEventListener("click", startDrawing);
    byId("clip-close").addEventListener("click", close);
    byId("draw-cancel").addEventListener("click", () => { if (draw.active()) draw.cancel(); });
    region.addEventListener("change", () => {
      const chosen = regions.find((r) => r.code === region.value);
      if (chosen) map.fitBounds([[chosen.bbox[0], chosen.bbox[1]], [chosen.bbox[2], chosen.bbox[3]]],
                                { padding: 40, maxZoom: 10 });
      showChoice();
      estimate();
      onChange();
    });
  }

  wire();

  return {
    drawing: () => draw.active(),
    cancelDrawing: () => { if (draw.active()) draw.cancel(); },
    layerId: () => (layer ? layer.id : null),
    close,
    /** The layer's time step changed: a new file, a new estimate. */
    refresh() { if (layer) { showChoice(); estimate(); } },
    urlState() {
      if (!layer) return [];
      const pairs = [["clip", layer.id]];
      if (region.value) pairs.push(["clip_region", region.value]);
      else if (box) pairs.push(["clip_bbox", box.join(",")]);
      const step = stepOf(layer);
      if (step) pairs.push(["clip_step", step.id]);
      return pairs;
    },
    /** Reopen the panel from the URL's pairs (the layer turned on, the box drawn, the estimate). */
    restore(params, setStep) {
      const chosen = layers.find((l) => l.id === params.get("clip") && l.kind === "raster");
      if (!chosen) return;
      if (!chosen.visible) showLayer(chosen);
      if (params.get("clip_step") && chosen.steps) {
        const step = chosen.steps.find((s) => s.id === params.get("clip_step"));
        if (step) setStep(chosen, step.band);
      }
      const code = params.get("clip_region");
      const restoredBox = parseBox(params.get("clip_bbox"));
      layer = chosen;
      if (code && regions.some((r) => r.code === code)) { box = null; region.value = code; }
      else if (restoredBox) { region.value = ""; box = restoredBox; }
      open(chosen, { restoring: true });
    },
  };
}
