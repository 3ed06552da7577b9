// The shareable part of the page lives in the URL: ?lang=xx#map=zoom/lat/lon&layers=a,b@60
// (a layer id, optionally @opacity in percent), then other tools' pairs (the Analysis tab's
// run: &analysis=screening&area=KG-C&max_slope_deg=5...).

export function readState() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const state = { view: null, layers: [], params };
  const view = (params.get("map") || "").split("/").map(Number);
  if (view.length === 3 && view.every(Number.isFinite)) {
    state.view = { zoom: view[0], center: [view[2], view[1]] };
  }
  for (const part of (params.get("layers") || "").split(",")) {
    if (!part) continue;
    const [id, opacity] = part.split("@");
    const value = Number(opacity);
    state.layers.push({ id, opacity: opacity !== undefined && Number.isFinite(value) ? value : null });
  }
  return state;
}

export function writeState({ map, layers, language, extra = [] }) {
  const center = map.getCenter();
  const zoom = map.getZoom();
  const view = `${zoom.toFixed(2)}/${center.lat.toFixed(4)}/${center.lng.toFixed(4)}`;
  const on = layers.filter((l) => l.visible).map((l) => (l.opacity === l.defaultOpacity ? l.id : `${l.id}@${l.opacity}`));
  const more = extra.length ? `&${new URLSearchParams(extra)}` : "";
  const hash = `#map=${view}` + (on.length ? `&layers=${on.join(",")}` : "") + more;
  const url = new URL(location.href);
  if (language) url.searchParams.set("lang", language);
  history.replaceState(null, "", url.pathname + url.search + hash);
}
