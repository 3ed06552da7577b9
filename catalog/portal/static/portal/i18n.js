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
/**
 * The locale to write numbers in for a page language. Chromium ships no Kyrgyz number data
 * (Intl falls back to English, "3,000.5"); Kyrgyz writes numbers as Russian does (CLDR ky: a
 * no-break space between thousands, a decimal comma), so Kyrgyz pages borrow Russian's.
 */
export function numberLocale(lang) {
  const wanted = lang || "en";
  if (Intl.NumberFormat.supportedLocalesOf([wanted]).length) return wanted;
  return wanted === "ky" ? "ru" : "en";
}

export function tn(key, count, values = {}) {
  const forms = Object.fromEntries(t(key, values).split("|").map((form) => {
    const [category, ...text] = form.split(":");
    return [category.trim(), text.join(":").trim()];
  }));
  const category = new Intl.PluralRules(language).select(count);
  const text = forms[category] ?? forms.other;
  return text.replace("{n}", new Intl.NumberFormat(numberLocale(language), { maximumFractionDigits: 2 }).format(count));
}

/**
 * A server refusal (or a failed job's status) in the page's language: the text of its message
 * code (strings.yml `problem.<code>`) filled with its params, numbers in the language's digits
 * and names through `label` (an input's name -> its label on the page). A refusal without a
 * code the portal knows is shown in the server's own words (its `description`, or a job's
 * `message`: English).
 */
export function problemText(body, label = (name) => name) {
  if (!body) return "";
  const key = `problem.${body.messageCode}`;
  if (!body.messageCode || !strings[key]) return body.description || body.detail || body.message || "";
  const words = (name, value) => (name === "param" && strings[`param.${value}`] ? t(`param.${value}`)
    : label(String(value))); // the parameter a refusal names ("filter") in words
  const values = Object.fromEntries(Object.entries(body.params || {}).map(([name, value]) => [name,
    typeof value === "number" ? new Intl.NumberFormat(numberLocale(language), { maximumFractionDigits: 6 }).format(value)
      : words(name, value)]));
  return t(key, values);
}

/** An attribute's label in words ("Population (people)"), its own name when none is known. */
export function fieldLabel(name) {
  return strings[`field.${name}`] ? t(`field.${name}`) : name;
}

/** An attribute's value in words where it is a code of a known list (strings.yml
 * `value.<list>.<code>`: where a place's name or region comes from), else null. A code's
 * parameters are the feature's fields named after it (region_source_place fills {place}). */
export function valueLabel(name, value, properties = {}) {
  const list = /^name_[a-z]{2}_source$/.test(name) ? "name_source" : name;
  const key = `value.${list}.${value}`;
  if (!strings[key]) return null;
  const params = Object.fromEntries(Object.entries(properties)
    .filter(([field]) => field.startsWith(`${name}_`))
    .map(([field, param]) => [field.slice(name.length + 1), param]));
  return t(key, params);
}

/** Whether a field is a parameter of another field's code (region_source_place of
 * region_source), said in that field's words rather than on its own. */
export function isCodeParameter(name, properties) {
  return Object.keys(properties).some((field) => field !== name && name.startsWith(`${field}_`)
    && strings[`value.${/^name_[a-z]{2}_source$/.test(field) ? "name_source" : field}.${properties[field]}`]);
}

/** A metadata text in the current language from a {language: text} object (English fallback). */
export function pick(texts) {
  if (texts == null) return "";
  if (typeof texts === "string") return texts;
  return texts[language] || texts.en || Object.values(texts)[0] || "";
}

/** Whether the browser's Intl has its own data for the page's language (Chromium has no
 * Kyrgyz: it would write English month names on a Kyrgyz page). */
function intlSpeaks(lang) {
  return new Intl.DateTimeFormat(lang).resolvedOptions().locale.split("-")[0] === lang;
}

/** A month's name (1-12) standing alone ("March", "март"), for month-long time steps. */
export function monthName(month) {
  if (!intlSpeaks(language)) return t(`month.${month}`);
  return new Intl.DateTimeFormat(language, { month: "long", timeZone: "UTC" })
    .format(new Date(Date.UTC(2000, month - 1, 15)));
}

/**
 * A date ("2020-02-02") or a timestamp in words in the page's language: Intl where the
 * browser knows the language, else our own month names (strings.yml month.N, date.pattern).
 * Timestamps add the local time (hours and minutes); plain dates are calendar dates (UTC).
 */
export function formatDate(iso) {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(iso);
  const date = new Date(dateOnly ? `${iso}T00:00:00Z` : iso);
  if (Number.isNaN(date.getTime())) return iso;
  const zone = dateOnly ? { timeZone: "UTC" } : {};
  const time = dateOnly ? ""
    : ` ${new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(date)}`;
  if (intlSpeaks(language)) {
    return new Intl.DateTimeFormat(language, { day: "numeric", month: "long", year: "numeric", ...zone })
      .format(date) + time;
  }
  const parts = dateOnly
    ? { day: date.getUTCDate(), month: date.getUTCMonth() + 1, year: date.getUTCFullYear() }
    : { day: date.getDate(), month: date.getMonth() + 1, year: date.getFullYear() };
  const two = (n) => String(n).padStart(2, "0");
  return t("date.pattern", { ...parts, month: t(`month.${parts.month}`), day2: two(parts.day),
                             month2: two(parts.month) }) + time;
}

/** Every <time datetime="..."> under `root` written out in the page's language. */
export function formatTimes(root = document) {
  for (const node of root.querySelectorAll("time[datetime]")) {
    node.textContent = formatDate(node.getAttribute("datetime"));
  }
}
