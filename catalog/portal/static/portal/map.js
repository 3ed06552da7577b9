// The MapLibre map: our own basemap (relief tiles, outline, place labels), the catalogue's
// layers from our tile endpoints, popups with attributes, and a layer for filter results.
/* global maplibregl */
import { currentLanguage, fieldLabel, isCodeParameter, pick, t, valueLabel } from "./i18n.js";
import { absolute, el, formatNumber, getJson } from "./util.js";

const RELIEF_MAXZOOM = 11; // the DEM is ~460 m per cell: deeper tiles only upsample
const HIGHLIGHT = "#ff00aa";
const KYRGYZSTAN = [[69.2, 39.15], [80.3, 43.3]];
// The CSP build of MapLibre loads its worker from this file: the Content-Security-Policy
// allows workers from this server only (worker-src 'self'), not from blob: URLs.
const WORKER_URL = "/vendor/maplibre-gl/dist/maplibre-gl-csp-worker.js";

// MapLibre's own interface words (scale bar units, button titles) in the page's language.
// MapLibre takes them only when the map is made, so a language switch reloads the page
// (app.js; everything worth keeping is in the URL).
function mapLocale() {
  return {
    "ScaleControl.Meters": t("ml.metres"), "ScaleControl.Kilometers": t("ml.kilometres"),
    "NavigationControl.ZoomIn": t("ml.zoom_in"), "NavigationControl.ZoomOut": t("ml.zoom_out"),
    "NavigationControl.ResetBearing": t("ml.reset_bearing"), "Popup.Close": t("popup.close"),
    "AttributionControl.ToggleAttribution": t("ml.attribution"), "Map.Title": t("map.label"),
    "Marker.Title": t("ml.marker"),
  };
}

export function createMap(container, data, view) {
  maplibregl.setWorkerUrl(WORKER_URL);
  const style = { version: 8, sources: {}, layers: [
    { id: "background", type: "background", paint: { "background-color": "#e4ebf0" } },
  ] };
  const relief = data.basemap.relief;
  if (relief) {
    style.sources.relief = { type: "raster", tiles: [absolute(relief)], tileSize: 256,
                             maxzoom: RELIEF_MAXZOOM, attribution: "GEBCO 2023" };
    style.layers.push({ id: "relief", type: "raster", source: "relief" });
  }
  const map = new maplibregl.Map({
    container, style,
    center: view ? view.center : [74.7, 41.3],
    zoom: view ? view.zoom : 5.6,
    minZoom: 3, maxZoom: 18,
    attributionControl: { compact: true },
    maxBounds: [[55, 30], [95, 52]],
    dragRotate: false, pitchWithRotate: false, touchPitch: false,
    locale: mapLocale(),
  });
  if (!view) map.fitBounds(KYRGYZSTAN, { padding: 20, animate: false });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
  map.touchZoomRotate.disableRotation();
  return map;
}

/** Layers above which catalogue layers are inserted, so the outline and results stay on top. */
const TOP_LAYERS = ["basemap-outline", "filter-results-fill", "filter-results-line", "filter-results-point"];

const WATER = "#9cc3e4";

