// Leaflet maps on pygeoapi's pages (catalog/ogc/templates): a collection's extent, a page of
// items, one item, a coverage grid. Data comes from the page's "ogc-map-data" JSON block;
// Leaflet and its plugins are vendored scripts loaded before this module.
/* global L */
import { pageData } from "./page.js";

const FIT = { maxZoom: 12, padding: [10, 10] };
// GDAL's usual fill values: pygeoapi's CoverageJSON does not carry the raster's nodata.
const FILL_VALUES = new Set([-9999, -32767, -32768, -3.4028234663852886e38]);
// Low to high: deep blue, teal, green, yellow, brown.
const RAMP = [[0, [49, 54, 149]], [0.25, [33, 145, 140]], [0.5, [94, 201, 98]],
              [0.75, [253, 231, 37]], [1, [140, 81, 10]]];

const KYRGYZSTAN = [[39.15, 69.2], [43.3, 80.3]];

/** A map showing `bounds` (Kyrgyzstan when they are not valid) over the basemap tiles. The
 * view is set before the tiles are added, so no tile is requested for a view never shown. */
function mapOver(id, settings, bounds, maxZoom = FIT.maxZoom) {
  const map = L.map(id, { maxZoom: 18 }); // also without a basemap (marker clusters need it)
  map.fitBounds(bounds && bounds.isValid() ? bounds : KYRGYZSTAN, { ...FIT, maxZoom });
  if (settings.tiles) {
    L.tileLayer(settings.tiles, { maxZoom: 18, attribution: settings.attribution }).addTo(map);
  }
  return map;
}

function link(href, text) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.textContent = text;
  return anchor;
}

function extentMap(id, data) {
  const [west, south, east, north] = data.bbox;
  const clamp = (lat) => Math.max(-85.0511, Math.min(85.0511, lat));
  const box = L.rectangle([[clamp(south), west], [clamp(north), east]]);
  return mapOver(id, data.map, box.getBounds()).addLayer(box);
}

function itemsMap(id, data) {
  const features = L.geoJSON(data.features, {
    onEachFeature(feature, layer) {
      const title = data.titleField ? feature.properties[data.titleField] : feature.id;
      layer.bindPopup(link(`${data.itemsPath}/${encodeURIComponent(feature.id)}?f=html`, String(title ?? feature.id)));
    },
  });
  const clusters = L.markerClusterGroup({ disableClusteringAtZoom: 9, chunkedLoading: true });
  return mapOver(id, data.map, features.getBounds()).addLayer(clusters.addLayer(features));
}

function itemMap(id, data) {
  const feature = L.geoJSON(data.feature);
  return mapOver(id, data.map, feature.getBounds()).addLayer(feature);
}

// --- coverages: the grid drawn on a canvas, one pixel per cell -----------------------------

function axis(description) {
  if (description.values) return description.values;
  const { start, stop, num } = description;
  const step = num > 1 ? (stop - start) / (num - 1) : 0;
  return Array.from({ length: num }, (_, i) => start + i * step);
}

function colour(fraction) {
  for (let i = 1; i < RAMP.length; i += 1) {
    const [upper, high] = RAMP[i];
    const [lower, low] = RAMP[i - 1];
    if (fraction <= upper) {
      const t = (fraction - lower) / (upper - lower);
      return low.map((value, k) => Math.round(value + t * (high[k] - value)));
    }
  }
  return RAMP[RAMP.length - 1][1];
}

function isValue(value) {
  return typeof value === "number" && Number.isFinite(value) && !FILL_VALUES.has(value);
}

function grid(coverage) {
  const xs = axis(coverage.domain.axes.x);
  const ys = axis(coverage.domain.axes.y);
  const [name] = Object.keys(coverage.ranges);
  const range = coverage.ranges[name];
  // Values run along the last axis first; our grids are [y, x].
  const xFirst = range.axisNames && range.axisNames[0] === "x";
  const at = (row, col) => range.values[xFirst ? col * ys.length + row : row * xs.length + col];
  const valid = range.values.filter(isValue);
  let low = Infinity;
  let high = -Infinity;
  for (const value of valid) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  const parameter = (coverage.parameters || {})[name];
  return { xs, ys, at, name, low, high, empty: valid.length === 0,
           title: parameterTitle(parameter), classes: classTable(parameter) };
}

/** A categorical parameter's classes by pixel value ({colour: [r, g, b], label}), or null.
 * CoverageJSON carries them (categories, categoryEncoding) from the dataset's class table. */
function classTable(parameter) {
  const categories = parameter && parameter.observedProperty &&
    parameter.observedProperty.categories;
  if (!categories || !parameter.categoryEncoding) return null;
  const language = document.documentElement.lang;
  const classes = new Map();
  for (const category of categories) {
    const hex = category.preferredColor || "#888888";
    const entry = { colour: [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)),
                    label: category.label[language] || category.label.en || category.id };
    const codes = [].concat(parameter.categoryEncoding[category.id] ?? []);
    for (const code of codes) classes.set(code, entry);
  }
  return classes;
}

/** The colour of a valid value: its class's, or its place on the ramp (null: not drawn). */
function cellColour(cells, value) {
  if (cells.classes) {
    const entry = cells.classes.get(value);
    return entry ? entry.colour : null;
  }
  return colour((value - cells.low) / (cells.high - cells.low || 1));
}

/** "elevation (m)": the parameter's label (or name) and unit, or null without parameters. */
function parameterTitle(parameter) {
  if (!parameter) return null;
  const label = parameter.observedProperty && parameter.observedProperty.label;
  const name = label ? label[document.documentElement.lang] || label.en : null;
  const unit = parameter.unit && parameter.unit.symbol;
  if (!name) return null;
  return unit ? `${name} (${unit})` : name;
}

