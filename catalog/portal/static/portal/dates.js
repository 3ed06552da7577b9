// A dataset page's dates (<time datetime>) written out in the page's language.
import { formatTimes, initI18n } from "./i18n.js";

const data = JSON.parse(document.getElementById("portal-data").textContent);
initI18n(data.strings, data.language);
formatTimes();