export function addBasemapOverlays(map, data) {
  // Lakes and rivers: the relief tints a lake's flat surface as low land, so water is drawn
  // over it from the lakes and rivers layers.
  const { water, rivers } = data.basemap;
  if (water) {
    map.addSource("basemap-water", { type: "vector", tiles: [absolute(water.tiles)], maxzoom: 14,
                                     attribution: "GSHHG, Natural Earth" });
    map.addLayer({ id: "basemap-water", type: "fill", source: "basemap-water",
                   "source-layer": water.source_layer, paint: { "fill-color": WATER } });
  }
  if (rivers) {
    map.addSource("basemap-rivers", { type: "vector", tiles: [absolute(rivers.tiles)], maxzoom: 14,
                                      attribution: "WDBII" });
    map.addLayer({ id: "basemap-rivers", type: "line", source: "basemap-rivers",
                   "source-layer": rivers.source_layer,
                   paint: { "line-color": "#5b9bd5", "line-width": ["interpolate", ["linear"], ["zoom"], 4, 0.6, 10, 2] } });
  }
  const outline = data.basemap.outline;
  if (outline) {
    map.addSource("basemap-outline", { type: "vector", tiles: [absolute(outline.tiles)], maxzoom: 14,
                                       attribution: "Natural Earth" });
    map.addLayer({ id: "basemap-outline", type: "line", source: "basemap-outline",
                   "source-layer": outline.source_layer,
                   paint: { "line-color": "#3b2a5c", "line-width": ["interpolate", ["linear"], ["zoom"], 4, 1.2, 10, 2.5],
                            "line-opacity": 0.85 } });
  }
  map.addSource("filter-results", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "filter-results-fill", type: "fill", source: "filter-results",
                 filter: ["match", ["geometry-type"], ["Polygon", "MultiPolygon"], true, false],
                 paint: { "fill-color": HIGHLIGHT, "fill-opacity": 0.35 } });
  map.addLayer({ id: "filter-results-line", type: "line", source: "filter-results",
                 filter: ["match", ["geometry-type"], ["Point", "MultiPoint"], false, true],
                 paint: { "line-color": HIGHLIGHT, "line-width": 2.5 } });
  map.addLayer({ id: "filter-results-point", type: "circle", source: "filter-results",
                 filter: ["match", ["geometry-type"], ["Point", "MultiPoint"], true, false],
                 paint: { "circle-color": HIGHLIGHT, "circle-radius": 7, "circle-stroke-color": "#fff",
                          "circle-stroke-width": 2 } });
  if (data.basemap.places) addPlaceLabels(map, data.basemap.places);
}

// Place labels are HTML markers: MapLibre text needs glyph files, which we would have to
// host ourselves; a few hundred markers cost nothing and use the system's fonts.
async function addPlaceLabels(map, places) {
  const collection = await getJson(places.url);
  // the name in the page's language where the layer has one (name_ky, name_ru, name_en)
  const label = (props) => props[`${places.name}_${currentLanguage()}`] || props[places.name];
  const ranked = collection.features
    .filter((f) => f.geometry && label(f.properties))
    .sort((a, b) => (b.properties[places.rank] || 0) - (a.properties[places.rank] || 0));
  const markers = ranked.map((feature, index) => {
    const node = el("div", { class: index < 8 ? "place-label major" : "place-label", "aria-hidden": "true" },
                    label(feature.properties));
    return new maplibregl.Marker({ element: node, anchor: "bottom" }).setLngLat(feature.geometry.coordinates);
  });
  // Larger places first; a label that would overlap one already placed is left out.
  const update = () => {
    const zoom = map.getZoom();
    const budget = zoom < 5.5 ? 5 : zoom < 6.5 ? 12 : zoom < 7.5 ? 30 : zoom < 8.5 ? 60 : markers.length;
    const placed = [];
    markers.forEach((marker, index) => {
      const point = map.project(marker.getLngLat());
      const node = marker.getElement();
      const width = (index < 8 ? 8.5 : 7.2) * node.textContent.length + 12;
      const box = [point.x - width / 2, point.y - 26, point.x + width / 2, point.y - 8];
      const free = placed.every((o) => box[2] < o[0] || box[0] > o[2] || box[3] < o[1] || box[1] > o[3]);
      if (index < budget && free) {
        placed.push(box);
        marker.addTo(map);
      } else {
        marker.remove();
      }
    });
  };
  update();
  map.on("moveend", update);
}

// --- catalogue layers ---------------------------------------------------------------------

function categoryColour(legend) {
  const entries = Object.entries(legend.colours).flat();
  return entries.length ? ["match", ["to-string", ["get", legend.property]], ...entries, legend.other] : legend.other;
}

function vectorColour(layer) {
  return layer.legend.type === "category" ? categoryColour(layer.legend) : layer.legend.colour;
}

