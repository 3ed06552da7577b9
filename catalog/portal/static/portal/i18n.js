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

/**
 * A count in words: `key`'s text lists the language's plural forms ("one: {n} feature |
 * other: {n} features"; Russian needs one, few, many and other), and the browser's
 * Intl.PluralRules picks the form for `count`, which fills {n} in the language's digits.
 */
export function tn(key, count, values = {}) {
  const forms = Object.fromEntries(t(key, values).split("|").map((form) => {
    const [category, ...text] = form.split(":");
    return [category.trim(), text.join(":").trim()];
  }));
  const category = new Intl.PluralRules(language).select(count);
  const text = forms[category] ?? forms.other;
  return text.replace("{n}", new Intl.NumberFormat(language, { maximumFractionDigits: 2 }).format(count));
}

/** A date (an ISO text or a Date) in the current language's words, e.g. "3 декабря 2026 г.". */
export function formatDate(value) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return new Intl.DateTimeFormat(language, { dateStyle: "long" }).format(date);
}

/** An attribute's label in words ("Population (people)"), its own name when none is known. */
export function fieldLabel(name) {
  return strings[`field.${name}`] ? t(`field.${name}`) : name;
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
