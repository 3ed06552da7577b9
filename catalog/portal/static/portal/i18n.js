// Interface strings (in the page's languages) from the page's data, and re-labelling the page on a switch.

let strings = {};
let language = "en";

export function initI18n(table, initial) {
  strings = table;
  language = initial;
}

export function currentLanguage() {
  return language;
}

/** The string `key` in the current language with {name} placeholders filled from `values`. */
export function t(key, values = {}) {
  const entry = strings[key];
  if (!entry) return key;
  const text = entry[language] || entry.en;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** A metadata text in the current language from a {language: text} object (English fallback). */
export function pick(texts) {
  if (texts == null) return "";
  if (typeof texts === "string") return texts;
  return texts[language] || texts.en || Object.values(texts)[0] || "";
}

/** Switch the language and relabel everything marked with data-i18n / data-texts. */
export function setLanguage(next, root = document) {
  language = next;
  document.documentElement.lang = next;
  root.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  });
  root.querySelectorAll("[data-texts]").forEach((node) => {
    node.textContent = pick(JSON.parse(node.dataset.texts));
  });
  root.querySelectorAll("a[data-keep-lang]").forEach((link) => {
    const url = new URL(link.href, location.href);
    url.searchParams.set("lang", next);
    link.href = url.pathname + url.search + url.hash;
  });
  root.querySelectorAll(".lang-switch a").forEach((link) => {
    if (link.dataset.lang === next) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  });
}
