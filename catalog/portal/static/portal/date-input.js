// Date fields written by hand (YYYY-MM-DD) instead of <input type=date>: Chromium draws a date
// input's own words from the browser's locale ("mm/dd/yyyy" on a Kyrgyz or Russian page), so
// the hint and the check here are ours, in the page's language (strings.yml date.*).
import { t } from "./i18n.js";
import { el } from "./util.js";

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
let notes = 0;

/** Whether `text` is a calendar date written YYYY-MM-DD (2024-02-30 is not). */
export function isDate(text) {
  const match = DATE.exec(text);
  if (!match) return false;
  const [year, month, day] = match.slice(1).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** A text input for a date with the format as its placeholder; `attributes` as el() takes them. */
export function dateInput(attributes = {}) {
  return el("input", { type: "text", inputmode: "numeric", autocomplete: "off", maxlength: "10",
                       placeholder: t("date.hint"), "data-date": "true", ...attributes });
}

/** Mark `input` invalid or valid (an empty one is valid: required-ness is checked elsewhere)
 *  and show the reason after it; returns whether it is valid. `name` names the field. */
export function checkDate(input, name) {
  const text = input.value.trim();
  const valid = text === "" || isDate(text);
  let note = input.nextElementSibling && input.nextElementSibling.classList.contains("date-problem")
    ? input.nextElementSibling : null;
  if (valid) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
    if (note) note.remove();
    return true;
  }
  input.setAttribute("aria-invalid", "true");
  if (!note) {
    notes += 1;
    note = el("p", { class: "date-problem", role: "alert", id: `date-problem-${notes}` });
    input.after(note);
  }
  input.setAttribute("aria-describedby", note.id);
  note.textContent = t("date.invalid", { field: name });
  return false;
}
