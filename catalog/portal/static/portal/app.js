// The portal's entry point: wires the map, the layer panel, search, filter, analysis, language
// and URL.
import { createAnalysis } from "./analysis.js";
import { createClipPanel } from "./clip-map.js";
import { createFilterBuilder } from "./filter.js";
import { currentLanguage, initI18n, monthName, pick, t, tn } from "./i18n.js";
import * as maps from "./map.js";
import { createPlaceSearch } from "./places.js";
import { createSearch } from "./search.js";
import { readState, writeState } from "./state.js";
import { el, formatNumber } from "./util.js";

const data = JSON.parse(document.getElementById("portal-data").textContent);
initI18n(data.strings, data.language);
const state = readState();
const layers = data.layers.map((layer) => {
  const defaultOpacity = layer.kind === "raster" ? 80 : 90;
  const wanted = state.layers.find((l) => l.id === layer.id);
  return { ...layer, defaultOpacity, visible: Boolean(wanted),
           opacity: wanted && wanted.opacity != null ? Math.max(0, Math.min(100, wanted.opacity)) : defaultOpacity };
});
const map = maps.createMap("map", data, state.view);
let ready = false;
let analysis = null;
let filter = null;
let search = null;
let clipPanel = null;
const save = () => {
  if (!ready) return;
  const extra = [...(analysis ? analysis.urlState() : []), ...(filter ? filter.urlState() : []),
                 ...(search ? search.urlState() : []), ...(clipPanel ? clipPanel.urlState() : [])];
  writeState({ map, layers, language: currentLanguage(), extra });
};

// --- layer panel --------------------------------------------------------------------------

function legendNode(layer) {
  const legend = layer.legend;
  if (legend.type === "ramp") {
    const low = legend.stops[0][0];
    const high = legend.stops[legend.stops.length - 1][0];
    const gradient = legend.stops.map(([value, colour]) =>
      `${colour} ${(((value - low) / (high - low || 1)) * 100).toFixed(1)}%`).join(", ");
    return [el("div", { class: "ramp", style: `background: linear-gradient(to right, ${gradient})` }),
            el("div", { class: "ramp-labels" }, el("span", {}, `${formatNumber(low, currentLanguage())} ${legend.unit}`),
               el("span", {}, `${formatNumber(high, currentLanguage())} ${legend.unit}`))];
  }
  if (legend.type === "classes") {
    return [el("ul", { class: "class-legend" }, legend.classes.map((c) =>
      el("li", { "data-class-value": c.value }, el("span", { class: "swatch", style: `background:${c.colour}` }),
         pick(c.title))))];
  }
  const shape = /Point/.test(layer.geometry) ? "swatch point" : "swatch";
  const items = legend.type === "category"
    ? Object.entries(legend.colours).map(([name, colour]) =>
        el("li", {}, el("span", { class: shape, style: `background:${colour}` }), name))
    : [el("li", {}, el("span", { class: shape, style: `background:${legend.colour}` }),
          tn("layers.features", layer.feature_count))];
  const nodes = [el("ul", {}, items)];
  if (layer.feature_count > 4000) nodes.push(el("p", { class: "note" }, t("layers.thinned")));
  return nodes;
}

function renderLegends() {
  for (const layer of layers) {
    const box = document.querySelector(`[data-legend="${layer.id}"]`);
    if (box) box.replaceChildren(...legendNode(layer));
    const select = document.querySelector(`.layer-step[data-layer="${layer.id}"]`);
    if (select && layer.steps) {
      select.replaceChildren(...layer.steps.map((step) =>
        el("option", { value: String(step.band) }, stepLabel(step, layer.steps))));
      select.value = String(layer.step || 1);
    }
  }
}

/** A time step's name: the month in the page's language when every step is one whole month
 * of the same year (the normals' nominal year is not shown), else its dates. */
function stepLabel(step, steps) {
  const wholeMonths = steps.every((s) => s.start.endsWith("-01") && s.start.slice(0, 7) === s.end.slice(0, 7)
                                         && s.start.slice(0, 4) === steps[0].start.slice(0, 4));
  if (!wholeMonths) return `${step.start} – ${step.end}`;
  return monthName(Number(step.start.slice(5, 7)));
}

/** The time step of a time series shown on the map ({id, label}), null for a single raster. */
function stepOf(layer) {
  if (!layer.steps || !layer.steps.length) return null;
  const step = layer.steps.find((s) => s.band === (layer.step || 1)) || layer.steps[0];
  return { id: step.id, label: stepLabel(step, layer.steps) };
}

function setStep(layer, band) {
  layer.step = band;
  const select = document.querySelector(`.layer-step[data-layer="${layer.id}"]`);
  if (select) select.value = String(band);
  maps.setStep(map, layer);
  if (clipPanel && clipPanel.layerId() === layer.id) clipPanel.refresh();
}

function setVisible(layer, visible) {
  layer.visible = visible;
  const article = document.getElementById(`dataset-${layer.id}`);
  if (article) article.classList.toggle("on", visible);
  const box = document.getElementById(`toggle-${layer.id}`);
  if (box) box.checked = visible;
  if (visible) maps.showLayer(map, layer);
  else maps.hideLayer(map, layer);
  if (!visible && clipPanel && clipPanel.layerId() === layer.id) clipPanel.close();
  save();
}

