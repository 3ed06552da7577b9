// A dataset page's raster clip: the region or box (and time step) chosen, the size estimated by
// the server (/portal/clip/<id>/estimate) and shown before the download link is offered.
import { currentLanguage, initI18n, t } from "./i18n.js";
import { formatNumber, getJson } from "./util.js";

const data = JSON.parse(document.getElementById("portal-data").textContent);
initI18n(data.strings, data.language);

const form = document.getElementById("clip-form");
const region = document.getElementById("clip-region");
const step = document.getElementById("clip-step");
const size = document.getElementById("clip-size");
const download = document.getElementById("clip-download");
const SIDES = ["west", "south", "east", "north"];

function query() {
  const params = new URLSearchParams();
  if (region.value) params.set("region", region.value);
  else params.set("bbox", SIDES.map((side) => document.getElementById(`clip-${side}`).value).join(","));
  if (step) params.set("step", step.value);
  return params;
}

function megabytes(bytes) {
  return t("clip.mb", { n: formatNumber(Math.max(0.01, bytes / 1e6), currentLanguage()) });
}

async function estimate(event) {
  event.preventDefault();
  download.hidden = true;
  const params = query();
  try {
    const answer = await getJson(`${form.dataset.href}/estimate?${params}`);
    if (!answer.allowed) {
      size.textContent = t("clip.too_large", { size: megabytes(answer.bytes), limit: megabytes(answer.limit_bytes) });
      return;
    }
    size.textContent = t("clip.size", {
      w: formatNumber(answer.width, currentLanguage()), h: formatNumber(answer.height, currentLanguage()),
      size: megabytes(answer.bytes),
    });
    download.href = `${form.dataset.href}?${params}`;
    download.download = answer.file;
    download.hidden = false;
  } catch (error) {
    size.textContent = error.message;
  }
}

form.addEventListener("submit", estimate);
for (const input of form.querySelectorAll("select, input")) {
  input.addEventListener("change", () => { download.hidden = true; size.textContent = ""; });
}
const box = document.getElementById("clip-box");
region.addEventListener("change", () => { box.disabled = Boolean(region.value); });
