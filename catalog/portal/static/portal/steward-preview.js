// The map preview of a draft's upload, on the stewards' report and in the reviewers' queue:
// GET /api/datasets/{id}/draft/preview (features in WGS 84, or a raster's footprint) and, for a
// raster, preview.png. Both were made by the isolated reader when it checked the upload; the
// page draws them over the portal's own basemap.
/* global maplibregl */
import { numberLocale, t } from "./i18n.js";
import { createMap } from "./map.js";
import { el, formatNumber } from "./util.js";

const COLOUR = "#d6336c"; // stands out against the green and brown relief
const maps = new Set();

/** A box that draws the preview once it is in the page (the map needs its size). */
export function previewNode(datasetId, data) {
  const container = el("div", { class: "preview-map", "data-preview-state": "loading",
                                role: "img", "aria-label": t("steward_preview") });
  const note = el("p", { class: "meta preview-note" });
  const box = el("section", { class: "preview" }, el("h4", {}, t("steward_preview")), container, note);
  requestAnimationFrame(() => draw(datasetId, data, container, note));
  return box;
}

async function draw(datasetId, data, container, note) {
  forgetDetachedMaps();
  if (!container.isConnected) return;
  const answer = await fetch(`/api/datasets/${datasetId}/draft/preview`,
                             { headers: { Accept: "application/geo+json" }, credentials: "same-origin" });
  if (!answer.ok || !container.isConnected) {
    container.dataset.previewState = "none";
    container.hidden = true;
    note.textContent = t("steward_preview_none");
    return;
  }
  const preview = await answer.json();
  const map = createMap(container, data, null);
  maps.add(map);
  map.setMaxBounds(null); // an upload may lie outside the portal's usual view
  map.on("load", () => {
    if (preview.kind === "raster") {
      map.addSource("preview-image", { type: "image", url: `/api/datasets/${datasetId}/draft/preview.png`,
                                       coordinates: preview.image.coordinates });
      map.addLayer({ id: "preview-image", type: "raster", source: "preview-image", paint: { "raster-opacity": 0.85 } });
    }
    map.addSource("preview", { type: "geojson", data: preview.features });
    map.addLayer({ id: "preview-fill", type: "fill", source: "preview", filter: ["==", ["geometry-type"], "Polygon"],
                   paint: { "fill-color": COLOUR, "fill-opacity": preview.kind === "raster" ? 0 : 0.45 } });
    map.addLayer({ id: "preview-line", type: "line", source: "preview", filter: ["!=", ["geometry-type"], "Point"],
                   paint: { "line-color": COLOUR, "line-width": 2 } });
    map.addLayer({ id: "preview-point", type: "circle", source: "preview", filter: ["==", ["geometry-type"], "Point"],
                   paint: { "circle-color": COLOUR, "circle-radius": 5, "circle-stroke-color": "#fff", "circle-stroke-width": 1 } });
    const bounds = featureBounds(preview.features);
    if (bounds) map.fitBounds(bounds, { padding: 24, animate: false, maxZoom: 14 });
    map.once("idle", () => { container.dataset.previewState = "drawn"; });
  });
  container.dataset.previewKind = preview.kind;
  container.dataset.previewShown = String(preview.kind === "raster" ? 1 : preview.shown);
  note.textContent = preview.kind === "raster" ? t("steward_preview_raster")
    : t("steward_preview_shown", { shown: formatNumber(preview.shown, data.language),
                                   total: formatNumber(preview.total, data.language) });
}

// Each report refresh makes a new map: the old ones give back their WebGL contexts.
function forgetDetachedMaps() {
  for (const map of maps) {
    if (!map.getContainer().isConnected) { map.remove(); maps.delete(map); }
  }
}

function featureBounds(collection) {
  const bounds = new maplibregl.LngLatBounds();
  const visit = (coordinates) => {
    if (typeof coordinates[0] === "number") bounds.extend(coordinates);
    else coordinates.forEach(visit);
  };
  collection.features.forEach((feature) => visit(feature.geometry.coordinates));
  return bounds.isEmpty() ? null : bounds;
}

/** The extent fact: in the data's own CRS and in WGS 84, numbers in the page's language. */
export function extentText(extent, language) {
  const n = (value) => value.toLocaleString(numberLocale(language), { maximumFractionDigits: 6 });
  const [west, south, east, north] = extent.wgs84.map(n);
  const [minx, miny, maxx, maxy] = extent.bbox.map(n);
  return [t("steward_extent_native", { crs: extent.crs, minx, miny, maxx, maxy }),
          t("steward_extent_wgs84", { west, south, east, north })];
}
