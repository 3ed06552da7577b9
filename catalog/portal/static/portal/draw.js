// Drawing an area on the MapLibre map: a rectangle (two opposite corners) or a polygon
// (click its corners). A small interaction of our own: MapLibre's click events already tell a
// click from a drag, so the map still pans while drawing, with a mouse or a finger.

const SNAP_PX = 10; // a click this close to the first corner closes the polygon
const EMPTY = { type: "FeatureCollection", features: [] };

export const DRAW_SOURCE = "analysis-draw";
export const DRAW_LAYERS = drawLayerIds(DRAW_SOURCE);

/** The map layers drawing into source `id` shows itself on. */
export function drawLayerIds(id) {
  return [`${id}-fill`, `${id}-line`, `${id}-point`];
}

/** A GeoJSON source `id` (the Analysis tab's by default) and its layers: the shape being drawn. */
export function addDrawLayers(map, colour, id = DRAW_SOURCE) {
  const [fill, line, point] = drawLayerIds(id);
  map.addSource(id, { type: "geojson", data: EMPTY });
  map.addLayer({ id: fill, type: "fill", source: id,
                 filter: ["==", ["geometry-type"], "Polygon"],
                 paint: { "fill-color": colour, "fill-opacity": 0.15 } });
  map.addLayer({ id: line, type: "line", source: id,
                 filter: ["!=", ["geometry-type"], "Point"],
                 paint: { "line-color": colour, "line-width": 2, "line-dasharray": [2, 1] } });
  map.addLayer({ id: point, type: "circle", source: id,
                 filter: ["==", ["geometry-type"], "Point"],
                 paint: { "circle-color": "#fff", "circle-radius": 4, "circle-stroke-color": colour,
                          "circle-stroke-width": 2 } });
}

/** A closed GeoJSON Polygon from corners [[lon, lat], ...]. */
export function polygonOf(corners) {
  return { type: "Polygon", coordinates: [[...corners, corners[0]].map(roundPoint)] };
}

export function rectangleOf(a, b) {
  const [west, east] = [Math.min(a[0], b[0]), Math.max(a[0], b[0])];
  const [south, north] = [Math.min(a[1], b[1]), Math.max(a[1], b[1])];
  return polygonOf([[west, south], [east, south], [east, north], [west, north]]);
}

// 5 decimals: about a metre, far finer than the 15 arc-second grid the processes use.
function roundPoint([lon, lat]) {
  return [Math.round(lon * 1e5) / 1e5, Math.round(lat * 1e5) / 1e5];
}

/**
 * The drawing interaction. `onDone(polygon)` gets a GeoJSON Polygon; `onState(mode, corners)`
 * is told about every change (to update help texts and buttons). `source` is the GeoJSON
 * source of addDrawLayers the shape being drawn is shown in.
 */
export function createDraw(map, { onDone, onState, source: sourceId = DRAW_SOURCE }) {
  let mode = null;
  let corners = [];
  let pointer = null;

  const source = () => map.getSource(sourceId);
  const lngLat = (event) => [event.lngLat.lng, event.lngLat.lat];

  function preview() {
    const points = pointer ? [...corners, pointer] : corners;
    const features = corners.map((c) => ({ type: "Feature", properties: {},
                                            geometry: { type: "Point", coordinates: c } }));
    if (mode === "rectangle" && points.length === 2) {
      features.push({ type: "Feature", properties: {}, geometry: rectangleOf(points[0], points[1]) });
    } else if (mode === "polygon" && points.length >= 3) {
      features.push({ type: "Feature", properties: {}, geometry: polygonOf(points) });
    } else if (points.length === 2) {
      features.push({ type: "Feature", properties: {},
                      geometry: { type: "LineString", coordinates: points } });
    }
    if (source()) source().setData({ type: "FeatureCollection", features });
  }

  function changed() {
    preview();
    onState(mode, corners.length);
  }

  function stop() {
    mode = null;
    corners = [];
    pointer = null;
    map.getCanvas().style.cursor = "";
    map.doubleClickZoom.enable();
    changed();
  }

  function finish() {
    if (mode === "rectangle" && corners.length === 2) {
      const shape = rectangleOf(corners[0], corners[1]);
      stop();
      onDone(shape);
    } else if (mode === "polygon" && corners.length >= 3) {
      const shape = polygonOf(corners);
      stop();
      onDone(shape);
    }
  }

  function nearFirstCorner(event) {
    if (corners.length < 3) return false;
    const first = map.project(corners[0]);
    return Math.hypot(first.x - event.point.x, first.y - event.point.y) <= SNAP_PX;
  }

  function onClick(event) {
    if (!mode) return;
    if (mode === "polygon" && nearFirstCorner(event)) { finish(); return; }
    const point = lngLat(event);
    const last = corners[corners.length - 1];
    // A double click arrives as two clicks first: do not add the same corner twice.
    if (last && map.project(last).dist(event.point) < 3) return;
    corners.push(point);
    if (mode === "rectangle" && corners.length === 2) { finish(); return; }
    changed();
  }

  function onMove(event) {
    if (!mode || !corners.length) return;
    pointer = lngLat(event);
    preview();
  }

  function onKey(event) {
    if (!mode) return;
    if (event.key === "Escape") { event.preventDefault(); stop(); }
    else if (event.key === "Enter") { event.preventDefault(); finish(); }
    else if (event.key === "Backspace" && corners.length) {
      event.preventDefault();
      corners.pop();
      changed();
    }
  }

  map.on("click", onClick);
  map.on("dblclick", (event) => { if (mode) { event.preventDefault(); finish(); } });
  map.on("mousemove", onMove);
  map.getCanvas().addEventListener("keydown", onKey);
  document.addEventListener("keydown", (event) => { if (event.target === document.body) onKey(event); });

  return {
    start(next) {
      mode = next;
      corners = [];
      pointer = null;
      map.doubleClickZoom.disable();
      map.getCanvas().style.cursor = "crosshair";
      changed();
    },
    cancel: stop,
    finish,
    active: () => mode !== null,
    clear: () => source() && source().setData(EMPTY),
    /** Show a finished shape (a GeoJSON Polygon, or null for none) in the drawing's source. */
    show: (polygon) => source() && source().setData(polygon
      ? { type: "FeatureCollection", features: [{ type: "Feature", properties: {}, geometry: polygon }] }
      : EMPTY),
  };
}

