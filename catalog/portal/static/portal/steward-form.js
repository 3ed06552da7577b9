// The stewards' manifest form, built from the manifest's schema (catalog.manifest.form_schema,
// the same constants `taza validate` checks), so the form offers only what validation accepts.
// Fields the form does not show (raster, source) are kept from the loaded manifest as they were.
import { checkDate, dateInput } from "./date-input.js";
import { t } from "./i18n.js";
import { el } from "./util.js";

// The languages side by side come from the schema, in the catalog's one order
// (catalog.core.languages.LANGUAGES).
export function buildForm(container, schema, themes, language) {
  const texts = (key, multiline) => fieldset(`steward_field_${key}`,
    el("div", { class: "languages" }, ...schema.texts[key].languages
      .map((lang) => labelled(`steward_lang_${lang}`,
        multiline ? el("textarea", { name: `${key}.${lang}`, rows: "3", lang })
          : el("input", { type: "text", name: `${key}.${lang}`, lang })))));
  const keywords = fieldset("steward_field_keywords",
    el("div", { class: "languages" }, ...schema.keywords.languages
      .map((lang) => labelled(`steward_lang_${lang}`, el("input", { type: "text", name: `keywords.${lang}`, lang })))));
  const choices = Object.entries(schema.choices).map(([key, values]) => labelled(`steward_field_${key}`,
    el("select", { name: key }, el("option", { value: "" }, t("steward_choose")),
       ...values.map((value) => el("option", { value }, choiceLabel(key, value, themes, language))))));
  const role = labelled("steward_field_role", el("select", { name: "role" },
    el("option", { value: "" }, t("steward_role_none")),
    ...schema.optional_choices.role.map((value) => el("option", { value }, t(`steward_role_${value}`)))));
  container.replaceChildren(
    texts("title", false), texts("description", true), keywords,
    el("div", { class: "row choices" }, ...choices, role),
    licencePicker(schema.licence.offered),
    labelled("steward_field_attribution", el("input", { type: "text", name: "attribution" })),
    fieldset("steward_field_steward", el("div", { class: "row" },
      ...schema.steward.map((part) => labelled(`steward_field_steward_${part}`,
        el("input", { type: part === "email" ? "email" : "text", name: `steward.${part}` }))))),
    fieldset("steward_field_provenance",
      labelled("steward_field_provenance_method", el("textarea", { name: "provenance.method", rows: "2" })),
      labelled("steward_field_provenance_limitations", el("textarea", { name: "provenance.limitations", rows: "2" })),
      el("p", {}, t("steward_field_derived_from")),
      el("div", { id: "derived-from", class: "stack" }),
      el("button", { type: "button", class: "secondary", id: "add-derived",
                     onclick: () => addDerived(container, schema, {}) }, t("steward_add_source"))),
    fieldset("steward_field_temporal_extent", el("div", { class: "row" },
      ...schema.temporal_extent.map((part) => labelled(`steward_field_temporal_${part}`,
        dateField(`temporal_extent.${part}`, t(`steward_field_temporal_${part}`)))))),
    labelled("steward_field_id_field", el("input", { type: "text", name: "id_field" })));
}

function choiceLabel(key, value, themes, language) {
  if (key === "theme") return (themes[value] && themes[value].title[language]) || value;
  if (key === "nature") return t(`nature.${value}`);
  return t(`steward_freq_${value}`);
}

function licencePicker(offered) {
  const select = el("select", { name: "licence-choice" },
    el("option", { value: "" }, t("steward_choose")),
    ...offered.map((id) => el("option", { value: id }, id)),
    el("option", { value: "other" }, t("steward_licence_other")));
  const other = labelled("steward_field_licence_other", el("input", { type: "text", name: "licence-other" }));
  const allows = el("p", { class: "meta licence-allows", "aria-live": "polite" });
  const update = () => {
    other.hidden = select.value !== "other";
    allows.textContent = select.value ? t(`steward_licence_allows_${select.value === "other" ? "other" : select.value}`) : "";
  };
  select.addEventListener("change", update);
  select.syncLicence = update;
  other.hidden = true;
  return el("div", { class: "stack" }, labelled("steward_field_licence", select), other, allows);
}