/** MapLibre layers (style JSON) that draw one catalogue layer. */
export function styleLayers(layer) {
  if (layer.kind === "raster") {
    return [{ id: `${layer.id}-raster`, type: "raster", source: layer.id,
              paint: { "raster-opacity": 0.8, "raster-resampling": "linear" } }];
  }
  const colour = vectorColour(layer);
  const common = { source: layer.id, "source-layer": layer.source_layer };
  if (/Point/.test(layer.geometry)) {
    return [{ id: `${layer.id}-point`, type: "circle", ...common,
              paint: { "circle-color": colour, "circle-radius": ["interpolate", ["linear"], ["zoom"], 4, 3.5, 10, 6],
                       "circle-stroke-color": "#ffffff", "circle-stroke-width": 1.2 } }];
  }
  if (/Line/.test(layer.geometry)) {
    return [{ id: `${layer.id}-line`, type: "line", ...common, paint: { "line-color": colour, "line-width": 2 } }];
  }
  return [
    { id: `${layer.id}-fill`, type: "fill", ...common, paint: { "fill-color": colour, "fill-opacity": 0.45 } },
    { id: `${layer.id}-line`, type: "line", ...common,
      paint: { "line-color": colour, "line-width": ["interpolate", ["linear"], ["zoom"], 6, 0.4, 12, 1.2] } },
  ];
}

/** The tile URL of a layer; a time series draws its chosen step (style values-<band>). */
function tileUrl(layer) {
  return absolute(layer.steps ? layer.tiles.replace("/values/", `/values-${layer.step || 1}/`) : layer.tiles);
}

/** Draw another step of a time series. */
export function setStep(map, layer) {
  const source = map.getSource(layer.id);
  if (source) source.setTiles([tileUrl(layer)]);
}

export function showLayer(map, layer) {
  if (!map.getSource(layer.id)) {
    const source = layer.kind === "raster"
      ? { type: "raster", tiles: [tileUrl(layer)], tileSize: 256, maxzoom: RELIEF_MAXZOOM }
      : { type: "vector", tiles: [absolute(layer.tiles)], maxzoom: layer.maxzoom, promoteId: undefined };
    source.bounds = layer.bbox;
    source.attribution = layer.attribution;
    map.addSource(layer.id, source);
    const before = TOP_LAYERS.find((id) => map.getLayer(id));
    for (const spec of styleLayers(layer)) map.addLayer(spec, before);
  }
  for (const spec of styleLayers(layer)) map.setLayoutProperty(spec.id, "visibility", "visible");
  setOpacity(map, layer, layer.opacity);
}

export function hideLayer(map, layer) {
  if (!map.getSource(layer.id)) return;
  for (const spec of styleLayers(layer)) map.setLayoutProperty(spec.id, "visibility", "none");
}

export function setOpacity(map, layer, percent) {
  if (!map.getSource(layer.id)) return;
  const value = percent / 100;
  for (const spec of styleLayers(layer)) {
    const property = { raster: "raster-opacity", circle: "circle-opacity", line: "line-opacity", fill: "fill-opacity" }[spec.type];
    map.setPaintProperty(spec.id, property, spec.type === "fill" ? value * 0.6 : value);
    if (spec.type === "circle") map.setPaintProperty(spec.id, "circle-stroke-opacity", value);
  }
}

export function zoomTo(map, layer) {
  const [west, south, east, north] = layer.bbox;
  map.fitBounds([[west, south], [east, north]], { padding: 40, maxZoom: 12 });
}

// --- popups -------------------------------------------------------------------------------

/**
 * Popups on click (and on Enter at the map's centre, for keyboard users). `hooks` lets other
 * tools take part: `suppressed()` (e.g. while drawing), `sections(point)` (their features'
 * popup sections, shown first) and `hoverLayers()` (their layer ids, for the pointer cursor).
 */
