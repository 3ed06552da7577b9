// The filter builder: conditions on a layer's queryables -> a CQL2 text filter, sent to the
// OGC API Features items endpoint; shows numberMatched, the first matches, and downloads.
import { checkDate, dateInput, isDate } from "./date-input.js";
import { currentLanguage, fieldLabel, pick, problemText, t, tn } from "./i18n.js";
import { el, formatNumber, getJson } from "./util.js";

const SHOWN = 100; // features drawn and listed; the count comes from numberMatched
const MAX_DOWNLOAD = 10000; // the OGC API's largest page (limits.max_items)
const OPERATORS = {
  number: ["eq", "ne", "lt", "le", "gt", "ge", "null", "notnull"],
  string: ["eq", "ne", "like", "null", "notnull"],
  date: ["eq", "lt", "le", "gt", "ge", "null", "notnull"],
  boolean: ["eq", "null", "notnull"],
};
// Local projected CRSs offered for downloads (x, y in metres): WGS 84 / UTM 42N and 43N.
const UTM = { 42: "http://www.opengis.net/def/crs/EPSG/0/32642", 43: "http://www.opengis.net/def/crs/EPSG/0/32643" };
const SYMBOLS = { eq: "=", ne: "<>", lt: "<", le: "<=", gt: ">", ge: ">=" };

function kindOf(schema) {
  if (schema.type === "integer" || schema.type === "number") return "number";
  if (schema.type === "boolean") return "boolean";
  if (schema.format === "date" || schema.format === "date-time") return "date";
  return "string";
}

function quoteText(value) {
  return `'${String(value).replace(/'/g, "''")}'`;
}

function identifier(name) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** One condition as CQL2 text, or null while it is incomplete. */
export function conditionCql({ property, kind, operator, value }) {
  const name = identifier(property);
  if (operator === "null") return `${name} IS NULL`;
  if (operator === "notnull") return `${name} IS NOT NULL`;
  if (value === "" || value == null) return null;
  if (operator === "like") {
    const escaped = String(value).replace(/[\\%_]/g, (c) => `\\${c}`);
    return `CASEI(${name}) LIKE CASEI(${quoteText(`%${escaped}%`)})`;
  }
  const symbol = SYMBOLS[operator];
  if (kind === "number") return Number.isFinite(Number(value)) ? `${name} ${symbol} ${Number(value)}` : null;
  if (kind === "boolean") return `${name} ${symbol} ${value === "true" ? "TRUE" : "FALSE"}`;
  if (kind === "date") return isDate(String(value).trim()) ? `${name} ${symbol} DATE(${quoteText(String(value).trim())})` : null;
  return `${name} ${symbol} ${quoteText(value)}`;
}

export function combine(parts, match) {
  const complete = parts.filter(Boolean);
  if (complete.length <= 1) return complete[0] || "";
  return complete.map((p) => `(${p})`).join(` ${match} `);
}