function wirePanel() {
  for (const layer of layers) {
    const toggle = document.getElementById(`toggle-${layer.id}`);
    const opacity = document.querySelector(`.layer-opacity[data-layer="${layer.id}"]`);
    const zoom = document.querySelector(`.layer-zoom[data-layer="${layer.id}"]`);
    if (!toggle) continue;
    opacity.value = layer.opacity;
    toggle.addEventListener("change", () => setVisible(layer, toggle.checked));
    opacity.addEventListener("input", () => {
      layer.opacity = Number(opacity.value);
      maps.setOpacity(map, layer, layer.opacity);
      save();
    });
    opacity.setAttribute("aria-label", `${t("layers.opacity")}: ${pick(layer.title)}`);
    zoom.addEventListener("click", () => maps.zoomTo(map, layer));
    const step = document.querySelector(`.layer-step[data-layer="${layer.id}"]`);
    if (step) {
      step.addEventListener("change", () => {
        setStep(layer, Number(step.value));
        save();
      });
    }
  }
  renderLegends();
}

// --- tabs (WAI-ARIA tabs pattern: arrow keys move between tabs) ---------------------------

function wireTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  const select = (tab) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
  };
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(index + step + tabs.length) % tabs.length];
      select(next);
      next.focus();
    });
  });
  return select;
}

function wirePanelToggle() {
  const button = document.querySelector(".panel-toggle");
  const panel = document.getElementById("panel");
  if (window.matchMedia("(max-width: 760px)").matches) {
    panel.classList.add("collapsed");
    button.setAttribute("aria-expanded", "false");
  }
  button.addEventListener("click", () => {
    const collapsed = panel.classList.toggle("collapsed");
    button.setAttribute("aria-expanded", String(!collapsed));
    map.resize();
  });
}

// --- language -------------------------------------------------------------------------------

// The map's own words (scale bar, buttons) are fixed when MapLibre starts, so a switch reloads
// the page in the new language with the whole state kept in the URL.
function wireLanguage() {
  for (const link of document.querySelectorAll(".lang-switch a")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      save();
      const url = new URL(location.href);
      url.searchParams.set("lang", link.dataset.lang);
      location.assign(url.href);
    });
  }
}

// --- sharing --------------------------------------------------------------------------------

function wireShare() {
  const button = document.getElementById("copy-link");
  const status = document.getElementById("copy-link-status");
  button.addEventListener("click", async () => {
    save();
    try {
      await navigator.clipboard.writeText(location.href);
      status.textContent = t("share.copied");
    } catch {
      status.textContent = `${t("share.copy_by_hand")} ${location.href}`;
    }
  });
  // A link pasted into the open portal changes only the hash: load it as a fresh page, so
  // every part of the state (view, layers, filter, search, analysis) is applied as on opening.
  window.addEventListener("hashchange", () => location.reload());
}

// --- start ----------------------------------------------------------------------------------

function flyToFeatures(features) {
  const coords = [];
  const walk = (c) => (typeof c[0] === "number" ? coords.push(c) : c.forEach(walk));
  for (const feature of features) if (feature.geometry) walk(feature.geometry.coordinates);
  if (!coords.length) return;
  const xs = coords.map((c) => c[0]);
  const ys = coords.map((c) => c[1]);
  map.fitBounds([[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]],
                { padding: 60, maxZoom: 11 });
}

const selectTab = wireTabs();
wirePanel();
wirePanelToggle();
search = createSearch({
  map, themes: data.themes, layers,
  addLayer: (id) => { const layer = layers.find((l) => l.id === id); setVisible(layer, true); maps.zoomTo(map, layer); },
  onChange: save,
});
wireLanguage();
wireShare();
createPlaceSearch({ layers, flyToFeatures });

map.on("load", () => {
  maps.addBasemapOverlays(map, data);
  for (const layer of layers) if (layer.visible) setVisible(layer, true);
  // Popups first: while an area is being drawn, its clicks must not open them.
  const popups = maps.enablePopups(map, layers, {
    suppressed: () => Boolean((analysis && analysis.drawing()) || (clipPanel && clipPanel.drawing())),
    sections: (point) => (analysis ? analysis.popupSections(point) : []),
    hoverLayers: () => (analysis ? analysis.hoverLayers() : []),
  });
  filter = createFilterBuilder({ layers, map, showResults: (c) => maps.showResults(map, c), flyToFeatures,
                                onChange: save });
  analysis = createAnalysis({ map, onChange: save, onDrawStart: () => clipPanel && clipPanel.cancelDrawing() });
  analysis.attachPopups(popups);
  clipPanel = createClipPanel({ map, layers, regions: data.clipRegions || [], stepOf, onChange: save,
                                showLayer: (layer) => setVisible(layer, true),
                                onDrawStart: () => analysis.cancelDrawing() });
  if (state.params.get("clip")) {
    selectTab(document.getElementById("tab-layers"));
    clipPanel.restore(state.params, setStep);
  }
  if (state.params.get("filter")) {
    selectTab(document.getElementById("tab-filter"));
    filter.restoreAndApply(state.params);
  }
  if (state.params.get("q") !== null) {
    selectTab(document.getElementById("tab-search"));
    search.restore(state.params);
  }
  if (state.params.get("analysis")) {
    selectTab(document.getElementById("tab-analysis"));
    analysis.restoreAndRun(state.params);
  }
  ready = true;
  save();
  map.on("moveend", save);
  document.body.dataset.mapReady = "true";
});
map.on("idle", () => { document.body.dataset.mapIdle = String(Date.now()); });
window.portal = { map, layers, selectTab };