function cellSize(values) {
  return values.length > 1 ? Math.abs(values[1] - values[0]) : 0.01;
}

function gridImage(cells) {
  const canvas = document.createElement("canvas");
  canvas.width = cells.xs.length;
  canvas.height = cells.ys.length;
  const context = canvas.getContext("2d");
  const image = context.createImageData(canvas.width, canvas.height);
  // Rows top to bottom: north first, whichever way the y axis runs.
  const northFirst = cells.ys[0] >= cells.ys[cells.ys.length - 1];
  for (let row = 0; row < canvas.height; row += 1) {
    const source = northFirst ? row : canvas.height - 1 - row;
    for (let col = 0; col < canvas.width; col += 1) {
      const value = cells.at(source, col);
      const rgb = isValue(value) ? cellColour(cells, value) : null;
      if (!rgb) continue;
      image.data.set([...rgb, 230], (row * canvas.width + col) * 4);
    }
  }
  context.putImageData(image, 0, 0);
  return canvas.toDataURL("image/png");
}

/** The classes present in the grid, each with its colour and name (in the table's order). */
function classLegend(cells, labels) {
  const present = new Set();
  for (let row = 0; row < cells.ys.length; row += 1) {
    for (let col = 0; col < cells.xs.length; col += 1) present.add(cells.at(row, col));
  }
  const control = L.control({ position: "bottomright" });
  control.onAdd = () => {
    const box = L.DomUtil.create("div", "ogc-legend ogc-legend-classes");
    const title = document.createElement("div");
    title.textContent = cells.title || labels.value;
    box.append(title);
    for (const [value, entry] of cells.classes) {
      if (!present.has(value)) continue;
      const row = document.createElement("div");
      row.className = "ogc-legend-class";
      row.dataset.value = String(value);
      const swatch = document.createElement("span");
      swatch.className = "ogc-legend-swatch";
      swatch.style.backgroundColor = `rgb(${entry.colour.join(",")})`;
      const name = document.createElement("span");
      name.textContent = entry.label;
      row.append(swatch, name);
      box.append(row);
    }
    return box;
  };
  return control;
}

function legend(cells, labels) {
  if (cells.classes) return classLegend(cells, labels);
  const control = L.control({ position: "bottomright" });
  control.onAdd = () => {
    const box = L.DomUtil.create("div", "ogc-legend");
    const bar = document.createElement("canvas");
    bar.width = 120;
    bar.height = 8;
    const context = bar.getContext("2d");
    for (let x = 0; x < bar.width; x += 1) {
      context.fillStyle = `rgb(${colour(x / (bar.width - 1)).join(",")})`;
      context.fillRect(x, 0, 1, bar.height);
    }
    const ends = document.createElement("div");
    ends.className = "ogc-legend-labels";
    for (const value of [cells.low, cells.high]) {
      const label = document.createElement("span");
      label.textContent = value.toLocaleString(document.documentElement.lang);
      ends.append(label);
    }
    const title = document.createElement("div");
    title.textContent = cells.title || labels.value;
    box.append(title, bar, ends);
    return box;
  };
  return control;
}

function gridBounds(cells) {
  const dx = cellSize(cells.xs) / 2;
  const dy = cellSize(cells.ys) / 2;
  const [x0, x1] = [cells.xs[0], cells.xs[cells.xs.length - 1]];
  const [y0, y1] = [cells.ys[0], cells.ys[cells.ys.length - 1]];
  return L.latLngBounds([Math.min(y0, y1) - dy, Math.min(x0, x1) - dx],
                        [Math.max(y0, y1) + dy, Math.max(x0, x1) + dx]);
}

/** Index of the cell centre nearest to a coordinate on an axis (-1 outside the grid). */
function nearest(values, coordinate) {
  const step = values.length > 1 ? values[1] - values[0] : 1;
  const index = Math.round((coordinate - values[0]) / step);
  return index >= 0 && index < values.length ? index : -1;
}

/** What a cell holds, as a person reads it: its class's name, or the number. */
function cellText(cells, value, labels) {
  if (!isValue(value)) return labels.nodata;
  const entry = cells.classes && cells.classes.get(value);
  if (entry) return entry.label;
  return value.toLocaleString(document.documentElement.lang);
}

function coverageMap(id, data) {
  const cells = grid(data.coverage);
  const bounds = gridBounds(cells);
  const map = mapOver(id, data.map, bounds);
  if (!cells.empty) {
    L.imageOverlay(gridImage(cells), bounds, { className: "ogc-coverage" }).addTo(map);
    legend(cells, data.labels).addTo(map);
  }
  L.rectangle(bounds, { fill: false, weight: 1, interactive: false }).addTo(map);
  // A click shows the value of the cell under it.
  map.on("click", (event) => {
    const row = nearest(cells.ys, event.latlng.lat);
    const col = nearest(cells.xs, event.latlng.lng);
    if (row < 0 || col < 0) return;
    const value = cells.at(row, col);
    const text = document.createElement("span");
    text.className = "ogc-cell-value";
    text.textContent = `${cells.title || data.labels.value}: ${cellText(cells, value, data.labels)}`;
    L.popup().setLatLng(event.latlng).setContent(text).openOn(map);
  });
  return map;
}

const MAPS = { extent: extentMap, items: itemsMap, item: itemMap, coverage: coverageMap };

const element = document.querySelector("[data-ogc-map]");
if (element) {
  // Exposed for people poking at the page and for the browser tests.
  window.ogcMap = MAPS[element.dataset.ogcMap](element.id, pageData("ogc-map-data"));
}