export function enablePopups(map, layers, hooks = {}) {
  const { suppressed = () => false, sections = () => [], hoverLayers = () => [] } = hooks;
  const popup = new maplibregl.Popup({ maxWidth: "22rem", focusAfterOpen: true });
  const open = async (lngLat, point) => {
    if (suppressed()) return false;
    const visible = layers.filter((l) => l.visible);
    const ids = visible.filter((l) => l.kind === "vector").flatMap((l) => styleLayers(l).map((s) => s.id));
    const box = [[point.x - 5, point.y - 5], [point.x + 5, point.y + 5]];
    const hits = ids.length ? map.queryRenderedFeatures(box, { layers: ids }) : [];
    const content = el("div", { class: "popup" }, sections(point));
    const seen = new Set();
    for (const hit of hits) {
      const layer = layers.find((l) => l.id === hit.source);
      const key = `${hit.source}:${hit.id}`;
      if (!layer || seen.has(key) || seen.size >= 5) continue;
      seen.add(key);
      content.append(featureSection(layer, hit));
    }
    for (const layer of visible.filter((l) => l.kind === "raster")) {
      content.append(await rasterSection(layer, lngLat));
    }
    if (!content.childNodes.length) return false;
    popup.setLngLat(lngLat).setDOMContent(content).addTo(map);
    return true;
  };
  map.on("click", (event) => { open(event.lngLat, event.point); });
  map.on("mousemove", (event) => {
    if (suppressed()) return;
    const ids = layers.filter((l) => l.visible && l.kind === "vector").flatMap((l) => styleLayers(l).map((s) => s.id))
      .concat(hoverLayers().filter((id) => map.getLayer(id)));
    const hit = ids.length && map.queryRenderedFeatures(event.point, { layers: ids }).length;
    map.getCanvas().style.cursor = hit ? "pointer" : "";
  });
  map.getCanvas().addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const canvas = map.getCanvas();
    const point = new maplibregl.Point(canvas.clientWidth / 2, canvas.clientHeight / 2);
    open(map.unproject(point), point);
  });
  return { popup, open };
}

// Identifiers are codes, not quantities: 1528675, never "1,528,675".
const isIdentifier = (layer, name) => name === layer.id_field || /(^|_)(id|code)$/i.test(name);

function featureSection(layer, feature) {
  const props = feature.properties;
  const rows = Object.entries(props).filter(([name]) => !isCodeParameter(name, props)).map(([name, value]) =>
    el("tr", { "data-field": name }, el("th", { scope: "row" }, fieldLabel(name)),
       el("td", {}, typeof value === "number" && !isIdentifier(layer, name)
         ? formatNumber(value, currentLanguage()) : valueLabel(name, value, props) ?? String(value))));
  const idValue = layer.id_field ? feature.properties[layer.id_field] : feature.id;
  const link = idValue != null
    ? el("a", { href: `/ogc/collections/${layer.id}/items/${encodeURIComponent(idValue)}?f=json`, target: "_blank" },
         t("popup.more"))
    : null;
  // the place's name in the page's language first, where the layer has one
  const ownName = feature.properties[`name_${currentLanguage()}`];
  return el("section", { class: "popup-layer" }, el("h3", {}, pick(layer.title)),
            ownName ? el("p", { class: "popup-name" }, el("strong", {}, String(ownName))) : null,
            el("table", {}, el("tbody", {}, rows)), link && el("p", {}, link));
}

async function rasterSection(layer, lngLat) {
  const url = `/portal/value/${layer.id}?lon=${lngLat.lng.toFixed(6)}&lat=${lngLat.lat.toFixed(6)}`;
  let text;
  try {
    const body = await getJson(url);
    if (body.class) return classSection(layer, body);
    if (body.steps) body.value = body.steps[(layer.step || 1) - 1].value;
    text = body.value == null ? t("popup.none") : `${formatNumber(body.value, currentLanguage())} ${body.unit || ""}`;
  } catch (error) {
    text = error.message;
  }
  return el("section", { class: "popup-layer" }, el("h3", {}, pick(layer.title)),
            el("p", {}, `${t("popup.value")}: `, el("strong", { class: "raster-value" }, text)));
}

/** A class raster's popup: the class under the point, in its legend colour, and its code. */
function classSection(layer, body) {
  return el("section", { class: "popup-layer" }, el("h3", {}, pick(layer.title)),
            el("p", {}, `${t("popup.class")}: `,
               el("span", { class: "swatch", style: `background:${body.class.colour}` }),
               el("strong", { class: "raster-value" }, pick(body.class.title)),
               ` (${t("popup.code")} ${body.value})`));
}

export function showResults(map, collection) {
  map.getSource("filter-results").setData(collection);
}

export function addedTopLayers() {
  return TOP_LAYERS;
}

export { HIGHLIGHT };
