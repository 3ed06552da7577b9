// Behaviour shared by every pygeoapi HTML page (catalog/ogc/templates/_base.html): no inline
// scripts, so pages pass data in <script type="application/json"> blocks read here.

/** The JSON of a <script type="application/json" id=...> block, or null. */
export function pageData(id) {
  const block = document.getElementById(id);
  return block ? JSON.parse(block.textContent) : null;
}

/** The same-origin path of a link href: fetches stay within the Content-Security-Policy's
 * connect-src 'self' even when the server's configured URL names another host. */
export function localPath(href) {
  const url = new URL(href, location.href);
  return url.pathname + url.search;
}

// Search engines read a page's JSON-LD from the page itself (as pygeoapi's pages do):
// fetch this page's ld+json alternate and embed it as a data block.
async function embedJsonLd() {
  const link = document.querySelector('link[rel="alternate"][type="application/ld+json"]');
  if (!link) return;
  const response = await fetch(localPath(link.href), { headers: { Accept: "application/ld+json" } });
  if (!response.ok) return;
  const block = document.createElement("script");
  block.type = "application/ld+json";
  block.textContent = await response.text();
  document.head.append(block);
}

// A page-size selector: reload the page with the chosen limit, from the first page.
function wireLimitSelectors() {
  for (const select of document.querySelectorAll("select[data-limit-selector]")) {
    const current = new URL(location.href).searchParams.get("limit");
    if (current && [...select.options].some((option) => option.value === current)) select.value = current;
    select.addEventListener("change", () => {
      const url = new URL(location.href);
      url.searchParams.set("limit", select.value);
      url.searchParams.delete("offset");
      location.assign(url);
    });
  }
}

// JSON shown to people (job parameters and results): indented, as text (never as HTML).
function showJson() {
  for (const target of document.querySelectorAll("[data-json-from]")) {
    target.textContent = JSON.stringify(parsedIfJson(pageData(target.dataset.jsonFrom)), null, 2);
  }
}

// pygeoapi keeps a job's parameters as JSON text: show the object it holds.
function parsedIfJson(value) {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

// The language switch keeps the page's other parameters (bbox, limit, ...), and links within
// /ogc keep the language the page was asked in (pygeoapi's links do not carry it).
function keepLanguage() {
  const here = new URL(location.href);
  for (const link of document.querySelectorAll(".ogc-lang-switch a[data-lang]")) {
    const target = new URL(here);
    target.searchParams.set("lang", link.dataset.lang);
    link.href = target.pathname + target.search;
  }
  const language = here.searchParams.get("lang");
  if (!language) return;
  for (const link of document.querySelectorAll("main a[href], .ogc-crumbs a[href]")) {
    const target = new URL(link.href, location.href);
    if (target.origin !== location.origin || !target.pathname.startsWith("/ogc/") ||
        target.searchParams.has("lang")) continue;
    target.searchParams.set("lang", language);
    link.href = target.pathname + target.search + target.hash;
  }
}

keepLanguage();
wireLimitSelectors();
showJson();
embedJsonLd().catch(() => {}); // optional: the page works without it
