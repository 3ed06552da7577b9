// The Analysis tab's layers on the map: the chosen area, candidate areas styled by score with
// their best cells, and region outlines coloured by the share of people covered.
import { addDrawLayers, DRAW_LAYERS } from "./draw.js";

export const AREA_COLOUR = "#e4572e";
export const SELECTED_COLOUR = "#ff00aa";
// Viridis, dark (low score) to yellow (high score): legible on the relief and for most forms
// of colour blindness.
export const SCORE_RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
export const SHARE_RAMP = ["#f7fbff", "#c6dbef", "#6baed6", "#3182bd", "#08519c"];
const EMPTY = { type: "FeatureCollection", features: [] };

export const CANDIDATE_LAYERS = ["analysis-candidates-fill", "analysis-sites"];
export const REGION_LAYERS = ["analysis-regions-fill"];
export const ANALYSIS_LAYERS = [
  "analysis-regions-fill", "analysis-regions-line", "analysis-area-fill", "analysis-area-line",
  "analysis-candidates-fill", "analysis-candidates-line", "analysis-selected", "analysis-sites",
  ...DRAW_LAYERS,
];

/** A MapLibre colour expression interpolating `ramp` over [low, high] of `property`. */
export function rampExpression(property, ramp, low, high) {
  const span = high > low ? high - low : 1;
  const stops = ramp.flatMap((colour, i) => [low + (span * i) / (ramp.length - 1), colour]);
  return ["interpolate", ["linear"], ["to-number", ["get", property], low], ...stops];
}

/** A CSS gradient of `ramp`, for legends. */
export function rampGradient(ramp) {
  return `linear-gradient(to right, ${ramp.join(", ")})`;
}

export function addAnalysisLayers(map) {
  for (const id of ["analysis-regions", "analysis-area", "analysis-candidates", "analysis-sites"]) {
    map.addSource(id, { type: "geojson", data: EMPTY });
  }
  map.addLayer({ id: "analysis-regions-fill", type: "fill", source: "analysis-regions",
                 paint: { "fill-color": SHARE_RAMP[2], "fill-opacity": 0.4 } });
  map.addLayer({ id: "analysis-regions-line", type: "line", source: "analysis-regions",
                 paint: { "line-color": "#08306b", "line-width": 1, "line-dasharray": [3, 2] } });
  map.addLayer({ id: "analysis-area-fill", type: "fill", source: "analysis-area",
                 paint: { "fill-color": AREA_COLOUR, "fill-opacity": 0.08 } });
  map.addLayer({ id: "analysis-area-line", type: "line", source: "analysis-area",
                 paint: { "line-color": AREA_COLOUR, "line-width": 2.5 } });
  map.addLayer({ id: "analysis-candidates-fill", type: "fill", source: "analysis-candidates",
                 paint: { "fill-color": SCORE_RAMP[2], "fill-opacity": 0.7 } });
  map.addLayer({ id: "analysis-candidates-line", type: "line", source: "analysis-candidates",
                 paint: { "line-color": "#1d2630", "line-width": ["interpolate", ["linear"], ["zoom"], 6, 0.5, 11, 1.5] } });
  map.addLayer({ id: "analysis-selected", type: "line", source: "analysis-candidates",
                 filter: ["==", ["get", "rank"], -1],
                 paint: { "line-color": SELECTED_COLOUR, "line-width": 3.5 } });
  map.addLayer({ id: "analysis-sites", type: "circle", source: "analysis-sites",
                 paint: { "circle-color": SCORE_RAMP[2], "circle-radius": ["interpolate", ["linear"], ["zoom"], 5, 4.5, 11, 7],
                          "circle-stroke-color": "#ffffff", "circle-stroke-width": 1.5 } });
  addDrawLayers(map, AREA_COLOUR);
}

export function showArea(map, geometry) {
  const features = geometry ? [{ type: "Feature", properties: {}, geometry }] : [];
  map.getSource("analysis-area").setData({ type: "FeatureCollection", features });
}

/** Candidate polygons and their best cells, coloured by score over [low, high]. */
export function showCandidates(map, collection, low, high) {
  map.getSource("analysis-candidates").setData(collection);
  const sites = collection.features.map((f) => ({
    type: "Feature", properties: { ...f.properties },
    geometry: { type: "Point", coordinates: [f.properties.site_lon, f.properties.site_lat] },
  }));
  map.getSource("analysis-sites").setData({ type: "FeatureCollection", features: sites });
  const colour = rampExpression("score", SCORE_RAMP, low, high);
  map.setPaintProperty("analysis-candidates-fill", "fill-color", colour);
  map.setPaintProperty("analysis-sites", "circle-color", colour);
  selectCandidate(map, null);
}

export function selectCandidate(map, rank) {
  map.setFilter("analysis-selected", ["==", ["get", "rank"], rank ?? -1]);
}

export function showRegions(map, collection) {
  map.getSource("analysis-regions").setData(collection);
  map.setPaintProperty("analysis-regions-fill", "fill-color",
                       rampExpression("population_covered_share", SHARE_RAMP, 0, 1));
}

export function clearResults(map) {
  for (const id of ["analysis-regions", "analysis-candidates", "analysis-sites"]) {
    map.getSource(id).setData(EMPTY);
  }
}

/** [[west, south], [east, north]] of any GeoJSON geometry. */
export function boundsOf(geometry) {
  const xs = [];
  const ys = [];
  const walk = (c) => (typeof c[0] === "number" ? (xs.push(c[0]), ys.push(c[1])) : c.forEach(walk));
  walk(geometry.coordinates);
  return [[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]];
}
