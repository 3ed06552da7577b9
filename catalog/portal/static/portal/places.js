// Place search over the catalogue's gazetteer layers (the datasets holding the roles
// settlements, regions and airports): names in any of their languages, Cyrillic or Latin,
// tolerant of a letter or two wrong; a pick flies the map there.
import { currentLanguage, t } from "./i18n.js";
import { el, getJson } from "./util.js";

const ROLES = ["settlements", "regions", "airports"];
const NAME_FIELDS = ["name", "name_en", "name_ru", "name_ky", "icao", "iata"];
const SHOWN = 8;

// Russian and Kyrgyz letters in Latin, as the data's English names spell them (GeoNames),
// so "Нарын" and "Naryn" compare equal.
const LATIN = {
  а: "a", б: "b", в: "v", г: "g", д: "d", е: "e", ё: "e", ж: "zh", з: "z", и: "i", й: "y", к: "k",
  л: "l", м: "m", н: "n", ң: "n", о: "o", ө: "o", п: "p", р: "r", с: "s", т: "t", у: "u", ү: "u",
  ф: "f", х: "kh", ц: "ts", ч: "ch", ш: "sh", щ: "sch", ъ: "", ы: "y", ь: "", э: "e", ю: "yu", я: "ya",
};

/** A name reduced for comparing: lower case, Latin letters, no accents, spaces or punctuation. */
export function normalise(text) {
  return [...String(text).toLowerCase()].map((c) => LATIN[c] ?? c).join("")
    .normalize("NFD").replace(/[^a-z0-9 ]/g, "").replace(/\s+/g, " ").trim();
}

function distance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** How well `query` names `name` (both normalised): 0 exact, 1 prefix of a word, 2+ a near
 * spelling; null when not at all. */
function score(query, name) {
  if (name === query) return 0;
  const words = name.split(" ");
  if (name.startsWith(query) || words.some((w) => w.startsWith(query))) return 1;
  const allowed = query.length >= 7 ? 2 : query.length >= 4 ? 1 : 0;
  const best = Math.min(...words.map((w) => distance(query, w.slice(0, query.length + 1))),
                        distance(query, name));
  return best <= allowed ? 2 + best : null;
}

export function createPlaceSearch({ layers, flyToFeatures }) {
  const form = document.getElementById("place-form");
  const input = document.getElementById("place-q");
  const status = document.getElementById("place-status");
  const list = document.getElementById("place-results");
  let gazetteer = null;

  async function load() {
    const sources = layers.filter((l) => l.kind === "vector" && ROLES.includes(l.role));
    const pages = await Promise.all(sources.map((layer) =>
      getJson(`/ogc/collections/${layer.id}/items?f=json&limit=1000`).then((body) => [layer, body])));
    return pages.flatMap(([layer, body]) => body.features.map((feature) => ({
      role: layer.role, feature,
      names: NAME_FIELDS.map((f) => feature.properties[f]).filter(Boolean).map(normalise),
    })));
  }

  function label(place) {
    const props = place.feature.properties;
    const own = props[`name_${currentLanguage()}`];
    const name = own || props.name || props.name_en;
    const latinOnly = !own && currentLanguage() !== "en";
    return `${name} · ${t(`place.${place.role}`)}${latinOnly ? ` (${t("place.latin")})` : ""}`;
  }

  async function find(event) {
    event.preventDefault();
    const query = normalise(input.value);
    if (!query) return;
    status.textContent = "…";
    gazetteer = gazetteer || (await load());
    const found = gazetteer
      .map((place) => ({ place, score: Math.min(...place.names.map((n) => score(query, n) ?? Infinity)) }))
      .filter((hit) => Number.isFinite(hit.score))
      .sort((a, b) => a.score - b.score || ROLES.indexOf(a.place.role) - ROLES.indexOf(b.place.role))
      .slice(0, SHOWN);
    status.textContent = found.length ? "" : t("place.none");
    list.replaceChildren(...found.map(({ place }) => el("li", { "data-role": place.role },
      el("button", { type: "button", class: "feature place", onclick: () => flyToFeatures([place.feature]) },
         label(place)))));
    if (found.length) flyToFeatures([found[0].place.feature]);
  }

  form.addEventListener("submit", find);
}
