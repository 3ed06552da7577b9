// Catalogue search over the STAC API's collection search (free text q, bbox of the map view),
// with facets for theme, licence and organisation counted over the results.
import { currentLanguage, pick, t, tn } from "./i18n.js";
import { el, getJson } from "./util.js";

const FACETS = {
  theme: (c) => c["taza:theme"],
  licence: (c) => c.license,
  organisation: (c) => (c["taza:steward"] && c["taza:steward"].organisation)
    || ((c.providers || []).find((p) => (p.roles || []).includes("processor")) || {}).name,
};

function translated(collection, field) {
  const language = currentLanguage();
  const translations = collection["taza:translations"] || {};
  return (language !== "en" && translations[language] && translations[language][field]) || collection[field];
}

export function createSearch({ map, themes, layers, addLayer, onChange = () => {} }) {
  const form = document.getElementById("search-form");
  const input = document.getElementById("search-q");
  const inExtent = document.getElementById("search-extent");
  const status = document.getElementById("search-status");
  const list = document.getElementById("search-results");
  const facetsBox = document.getElementById("search-facets");
  let collections = [];
  let searched = null; // the text of the last search, as the URL carries it
  const chosen = { theme: null, licence: null, organisation: null };

  function facetLabel(facet, value) {
    if (facet === "theme" && themes[value]) return pick(themes[value].title);
    return value;
  }

  function renderFacets() {
    facetsBox.replaceChildren(...Object.entries(FACETS).map(([facet, valueOf]) => {
      const counts = new Map();
      for (const c of collections) {
        const value = valueOf(c);
        if (value) counts.set(value, (counts.get(value) || 0) + 1);
      }
      if (!counts.size) return "";
      const buttons = [...counts.entries()].sort().map(([value, n]) => el("button", {
        type: "button", "aria-pressed": String(chosen[facet] === value), dataset: { facet, value },
        onclick: () => { chosen[facet] = chosen[facet] === value ? null : value; render(); },
      }, `${facetLabel(facet, value)} (${n})`));
      return el("fieldset", {}, el("legend", {}, t(`facet.${facet}`)), buttons);
    }));
  }

  function render() {
    renderFacets();
    const shown = collections.filter((c) => Object.entries(chosen)
      .every(([facet, value]) => value == null || FACETS[facet](c) === value));
    status.textContent = shown.length ? tn("search.results", shown.length) : t("search.none");
    list.replaceChildren(...shown.map((c) => resultItem(c)));
  }

  function resultItem(collection) {
    const layer = layers.find((l) => l.id === collection.id);
    const nature = collection["taza:nature"];
    const description = translated(collection, "description") || "";
    return el("li", { "data-collection": collection.id },
      el("h3", {}, el("a", { href: `/datasets/${collection.id}?lang=${currentLanguage()}` }, translated(collection, "title"))),
      nature && nature !== "observed" ? el("p", { class: `badge badge-${nature}` }, t(`nature.${nature}`)) : "",
      el("p", {}, description.length > 220 ? `${description.slice(0, 217)}…` : description),
      el("p", { class: "meta" }, [FACETS.licence(collection), FACETS.organisation(collection)].filter(Boolean).join(" · ")),
      layer ? el("button", { type: "button", class: "secondary", onclick: () => addLayer(layer.id) }, t("search.add")) : "");
  }

  async function search(event) {
    if (event) event.preventDefault();
    const params = new URLSearchParams({ limit: "100" });
    const text = input.value.trim();
    if (text) params.set("q", text);
    if (inExtent.checked) {
      const b = map.getBounds();
      params.set("bbox", [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(","));
    }
    searched = text;
    onChange();
    status.classList.remove("error");
    status.textContent = "…";
    try {
      const body = await getJson(`/stac/collections?${params}`);
      collections = body.collections || [];
    } catch (error) {
      status.classList.add("error");
      status.textContent = error.status === 404 ? t("search.unavailable") : error.message;
      return;
    }
    render();
  }

  form.addEventListener("submit", search);
  inExtent.addEventListener("change", () => search());
  return {
    search,
    urlState: () => (searched === null ? [] : [["q", searched]]),
    restore: (params) => { input.value = params.get("q"); return search(); },
  };
}
