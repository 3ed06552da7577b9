// What the Analysis tab shows: the ranked candidate list and its popups, the coverage tables,
// legends, and the downloads (GeoJSON as the server answered it, CSV of the tables).
import { currentLanguage, t, tn } from "./i18n.js";
import { rampGradient, SCORE_RAMP, SHARE_RAMP } from "./analysis-map.js";
import { el, formatNumber } from "./util.js";

const fmt = (value) => (value == null ? "—" : formatNumber(value, currentLanguage()));
const percent = (share) => (share == null ? "—" : `${fmt(Math.round(share * 1000) / 10)} %`);
const km = (value) => `${fmt(value)} ${t("an.unit_km")}`;
const metres = (value) => `${fmt(value)} ${t("an.unit_m")}`;

// --- downloads -------------------------------------------------------------------------------

let objectUrls = [];

function fileLink(id, label, name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  objectUrls.push(url);
  return el("a", { id, href: url, download: name }, label);
}

export function releaseDownloads() {
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
}

function csvCell(value) {
  if (value == null) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV of objects, columns in the order they first appear. */
export function toCsv(rows) {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const lines = [columns, ...rows.map((row) => columns.map((c) => row[c]))];
  return `${lines.map((line) => line.map(csvCell).join(",")).join("\r\n")}\r\n`;
}

function downloads(links) {
  return el("p", { class: "downloads", id: "analysis-downloads" }, `${t("an.download")}: `, links);
}

function legend(title, ramp, low, high, note) {
  return el("div", { class: "legend analysis-legend" },
    el("p", { class: "legend-title" }, title),
    el("div", { class: "ramp", style: `background: ${rampGradient(ramp)}` }),
    el("div", { class: "ramp-labels" }, el("span", {}, low), el("span", {}, high)),
    note ? el("p", { class: "note" }, note) : null);
}

// --- site screening ----------------------------------------------------------------------------

/** [label, value] pairs: the values behind a candidate (for its list entry and its popup). */
export function candidateValues(p) {
  const town = p.settlement_name == null ? "—"
    : t("an.town_value", { name: localName(p, "settlement_name"), population: fmt(p.settlement_population),
                           region: localName(p, "settlement_region") || "", km: km(p.settlement_distance_km) });
  const airport = p.airport_name == null ? "—"
    : t("an.airport_value", { name: localName(p, "airport_name"), code: p.airport_icao || p.airport_iata || "",
                              km: km(p.airport_distance_km) });
  return [
    [t("an.score"), t("an.score_value", { score: fmt(p.score), site: fmt(p.site_score) })],
    [t("an.area_km2"), tn("an.area_value", p.cells, { area: fmt(p.area_km2) })],
    [t("an.slope"), t("an.slope_value", { mean: fmt(p.slope_mean_deg), max: fmt(p.slope_max_deg) })],
    [t("an.elevation"), t("an.elevation_value", { min: metres(p.elevation_min_m),
                                                 max: metres(p.elevation_max_m), mean: metres(p.elevation_mean_m) })],
    [t("an.coverage_short"), t("an.coverage_value", { g4: percent(p.coverage_4g_share),
                                                      g3: percent(p.coverage_3g_share), none: percent(p.coverage_none_share) })],
    [t("an.site"), t("an.site_value", { lat: p.site_lat.toFixed(4), lon: p.site_lon.toFixed(4),
                                        coverage: p.site_coverage, slope: fmt(p.site_slope_deg), elevation: metres(p.site_elevation_m) })],
    [t("an.town"), town],
    [t("an.airport"), airport],
  ];
}

function valueList(pairs) {
  return el("dl", { class: "values" }, pairs.flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value)]));
}

export function candidatePopup(properties) {
  return el("section", { class: "popup-layer analysis-popup" },
            el("h3", {}, t("an.candidate", { rank: properties.rank })), valueList(candidateValues(properties)));
}

function candidateItem(feature, onPick) {
  const p = feature.properties;
  const button = el("button", { type: "button", class: "candidate", "aria-expanded": "false",
                                onclick: () => onPick(feature) },
                    el("strong", {}, `#${p.rank}`), ` · ${t("an.score")} ${fmt(p.score)} · ${fmt(p.area_km2)} ${t("an.unit_km2")}`,
                    el("span", { class: "candidate-town" }, p.settlement_name ? ` · ${localName(p, "settlement_name")}` : ""));
  return el("li", { "data-rank": p.rank }, button, valueList(candidateValues(p)));
}

export function scoreRange(collection) {
  const scores = collection.features.map((f) => f.properties.score);
  return scores.length ? [Math.min(...scores), Math.max(...scores)] : [0, 1];
}

