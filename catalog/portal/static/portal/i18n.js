// Interface strings (in the page's language) from the page's data: texts, counts in words, field labels.

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