function addDerived(container, schema, entry) {
  const box = container.querySelector("#derived-from");
  const index = box.children.length;
  box.append(el("div", { class: "row derived" }, ...schema.provenance.derived_from.map((part) =>
    labelled(`steward_field_derived_${part}`,
      el("input", { type: part === "href" ? "url" : "text", name: `provenance.derived_from.${index}.${part}`,
                    value: entry[part] == null ? "" : String(entry[part]) })))));
}

// A date typed as YYYY-MM-DD (date-input.js: not the browser's own date input, whose words
// Chromium writes in English), checked when it changes and before the form is sent.
function dateField(name, title) {
  const input = dateInput({ name });
  input.addEventListener("change", () => checkDate(input, title));
  return input;
}

/** Whether every date of the form is a date (each wrong one says so beside it). */
export function checkDates(form) {
  return [...form.querySelectorAll("input[data-date]")].map((input) =>
    checkDate(input, input.closest("label").querySelector("span").textContent)).every(Boolean);
}

function labelled(key, control) {
  return el("label", { class: "field" }, el("span", {}, t(key)), control);
}

function fieldset(key, ...children) {
  return el("fieldset", {}, el("legend", {}, t(key)), ...children);
}

/** Put a manifest (a JSON object) into the form. */
export function fillForm(form, schema, manifest) {
  form.querySelector("#derived-from").replaceChildren();
  const derived = (manifest.provenance && manifest.provenance.derived_from) || [];
  (derived.length ? derived : [{}]).forEach((entry) => addDerived(form, schema, entry || {}));
  for (const control of form.querySelectorAll("[name]")) {
    const value = lookup(manifest, control.name);
    if (control.name.startsWith("keywords.")) control.value = Array.isArray(value) ? value.join(", ") : "";
    else if (!control.name.startsWith("licence-")) control.value = value == null ? "" : String(value);
  }
  const licence = manifest.licence || "";
  const choice = form.querySelector("[name=licence-choice]");
  choice.value = !licence ? "" : schema.licence.offered.includes(licence) ? licence : "other";
  form.querySelector("[name=licence-other]").value = choice.value === "other" ? licence : "";
  choice.syncLicence();
}

/** The manifest from the form: the loaded one with the form's fields replaced (empty ones
 *  left out, so validation names them as missing). */
export function readForm(form, loaded) {
  const manifest = structuredClone(loaded || {});
  for (const key of ["title", "description", "keywords", "steward", "provenance", "temporal_extent"]) delete manifest[key];
  for (const key of ["theme", "nature", "update_frequency", "role", "attribution", "id_field", "licence"]) delete manifest[key];
  for (const control of form.querySelectorAll("[name]")) {
    if (control.name.startsWith("licence-")) continue;
    const text = control.value.trim();
    if (!text) continue;
    const value = control.name.startsWith("keywords.")
      ? text.split(",").map((word) => word.trim()).filter(Boolean) : text;
    assign(manifest, control.name, value);
  }
  const choice = form.querySelector("[name=licence-choice]").value;
  const licence = choice === "other" ? form.querySelector("[name=licence-other]").value.trim() : choice;
  if (licence) manifest.licence = licence;
  if (manifest.provenance && manifest.provenance.derived_from) {
    manifest.provenance.derived_from = Object.values(manifest.provenance.derived_from);
  }
  return manifest;
}

function lookup(object, path) {
  return path.split(".").reduce((value, key) => (value == null ? undefined : value[key]), object);
}

function assign(object, path, value) {
  const keys = path.split(".");
  let node = object;
  keys.slice(0, -1).forEach((key) => { node[key] = node[key] || {}; node = node[key]; });
  node[keys[keys.length - 1]] = value;
}

/** Why a dataset id is refused (in the page's language), or "" when it is fine. */
export function idProblem(schema, id) {
  if (!new RegExp(schema.id.pattern).test(id)) return t("steward_id_invalid");
  if (schema.id.reserved.includes(id)) return t("steward_id_reserved", { id });
  return "";
}