export function createFilterBuilder({ layers, map, showResults, flyToFeatures, onChange }) {
  const form = document.getElementById("filter-form");
  const select = document.getElementById("filter-layer");
  const list = document.getElementById("filter-conditions");
  const cqlOut = document.getElementById("filter-cql");
  const status = document.getElementById("filter-status");
  const results = document.getElementById("filter-results");
  const downloads = document.getElementById("filter-downloads");
  const inView = document.getElementById("filter-in-view");
  const parts = ["filter-match", "filter-actions", "filter-view-label", "filter-cql-box", "filter-apply"]
    .map((id) => document.getElementById(id));
  let queryables = {};
  let conditions = [];
  let valueCache = {};
  let applied = null; // the filter last applied, as the URL carries it

  const layer = () => layers.find((l) => l.id === select.value);
  const match = () => form.querySelector("input[name=match]:checked").value;
  const cql = () => combine(conditions.map(conditionCql), match());

  function refreshCql() {
    cqlOut.textContent = cql() || "—";
  }

  // A text field's values and how many features carry each, read from the data itself (one
  // request per field, cached while the layer stays chosen).
  async function valuesOf(property) {
    if (!valueCache[property]) {
      const params = new URLSearchParams({ f: "json", limit: String(MAX_DOWNLOAD), skipGeometry: "true",
                                           properties: property });
      valueCache[property] = getJson(`/ogc/collections/${layer().id}/items?${params}`).then((body) => {
        const counts = new Map();
        for (const feature of body.features) {
          const value = feature.properties[property];
          if (value != null && value !== "") counts.set(String(value), (counts.get(String(value)) || 0) + 1);
        }
        return { counts: [...counts.entries()].sort((a, b) => a[0].localeCompare(b[0], currentLanguage())),
                 complete: body.features.length >= body.numberMatched };
      });
    }
    return valueCache[property];
  }

  function valuePicker(condition) {
    const picker = el("select", { "aria-label": t("filter.value"), class: "value picker" },
                      el("option", { value: "" }, t("filter.pick_value")));
    valuesOf(condition.property).then(({ counts }) => {
      picker.append(...counts.map(([value, n]) => el("option", { value, "data-count": n, selected: value === condition.value },
        `${value} (${formatNumber(n, currentLanguage())})`)));
      if (condition.value) picker.value = condition.value;
      picker.dataset.ready = "true";
    }, () => { picker.dataset.ready = "error"; });
    return picker;
  }

  function conditionRow(condition) {
    const properties = el("select", { "aria-label": t("filter.property"), class: "property" },
      Object.keys(queryables).map((name) => el("option", { value: name, selected: name === condition.property },
                                             queryables[name].title || fieldLabel(name))));
    const operators = el("select", { "aria-label": t("filter.operator"), class: "operator" });
    const valueBox = el("span", { class: "value-box" });
    const fillOperators = () => {
      operators.replaceChildren(...OPERATORS[condition.kind].map((op) =>
        el("option", { value: op, selected: op === condition.operator }, t(`op.${op}`))));
      condition.operator = operators.value;
    };
    const fillValue = () => {
      const needsValue = !["null", "notnull"].includes(condition.operator);
      let input;
      if (!needsValue) input = null;
      else if (condition.kind === "boolean") {
        input = el("select", { "aria-label": t("filter.value"), class: "value" },
                   el("option", { value: "true" }, "true"), el("option", { value: "false" }, "false"));
      } else if (condition.kind === "string" && ["eq", "ne"].includes(condition.operator)) {
        input = valuePicker(condition);
      } else if (condition.kind === "date") { // typed YYYY-MM-DD: see date-input.js
        input = dateInput({ "aria-label": t("filter.value"), class: "value", value: condition.value ?? "" });
        input.addEventListener("change", () => checkDate(input, queryables[condition.property].title || fieldLabel(condition.property)));
      } else {
        const type = { number: "number" }[condition.kind] || "text";
        input = el("input", { type, "aria-label": t("filter.value"), class: "value", value: condition.value ?? "",
                              step: condition.kind === "number" ? "any" : null });
      }
      if (input) {
        if (!input.classList.contains("picker")) condition.value = input.value;
        input.addEventListener("input", () => { condition.value = input.value; refreshCql(); });
        input.addEventListener("change", () => { condition.value = input.value; refreshCql(); });
      }
      valueBox.replaceChildren(...(input ? [input] : []));
    };
    properties.addEventListener("change", () => {
      condition.property = properties.value;
      condition.kind = kindOf(queryables[condition.property]);
      condition.value = "";
      fillOperators(); fillValue(); refreshCql();
    });
    operators.addEventListener("change", () => { condition.operator = operators.value; fillValue(); refreshCql(); });
    const remove = el("button", { type: "button", class: "secondary remove", "aria-label": t("filter.remove") }, "×");
    const row = el("li", {}, properties, operators, valueBox, remove);
    remove.addEventListener("click", () => {
      conditions = conditions.filter((c) => c !== condition);
      row.remove(); refreshCql();
    });
    fillOperators(); fillValue();
    return row;
  }

  function addCondition(wanted = {}) {
    const property = wanted.property in queryables ? wanted.property : Object.keys(queryables)[0];
    const condition = { property, kind: kindOf(queryables[property]), operator: wanted.operator || null,
                        value: wanted.value ?? "" };
    conditions.push(condition);
    const row = conditionRow(condition);
    list.append(row);
    refreshCql();
    row.querySelector("select").focus();
  }

  async function chooseLayer(withFirstCondition = true) {
    applied = null;
    conditions = []; list.replaceChildren(); results.replaceChildren(); status.textContent = "";
    downloads.hidden = true; showResults({ type: "FeatureCollection", features: [] });
    const chosen = layer();
    parts.forEach((node) => { node.hidden = !chosen; });
    if (!chosen) return;
    valueCache = {};
    // the queryables' titles come in the page's language (the server's field titles)
    const schema = await getJson(`/ogc/collections/${chosen.id}/queryables?f=json&lang=${currentLanguage()}`);
    queryables = Object.fromEntries(Object.entries(schema.properties)
      .filter(([name, s]) => name !== "geometry" && !String(s.format || "").startsWith("geometry")));
    if (withFirstCondition) addCondition();
  }

  function itemsUrl(format, limit, crs = null) {
    const params = new URLSearchParams({ f: format, limit: String(limit) });
    if (crs) params.set("crs", crs);
    const expression = cql();
    if (expression) { params.set("filter", expression); params.set("filter-lang", "cql2-text"); }
    if (inView.checked) {
      const b = map.getBounds();
      params.set("bbox", [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(","));
    }
    return `/ogc/collections/${layer().id}/items?${params}`;
  }

  async function apply(event) {
    if (event) event.preventDefault();
    const chosen = layer();
    if (!chosen) return;
    status.classList.remove("error");
    status.textContent = "…";
    let body;
    try {
      body = await getJson(itemsUrl("json", SHOWN));
    } catch (error) {
      status.classList.add("error");
      // the server's refusal in the page's language, the fields it names by their labels
      status.textContent = `${t("filter.error")}: ${error.problem ? problemText(error.problem, fieldLabel) : error.message}`;
      return;
    }
    const count = body.numberMatched;
    status.replaceChildren(el("strong", { id: "filter-count", "data-count": count },
                              tn("filter.count", count)),
                           body.features.length < count ? ` · ${t("filter.shown", { n: body.features.length })}` : "");
    showResults(body);
    if (body.features.length) flyToFeatures(body.features);
    applied = { layer: chosen.id, match: match(), inView: inView.checked,
                conditions: conditions.map((c) => [c.property, c.operator, c.value]) };
    onChange();
    const limit = Math.max(1, Math.min(count, MAX_DOWNLOAD));
    downloads.replaceChildren(`${t("filter.download")}: `,
      el("a", { href: itemsUrl("json", limit), download: `${chosen.id}-filtered.geojson` }, "GeoJSON"),
      el("a", { href: itemsUrl("csv", limit), download: `${chosen.id}-filtered.csv` }, "CSV"),
      ...Object.entries(UTM).map(([zone, crs]) => el("a", {
        href: itemsUrl("csv", limit, crs), download: `${chosen.id}-filtered-utm${zone}n.csv`,
        class: "utm", "data-crs": crs }, t("filter.csv_utm", { zone }))));
    downloads.hidden = count === 0;
    results.replaceChildren(...body.features.map((feature) => {
      const label = labelOf(feature, chosen);
      return el("li", {}, el("button", { type: "button", class: "feature",
                                         onclick: () => flyToFeatures([feature]) }, label));
    }));
  }

  function labelOf(feature, chosen) {
    const props = feature.properties || {};
    const name = props[`name_${currentLanguage()}`] || props.name || props.title
      || Object.values(props).find((v) => typeof v === "string");
    return `${name ?? feature.id} · ${pick(chosen.title)}`;
  }

  select.addEventListener("change", chooseLayer);
  document.getElementById("filter-add").addEventListener("click", addCondition);
  document.getElementById("filter-clear").addEventListener("click", () => { select.value = ""; chooseLayer(); });
  form.addEventListener("change", (event) => { if (event.target.name === "match") refreshCql(); });
  form.addEventListener("submit", apply);
  // The URL's part: &filter=<layer>&where=<JSON of the match and the conditions>.
  function urlState() {
    if (!applied) return [];
    const { layer: id, ...where } = applied;
    return [["filter", id], ["where", JSON.stringify(where)]];
  }

  async function restoreAndApply(params) {
    const id = params.get("filter");
    if (!layers.some((l) => l.id === id && l.kind === "vector")) return false;
    let where;
    try {
      where = JSON.parse(params.get("where") || "{}");
    } catch {
      where = {};
    }
    select.value = id;
    await chooseLayer(false);
    form.querySelector(`input[name=match][value="${where.match === "OR" ? "OR" : "AND"}"]`).checked = true;
    inView.checked = Boolean(where.inView);
    for (const [property, operator, value] of Array.isArray(where.conditions) ? where.conditions : []) {
      addCondition({ property, operator, value });
    }
    if (!conditions.length) addCondition();
    await apply();
    return true;
  }

  return { select: (id) => { select.value = id; return chooseLayer(); }, urlState, restoreAndApply };
}