export function screeningView(collection, onPick) {
  const matched = collection.numberMatched;
  const shown = collection.features.length;
  const count = el("p", { id: "screening-count", class: "count", "data-matched": matched, "data-returned": shown },
                   matched ? tn("an.candidates", matched, { shown: fmt(shown) }) : t("an.none_found"));
  if (!shown) return [count];
  const [low, high] = scoreRange(collection);
  const table = collection.features.map((f) => ({ ...f.properties }));
  return [
    count,
    legend(t("an.score_legend"), SCORE_RAMP, fmt(low), fmt(high), t("an.modelled")),
    downloads([
      fileLink("download-geojson", "GeoJSON", "site-screening.geojson", "application/geo+json",
               JSON.stringify(collection)),
      fileLink("download-csv", "CSV", "site-screening.csv", "text/csv", toCsv(table)),
    ]),
    el("ol", { id: "screening-results", class: "results candidates" },
       collection.features.map((f) => candidateItem(f, onPick))),
  ];
}

// --- coverage statistics ---------------------------------------------------------------------

/** A candidate's place name in the page's language (`<field>_ru`, `<field>_ky`), else English. */
function localName(properties, field) {
  return properties[`${field}_${currentLanguage()}`] || properties[field];
}

export function regionName(row) {
  const language = currentLanguage();
  // Rows carry name (English) and name_<language> for the others (coverage-statistics).
  return row[`name_${language}`] || row.name || row.region;
}

function classRows(row) {
  const classes = [["4g", "an.class_4g"], ["3g", "an.class_3g"], ["none", "an.class_none"], ["total", "an.total"]];
  return classes.map(([cls, key]) => el("tr", { class: cls === "total" ? "total" : null },
    el("th", { scope: "row" }, t(key)),
    el("td", {}, fmt(row[`settlements_${cls}`])),
    el("td", { id: `coverage-population-${cls}`, "data-value": row[`population_${cls}`] }, fmt(row[`population_${cls}`])),
    el("td", {}, fmt(cls === "total" ? row.area_km2 : row[`area_${cls}_km2`]))));
}

function areaTable(row) {
  return el("table", { id: "coverage-area", class: "figures" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("an.coverage_short")),
                      el("th", { scope: "col" }, t("an.settlements")),
                      el("th", { scope: "col" }, t("an.population")),
                      el("th", { scope: "col" }, `${t("an.area_km2")}, ${t("an.unit_km2")}`))),
    el("tbody", {}, classRows(row)));
}

function areaSummary(row) {
  return valueList([
    [t("an.covered_population"), el("span", { id: "coverage-covered-share", "data-value": row.population_covered_share },
                                    percent(row.population_covered_share))],
    [t("an.area_share"), percent(row.area_covered_share)],
    [t("an.mean_elevation"), metres(row.elevation_mean_m)],
    [t("an.mean_slope"), `${fmt(row.slope_mean_deg)}°`],
  ]);
}

function regionsTable(rows, onPick) {
  const body = rows.map((row) => el("tr", { "data-region": row.region },
    el("th", { scope: "row" }, el("button", { type: "button", class: "link-button", onclick: () => onPick(row.region) },
                                  regionName(row))),
    el("td", { "data-value": row.population_total }, fmt(row.population_total)),
    el("td", {}, percent(row.population_covered_share)),
    el("td", {}, `${fmt(row.settlements_total)}`),
    el("td", {}, percent(row.area_covered_share))));
  return el("div", { class: "table-wrap" }, el("table", { id: "coverage-regions", class: "figures" },
    el("thead", {}, el("tr", {}, [t("an.region"), t("an.population"), t("an.covered_population"),
                                  t("an.settlements"), t("an.area_share")].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, body)));
}

function areaTitle(area, row) {
  if (area.kind === "region") return `${regionName(row)} (${t("an.outline_approx")})`;
  return area.kind === "drawn" ? t("an.drawn") : t("an.country");
}

export function coverageView(body, area, onPickRegion) {
  const { table, features } = body;
  const rows = [{ scope: "area", ...table.area }, ...(table.regions || []).map((r) => ({ scope: "region", ...r }))];
  return [
    el("h3", { id: "coverage-title" }, areaTitle(area, table.area)),
    areaTable(table.area),
    areaSummary(table.area),
    el("p", { class: "note" }, t("an.modelled")),
    el("p", { class: "note", id: "coverage-by-construction" }, t("an.by_construction")),
    downloads([
      fileLink("download-json", "JSON", "coverage-statistics.json", "application/json", JSON.stringify(table)),
      fileLink("download-csv", "CSV", "coverage-statistics.csv", "text/csv", toCsv(rows)),
      fileLink("download-geojson", "GeoJSON", "coverage-statistics.geojson", "application/geo+json",
               JSON.stringify(features)),
    ]),
    table.regions && table.regions.length ? [
      el("h3", {}, t("an.regions")),
      legend(t("an.share_legend"), SHARE_RAMP, "0 %", "100 %", t("an.approximate")),
      regionsTable(table.regions, onPickRegion),
    ] : null,
  ];
}

export function regionPopup(properties) {
  const outline = properties.outline === "none" ? t("an.city_no_outline") : t("an.outline_approx");
  return el("section", { class: "popup-layer analysis-popup" },
    el("h3", {}, regionName(properties)),
    el("p", { class: "badge" }, outline),
    valueList([
      [t("an.population"), fmt(properties.population_total)],
      [t("an.covered_population"), percent(properties.population_covered_share)],
      [t("an.settlements"), fmt(properties.settlements_total)],
      [t("an.area_share"), percent(properties.area_covered_share)],
    ]));
}
